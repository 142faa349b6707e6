#pragma once
// Private to proxy: how an upstream attempt's failure is seen by passive health checks and the
// retry rules, shared by the HTTP/1 (proxy_connection.cpp) and HTTP/2 (h2_connection.cpp) client
// connections so that both retry and eject alike.
#include <algorithm>
#include <cstddef>
#include <span>

#include "phigate/core/error.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::proxy::detail {

/// How passive health checks see an attempt that failed with `e` (an upstream error).
inline upstream::AttemptResult attempt_result(const core::Error& e) noexcept {
  switch (e.kind) {
    case core::ErrorKind::ConnectRefused:
    case core::ErrorKind::ConnectTimeout:
      return upstream::AttemptResult::ConnectFailure;
    case core::ErrorKind::UpstreamTimeout:
      return upstream::AttemptResult::Timeout;
    default:
      return upstream::AttemptResult::Reset;
  }
}

/// Is there a usable endpoint this request has not tried? A retry goes to another endpoint, never
/// to the one that just failed (a stale pooled connection aside).
inline bool untried_left(const upstream::Cluster& c, std::span<const std::size_t> tried, std::size_t capacity,
                         std::chrono::steady_clock::time_point now) {
  if (tried.size() >= capacity) return false;  // more tries than we track: stop
  for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
    if (std::find(tried.begin(), tried.end(), i) == tried.end() && upstream::endpoint_usable(c, i, now))
      return true;
  }
  return false;
}

}  // namespace phigate::proxy::detail
