#pragma once
// Private to ingress: the value parsers of the rate-limit annotations (annotations_ratelimit.cpp),
// named in the registry (annotation_registry.cpp). Each returns "" when the value is valid (and
// sets its field), else what is wrong (never the value). docs/rate-limits.md.
#include <string>
#include <string_view>

#include "phigate/config/policy_ratelimit.hpp"

namespace phigate::ingress::detail {

std::string parse_limit_rps(std::string_view v, config::RateLimitPolicy& out);
std::string parse_limit_rpm(std::string_view v, config::RateLimitPolicy& out);
std::string parse_limit_burst_multiplier(std::string_view v, config::RateLimitPolicy& out);
std::string parse_limit_connections(std::string_view v, config::RateLimitPolicy& out);
/// limit-allowlist and its old name limit-whitelist: one list (both merged, duplicates dropped).
std::string parse_limit_allowlist(std::string_view v, config::RateLimitPolicy& out);

}  // namespace phigate::ingress::detail
