#pragma once
// Private to proxy: what both kinds of client connection share — the worker registry entry,
// the coarse deadline, the input buffer and request parser, local replies — and the
// request-head reader, written once for TLS and plain streams.
#include <memory>
#include <string>

#include "phigate/core/error.hpp"
#include "phigate/core/log.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"
#include "phigate/net/buffer.hpp"
#include "phigate/proxy/worker.hpp"

namespace phigate::proxy::detail {

inline constexpr std::size_t kBufferBytes = 16 * 1024;

/// What the connection is waiting for; decides what a deadline cancels and which error it is.
enum class Phase { Handshake, Idle, Header, Body, ClientWrite, UpConnect, UpWrite, UpRead, Closing };

enum class HeadResult { Ready, Closed, Failed };

http::ParserLimits parser_limits(const config::LimitsSpec& l);

class ConnectionCore : public ConnectionBase {
 public:
  ConnectionCore(Worker& worker, SnapshotPtr snap);
  ~ConnectionCore() override;

  /// Worker tick, once the connection has been idle a while: the input buffer and whatever a
  /// large message grew go back to the allocator.
  void release_idle_memory() noexcept override {
    in_.release();
    if (out_.capacity() > kKeepCapacity) std::string().swap(out_);
  }

  /// Sets the deadline for the phase about to wait.
  void arm(Phase phase, std::chrono::milliseconds d) noexcept {
    phase_ = phase;
    deadline = worker_.now() + d;
  }
  void disarm() noexcept { deadline = Clock::time_point::max(); }
  bool timed_out() const noexcept { return timed_out_; }
  /// Error for a wait that ended because the deadline fired in `phase`.
  core::Error timeout_error(Phase phase) const;

 protected:
  /// Cancels pending I/O on the client socket without closing the descriptor (OpenSSL holds it:
  /// closing would let a new accept reuse the number under a live SSL object).
  static void cancel_socket(net::tcp::socket& s) noexcept;

  /// Reads until the next request head is complete. Closed: the client left (or idled out)
  /// between requests. Failed: error_ says why (a reply may still be possible).
  template <class Stream>
  net::awaitable<HeadResult> read_request_head(Stream& stream);

  static constexpr std::size_t kKeepCapacity = 1024;

  /// Between requests: waits (holding no buffer) until the next request's first byte can be
  /// read. False when the connection should close (idle timeout, drain, peer gone).
  template <class Stream>
  net::awaitable<bool> wait_for_request(Stream& stream);

  /// Writes `out_` to the client and clears it.
  template <class Stream>
  net::awaitable<net::error_code> flush_client(Stream& stream);

  /// A short local reply for `error` (status from the error table). Returns true when the
  /// connection may carry on with the next request.
  template <class Stream>
  net::awaitable<bool> reply_error(Stream& stream, const core::Error& error, bool must_close);

