#include "phigate/upstream/link.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "phigate/net/read_hint.hpp"

namespace phigate::upstream {

using core::Error;
using core::ErrorKind;
using core::Retryable;

net::awaitable<std::optional<Error>> Link::open(const Endpoint& ep, int attempt, Clock::time_point now,
                                                Timeouts t, Deadline& d, const BackendTls* tls) {
  if (take_pooled(ep, attempt, now, tls)) co_return std::nullopt;
  co_return co_await connect(ep, t, d, tls);
}

void Link::begin(const Endpoint& ep, const BackendTls* tls) {
  discard();
  in_.consume(in_.size());
  key_ = ep.key;
  tls_ = tls;
  tls_failure_.reset();
  Pool::pool_key(pool_key_, ep.key, tls);
  got_bytes_ = false;
  last_read_short_ = false;
}

bool Link::take_pooled(const Endpoint& ep, int attempt, Clock::time_point now, const BackendTls* tls) {
  begin(ep, tls);
  connect_time_ = Clock::duration::zero();
  conn_ = attempt == 0 ? pool_.acquire(pool_key_, now) : std::nullopt;
  reused_ = conn_.has_value();
  if (reused_) {
    stats_.upstream_reuses.inc();
    if (tls != nullptr && !tls->verify()) stats_.backend_tls_unverified_requests.inc();
  }
  return reused_;
}

net::awaitable<std::optional<Error>> Link::connect(const Endpoint& ep, Timeouts t, Deadline& d,
                                                   const BackendTls* tls) {
  begin(ep, tls);
  reused_ = false;
  conn_.emplace(Connection{net::tcp::socket(io_)});
  const auto start = Clock::now();
  d.arm_upstream(Deadline::Wait::Connect, t.connect);
  auto [ec] = co_await conn_->socket.async_connect(ep.address, net::use_awaitable_tuple);
  if (ec) {
    stats_.upstream_connect_failures.inc();
    discard();
    if (d.upstream_timed_out()) {
      co_return Error::upstream(ErrorKind::ConnectTimeout, Retryable::No, "upstream connect timeout");
    }
    co_return Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes, ec.message());
  }
  net::error_code ignored;
  conn_->socket.set_option(net::tcp::no_delay(true), ignored);
  stats_.upstream_connects.inc();
  if (tls != nullptr) {
    // The handshake is part of connecting: it gets what is left of the connect deadline.
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    d.arm_upstream(Deadline::Wait::Connect, std::max(t.connect - spent, std::chrono::milliseconds(1)));
    auto ssl = tls->new_ssl(pool_.session(pool_key_));
    if (!ssl || SSL_set_fd(ssl.get(), static_cast<int>(conn_->socket.native_handle())) != 1) {
      ERR_clear_error();
      discard();
      co_return Error::internal("cannot create a TLS connection to the backend");
    }
    conn_->ssl = std::move(ssl);
    stats_.backend_tls_handshakes.inc();
    if (auto failure = co_await handshake(conn_->socket, conn_->ssl.get())) {
      stats_.backend_tls_failures.inc();
      discard();
      if (d.upstream_timed_out()) {
        co_return Error::upstream(ErrorKind::ConnectTimeout, Retryable::No, "upstream TLS handshake timeout");
      }
      // Nothing was sent yet: another endpoint may be tried, as for a refused connect.
      co_return failure->to_error(Retryable::Yes);
    }
    if (SSL_session_reused(conn_->ssl.get()) == 1) stats_.backend_tls_resumed.inc();
    if (!tls->verify()) stats_.backend_tls_unverified_requests.inc();
    keep_session();  // TLS 1.2: resumable now; TLS 1.3: again at finish, after the tickets came
  }
  connect_time_ = Clock::now() - start;
  co_return std::nullopt;
}

void Link::keep_session() noexcept {
  if (conn_ && conn_->ssl && SSL_is_init_finished(conn_->ssl.get()) == 1) {
    pool_.store_session(pool_key_, conn_->ssl.get());
  }
}

net::awaitable<Link::IoResult> Link::tls_write(std::string_view bytes) {
  const auto io = co_await tls_write_all(conn_->socket, conn_->ssl.get(), bytes);
  if (io.protocol_error) tls_failure_ = classify_failure(conn_->ssl.get());
  co_return IoResult{io.ec, io.bytes};
}

net::awaitable<Link::IoResult> Link::tls_read() {
  const auto io = co_await tls_read_some(conn_->socket, conn_->ssl.get(), in_.space(), in_.space_size());
  // A TLS alert after the handshake: with TLS 1.3 a backend refuses our client certificate only
  // now (certificate_required, RFC 8446 §4.4.2.4), at the first read.
  if (io.protocol_error) tls_failure_ = classify_failure(conn_->ssl.get());
  co_return IoResult{io.ec, io.bytes};
}

