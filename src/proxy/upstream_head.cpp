#include "upstream_head.hpp"

namespace phigate::proxy::detail {

std::string_view prepare_upstream_head(const Request& r, http::HeaderList& headers) {
  // rewrite-target + x-forwarded-prefix (phase `rewrite`): ours, never the client's.
  if (!r.forwarded_prefix.empty()) headers.set("X-Forwarded-Prefix", r.forwarded_prefix);
  // upstream-vhost: the backend's Host (X-Forwarded-Host, set from r.host, stays the client's).
  if (r.policy != nullptr && !r.policy->hosts.upstream_vhost.empty())
    headers.set("Host", r.policy->hosts.upstream_vhost);
  return r.upstream_target.empty() ? std::string_view(r.target) : std::string_view(r.upstream_target);
}

std::string_view upstream_authority(const Request& r) noexcept {
  if (r.policy != nullptr && !r.policy->hosts.upstream_vhost.empty()) return r.policy->hosts.upstream_vhost;
  return r.host;
}

}  // namespace phigate::proxy::detail
