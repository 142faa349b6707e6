#pragma once
// Picking an endpoint of a cluster for one attempt: round robin (smooth weighted), least request
// (power of two choices), EWMA latency, consistent hashing, cookie affinity. The per-worker state
// (`BalancerState`) is written by its worker only; endpoints that are not usable
// (health.hpp: terminating, unhealthy, ejected) are never picked.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {

inline constexpr std::size_t kNoEndpoint = static_cast<std::size_t>(-1);

/// What a pick knows of the request (extracted by the caller from the request: see
/// proxy's balance input).
struct PickInput {
  std::string_view hash_key;        // consistent hashing: the value of upstream-hash-by
  std::string_view affinity_value;  // cookie affinity: the affinity cookie's value, if sent
  /// Endpoints this request already tried (retries): avoided while an untried usable one exists.
  std::span<const std::size_t> tried;
  Clock::time_point now{};
};

struct Pick {
  std::size_t index = kNoEndpoint;  // kNoEndpoint: no usable endpoint
  bool set_cookie = false;          // affinity: the response must (re)set the affinity cookie
};

/// Per worker, per cluster of the worker's current snapshot.
class BalancerState {
 public:
  /// Sizes the state for `c` (called when the worker adopts a snapshot).
  void reset(const Cluster& c);

 private:
  friend Pick pick(const Cluster&, BalancerState&, const PickInput&) noexcept;
  friend void attempt_started(BalancerState&, std::size_t) noexcept;
  friend void attempt_ended(BalancerState&, std::size_t, Clock::duration, bool) noexcept;
  std::size_t cursor_ = 0;
};

Pick pick(const Cluster& c, BalancerState& s, const PickInput& in) noexcept;
/// An attempt to endpoint `index` starts / ends (least_request counts, EWMA latency).
void attempt_started(BalancerState& s, std::size_t index) noexcept;
void attempt_ended(BalancerState& s, std::size_t index, Clock::duration latency, bool ok) noexcept;

/// Appends "Set-Cookie: ...\r\n" pinning the client to endpoint `index` (affinity). The value
/// never reveals the endpoint's address. `route_path`: the cookie's Path when none is configured.
void append_affinity_cookie(std::string& out, const Cluster& c, std::size_t index,
                            std::string_view route_path);

}  // namespace phigate::upstream
