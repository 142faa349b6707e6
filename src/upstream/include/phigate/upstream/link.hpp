#pragma once
// The upstream layer of one request: pick the endpoint, take a pooled connection or connect,
// send, receive, then release to the pool or discard, and decide whether a failed attempt may
// be tried again. It owns the upstream socket and its input buffer; what the bytes mean (framing,
// 1xx, reuse) is the HTTP codec's (http/exchange.hpp). Worker thread only.
//
// Deadlines stay with the client connection (one coarse deadline per connection, checked by the
// worker tick): the link asks its `Deadline` to arm one before every wait, and the connection's
// expire() calls cancel().
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "phigate/core/error.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/net/buffer.hpp"
#include "phigate/upstream/backend_tls.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {

/// Per-request upstream deadlines (the route's policy over the global config).
struct Timeouts {
  std::chrono::milliseconds connect{};
  std::chrono::milliseconds send{};
  std::chrono::milliseconds read{};
};

/// Where the link's waits get their deadline.
class Deadline {
 public:
  enum class Wait { Connect, Send, Read };
  /// A wait of kind `w` is about to start and may last `d`.
  virtual void arm_upstream(Wait w, std::chrono::milliseconds d) noexcept = 0;
  /// The last wait ended because its deadline fired.
  virtual bool upstream_timed_out() const noexcept = 0;

 protected:
  ~Deadline() = default;
};

class Link {
 public:
  static constexpr std::size_t kBufferBytes = net::Buffer::kBlockBytes;  // from the per-thread cache

  Link(net::asio::io_context& io, Pool& pool, metrics::WorkerShard& stats)
      : io_(io), pool_(pool), stats_(stats) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() { discard(); }

  /// Opens attempt `attempt` (0-based) to `ep`: the first attempt takes a pooled connection when
  /// one is idle and silent; a retry always connects anew (the pool may hold more connections the
  /// upstream dropped). Clears the input buffer: bytes of another exchange are never this one's.
  /// `now`: the worker's coarse clock (pool idle checks). `tls` (the cluster's, kept alive by the
  /// pinned snapshot; null: plain HTTP): the connection speaks TLS with those settings, and only
  /// a pooled connection made with the same settings (BackendTls identity) is taken.
  net::awaitable<std::optional<core::Error>> open(const Endpoint& ep, int attempt, Clock::time_point now,
                                                  Timeouts t, Deadline& d, const BackendTls* tls = nullptr);
  /// open() in two steps, so that the hot path (a pooled connection) costs no coroutine frame:
  /// take_pooled() is open() when it returns true; otherwise co_await connect() with the same `tls`.
  bool take_pooled(const Endpoint& ep, int attempt, Clock::time_point now, const BackendTls* tls = nullptr);
  /// Connects, then (with `tls`) runs the TLS handshake within the same connect deadline, offering
  /// the session last cached for this endpoint and settings. A failed handshake is
  /// ErrorKind::UpstreamTls (502) whose reason names the check (unknown CA, name, expiry, ...).
  net::awaitable<std::optional<core::Error>> connect(const Endpoint& ep, Timeouts t, Deadline& d,
                                                     const BackendTls* tls = nullptr);

  using IoResult = std::tuple<net::error_code, std::size_t>;
  /// Writes all of `bytes` (the caller keeps them alive until it resumes): co_await it, then
  /// pass the result to sent(). Plain: not a coroutine itself, one frame less per write.
  net::awaitable<IoResult> send(std::string_view bytes, Timeouts t, Deadline& d) {
    d.arm_upstream(Deadline::Wait::Send, t.send);
    if (conn_->ssl) return tls_write(bytes);
    return net::asio::async_write(conn_->socket, net::asio::buffer(bytes.data(), bytes.size()),
                                  net::use_awaitable_tuple);
  }
  /// The first step of a send, without waiting: writes what a plain connection's socket takes
  /// at once (a request head nearly always fits the socket buffer) and returns how many bytes
  /// went. 0 with no error: nothing could be written now, or the connection speaks TLS (its
  /// records go through send()). `ec` is set on a failure other than would-block, as send()
  /// would report it. The caller co_awaits send() only for what is left: the usual request then
  /// costs no asynchronous operation, no handler allocation and no trip through the scheduler.
  std::size_t try_send(std::string_view bytes, net::error_code& ec) noexcept;
  /// What a send() came to: nothing, or an upstream error with retry class `r`.
  std::optional<core::Error> sent(net::error_code ec, core::Retryable r, const Deadline& d) const;

