#include "upstream_head.hpp"

namespace phigate::proxy::detail {

std::string_view prepare_upstream_head(const Request& r, http::HeaderList& headers) {
  // rewrite-target + x-forwarded-prefix (phase `rewrite`): ours, never the client's.
  if (!r.forwarded_prefix.empty()) headers.set("X-Forwarded-Prefix", r.forwarded_prefix);
  return r.upstream_target.empty() ? std::string_view(r.target) : std::string_view(r.upstream_target);
}

}  // namespace phigate::proxy::detail