  Worker& worker_;
  SnapshotPtr snap_;  // pinned at accept
  std::uint64_t id_;
  Phase phase_ = Phase::Handshake;
  bool timed_out_ = false;
  bool close_after_response_ = false;
  bool linger_ = false;  // closing after a reply while the client may still be sending
  // What the current request came to, for its audit record.
  bool first_request_ = true;       // no request has been served on this connection yet
  bool head_started_ = false;       // a byte of a request arrived
  int response_status_ = 0;         // status sent to the client (0: none)
  std::string_view error_reason_;   // reason of the error replied or that ended the request
  std::uint64_t client_bytes_ = 0;  // bytes written to the client for this request
  net::Buffer in_{kBufferBytes};
  http::Parser req_parser_;
  std::string out_;
  core::Error error_;
  std::string_view extra_fields_;  // added to every response (HSTS over TLS); points into a pinned snapshot
};

template <class Stream>
net::awaitable<HeadResult> ConnectionCore::read_request_head(Stream& stream) {
  const auto& t = snap_->config->timeouts;
  bool started = !in_.empty();
  head_started_ = started;
  if (started) {
    arm(Phase::Header, t.request_header);
  } else {
    arm(Phase::Idle, first_request_ ? std::min(t.request_header, t.keepalive_idle) : t.keepalive_idle);
  }
  for (;;) {
    if (!in_.empty()) {
      std::size_t used = 0;
      const auto st = req_parser_.feed(in_.data(), in_.size(), used);
      in_.consume(used);
      if (st == http::ParseStatus::Error) {
        error_ = req_parser_.error();
        co_return HeadResult::Failed;
      }
      if (req_parser_.head_complete()) co_return HeadResult::Ready;
    }
    if (close_after_response_ && !started) co_return HeadResult::Closed;  // drain: idle, so leave
    auto [ec, n] = co_await stream.read_some(in_.space(), in_.space_size());
    if (ec || n == 0) {
      idle = false;
      if (timed_out_ && started) {
        error_ = timeout_error(phase_);
        co_return HeadResult::Failed;
      }
      // EOF or idle timeout between requests is a normal end; mid-head it is a client error.
      if (!started && req_parser_.at_message_start()) co_return HeadResult::Closed;
      error_ = core::Error::downstream(core::ErrorKind::ClientClosed, "closed mid-request head");
      co_return HeadResult::Failed;
    }
    in_.commit(n);
    if (!started) {
      started = true;
      head_started_ = true;
      idle = false;
      arm(Phase::Header, t.request_header);
    }
  }
}

template <class Stream>
net::awaitable<bool> ConnectionCore::wait_for_request(Stream& stream) {
  if (!in_.empty()) co_return true;  // pipelined: the next request is already here
  if (close_after_response_) co_return false;
  const auto& t = snap_->config->timeouts;
  // A new connection gets request_header to start its first request, not keepalive_idle:
  // otherwise a client that completes TLS and sends nothing holds a slot for a minute.
  arm(Phase::Idle, first_request_ ? std::min(t.request_header, t.keepalive_idle) : t.keepalive_idle);
  idle = true;
  trimmed = false;
  idle_since = worker_.now();
  // This small frame is all an idle connection keeps on the coroutine stack; the request
  // frames (serve_one and below) exist only while a request is in progress.
  const auto ec = co_await stream.wait_readable();
  idle = false;
  co_return !ec;
}

template <class Stream>
net::awaitable<net::error_code> ConnectionCore::flush_client(Stream& stream) {
  if (out_.empty()) co_return net::error_code{};
  arm(Phase::ClientWrite, snap_->config->timeouts.body_idle);
  client_bytes_ += out_.size();
  auto ec = co_await stream.write_all(out_.data(), out_.size());
  out_.clear();
  co_return ec;
}

template <class Stream>
net::awaitable<bool> ConnectionCore::reply_error(Stream& stream, const core::Error& error, bool must_close) {
  const int status = error.status();
  error_reason_ = error.reason();
  if (status == 0) co_return false;
  response_status_ = status;
  const auto& head = req_parser_.head();
  // After a malformed request the byte stream cannot be trusted to re-synchronise: close.
  const bool close = must_close || close_after_response_ || !req_parser_.head_complete() ||
                     !req_parser_.message_complete() || !head.keep_alive || worker_.draining();
  std::string body = std::to_string(status) + " " + http::reason_phrase(status);
  // These two tell the client what to fix (nginx words the first the same way); never PHI.
  if (error.kind == core::ErrorKind::ClientCertificate || error.kind == core::ErrorKind::Misdirected) {
    body += ": ";
    body += error.context;
  }
  body += "\n";
  out_.clear();
  http::append_local_reply(out_, status, req_parser_.head_complete() ? head.version_minor : 1, close, body,
                           {}, req_parser_.head_complete() && head.method == "HEAD", extra_fields_);
  worker_.stats().count_response(status);
  const auto ec = co_await flush_client(stream);
  // A client still sending a body we refused would get a reset on its next write, and a reset
  // can discard our reply before it reads it: drain for a moment first (nginx lingering_close).
  linger_ = !ec && close && req_parser_.head_complete() && !req_parser_.message_complete();
  co_return !ec && !close;
}

}  // namespace phigate::proxy::detail
