#pragma once
// Endpoint health, shared by every worker: the active checker (one per endpoint and check
// settings for the whole process) writes it, workers read it on the request path and report how
// their attempts ended (passive checks, outlier ejection). Atomics only: no lock on the request
// path. The registry (control thread) hands the same state to every snapshot that keeps an
// endpoint, so a reload or an EndpointSlice change does not forget who is ejected or unhealthy.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {

/// How one attempt to an endpoint ended, as passive checks see it.
enum class AttemptResult { Success, ConnectFailure, Reset, Timeout, Status5xx };

/// Active check settings of one endpoint (global `upstream.health.active` over the Ingress's
/// phigate.io/health-check-* annotations).
struct ActiveCheckSettings {
  bool enabled = false;
  std::string path;        // empty: TCP connect only
  std::string host;        // Host header of the probe; empty: the endpoint's address
  std::uint16_t port = 0;  // 0: the endpoint's port
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds timeout{2000};
  unsigned healthy_threshold = 2;    // consecutive passes that make an unhealthy endpoint healthy
  unsigned unhealthy_threshold = 3;  // consecutive failures that make a healthy one unhealthy
  int status_min = 200, status_max = 399;
  bool initial_healthy = true;  // a new endpoint before its first check
  /// Canonical text of the settings: part of the registry key (changed settings: a new checker).
  std::string identity() const;
};

/// Passive checks (outlier ejection) of a cluster.
struct PassiveSettings {
  bool enabled = true;
  unsigned consecutive_failures = 5;  // 5xx, connect failures, resets, timeouts in a row
  std::chrono::milliseconds base_ejection{30000};
  std::chrono::milliseconds max_ejection{300000};
  unsigned max_ejected_percent = 50;  // never more than floor(n × p / 100) endpoints ejected
  std::string identity() const;
};

/// Active-check state of one endpoint + check settings, shared by every cluster that has the
/// endpoint with those settings. Written by the checker thread only (`record`), read by workers.
class ActiveHealth {
 public:
  explicit ActiveHealth(const ActiveCheckSettings& s) noexcept
      : healthy_threshold_(s.healthy_threshold ? s.healthy_threshold : 1),
        unhealthy_threshold_(s.unhealthy_threshold ? s.unhealthy_threshold : 1),
        ok_(s.initial_healthy) {}
  bool ok() const noexcept { return ok_.load(std::memory_order_relaxed); }
  /// One probe's result. Returns true when the state flipped. Before the first result, one pass
  /// makes an endpoint that starts unhealthy healthy (`initial: unhealthy` waits for one check,
  /// not for a whole threshold).
  bool record(bool passed) noexcept;

 private:
  unsigned healthy_threshold_, unhealthy_threshold_;
  unsigned passes_ = 0, failures_ = 0;  // checker thread only
  bool checked_ = false;                // checker thread only
  std::atomic<bool> ok_;
};

class HealthGroup;

/// Per cluster and endpoint: active state (shared, may be null: no active checks) and passive
/// state (ejection). Survives reloads through the registry.
class EndpointHealth {
 public:
  EndpointHealth() = default;
  EndpointHealth(std::shared_ptr<ActiveHealth> active, std::shared_ptr<HealthGroup> group) noexcept
      : active_(std::move(active)), group_(std::move(group)) {}
  /// An endpoint dropped while ejected gives its slot back to its group's cap.
  ~EndpointHealth();
  EndpointHealth(const EndpointHealth&) = delete;
  EndpointHealth& operator=(const EndpointHealth&) = delete;

  /// Usable for new requests at `now`: the active checks pass (or none are configured) and
  /// the endpoint is not ejected.
  bool available(Clock::time_point now) const noexcept;
  bool active_ok() const noexcept { return active_ == nullptr || active_->ok(); }
  bool ejected(Clock::time_point now) const noexcept;
  unsigned ejections() const noexcept { return ejections_.load(std::memory_order_relaxed); }
  const std::shared_ptr<ActiveHealth>& active() const noexcept { return active_; }

 private:
  friend bool report_attempt(const Cluster&, std::size_t, AttemptResult, Clock::time_point) noexcept;
  friend bool release_expired(EndpointHealth&, Clock::time_point) noexcept;
  std::shared_ptr<ActiveHealth> active_;
  std::shared_ptr<HealthGroup> group_;      // null: not counted (no passive checks)
  std::atomic<std::uint32_t> failures_{0};  // consecutive failed attempts, all workers together
  /// Steady-clock nanoseconds until which the endpoint is ejected; 0: not ejected and holding no
  /// slot of the group's cap. Non-zero and past: expired, still holding its slot until someone
  /// releases it (CAS to 0, then the group's count drops: one word, so exactly one release).
  std::atomic<std::int64_t> ejected_until_{0};
  std::atomic<std::uint32_t> ejections_{0};  // back-off multiplier
  std::atomic<std::int64_t> last_ejection_end_{0};
};

