#include <chrono>

#include "phigate/compile/policy.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/server/server.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::server {

std::size_t fatal_errors(const config::Diagnostics& diag) {
  std::size_t n = 0;
  for (const auto& d : diag.entries())
    n += (d.severity == config::Severity::Error && d.resource.empty()) ? 1 : 0;
  return n;
}

proxy::SnapshotPtr build_snapshot(config::Config config, std::shared_ptr<tls::TicketKeyRing> keys,
                                  std::uint64_t generation, config::Diagnostics& diag,
                                  ingress::DirectoryLoader* loader) {
  const auto started = std::chrono::steady_clock::now();
  auto snap = std::make_shared<proxy::Snapshot>();
  snap->generation = generation;
  // Every policy decision (Ingress translation, fail-closed marks, per-host TLS policies, access
  // lists) is made by the compile step that `phigate validate` runs too; what follows only
  // assembles runtime objects from it.
  auto compiled = compile::load_and_compile(std::move(config), diag, loader);
  if (!compiled) return nullptr;  // a manifest file that does not load as a whole
  const auto& st = compiled->ingress;
  snap->ingress = {st.ingresses, st.used,  st.ignored,      st.failed_closed,
                   st.routes,    st.paths, st.certificates, st.conflicts};
  auto cfg = std::make_shared<const config::Config>(std::move(compiled->config));
  if (!cfg->listeners.https.empty()) {
    snap->tls =
        tls::ServerContexts::build(cfg->tls, std::move(keys), diag, std::move(compiled->host_policies));
  }
  snap->routes = router::RouteTable::build(cfg->routes, diag, cfg->default_backend);
  auto add_cluster = [&](const std::string& name, const config::PathSpec& p) {
    upstream::Cluster c;
    c.name = name;
    for (const auto& b : p.backends) {
      auto ep = net::resolve_endpoint(b);
      if (!ep) {
        diag.error(p.where.file, p.where.line, "backends", ep.error().context,
                   p.policy ? p.policy->resource : "");
        continue;
      }
      upstream::Endpoint e;
      e.address = *ep;
      e.key = net::to_string(*ep);
      // --- health: state shared by every worker ---
      e.health = std::make_shared<upstream::EndpointHealth>();

      c.endpoints.push_back(std::move(e));
    }
    // --- health ---
    c.health = std::make_shared<upstream::HealthGroup>();

    // --- balancing ---

    // --- retries ---

    // --- TLS to the backend ---
    c.tls = compiled->backend_tls.at(snap->clusters.size());  // compiled in the same path order

    snap->clusters.push_back(std::move(c));
  };
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      add_cluster((r.host.empty() ? "*" : r.host) + " " + p.path, p);
    }
  }
  if (cfg->default_backend) {
    add_cluster("default backend", *cfg->default_backend);
  }
  snap->route_access = std::move(compiled->route_access);  // same order as the clusters
  snap->global_access = std::move(compiled->global_access);
  snap->trusted_proxies = std::move(compiled->trusted_proxies);
  snap->https_redirect_port = static_cast<std::uint16_t>(cfg->listeners.https_redirect_port);
  if (const auto& h = cfg->tls.hsts; h.enabled) {
    snap->hsts_field = "Strict-Transport-Security: max-age=" + std::to_string(h.max_age) +
                       (h.include_subdomains ? "; includeSubDomains" : "") + (h.preload ? "; preload" : "") +
                       "\r\n";
  }
  const bool tls_missing = !cfg->listeners.https.empty() && !snap->tls;
  snap->config = std::move(cfg);
  if (fatal_errors(diag) > 0 || tls_missing) return nullptr;
  snap->resource_errors = diag.error_count();
  snap->build_time =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return snap;
}

}  // namespace phigate::server
