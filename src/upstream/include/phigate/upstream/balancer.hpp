#pragma once
// Picking an endpoint of a cluster for one attempt: round robin (smooth weighted), least request
// (power of two choices), EWMA latency, consistent hashing, cookie affinity. The per-worker state
// (`BalancerState`) is written by its worker only; endpoints that are not usable
// (health.hpp: terminating, unhealthy, ejected) are never picked.
#include <chrono>
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
/// Virtual nodes per unit of weight on the consistent-hash ring (weight is capped at
/// kMaxRingWeight, so one endpoint has at most 1600 points).
inline constexpr std::size_t kRingPointsPerWeight = 160;
inline constexpr std::uint32_t kMaxRingWeight = 10;

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

/// Per worker, per cluster of the worker's current snapshot. A request pinned to an older snapshot
/// may use it with a cluster of another size: every function adapts (resizes) or ignores an index
/// out of range, so nothing is ever read or written out of bounds.
class BalancerState {
 public:
  /// One endpoint's counters (internal: public only for the pick helpers in balancer.cpp).
  struct Slot {
    std::int64_t current_weight = 0;  // smooth weighted round robin (nginx)
    std::uint32_t in_flight = 0;      // attempts started and not ended (least_request, ewma)
    double ewma_ns = 0;               // latency moving average (ewma)
    Clock::time_point ewma_at{};      // when ewma_ns was last updated
  };

  BalancerState();
  /// Sizes the state for `c` (called when the worker adopts a snapshot). The state is kept when
  /// `c` has the same endpoints as the cluster it was sized for (a reload elsewhere does not
  /// forget in-flight counts and latencies); otherwise it starts afresh.
  void reset(const Cluster& c);
  /// Deterministic random choices (tests).
  void seed(std::uint64_t s) noexcept { rng_ = s; }

  /// Observers (tests, debugging).
  std::uint32_t in_flight(std::size_t i) const noexcept {
    return i < slots_.size() ? slots_[i].in_flight : 0;
  }
  double ewma_ns(std::size_t i) const noexcept { return i < slots_.size() ? slots_[i].ewma_ns : 0.0; }

 private:
  friend Pick pick(const Cluster&, BalancerState&, const PickInput&) noexcept;
  friend void attempt_started(BalancerState&, std::size_t) noexcept;
  friend void attempt_ended(BalancerState&, std::size_t, Clock::duration, bool) noexcept;

  void fit(std::size_t n);
  std::uint64_t next() noexcept;

  std::vector<Slot> slots_;
  std::uint64_t fingerprint_ = 0;  // of the endpoint keys the state was sized for
  std::uint64_t rng_;
  std::size_t cursor_ = 0;   // round robin when every weight is equal and for fallbacks
  Clock::time_point now_{};  // the last pick's clock (EWMA decay on attempt_ended)
};

Pick pick(const Cluster& c, BalancerState& s, const PickInput& in) noexcept;
/// An attempt to endpoint `index` starts / ends (least_request counts, EWMA latency). A failed
/// attempt counts as at least kEwmaFailurePenalty of latency: a backend that refuses at once must
/// not look fast. A negative `latency` means not measured (the caller measures only for `ewma`
/// clusters): only the in-flight count changes.
void attempt_started(BalancerState& s, std::size_t index) noexcept;
void attempt_ended(BalancerState& s, std::size_t index, Clock::duration latency, bool ok) noexcept;
inline constexpr std::chrono::seconds kEwmaFailurePenalty{1};
/// EWMA decay time: a sample's weight halves roughly every 7 s (ingress-nginx uses 10 s as well).
inline constexpr std::chrono::seconds kEwmaDecay{10};

/// 64-bit hash of bytes for the ring (FNV-1a with a full-avalanche finaliser). Not keyed: a client
/// choosing keys can only pick an endpoint, which the same key already does.
std::uint64_t ring_hash(std::string_view bytes) noexcept;

/// The affinity cookie value of an endpoint key: the first 16 bytes of HMAC-SHA256(secret, key) in
/// lower-case hex (32 characters). The secret is random per process (same in every worker and
/// across reloads; a restart re-balances sticky clients).
std::string affinity_id(std::string_view endpoint_key);

/// Builds what `c.balance` needs at pick time: the ring (kind Hash) and the endpoints' affinity
/// ids (affinity_cookie). Control thread, at snapshot build, after endpoints and settings are set.
void build_balancing(Cluster& c);

/// Appends "Set-Cookie: ...\r\n" pinning the client to endpoint `index` (affinity). The value
/// never reveals the endpoint's address. `route_path`: the cookie's Path when none is configured.
/// `now`: the wall clock for Expires.
void append_affinity_cookie(std::string& out, const Cluster& c, std::size_t index,
                            std::string_view route_path,
                            std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// RFC 6265 §4.1.1 checks for the affinity cookie's attributes, shared with the annotation parser's
/// rules (an annotation value is tenant-controlled text: no CTL, ';', ',' or space may reach the
/// Set-Cookie line).
bool valid_cookie_name(std::string_view name) noexcept;  // an RFC 7230 token, 1..128 bytes
bool valid_cookie_path(std::string_view path) noexcept;  // "/" then visible ASCII without ';' ','
bool valid_cookie_value(std::string_view v) noexcept;    // 32 lower-case hex digits

}  // namespace phigate::upstream
