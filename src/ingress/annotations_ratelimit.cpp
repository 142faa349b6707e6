// The rate-limit annotations' value parsers (ingress-nginx internal/ingress/annotations/ratelimit):
// limit-rps, limit-rpm, limit-burst-multiplier, limit-connections, limit-allowlist/-whitelist,
// limit-rate and limit-rate-after (KiB: ingress-nginx renders `limit_rate {{.}}k`).
// ingress-nginx reads a bad number as 0 (no limit) and silently drops the limit; here it is an
// error, so the Ingress fails closed rather than being served without the limit its owner asked for.
#include <algorithm>

#include "annotations_impl.hpp"
#include "annotations_ratelimit_impl.hpp"

namespace phigate::ingress::detail {

namespace {

// Far above any sensible per-address limit, low enough that rate x 1000 x multiplier stays exact.
constexpr std::uint32_t kMaxRate = 1'000'000;
constexpr std::uint32_t kMaxMultiplier = 1000;

std::string parse_count(std::string_view v, std::uint32_t max, std::uint32_t& out) {
  std::uint32_t n = 0;
  if (!parse_digits(v, n) || n > max) {
    return "expected an integer from 0 (no limit) to " + std::to_string(max);
  }
  out = n;
  return {};
}

}  // namespace

std::string parse_limit_rps(std::string_view v, config::RateLimitPolicy& out) {
  return parse_count(v, kMaxRate, out.rps);
}

std::string parse_limit_rpm(std::string_view v, config::RateLimitPolicy& out) {
  return parse_count(v, kMaxRate, out.rpm);
}

std::string parse_limit_connections(std::string_view v, config::RateLimitPolicy& out) {
  return parse_count(v, kMaxRate, out.connections);
}

std::string parse_limit_burst_multiplier(std::string_view v, config::RateLimitPolicy& out) {
  std::uint32_t n = 0;
  if (!parse_digits(v, n) || n > kMaxMultiplier) {
    return "expected an integer from 0 (no burst) to " + std::to_string(kMaxMultiplier);
  }
  out.burst_multiplier = n;
  return {};
}

std::string parse_limit_rate(std::string_view v, config::RateLimitPolicy& out) {
  std::uint32_t n = 0;
  if (!parse_digits(v, n) || n > kMaxResponseRateKib) {
    return "expected KiB per second, an integer from 0 (no limit) to " + std::to_string(kMaxResponseRateKib);
  }
  out.rate_kib = n;
  return {};
}

std::string parse_limit_rate_after(std::string_view v, config::RateLimitPolicy& out) {
  std::uint32_t n = 0;
  if (!parse_digits(v, n) || n > kMaxRateAfterKib) {
    return "expected KiB, an integer from 0 to " + std::to_string(kMaxRateAfterKib);
  }
  out.rate_after_kib = n;
  return {};
}

std::string parse_limit_allowlist(std::string_view v, config::RateLimitPolicy& out) {
  std::vector<std::string> ranges;
  if (auto why = parse_ranges(v, ranges); !why.empty()) return why;
  for (auto& r : ranges) {
    if (std::find(out.allowlist.begin(), out.allowlist.end(), r) == out.allowlist.end()) {
      out.allowlist.push_back(std::move(r));
    }
  }
  return {};
}

}  // namespace phigate::ingress::detail