/// Per cluster: the passive-check settings and the ejection cap's count. Survives reloads
/// (registry) together with its endpoints' state, so the count and the states agree.
class HealthGroup {
 public:
  HealthGroup() = default;
  explicit HealthGroup(PassiveSettings s) : settings_(std::move(s)) {}
  const PassiveSettings& settings() const noexcept { return settings_; }
  /// Endpoints holding an ejection slot (ejected, or expired and not yet released).
  std::uint32_t ejected_count() const noexcept { return ejected_.load(std::memory_order_relaxed); }

 private:
  friend bool report_attempt(const Cluster&, std::size_t, AttemptResult, Clock::time_point) noexcept;
  friend bool release_expired(EndpointHealth&, Clock::time_point) noexcept;
  friend class EndpointHealth;
  PassiveSettings settings_;
  std::atomic<std::uint32_t> ejected_{0};
};

/// May endpoint `i` of `c` get a new request at `now`? Not terminating, healthy, not ejected.
/// An ejection found expired gives its slot back here (lazily, lock-free).
bool endpoint_usable(const Cluster& c, std::size_t i, Clock::time_point now) noexcept;

/// A worker reports how an attempt to endpoint `i` of `c` ended (passive checks). Lock-free, from
/// any worker. Returns true when this report ejected the endpoint (the caller counts it).
bool report_attempt(const Cluster& c, std::size_t i, AttemptResult r, Clock::time_point now) noexcept;

/// Gives back the cap slot of an expired ejection; true when this call released it.
bool release_expired(EndpointHealth& h, Clock::time_point now) noexcept;

/// Back-off of the `n`th ejection (1-based): base × n, capped at max.
std::chrono::milliseconds ejection_time(const PassiveSettings& s, unsigned n) noexcept;

/// Offset of the first probe of checker `index` of `count` in an interval: spread evenly over
/// the interval so that 5,000 endpoints are not probed in one burst (pure, for tests).
std::chrono::milliseconds first_probe_offset(std::size_t index, std::size_t count,
                                             std::chrono::milliseconds interval) noexcept;
/// The wait before the next probe: interval ± 10 %, `unit` in [0, 1) picking where (per-probe
/// jitter keeps probes that started together from lining up again).
std::chrono::milliseconds next_probe_delay(std::chrono::milliseconds interval, double unit) noexcept;

/// One endpoint's active check, as the checker runs it.
struct ProbeTarget {
  std::string id;  // endpoint key + check identity + TLS identity
  net::tcp::endpoint address;
  ActiveCheckSettings settings;
  bool tcp_only = false;  // no path: connect (and TLS handshake) only, no HTTP request
  /// HTTPS backend: the cluster's client context (immutable, shared with the workers), so the
  /// probe verifies the backend exactly as requests do. Null: plain TCP.
  std::shared_ptr<const BackendTls> tls;
  std::shared_ptr<ActiveHealth> state;
};

/// Control thread: endpoint health that survives snapshot builds. A build asks for each cluster's
/// group and each endpoint's state (found again when the key and settings are the same, else
/// new); `commit` after the snapshot is published drops what it no longer uses, `abandon` after a
/// failed build forgets what the build asked for.
class HealthRegistry {
 public:
  std::shared_ptr<HealthGroup> group(const std::string& cluster, const PassiveSettings& s);
  /// `group`: what group() returned for the cluster (the endpoint counts in its cap). `tls`: the
  /// cluster's TLS to its backends (null: plain); its identity is part of the probe's, so two
  /// clusters share a probe only when they would make the same connection.
  std::shared_ptr<EndpointHealth> endpoint(const std::string& cluster, const Endpoint& e,
                                           const ActiveCheckSettings& a,
                                           const std::shared_ptr<const BackendTls>& tls,
                                           const std::shared_ptr<HealthGroup>& group);
  void commit();
  void abandon();
  /// The active checks of the last committed build, one per endpoint + settings.
  std::vector<ProbeTarget> probes() const;

 private:
  template <class T>
  using Map = std::map<std::string, std::shared_ptr<T>>;
  Map<HealthGroup> groups_, next_groups_;
  Map<EndpointHealth> endpoints_, next_endpoints_;
  Map<ActiveHealth> active_, next_active_;
  std::map<std::string, ProbeTarget> probes_, next_probes_;
};

}  // namespace phigate::upstream
