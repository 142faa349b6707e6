#include "phigate/upstream/balancer.hpp"

#include <algorithm>

#include "phigate/upstream/health.hpp"

namespace phigate::upstream {

void BalancerState::reset(const Cluster&) {
  cursor_ = 0;
}

Pick pick(const Cluster& c, BalancerState& s, const PickInput& in) noexcept {
  const std::size_t n = c.endpoints.size();
  std::size_t fallback = kNoEndpoint;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = s.cursor_++ % n;
    if (!endpoint_usable(c, i, in.now)) continue;
    if (std::find(in.tried.begin(), in.tried.end(), i) != in.tried.end()) {
      if (fallback == kNoEndpoint) fallback = i;
      continue;
    }
    return {i, false};
  }
  return {fallback, false};
}

void attempt_started(BalancerState&, std::size_t) noexcept {}
void attempt_ended(BalancerState&, std::size_t, Clock::duration, bool) noexcept {}
void append_affinity_cookie(std::string&, const Cluster&, std::size_t, std::string_view) {}

}  // namespace phigate::upstream
