#pragma once
// RoutePolicy::rate_limit: ingress-nginx `limit-rps`, `limit-rpm`, `limit-burst-multiplier`,
// `limit-connections`, `limit-allowlist` (old name `limit-whitelist`), and the response bandwidth
// `limit-rate` / `limit-rate-after` (proxy/pacer.hpp paces the relays). Values are validated by
// the annotation parser (ingress/annotations_ratelimit.cpp); the proxy phase `rate-limit`
// (proxy/phases_ratelimit.cpp) enforces them against the process-wide table
// (proxy/rate_limiter.hpp). docs/rate-limits.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace phigate::config {

struct RateLimitPolicy {
  std::uint32_t rps = 0;               // limit-rps: requests per second per client address; 0: none
  std::uint32_t rpm = 0;               // limit-rpm: requests per minute per client address; 0: none
  std::uint32_t burst_multiplier = 5;  // limit-burst-multiplier: burst = rate * this (ingress-nginx: 5)
  std::uint32_t connections = 0;       // limit-connections: concurrent requests per client address; 0: none
  std::vector<std::string> allowlist;  // limit-allowlist / limit-whitelist: canonical CIDRs never limited
  /// limit-rate: KiB per second of response sent to the client, per request (nginx limit_rate Nk);
  /// 0: no limit; unset: limits.response_rate. Not part of any(): no table entry.
  std::optional<std::uint32_t> rate_kib;
  /// limit-rate-after: KiB sent at full speed before limit-rate applies; unset:
  /// limits.response_rate_after.
  std::optional<std::uint32_t> rate_after_kib;

  bool any() const noexcept { return rps != 0 || rpm != 0 || connections != 0; }
};

}  // namespace phigate::config
