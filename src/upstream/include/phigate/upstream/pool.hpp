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
#include "phigate/upstream/backend_tls.hpp"

namespace phigate::upstream {

using Clock = std::chrono::steady_clock;

/// An upstream connection checked out of (or headed for) the pool.
struct Connection {
  net::tcp::socket socket;
  std::uint32_t requests = 0;  // requests already sent on it
  bool reused = false;         // came from the pool (a failure before any byte may be retried)
  /// TLS to the backend (handshake done) on the socket's descriptor; null: plain TCP. Declared
  /// after the socket, so it is freed before the descriptor closes.
  SslPtr ssl{};
};

struct SessionFree {
  void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
};
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

struct PoolLimits {
  std::size_t idle_per_endpoint = 64;
  std::chrono::milliseconds idle_timeout{60'000};
  std::uint32_t max_requests = 10000;
  /// How long a batched readability check (below) vouches for the idle connections it found
  /// silent. 0: every acquire checks its own candidate.
  std::chrono::microseconds check_window{1000};
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

  /// The pool key of a connection to endpoint `endpoint_key` ("ip:port") with `tls` (null:
  /// plain), written into `out` (its capacity is reused: no allocation once warm).
  static void pool_key(std::string& out, std::string_view endpoint_key, const BackendTls* tls);

  /// Most recently used idle connection to `key` that is still open and silent, or nullopt.
  /// Every candidate is checked for readability after its release: one `poll()` checks it and
  /// up to kCheckBatch - 1 more of the same queue not vouched for, and vouches for those found
  /// silent for `check_window` (a burst of requests takes a burst of released connections for one
  /// system call; nginx and HAProxy learn the same from their event loop's last wait). Bytes a
  /// backend sends inside the window are read as the next response, as bytes sent between a
  /// check and the request always are. A readable candidate is peeked (MSG_PEEK): EOF or unsolicited bytes
  /// close it. A TLS candidate with readable bytes is drained through OpenSSL first: TLS records
  /// that carry no application data (TLS 1.3 NewSessionTicket, KeyUpdate) are consumed and it
  /// stays usable; application data or close_notify close it as for plain connections.
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
  /// Readability checks made by acquire (poll() calls), for tests and profiles.
  std::uint64_t checks() const noexcept { return check_round_; }
  static constexpr std::size_t kCheckBatch = 32;

  /// TLS session resumption: the last resumable session of a connection with pool key `key`
  /// (endpoint + TLS identity), or null. Owned by the pool; valid until the next store or clear.
  SSL_SESSION* session(std::string_view key) const;
  /// Keeps `ssl`'s session for `key` when it is resumable (one per key; bounded: kMaxSessions).
  void store_session(std::string_view key, SSL* ssl);
  static constexpr std::size_t kMaxSessions = 4096;

 private:
  struct Idle {
    Connection conn;
    Clock::time_point since;
    std::uint64_t id;      // names the entry for its readability watch
    bool watched = false;  // a readability watch is pending
    /// When a check last found it silent (taken before the poll() call), after its release;
    /// the epoch: never.
    Clock::time_point checked{};
  };
  using Queue = std::deque<Idle>;
  /// The watch of entry `id` of endpoint `key` fired: unless the entry was taken meanwhile, close it.
  void on_readable(std::string_view key, std::uint64_t id);
  void close_idle(Idle& idle, bool peek);
  /// True when a check made after `idle`'s release found it silent at most check_window ago.
  bool vouched(const Idle& idle, Clock::time_point now) const noexcept;
  /// One poll() over `candidate` and the entries at the back of `q` not vouched for; marks the
  /// silent ones checked. True when `candidate` is silent.
  bool check_batch(Idle& candidate, std::deque<Idle>& q);

  PoolLimits limits_;
  metrics::Counter* unsolicited_;
  core::StringMap<Queue> idle_;  // empty queues are swept
  core::StringMap<SessionPtr> sessions_;
  std::size_t idle_total_ = 0;
  std::uint64_t next_id_ = 0;
  std::uint64_t check_round_ = 0;                                 // poll() calls so far
  std::shared_ptr<Pool*> alive_ = std::make_shared<Pool*>(this);  // watches check it (STYLE §5)
};

}  // namespace phigate::upstream
