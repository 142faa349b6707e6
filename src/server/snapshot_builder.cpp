#include <chrono>

#include "phigate/access/cidr.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/server/server.hpp"

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
  if (!config.ingress.dir.empty()) {
    auto loaded = loader ? loader->load(config.ingress.dir) : ingress::load_directory(config.ingress.dir);
    for (const auto& d : loaded.diagnostics.entries()) diag.add(d);
    if (loaded.broken_files > 0) return nullptr;  // a change that does not load as a whole
    auto t = ingress::translate(loaded.resources, config.ingress, diag);
    const auto& st = t.stats;
    snap->ingress = {st.ingresses, st.used,  st.ignored,      st.failed_closed,
                     st.routes,    st.paths, st.certificates, st.conflicts};
    // Static routes first: they win over Ingresses claiming the same host and path.
    for (auto& r : t.routes) config.routes.push_back(std::move(r));
    if (!config.default_backend) config.default_backend = std::move(t.default_backend);
    for (auto& c : t.certificates) config.tls.certificates.push_back(std::move(c));
  }
  auto cfg = std::make_shared<const config::Config>(std::move(config));
  if (!cfg->listeners.https.empty()) {
    snap->tls = tls::ServerContexts::build(cfg->tls, std::move(keys), diag);
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
      c.endpoints.push_back({*ep, net::to_string(*ep)});
    }
    snap->clusters.push_back(std::move(c));
  };
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) add_cluster((r.host.empty() ? "*" : r.host) + " " + p.path, p);
  }
  if (cfg->default_backend) add_cluster("default backend", *cfg->default_backend);
  for (std::size_t i = 0; i < cfg->trusted_proxies.size(); ++i) {
    const auto c = access::parse_cidr(cfg->trusted_proxies[i]);
    if (!c) {
      diag.error(cfg->file, 0, "trusted_proxies[" + std::to_string(i) + "]",
                 "invalid CIDR '" + cfg->trusted_proxies[i] + "'");
      continue;
    }
    snap->trusted_proxies.add(*c);
  }
  snap->https_redirect_port = static_cast<std::uint16_t>(cfg->listeners.https_redirect_port);
  const bool tls_missing = !cfg->listeners.https.empty() && !snap->tls;
  snap->config = std::move(cfg);
  if (fatal_errors(diag) > 0 || tls_missing) return nullptr;
  snap->resource_errors = diag.error_count();
  snap->build_time =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return snap;
}

}  // namespace phigate::server
