#pragma once
// Private to ingress: the value parsers of the rate-limit annotations (annotations_ratelimit.cpp),
// named in the registry (annotation_registry.cpp). Each returns "" when the value is valid (and
// sets its field), else what is wrong (never the value). docs/rate-limits.md.
#include <cstdint>
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
/// limit-rate (KiB/s, 0 to kMaxResponseRateKib) and limit-rate-after (KiB, 0 to kMaxRateAfterKib).
std::string parse_limit_rate(std::string_view v, config::RateLimitPolicy& out);
std::string parse_limit_rate_after(std::string_view v, config::RateLimitPolicy& out);
inline constexpr std::uint32_t kMaxResponseRateKib = 10u << 20;  // 10 GiB/s
inline constexpr std::uint32_t kMaxRateAfterKib = 1u << 30;      // 1 TiB

}  // namespace phigate::ingress::detail
