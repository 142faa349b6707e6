#include "phigate/upstream/link.hpp"

#include <sys/socket.h>

namespace phigate::upstream {

using core::Error;
using core::ErrorKind;
using core::Retryable;

namespace {

/// RFC 9110 §9.2.1.
bool is_safe_method(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE";
}

}  // namespace

net::awaitable<std::optional<Error>> Link::open(const Endpoint& ep, int attempt, Clock::time_point now,
                                                Timeouts t, Deadline& d) {
  if (take_pooled(ep, attempt, now)) co_return std::nullopt;
  co_return co_await connect(ep, t, d);
}

bool Link::take_pooled(const Endpoint& ep, int attempt, Clock::time_point now) {
  discard();
  in_.consume(in_.size());
  key_ = ep.key;
  got_bytes_ = false;
  connect_time_ = Clock::duration::zero();
  conn_ = attempt == 0 ? pool_.acquire(ep.key, now) : std::nullopt;
  reused_ = conn_.has_value();
  if (reused_) stats_.upstream_reuses.inc();
  return reused_;
}

net::awaitable<std::optional<Error>> Link::connect(const Endpoint& ep, Timeouts t, Deadline& d) {
  discard();
  in_.consume(in_.size());
  key_ = ep.key;
  got_bytes_ = false;
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
  connect_time_ = Clock::now() - start;
  co_return std::nullopt;
}

std::optional<Error> Link::sent(net::error_code ec, Retryable r, const Deadline& d) const {
  if (!ec) return std::nullopt;
  return Error::upstream(d.upstream_timed_out() ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset, r,
                         ec.message());
}

Link::ReadStatus Link::received(net::error_code ec, std::size_t n, const Deadline& d, Error& error) {
  if (!ec && n > 0) {
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
  error = Error::upstream(ErrorKind::UpstreamReset, got_bytes_ ? Retryable::No : Retryable::OnlyIfReused,
                          ec.message());
  return ReadStatus::Error;
}

void Link::finish(bool reusable, Clock::time_point now) {
  if (!conn_) return;
  ++conn_->requests;
  // Any byte after the response (a body on HEAD/204/304, more than Content-Length, a second
  // response) is unexplained: whatever it is, it must never be read as another client's answer.
  if (!in_.empty()) {
    stats_.upstream_unsolicited.inc();
    in_.consume(in_.size());
    reusable = false;
  }
  if (reusable) {
    pool_.release(key_, std::move(*conn_), now);
    conn_.reset();
  } else {
    discard();
  }
}

void Link::discard() noexcept {
  if (!conn_) return;
  net::error_code ec;  // errors closing a socket we drop anyway are of no interest
  conn_->socket.close(ec);
  conn_.reset();
}

void Link::cancel() noexcept {
  if (!conn_ || !conn_->socket.is_open()) return;
  ::shutdown(conn_->socket.native_handle(), SHUT_RDWR);
  net::error_code ec;
  conn_->socket.cancel(ec);
}

bool Link::may_retry(const Error& err, int attempt, bool reused, bool got_bytes, bool has_body,
                     std::string_view method) noexcept {
  return attempt == 0 && reused && !got_bytes && !has_body && err.source == core::ErrorSource::Upstream &&
         err.retryable == Retryable::OnlyIfReused && is_safe_method(method);
}

}  // namespace phigate::upstream
