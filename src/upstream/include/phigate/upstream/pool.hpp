#pragma once
// Per-worker keep-alive pool of idle upstream connections, keyed by endpoint identity so that
// pooled connections survive reloads. Worker thread only (shared-nothing).
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/core/strings.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::upstream {

using Clock = std::chrono::steady_clock;

/// An upstream connection checked out of (or headed for) the pool.
struct Connection {
  net::tcp::socket socket;
  std::uint32_t requests = 0;  // requests already sent on it
  bool reused = false;         // came from the pool (a failure before any byte may be retried)
};

struct PoolLimits {
  std::size_t idle_per_endpoint = 64;
  std::chrono::milliseconds idle_timeout{60'000};
  std::uint32_t max_requests = 10000;
};

class Pool {
 public:
  /// `unsolicited` (may be null) counts connections closed because the upstream sent bytes
  /// while nobody had asked (an idle pooled connection that became readable with data).
  explicit Pool(PoolLimits limits, metrics::Counter* unsolicited = nullptr)
      : limits_(limits), unsolicited_(unsolicited) {}
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  void set_limits(PoolLimits limits) { limits_ = limits; }

  /// Most recently used idle connection to `key` that is still open and silent, or nullopt.
  /// Every candidate is checked for readability (one MSG_PEEK): EOF or unsolicited bytes close it.
  std::optional<Connection> acquire(std::string_view key, Clock::time_point now);
  /// Returns a healthy, idle connection whose last response ended exactly at its framing. Closed
  /// instead when over the limits.
  void release(std::string_view key, Connection conn, Clock::time_point now);
  /// Worker tick: every connection idle for kWatchAfter or more gets a readability watch; the
  /// moment it becomes readable (data or EOF) it is closed and dropped, as nginx does for its
  /// upstream keep-alive connections. Hot connections (reused sooner) cost no watch: the check
  /// at acquire covers them.
  void watch_idle(Clock::time_point now);
  static constexpr auto kWatchAfter = std::chrono::milliseconds(50);
  /// Closes idle connections older than the idle timeout. Called from the worker's tick.
  void sweep(Clock::time_point now);
  /// Closes everything (drain).
  void clear();
  std::size_t idle_count() const noexcept { return idle_total_; }

 private:
  struct Idle {
    Connection conn;
    Clock::time_point since;
    std::uint64_t id;      // names the entry for its readability watch
    bool watched = false;  // a readability watch is pending
  };
  using Queue = std::deque<Idle>;
  /// The watch of entry `id` of endpoint `key` fired: unless the entry was taken meanwhile, close it.
  void on_readable(std::string_view key, std::uint64_t id);
  void close_idle(Idle& idle, bool peek);

  PoolLimits limits_;
  metrics::Counter* unsolicited_;
  core::StringMap<Queue> idle_;  // empty queues are swept
  std::size_t idle_total_ = 0;
  std::uint64_t next_id_ = 0;
  std::shared_ptr<Pool*> alive_ = std::make_shared<Pool*>(this);  // watches check it (STYLE §5)
};

}  // namespace phigate::upstream