  enum class ReadStatus { Data, Eof, Error };
  /// Reads what the upstream sends into input(): co_await it, then pass the result to received().
  net::awaitable<IoResult> read(Timeouts t, Deadline& d) {
    d.arm_upstream(Deadline::Wait::Read, t.read);
    if (conn_->ssl) return tls_read();
    return conn_->socket.async_read_some(net::asio::buffer(in_.space(), in_.space_size()),
                                         net::use_awaitable_tuple);
  }
  /// read() of a plain connection as a deferred operation: co_await it where it is made (a
  /// coroutine of the worker), and it costs no coroutine frame of its own. Not for TLS (is_tls()).
  auto read_plain(Timeouts t, Deadline& d) {
    d.arm_upstream(Deadline::Wait::Read, t.read);
    return conn_->socket.async_read_some(net::asio::buffer(in_.space(), in_.space_size()),
                                         net::deferred_tuple);
  }
  /// read_plain()'s first step without waiting, for a plain connection: reads what the socket
  /// holds now into input() (MSG_DONTWAIT). True: `out` is the result to pass to received() (bytes,
  /// EOF as asio::error::eof, or a failure); false: nothing yet (or TLS), co_await read_plain(). For
  /// a read the caller expects to find its data: after a yield that gave the backend time to
  /// answer, it costs no asynchronous operation (Asio posts even an operation that completes at once).
  bool try_read(IoResult& out) noexcept;
  /// What a read() came to. Data: `n` bytes were added to input(). Eof: the upstream closed
  /// cleanly (the codec decides whether that ends the response). Error: `error` says why (timeout
  /// or reset; retry class OnlyIfReused while no response byte has arrived on this attempt).
  /// Call it in the handler that resumed from the read (or right after try_read), before input()
  /// changes: it notes whether the read left data in the socket (finish() uses it).
  ReadStatus received(net::error_code ec, std::size_t n, const Deadline& d, core::Error& error);
  net::Buffer& input() noexcept { return in_; }

  /// The exchange ended. Any byte left in input() was sent by nobody's request: it is counted
  /// (phigate_upstream_unsolicited_total) and the connection closed, whatever `reusable` says.
  /// Otherwise the connection goes back to the pool when `reusable`, idle since `now`.
  void finish(bool reusable, Clock::time_point now);
  /// Closes the connection (failed exchange, client gone, connection closing).
  void discard() noexcept;
  /// The deadline fired: cancel pending I/O; the descriptor stays until discard().
  void cancel() noexcept;
  /// A tunnel's client finished sending (RFC 8441 END_STREAM): half-close a plain TCP connection
  /// (FIN; the backend may still answer). Nothing for TLS: a TLS half-close is a close_notify
  /// many servers answer by closing, so a TLS tunnel's caller closes both sides instead.
  void shutdown_send() noexcept;

  bool is_open() const noexcept { return conn_.has_value(); }
  /// The connection's descriptor (-1 when none): for tests and diagnostics, never for I/O.
  int native_handle() noexcept;
  /// The connection speaks TLS to the backend.
  bool is_tls() const noexcept { return conn_.has_value() && conn_->ssl != nullptr; }
  bool reused() const noexcept { return reused_; }
  /// A byte of the response arrived on this attempt.
  bool got_bytes() const noexcept { return got_bytes_; }
  std::string_view endpoint() const noexcept { return key_; }
  /// Time to connect on this attempt (zero for a pooled connection).
  Clock::duration connect_time() const noexcept { return connect_time_; }
  /// Frees the input buffer while it is empty (idle client connection).
  void release_memory() noexcept { in_.release(); }

 private:
  net::awaitable<IoResult> tls_write(std::string_view bytes);
  net::awaitable<IoResult> tls_read();
  /// Keeps the connection's TLS session for the next connect to the same endpoint and settings.
  void keep_session() noexcept;
  void begin(const Endpoint& ep, const BackendTls* tls);

  net::asio::io_context& io_;
  Pool& pool_;
  metrics::WorkerShard& stats_;
  std::optional<Connection> conn_;
  net::Buffer in_{kBufferBytes};
  std::string_view key_;  // points into the pinned snapshot's cluster
  std::string pool_key_;  // key_, plus the TLS identity for a TLS connection (Pool::pool_key)
  const BackendTls* tls_ = nullptr;
  std::optional<TlsFailure> tls_failure_;  // why the last TLS read/write failed
  Clock::duration connect_time_{};
  bool reused_ = false;
  bool got_bytes_ = false;
  bool last_read_short_ = false;  // received(): the last read left no data in the socket
};

}  // namespace phigate::upstream
