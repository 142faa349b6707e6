#include "phigate/upstream/health.hpp"

namespace phigate::upstream {

bool EndpointHealth::available(Clock::time_point) const noexcept {
  return active_ok_.load(std::memory_order_relaxed);
}

bool endpoint_usable(const Cluster& c, std::size_t i, Clock::time_point now) noexcept {
  const auto& ep = c.endpoints[i];
  return !ep.terminating && (ep.health == nullptr || ep.health->available(now));
}

void report_attempt(const Cluster&, std::size_t, AttemptResult, Clock::time_point) noexcept {}

}  // namespace phigate::upstream
