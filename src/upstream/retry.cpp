#include "phigate/upstream/retry.hpp"

#include <algorithm>

namespace phigate::upstream {

bool is_idempotent(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

std::uint16_t status_condition(int status) noexcept {
  switch (status) {
    case 500:
      return kNextHttp500;
    case 502:
      return kNextHttp502;
    case 503:
      return kNextHttp503;
    case 504:
      return kNextHttp504;
    case 403:
      return kNextHttp403;
    case 404:
      return kNextHttp404;
    case 429:
      return kNextHttp429;
    default:
      return 0;
  }
}

bool next_upstream_allows(const RetrySettings& s, const AttemptEnd& e) noexcept {
  const bool replayable = e.idempotent && !e.body_consumed;
  switch (e.failure) {
    case Failure::ConnectError:
      return (s.when & kNextError) != 0;
    case Failure::NotSent:
      // Body bytes may have been read from the client into the first write that failed: they
      // cannot be sent again, so a second attempt would carry a truncated body.
      return !e.body_consumed && (s.when & kNextError) != 0;
    case Failure::ConnectTimeout:
      return (s.when & kNextTimeout) != 0;
    case Failure::Reset:
      return replayable && (s.when & kNextError) != 0;
    case Failure::Timeout:
      return replayable && (s.when & kNextTimeout) != 0;
    case Failure::Status:
      return replayable && (s.when & status_condition(e.status)) != 0;
    case Failure::Late:
      return false;
  }
  return false;
}

bool stale_connection_retry(const AttemptEnd& e) noexcept {
  return e.reused && e.failure == Failure::Reset && e.idempotent && !e.body_consumed;
}

Failure classify(const core::Error& err, std::uint64_t request_bytes_sent, bool response_byte) noexcept {
  if (err.source != core::ErrorSource::Upstream || response_byte) return Failure::Late;
  switch (err.kind) {
    case core::ErrorKind::ConnectRefused:
      return Failure::ConnectError;
    case core::ErrorKind::ConnectTimeout:
      return Failure::ConnectTimeout;
    case core::ErrorKind::UpstreamTimeout:
      return request_bytes_sent == 0 ? Failure::NotSent : Failure::Timeout;
    default:
      return request_bytes_sent == 0 ? Failure::NotSent : Failure::Reset;
  }
}

void RetryBudget::configure(unsigned percent, unsigned min_per_second) noexcept {
  per_request_ = static_cast<double>(std::min(percent, 100u)) / 100.0;
  floor_per_second_ = static_cast<double>(min_per_second);
  cap_ = floor_per_second_ * kCapSeconds + 100.0;
  tokens_ = std::min(tokens_, cap_);
}

bool RetryBudget::try_spend() noexcept {
  if (tokens_ < 1.0 - 1e-9) return false;  // five deposits of 0.2 make a token despite rounding
  tokens_ -= 1.0;
  return true;
}

}  // namespace phigate::upstream
