#include "phigate/access/cidr.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/server/server.hpp"

namespace phigate::server {

proxy::SnapshotPtr build_snapshot(std::shared_ptr<const config::Config> cfg,
                                  std::shared_ptr<tls::TicketKeyRing> keys, std::uint64_t generation,
                                  config::Diagnostics& diag) {
  auto snap = std::make_shared<proxy::Snapshot>();
  snap->generation = generation;
  if (!cfg->listeners.https.empty()) {
    snap->tls = tls::ServerContexts::build(cfg->tls, std::move(keys), diag);
  }
  snap->routes = router::RouteTable::build(cfg->routes, diag);
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      upstream::Cluster c;
      c.name = (r.host.empty() ? "*" : r.host) + " " + p.path;
      for (const auto& b : p.backends) {
        auto ep = net::resolve_endpoint(b);
        if (!ep) {
          diag.error(p.where.file, p.where.line, "backends", ep.error().context);
          continue;
        }
        c.endpoints.push_back({*ep, net::to_string(*ep)});
      }
      snap->clusters.push_back(std::move(c));
    }
  }
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
  snap->config = std::move(cfg);
  if (diag.has_errors()) return nullptr;
  return snap;
}

}  // namespace phigate::server
