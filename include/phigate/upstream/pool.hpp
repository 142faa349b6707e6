#pragma once
// Per-worker keep-alive pool of idle upstream connections, keyed by endpoint identity so that
// pooled connections survive reloads. Worker thread only (shared-nothing).
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

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
  explicit Pool(PoolLimits limits) : limits_(limits) {}
  void set_limits(PoolLimits limits) { limits_ = limits; }

  /// Most recently used idle connection to `key` that is still open, or nullopt. Connections the
  /// peer closed (or that hold unsolicited bytes) while idle are discarded here.
  std::optional<Connection> acquire(std::string_view key, Clock::time_point now);
  /// Returns a healthy, idle connection. Closed instead when over the limits.
  void release(std::string_view key, Connection conn, Clock::time_point now);
  /// Closes idle connections older than the idle timeout. Called from the worker's tick.
  void sweep(Clock::time_point now);
  /// Closes everything (drain).
  void clear();
  std::size_t idle_count() const noexcept { return idle_total_; }

 private:
  struct Idle {
    Connection conn;
    Clock::time_point since;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  PoolLimits limits_;
  std::unordered_map<std::string, std::deque<Idle>, Hash, std::equal_to<>> idle_;
  std::size_t idle_total_ = 0;
};

}  // namespace phigate::upstream
