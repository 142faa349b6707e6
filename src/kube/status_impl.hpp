#pragma once
// Private helpers shared by leader.cpp and status.cpp: JSON text for the bodies phigate writes (a
// Lease, a merge patch, an Event — written, never parsed here: parsing is simdjson's), the two
// Kubernetes time formats, and the pure Lease decision so it reads event by event.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "json_text_impl.hpp"

namespace phigate::kube::detail {

/// Kubernetes MicroTime (Lease acquireTime/renewTime): "2006-01-02T15:04:05.000000Z07:00", in UTC.
/// `micro`: false gives metav1.Time ("2006-01-02T15:04:05Z": Event first/lastTimestamp).
inline std::string format_time(std::chrono::system_clock::time_point t, bool micro = true) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::int64_t secs = us / 1'000'000;
  std::int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (micro) {
    char f[8];
    std::snprintf(f, sizeof f, ".%06lld", static_cast<long long>(frac));
    out += f;
  }
  out += 'Z';
  return out;
}

/// What a candidate does with the Lease it just read (client-go leaderelection tryAcquireOrRenew).
enum class LeaseAction {
  Renew,   // we hold it: update renewTime
  Follow,  // another holds it and it has not expired by our clock
  Take,    // empty holder or expired: update it to us (leaseTransitions + 1)
};

/// `observed_at`: the local steady time at which the record (holder, times, transitions) last
/// changed as we saw it — never the writer's renewTime, so a skewed clock elsewhere cannot make us
/// take a live Lease (client-go: observedTime).
inline LeaseAction decide_lease(std::string_view holder, std::string_view identity,
                                std::chrono::steady_clock::time_point observed_at,
                                std::chrono::milliseconds duration,
                                std::chrono::steady_clock::time_point now) {
  if (!holder.empty() && holder == identity) return LeaseAction::Renew;
  if (holder.empty()) return LeaseAction::Take;
  return observed_at + duration > now ? LeaseAction::Follow : LeaseAction::Take;
}

/// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
inline std::string truncate_utf8(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

}  // namespace phigate::kube::detail
