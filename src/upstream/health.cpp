#include "phigate/upstream/health.hpp"

#include "phigate/upstream/backend_tls.hpp"

#include <algorithm>

namespace phigate::upstream {

namespace {

std::int64_t ticks(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string ActiveCheckSettings::identity() const {
  if (!enabled) return "off";
  // initial_healthy is left out: it only says where a new endpoint starts.
  return (path.empty() ? std::string("tcp") : "http " + path) + " host=" + host +
         " port=" + std::to_string(port) + " i=" + std::to_string(interval.count()) +
         " t=" + std::to_string(timeout.count()) + " h=" + std::to_string(healthy_threshold) +
         " u=" + std::to_string(unhealthy_threshold) + " s=" + std::to_string(status_min) + "-" +
         std::to_string(status_max);
}

std::string PassiveSettings::identity() const {
  if (!enabled) return "off";
  return std::to_string(consecutive_failures) + "/" + std::to_string(base_ejection.count()) + "/" +
         std::to_string(max_ejection.count()) + "/" + std::to_string(max_ejected_percent);
}

bool ActiveHealth::record(bool passed) noexcept {
  const bool was = ok_.load(std::memory_order_relaxed);
  bool now = was;
  if (passed) {
    failures_ = 0;
    ++passes_;
    if (!was && (passes_ >= healthy_threshold_ || !checked_)) now = true;
  } else {
    passes_ = 0;
    ++failures_;
    if (was && failures_ >= unhealthy_threshold_) now = false;
  }
  checked_ = true;
  if (now != was) {
    ok_.store(now, std::memory_order_relaxed);
    passes_ = failures_ = 0;
  }
  return now != was;
}

EndpointHealth::~EndpointHealth() {
  if (group_ && ejected_until_.load(std::memory_order_acquire) != 0) {
    group_->ejected_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

bool EndpointHealth::ejected(Clock::time_point now) const noexcept {
  const auto until = ejected_until_.load(std::memory_order_acquire);
  return until != 0 && until > ticks(now);
}

bool EndpointHealth::available(Clock::time_point now) const noexcept {
  return active_ok() && !ejected(now);
}

bool release_expired(EndpointHealth& h, Clock::time_point now) noexcept {
  auto until = h.ejected_until_.load(std::memory_order_acquire);
  if (until == 0 || until > ticks(now)) return false;
  // One word holds both "ejected until" and "holds a slot": whoever swaps this exact value for 0
  // releases the slot, so two workers finding the same expiry cannot both decrement.
  if (!h.ejected_until_.compare_exchange_strong(until, 0, std::memory_order_acq_rel)) return false;
  h.last_ejection_end_.store(until, std::memory_order_relaxed);
  if (h.group_) h.group_->ejected_.fetch_sub(1, std::memory_order_acq_rel);
  return true;
}

bool endpoint_usable(const Cluster& c, std::size_t i, Clock::time_point now) noexcept {
  const auto& ep = c.endpoints[i];
  if (ep.terminating) return false;
  if (ep.health == nullptr) return true;
  auto& h = *ep.health;
  if (!h.active_ok()) return false;
  if (!h.ejected(now)) {
    release_expired(h, now);  // a no-op (one load) unless an ejection just expired
    return true;
  }
  return false;
}

std::chrono::milliseconds ejection_time(const PassiveSettings& s, unsigned n) noexcept {
  const auto base = s.base_ejection.count();
  const auto max = std::max(s.max_ejection.count(), base);
  if (n == 0) n = 1;
  if (base > 0 && static_cast<std::int64_t>(n) > max / base) return std::chrono::milliseconds(max);
  return std::chrono::milliseconds(std::min<std::int64_t>(base * n, max));
}

bool report_attempt(const Cluster& c, std::size_t i, AttemptResult r, Clock::time_point now) noexcept {
  if (i >= c.endpoints.size()) return false;
  auto* hp = c.endpoints[i].health.get();
  auto* g = c.health.get();
  if (hp == nullptr || g == nullptr || !g->settings_.enabled) return false;
  auto& h = *hp;
  const auto& s = g->settings_;
  if (r == AttemptResult::Success) {
    // Loads first: a healthy endpoint's hot path writes nothing shared.
    if (h.failures_.load(std::memory_order_relaxed) != 0) h.failures_.store(0, std::memory_order_relaxed);
    // A long healthy stretch after the last ejection forgets the back-off.
    if (h.ejections_.load(std::memory_order_relaxed) != 0 &&
        h.ejected_until_.load(std::memory_order_relaxed) == 0) {
      const auto end = h.last_ejection_end_.load(std::memory_order_relaxed);
      if (end != 0 && ticks(now) - end > std::chrono::nanoseconds(s.max_ejection).count()) {
        h.ejections_.store(0, std::memory_order_relaxed);
      }
    }
    return false;
  }
  const auto n = h.failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < std::max(1u, s.consecutive_failures)) return false;
  auto until = h.ejected_until_.load(std::memory_order_acquire);
  if (until != 0 && until > ticks(now)) return false;  // already ejected (a late report)

  const auto eject_for = [&](unsigned k) {
    return ticks(now) + std::chrono::duration_cast<std::chrono::nanoseconds>(ejection_time(s, k)).count();
  };
  bool ejected = false;
  if (until != 0) {
    // Expired but still holding its slot: the slot passes to the new ejection (no cap change).
    const auto k = h.ejections_.load(std::memory_order_relaxed) + 1;
    ejected = h.ejected_until_.compare_exchange_strong(until, eject_for(k), std::memory_order_acq_rel);
  } else {
    // Expired ejections of the other endpoints give their slots back before the cap is judged. The
    // cap is a share of the endpoints that can serve: terminating ones do not count, or two ready
    // and two terminating endpoints would let both ready ones go.
    std::size_t serving = 0;
    for (const auto& e : c.endpoints) {
      if (e.health) release_expired(*e.health, now);
      serving += e.terminating ? 0 : 1;
    }
    const auto cap = static_cast<std::uint32_t>(serving * std::min(s.max_ejected_percent, 100u) / 100);
    auto cur = g->ejected_.load(std::memory_order_acquire);
    bool reserved = false;
    while (cur < cap) {
      if (g->ejected_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) {
        reserved = true;
        break;
      }
    }
    if (!reserved) return false;  // the cap: keep sending to it rather than black-hole the service
    std::int64_t zero = 0;
    const auto k = h.ejections_.load(std::memory_order_relaxed) + 1;
    ejected = h.ejected_until_.compare_exchange_strong(zero, eject_for(k), std::memory_order_acq_rel);
    if (!ejected) g->ejected_.fetch_sub(1, std::memory_order_acq_rel);  // another worker ejected it
  }
  if (ejected) {
    h.ejections_.fetch_add(1, std::memory_order_relaxed);
    h.failures_.store(0, std::memory_order_relaxed);
  }
  return ejected;
}

std::chrono::milliseconds first_probe_offset(std::size_t index, std::size_t count,
                                             std::chrono::milliseconds interval) noexcept {
  if (count == 0 || interval.count() <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(
      static_cast<long double>(interval.count()) * static_cast<long double>(index % count) / count));
}

std::chrono::milliseconds next_probe_delay(std::chrono::milliseconds interval, double unit) noexcept {
  unit = std::clamp(unit, 0.0, 1.0);
  const double f = 0.9 + 0.2 * unit;
  return std::chrono::milliseconds(
      std::max<std::int64_t>(1, static_cast<std::int64_t>(interval.count() * f)));
}

std::shared_ptr<HealthGroup> HealthRegistry::group(const std::string& cluster, const PassiveSettings& s) {
  const auto key = cluster + "\n" + s.identity();
  if (auto it = next_groups_.find(key); it != next_groups_.end()) return it->second;
  auto it = groups_.find(key);
  auto g = it != groups_.end() ? it->second : std::make_shared<HealthGroup>(s);
  next_groups_.emplace(key, g);
  return g;
}

std::shared_ptr<EndpointHealth> HealthRegistry::endpoint(const std::string& cluster, const Endpoint& e,
                                                         const ActiveCheckSettings& a,
                                                         const std::shared_ptr<const BackendTls>& tls,
                                                         const std::shared_ptr<HealthGroup>& group) {
  std::shared_ptr<ActiveHealth> active;
  // The TLS identity (a hash of every setting: CA, client certificate, name, protocols...) is
  // part of the probe's: a route verifying against another CA or name must not inherit a
  // verdict reached with other settings (a backend trusted by one route is not by the other).
  const auto id = e.key + "\n" + a.identity() + (tls ? " " + tls->identity() : std::string(" plain"));
  if (a.enabled) {
    if (auto it = next_active_.find(id); it != next_active_.end()) {
      active = it->second;
    } else {
      auto old = active_.find(id);
      active = old != active_.end() ? old->second : std::make_shared<ActiveHealth>(a);
      next_active_.emplace(id, active);
      next_probes_.emplace(id, ProbeTarget{id, e.address, a, a.path.empty(), tls, active});
    }
  }
  // The group's identity is in the key: an endpoint counts in exactly one group's cap for life.
  // So is the probe's: its EndpointHealth holds that probe's state.
  const auto key = cluster + "\n" + (active ? id : e.key + "\noff") + "\n" +
                   (group ? group->settings().identity() : "none") + "\n" +
                   std::to_string(reinterpret_cast<std::uintptr_t>(group.get()));
  if (auto it = next_endpoints_.find(key); it != next_endpoints_.end()) return it->second;
  auto it = endpoints_.find(key);
  auto h = it != endpoints_.end() ? it->second : std::make_shared<EndpointHealth>(active, group);
  next_endpoints_.emplace(key, h);
  return h;
}

void HealthRegistry::commit() {
  groups_ = std::move(next_groups_);
  endpoints_ = std::move(next_endpoints_);
  active_ = std::move(next_active_);
  probes_ = std::move(next_probes_);
  abandon();
}

void HealthRegistry::abandon() {
  next_groups_.clear();
  next_endpoints_.clear();
  next_active_.clear();
  next_probes_.clear();
}

std::vector<ProbeTarget> HealthRegistry::probes() const {
  std::vector<ProbeTarget> out;
  out.reserve(probes_.size());
  for (const auto& [id, p] : probes_) out.push_back(p);
  return out;
}

}  // namespace phigate::upstream
