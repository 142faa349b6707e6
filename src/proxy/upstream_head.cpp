#include "upstream_head.hpp"

#include "phigate/http/response_edits.hpp"

namespace phigate::proxy::detail {

std::string_view prepare_upstream_head(const Request& r, http::HeaderList& headers, UpstreamHop hop) {
  // rewrite-target + x-forwarded-prefix (phase `rewrite`): ours, never the client's.
  const auto& x = r.rare_or_empty();
  if (!x.forwarded_prefix.empty()) headers.set("X-Forwarded-Prefix", x.forwarded_prefix);
  // upstream-vhost: the backend's Host (X-Forwarded-Host, set from r.host, stays the client's).
  if (r.policy != nullptr && !r.policy->hosts.upstream_vhost.empty())
    headers.set("Host", r.policy->hosts.upstream_vhost);
  // connection-proxy-header: close (HTTP/1.1 hops only: an upgrade keeps Connection: upgrade, and
  // HTTP/2 to gRPC backends has no Connection field). The caller does not pool the connection.
  if (hop == UpstreamHop::Http1 && closes_upstream(r)) headers.set("Connection", "close");
  // phigate.io/proxy-set-headers: static fields of the route's ConfigMap, replacing the client's
  // of those names (translate refused Host, framing, forwarding and client-certificate names).
  if (r.policy != nullptr) {
    http::for_each_raw_line(r.policy->headers.request_fields,
                            [&](std::string_view name, std::string_view value) { headers.set(name, value); });
  }
  return x.upstream_target.empty() ? std::string_view(r.target) : std::string_view(x.upstream_target);
}

std::string_view upstream_authority(const Request& r) noexcept {
  if (r.policy != nullptr && !r.policy->hosts.upstream_vhost.empty()) return r.policy->hosts.upstream_vhost;
  return r.host;
}

}  // namespace phigate::proxy::detail
