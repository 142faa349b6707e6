#pragma once
// Private to proxy: how an upstream attempt's failure is seen by passive health checks and the
// retry rules, shared by the HTTP/1 (proxy_connection.cpp) and HTTP/2 (h2_connection.cpp) client
// connections so that both retry and eject alike.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/health.hpp"
#include "phigate/upstream/retry.hpp"
#include "request.hpp"

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

class WorkerImpl;

/// One request's attempts at its cluster: what the retry settings allow, the endpoints tried, the
/// balancer's input and the retry budget. The attempt loops of HTTP/1 client connections, HTTP/2
/// streams to HTTP/1.1 backends and WebSocket over HTTP/2 share it; each keeps its own I/O and
/// decides what an attempt's end means for it. Worker thread only; lives in the loop's frame.
class AttemptPlan {
 public:
  using Clock = std::chrono::steady_clock;
  /// Counts the request in the retry budget. `cluster_index`: the cluster's index in the snapshot
  /// (its balancer state), r.cluster when left out.
  AttemptPlan(WorkerImpl& worker, const upstream::Cluster& cluster, const Request& r, std::string_view method,
              std::size_t cluster_index = kRequestCluster);
  static constexpr std::size_t kRequestCluster = static_cast<std::size_t>(-1);
  AttemptPlan(const AttemptPlan&) = delete;
  AttemptPlan& operator=(const AttemptPlan&) = delete;

  /// The next endpoint (avoiding those tried while an untried usable one exists), recorded as tried
  /// and counted against max_tries. Pick::index is kNoEndpoint when none is usable.
  upstream::Pick next();
  /// Passive health sees the attempt; an ejection it causes is counted.
  void report(std::size_t index, upstream::AttemptResult result);
  /// Within proxy-next-upstream-timeout (always, when it is 0).
  bool in_time() const;
  /// Whether another try could follow a dropped status answer: status conditions set, tries and
  /// time left, idempotent without a body, a budget token available, an untried usable endpoint.
  bool status_retry_possible(bool has_body) const;
  /// After a failed attempt that `allowed` (the conditions of proxy-next-upstream) may retry:
  /// tries and time left, an untried usable endpoint and a budget token (spent). Counts the retry,
  /// or a refusal by the budget.
  bool retry(bool allowed);
  /// The free retry after a stale pooled connection (RFC 9112 §9.3.1): once per request, not
  /// counted against max_tries.
  bool stale_retry(const upstream::AttemptEnd& end);

  const upstream::RetrySettings& rs;
  upstream::BalancerState& balancer;
  const bool idempotent;
  const bool by_latency;  // EWMA: attempts are timed

 private:
  bool untried() const;
  WorkerImpl& worker_;
  const upstream::Cluster& cluster_;
  std::size_t
      max_tries_;  // tries in all (stale pooled connections excepted); 0 in settings: one per endpoint
  Clock::time_point first_start_{};  // read only when rs.timeout needs it (a vDSO call on the hot path)
  bool status_conditions_;
  std::array<std::size_t, 8> tried_{};  // endpoints already tried by this request (the first 8)
  std::size_t tried_n_ = 0;
  std::size_t tries_ = 0;  // attempts that count against max_tries
  bool stale_used_ = false;
  // Copies, not views into the request head: trailers parsed while the body streams are added to
  // its header list (which may move), and a retry picks again after that.
  std::string hash_key_;
  std::string affinity_value_;
  upstream::PickInput in_;
};

}  // namespace phigate::proxy::detail
