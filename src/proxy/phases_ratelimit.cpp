// The rate-limit phase: ingress-nginx's limit-connections, limit-rps and limit-rpm (with
// limit-burst-multiplier and limit-allowlist), per client address per Ingress, against the
// process-wide table (phigate/proxy/rate_limiter.hpp; docs/rate-limits.md). The one phase with
// state: the table is shared by every worker and this phase writes it. Time comes from the
// connection (ConnectionView::now), never read here.
#include <string>

#include "phases.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

namespace {

Decision limited(Request& r, const Snapshot& s, Outcome o, std::string_view reason, std::string_view which,
                 std::int64_t retry_after_ms) {
  const bool too_many = s.config && s.config->limits.rate_limit_status == 429;
  Error e =
      Error::downstream(too_many ? ErrorKind::TooManyRequests : ErrorKind::LimitExceeded, std::string(which));
  e.reason_detail = reason;  // rate_limited | connection_limited (audit event.reason)
  if (too_many) {
    // RFC 6585 §4 / RFC 9110 §10.2.3: whole seconds, at least 1.
    const auto secs = std::max<std::int64_t>(1, (retry_after_ms + 999) / 1000);
    r.rare().reply_fields = "Retry-After: " + std::to_string(secs) + "\r\n";
  }
  return Decision{o, std::move(e), false, 0};
}

}  // namespace

namespace phase {

PhaseResult rate_limit(Request& r, const Snapshot& s, const ConnectionView& c) {
  if (r.policy == nullptr) return std::nullopt;
  const auto& rl = r.policy->rate_limit;
  if (!rl.any()) return std::nullopt;
  // The key is the address the client-address phase settled on (PROXY header, or X-Forwarded-For
  // from a trusted proxy only): a client cannot pick its own key. No address (never on TCP): all
  // such requests share one key rather than escape the limit.
  const RateLimiter::Address addr = r.client_addr ? *r.client_addr : RateLimiter::Address{};
  if (!rl.allowlist.empty()) {
    const auto it = s.limit_allowlists.find(r.policy);
    if (it == s.limit_allowlists.end()) {
      // The snapshot builder compiles every listed allowlist: a missing one is a bug, and a limit
      // that cannot be evaluated is not skipped.
      return Decision{Outcome::FailClosed,
                      Error::downstream(ErrorKind::Unavailable, "limit-allowlist not compiled"), false, 0};
    }
    // ingress-nginx maps an allowlisted address to the empty key, which nginx never limits.
    if (r.client_addr && it->second.contains(*r.client_addr)) return std::nullopt;
  }
  if (!s.rate_limiter) {
    return Decision{Outcome::FailClosed, Error::downstream(ErrorKind::Unavailable, "no rate-limit table"),
                    false, 0};
  }
  auto& table = *s.rate_limiter;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(c.now.time_since_epoch()).count();
  const std::string_view ingress = r.policy->resource;
  const std::uint64_t mult = rl.burst_multiplier;
  // Connections first: a request refused for its concurrency does not use up its rate.
  if (rl.connections != 0) {
    const RateLimiter::Key k{RateLimiter::zone_id(ingress, "conn", rl.connections, 0), addr};
    r.limit_slot = table.acquire(k, rl.connections, now_ms);
    if (!r.limit_slot) {
      return limited(r, s, Outcome::ConnectionLimited, "connection_limited", "limit-connections", 1000);
    }
  }
  // ingress-nginx: `limit_req zone=<ingress>_rps burst=<rps * multiplier> nodelay;` and the same
  // for rpm (rate rpm r/m, burst rpm * multiplier); both apply when both are set.
  // A buffered request decided again once its body is whole was counted when its head came.
  if (c.again) return std::nullopt;
  if (rl.rps != 0) {
    const RateLimiter::Key k{RateLimiter::zone_id(ingress, "rps", rl.rps, mult), addr};
    const auto v = table.take(k, std::uint64_t{rl.rps} * 1000, std::uint64_t{rl.rps} * mult, now_ms);
    if (!v.allowed) return limited(r, s, Outcome::RateLimited, "rate_limited", "limit-rps", v.retry_after_ms);
  }
  if (rl.rpm != 0) {
    const RateLimiter::Key k{RateLimiter::zone_id(ingress, "rpm", rl.rpm, mult), addr};
    // nginx keeps r/m as milli-requests per second, rounded down (1r/m is 16).
    const auto v = table.take(k, std::uint64_t{rl.rpm} * 1000 / 60, std::uint64_t{rl.rpm} * mult, now_ms);
    if (!v.allowed) return limited(r, s, Outcome::RateLimited, "rate_limited", "limit-rpm", v.retry_after_ms);
  }
  return std::nullopt;
}

}  // namespace phase

}  // namespace phigate::proxy::detail
