#pragma once
// Endpoint health, shared by every worker: the active checker (one per endpoint for the whole
// process) writes it, workers read it on the request path and report how their attempts ended
// (passive checks, outlier ejection). Atomics only: no lock on the request path.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {

/// How one attempt to an endpoint ended, as passive checks see it.
enum class AttemptResult { Success, ConnectFailure, Reset, Timeout, Status5xx };

class EndpointHealth {
 public:
  /// Usable for new requests at `now`: the active checks pass (or none are configured) and
  /// the endpoint is not ejected.
  bool available(Clock::time_point now) const noexcept;

 private:
  std::atomic<bool> active_ok_{true};
};

/// Per cluster: the passive-check settings and the ejection cap's count.
class HealthGroup {
 public:
};

/// May endpoint `i` of `c` get a new request at `now`? Not terminating, healthy, not ejected.
bool endpoint_usable(const Cluster& c, std::size_t i, Clock::time_point now) noexcept;

/// A worker reports how an attempt to endpoint `i` of `c` ended (passive checks).
void report_attempt(const Cluster& c, std::size_t i, AttemptResult r, Clock::time_point now) noexcept;

}  // namespace phigate::upstream
