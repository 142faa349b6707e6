#include <chrono>
#include <unordered_map>
#include <unordered_set>

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

namespace {

/// Client-certificate and cipher settings are per host (ingress-nginx applies them to the server
/// block): the first Ingress in precedence order that sets them for a host decides. A later one
/// asking for different settings on that host fails closed rather than being served under
/// someone else's client-certificate policy; a host whose settings do not compile fails closed
/// as a whole (its paths answer 503), never open.
template <class FailPath>
tls::ServerContexts::HostPolicies host_tls_policies(config::Config& config, config::Diagnostics& diag,
                                                    const FailPath& fail_path) {
  struct Entry {
    tls::HostTlsSpec spec;
    const config::RoutePolicy* owner;
    std::string error;
  };
  std::unordered_map<std::string, Entry> hosts;
  std::vector<std::string> order;
  const auto spec_of = [](const std::string& host, const config::RoutePolicy& pol) {
    tls::HostTlsSpec s;
    s.host = host;
    s.verify = pol.verify_client;
    s.verify_depth = pol.auth_tls_verify_depth;
    s.ca_pem = pol.auth_tls_ca_pem;
    s.crl_pem = pol.auth_tls_crl_pem;
    s.ciphers = pol.ssl_ciphers;
    s.resource = pol.resource;
    return s;
  };
  const auto same = [](const tls::HostTlsSpec& a, const tls::HostTlsSpec& b) {
    return a.verify == b.verify && a.verify_depth == b.verify_depth && a.ca_pem == b.ca_pem &&
           a.crl_pem == b.crl_pem && a.ciphers == b.ciphers;
  };
  for (auto& r : config.routes) {
    if (r.host.empty() || r.host == "*") continue;
    for (auto& p : r.paths) {
      const auto* pol = p.policy.get();
      if (pol == nullptr || !pol->fail_closed.empty()) continue;
      if (pol->verify_client == config::VerifyClient::Off && pol->ssl_ciphers.empty()) continue;
      auto spec = spec_of(r.host, *pol);
      auto [it, inserted] = hosts.try_emplace(r.host, Entry{spec, pol, {}});
      if (inserted) {
        order.push_back(r.host);
      } else if (it->second.owner != pol && !same(it->second.spec, spec)) {
        diag.error(p.where.file, p.where.line, "metadata.annotations",
                   "host " + r.host + " already has client-certificate/cipher settings from " +
                       it->second.spec.resource + ": failing closed (503)",
                   pol->resource);
        fail_path(p, "conflicting TLS settings for host " + r.host);
      }
    }
  }
  tls::ServerContexts::HostPolicies out;
  std::unordered_map<std::string, std::string> broken;  // host → why
  for (const auto& host : order) {
    auto& e = hosts.at(host);
    std::string error;
    auto compiled = tls::HostPolicy::compile(e.spec, config.tls.allow_insecure_tls, error);
    if (!compiled) {
      diag.error(config.file, 0, "metadata.annotations",
                 "host " + host + ": " + error + ": failing closed (503)", e.spec.resource);
      broken.emplace(host, error);
      continue;
    }
    out.emplace_back(host, std::move(compiled));
  }
  if (!broken.empty()) {
    std::unordered_set<std::string> own;  // hosts with a compiled policy of their own
    for (const auto& hp : out) own.insert(hp.first);
    for (auto& r : config.routes) {
      auto it = broken.find(r.host);
      // A host under a broken "*.suffix" (one label, as ServerContexts::policy_for) with no
      // policy of its own would fall back to none, i.e. be served without the client
      // certificates the wildcard asks of every name under it: it fails closed with it.
      if (it == broken.end() && !r.host.empty() && r.host.front() != '*' && own.count(r.host) == 0) {
        if (const auto dot = r.host.find('.'); dot != std::string::npos && dot > 0) {
          std::string wildcard = "*";
          wildcard.append(r.host, dot, std::string::npos);
          it = broken.find(wildcard);
          if (it != broken.end() && !r.paths.empty()) {
            const auto* pol = r.paths.front().policy.get();
            diag.error(r.where.file, r.where.line, "host",
                       "host " + r.host + " relies on the TLS settings of " + it->first +
                           ", which are invalid: failing closed (503)",
                       pol != nullptr ? pol->resource : "");
          }
        }
      }
      if (it == broken.end()) continue;
      for (auto& p : r.paths) {
        if (p.policy == nullptr) p.policy = std::make_shared<config::RoutePolicy>();
        if (p.policy->fail_closed.empty()) fail_path(p, "invalid TLS settings for host " + it->first);
      }
    }
  }
  return out;
}

}  // namespace

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
  // Annotations whose behaviour is not built yet must not be ignored: an Ingress asking for an
  // HTTPS backend fails closed instead of being served over plain HTTP.
  const auto fail_path = [&](config::PathSpec& p, const std::string& why) {
    auto copy = std::make_shared<config::RoutePolicy>(*p.policy);
    copy->fail_closed = why;
    p.policy = std::move(copy);
  };
  for (auto& r : config.routes) {
    for (auto& p : r.paths) {
      const auto* pol = p.policy.get();
      if (pol == nullptr || !pol->fail_closed.empty()) continue;
      if (pol->backend_protocol != config::BackendProtocol::Https) continue;
      diag.error(p.where.file, p.where.line, "metadata.annotations",
                 "backend-protocol HTTPS is not supported yet: failing closed (503)", pol->resource);
      fail_path(p, "backend-protocol HTTPS is not supported yet");
    }
  }
  auto host_policies = host_tls_policies(config, diag, fail_path);
  auto cfg = std::make_shared<const config::Config>(std::move(config));
  if (!cfg->listeners.https.empty()) {
    snap->tls = tls::ServerContexts::build(cfg->tls, std::move(keys), diag, std::move(host_policies));
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
  // Source allow/deny lists, compiled once per policy (an Ingress's paths share one).
  auto compile = [&](const std::vector<std::string>& cidrs, access::CidrSet& into, const std::string& field,
                     const std::string& resource) {
    for (const auto& text : cidrs) {
      if (auto c = access::parse_cidr(text)) {
        into.add(*c);
      } else {
        diag.error(cfg->file, 0, field, "invalid CIDR '" + text + "'", resource);
      }
    }
  };
  std::unordered_map<const config::RoutePolicy*, std::shared_ptr<const access::AccessList>> compiled;
  auto add_access = [&](const config::PathSpec& p) {
    const auto* pol = p.policy.get();
    std::shared_ptr<const access::AccessList> acl;
    if (pol != nullptr && (!pol->allow_source_ranges.empty() || !pol->deny_source_ranges.empty())) {
      auto& slot = compiled[pol];
      if (!slot) {
        auto list = std::make_shared<access::AccessList>();
        compile(pol->allow_source_ranges, list->allow, "allowlist-source-range", pol->resource);
        compile(pol->deny_source_ranges, list->deny, "denylist-source-range", pol->resource);
        slot = std::move(list);
      }
      acl = slot;
    }
    snap->route_access.push_back(std::move(acl));
  };
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      add_cluster((r.host.empty() ? "*" : r.host) + " " + p.path, p);
      add_access(p);
    }
  }
  if (cfg->default_backend) {
    add_cluster("default backend", *cfg->default_backend);
    add_access(*cfg->default_backend);
  }
  compile(cfg->allow_source_ranges, snap->global_access.allow, "access.allow", "");
  compile(cfg->deny_source_ranges, snap->global_access.deny, "access.deny", "");
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