std::size_t Link::try_send(std::string_view bytes, net::error_code& ec) noexcept {
  ec.clear();
  if (!conn_ || conn_->ssl || bytes.empty()) return 0;
  for (;;) {
    // MSG_DONTWAIT: never blocks, whatever the descriptor's mode; MSG_NOSIGNAL: a closed peer is
    // EPIPE here, as in Asio's own send.
    const auto n =
        ::send(conn_->socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) ec.assign(errno, net::asio::error::get_system_category());
    return 0;
  }
}

bool Link::try_read(IoResult& out) noexcept {
  if (!conn_ || conn_->ssl || in_.space_size() == 0) return false;
  for (;;) {
    const auto n = ::recv(conn_->socket.native_handle(), in_.space(), in_.space_size(), MSG_DONTWAIT);
    if (n > 0) {
      out = {net::error_code{}, static_cast<std::size_t>(n)};
      return true;
    }
    if (n == 0) {
      out = {net::asio::error::eof, 0};  // as Asio reports an orderly close
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      net::note_read_drained(conn_->socket);  // found empty: read_plain() waits for the next event
      return false;
    }
    out = {net::error_code(errno, net::asio::error::get_system_category()), 0};
    return true;
  }
}

std::optional<Error> Link::sent(net::error_code ec, Retryable r, const Deadline& d) const {
  if (!ec) return std::nullopt;
  if (tls_failure_ && !d.upstream_timed_out()) return tls_failure_->to_error(Retryable::No);
  return Error::upstream(d.upstream_timed_out() ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset, r,
                         ec.message());
}

Link::ReadStatus Link::received(net::error_code ec, std::size_t n, const Deadline& d, Error& error) {
  if (!ec && n > 0) {
    // Fewer bytes than input() offered: no data was left (a FIN may have been: see finish()).
    last_read_short_ = n < in_.space_size();
    got_bytes_ = true;
    in_.commit(n);
    return ReadStatus::Data;
  }
  if (d.upstream_timed_out()) {
    stats_.upstream_timeouts.inc();
    error = Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No, "upstream timeout");
    return ReadStatus::Error;
  }
  if (ec == net::asio::error::eof || (!ec && n == 0)) return ReadStatus::Eof;
  if (tls_failure_) {
    error = tls_failure_->to_error(Retryable::No);
    return ReadStatus::Error;
  }
  error = Error::upstream(ErrorKind::UpstreamReset, got_bytes_ ? Retryable::No : Retryable::OnlyIfReused,
                          ec.message());
  return ReadStatus::Error;
}

void Link::finish(bool reusable, Clock::time_point now) {
  if (!conn_) return;
  ++conn_->requests;
  // Any byte after the response (a body on HEAD/204/304, more than Content-Length, a second
  // response) is unexplained: whatever it is, it must never be read as another client's answer.
  // TLS: records OpenSSL holds but has not handed over are bytes after the response too.
  if (!in_.empty() || (conn_->ssl && SSL_has_pending(conn_->ssl.get()) == 1)) {
    stats_.upstream_unsolicited.inc();
    in_.consume(in_.size());
    reusable = false;
  }
  keep_session();
  if (reusable) {
    // The response ended with a read that left no data: the next read on this connection (after
    // its next request) waits for the answer's event instead of failing with EAGAIN first (one
    // system call per request; docs/perf-h2-many-streams.md, round 14). A FIN that came with that
    // read has no event left to show it, but the pool checks every connection with a system call
    // (poll or peek) between its release and its reuse, and those see it.
    if (last_read_short_ && !conn_->ssl) net::note_read_drained(conn_->socket);
    pool_.release(pool_key_, std::move(*conn_), now);
    conn_.reset();
  } else {
    discard();
  }
}

int Link::native_handle() noexcept {
  return conn_ ? static_cast<int>(conn_->socket.native_handle()) : -1;
}

void Link::discard() noexcept {
  if (!conn_) return;
  net::error_code ec;  // errors closing a socket we drop anyway are of no interest
  conn_->ssl.reset();  // no close_notify (SslFree): the descriptor closes now, the backend sees the FIN
  conn_->socket.close(ec);
  conn_.reset();
}

void Link::cancel() noexcept {
  if (!conn_ || !conn_->socket.is_open()) return;
  ::shutdown(conn_->socket.native_handle(), SHUT_RDWR);
  net::error_code ec;
  conn_->socket.cancel(ec);
}

void Link::shutdown_send() noexcept {
  if (!conn_ || conn_->ssl || !conn_->socket.is_open()) return;
  ::shutdown(conn_->socket.native_handle(), SHUT_WR);
}

}  // namespace phigate::upstream
