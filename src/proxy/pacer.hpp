#pragma once
// Response bandwidth (limit-rate / limit-rate-after, nginx's limit_rate / limit_rate_after):
// the arithmetic of pacing one response's writes to the client, sans-I/O. Both relays (HTTP/1.1
// in proxy_connection.cpp, HTTP/2 per stream in h2_connection.cpp) ask `before_write` how long
// to wait before the next write and `slice` how much that write may carry, wait on a timer of
// their own, then `sent` what left. They read the upstream only after a write, so a paced
// response holds at most one relay buffer (backpressure, never more memory). docs/rate-limits.md.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace phigate::proxy {

/// How long after the pacing clock started `paced` bytes (those past limit-rate-after) may have
/// been sent at `rate` bytes per second, minus `elapsed`: the wait before more may go (zero when
/// they are within the rate). `rate` 0: never a wait.
inline std::chrono::microseconds pace_delay(std::uint64_t rate, std::uint64_t paced,
                                            std::chrono::microseconds elapsed) noexcept {
  if (rate == 0 || paced == 0) return std::chrono::microseconds{0};
  constexpr std::uint64_t kUs = 1'000'000;
  // paced * 1e6 / rate without overflow: the whole seconds, then the remainder (< rate <= 2^34).
  const std::uint64_t secs = paced / rate;
  if (secs > (std::uint64_t{1} << 40)) return std::chrono::hours(24);  // never for a real response
  const std::uint64_t due = secs * kUs + (paced % rate) * kUs / rate;
  const auto e = elapsed.count() < 0 ? 0 : static_cast<std::uint64_t>(elapsed.count());
  return std::chrono::microseconds(due > e ? static_cast<std::int64_t>(due - e) : 0);
}

/// One response's pacing state. Inactive (rate 0): every method is a no-op, and the relays test
/// `active()` once per write so an unlimited response pays one branch.
class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  Pacer() = default;
  Pacer(std::uint64_t rate, std::uint64_t after) noexcept : rate_(rate), after_(after) {}

  bool active() const noexcept { return rate_ != 0; }
  std::uint64_t rate() const noexcept { return rate_; }
  std::uint64_t bytes() const noexcept { return sent_; }

  /// The most the next write may carry when `want` bytes are ready: the rest of limit-rate-after at
  /// full speed, then about an eighth of a second's worth (at least 1 KiB, at most 16 KiB), so a
  /// low rate is smooth rather than one burst and a long wait.
  std::size_t slice(std::size_t want) const noexcept {
    if (!active()) return want;
    if (sent_ < after_) return static_cast<std::size_t>(std::min<std::uint64_t>(want, after_ - sent_));
    const auto per_write = std::clamp<std::uint64_t>(rate_ / 8, 1024, 16 * 1024);
    return static_cast<std::size_t>(std::min<std::uint64_t>(want, per_write));
  }

  /// The wait before the next write at `now`. The clock starts the first time this is asked with
  /// limit-rate-after already sent (so the first paced bytes go at once; nginx instead counts from
  /// the request's start plus one second, which lets a slow upstream's response burst).
  Clock::duration before_write(Clock::time_point now) noexcept {
    if (!active() || sent_ < after_) return Clock::duration::zero();
    if (!started_) {
      started_ = true;
      start_ = now;
    }
    return pace_delay(rate_, sent_ - after_,
                      std::chrono::duration_cast<std::chrono::microseconds>(now - start_));
  }

  /// `n` bytes were written (or queued) for the client.
  void sent(std::size_t n) noexcept { sent_ += n; }

 private:
  std::uint64_t rate_ = 0;   // bytes per second; 0: not paced
  std::uint64_t after_ = 0;  // bytes at full speed first
  std::uint64_t sent_ = 0;
  bool started_ = false;
  Clock::time_point start_{};
};

}  // namespace phigate::proxy
