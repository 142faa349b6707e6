#include "phigate/tls/stream.hpp"

#include <openssl/err.h>

#include "phigate/tls/server_contexts.hpp"

namespace phigate::tls {

using net::error_code;

Stream::Stream(net::tcp::socket sock, SSL_CTX* ctx) : sock_(std::move(sock)), tls_(ctx != nullptr) {
  error_code ec;
  sock_.non_blocking(true, ec);
  if (!tls_) return;
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    last_error_ = drain_errors();
    return;
  }
  SSL_set_fd(ssl_, static_cast<int>(sock_.native_handle()));
  SSL_set_accept_state(ssl_);
}

Stream::~Stream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

error_code Stream::classify(int ret, net::tcp::socket::wait_type& wait, bool& retry) {
  retry = false;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      wait = net::tcp::socket::wait_read;
      retry = true;
      return {};
    case SSL_ERROR_WANT_WRITE:
      wait = net::tcp::socket::wait_write;
      retry = true;
      return {};
    case SSL_ERROR_ZERO_RETURN:
      return net::asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      const int e = errno;
      ERR_clear_error();
      if (e == 0) return net::asio::error::eof;
      last_error_ = std::strerror(e);
      return {e, boost::system::system_category()};
    }
    default:
      // Leave nothing queued: the next SSL_get_error on this thread would report it.
      last_error_ = drain_errors();
      return {EPROTO, boost::system::system_category()};
  }
}

net::awaitable<error_code> Stream::handshake() {
  if (!tls_) co_return error_code{};
  if (ssl_ == nullptr) co_return error_code{ENOMEM, boost::system::system_category()};
  for (;;) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return error_code{};
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) co_return ec;
    auto [wec] = co_await sock_.async_wait(wait, net::use_awaitable_tuple);
    if (wec) co_return wec;
  }
}

net::awaitable<std::pair<error_code, std::size_t>> Stream::read_some(char* data, std::size_t size) {
  if (!tls_) {
    auto [ec, n] = co_await sock_.async_read_some(net::asio::buffer(data, size), net::use_awaitable_tuple);
    co_return std::pair{ec, n};
  }
  for (;;) {
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, data, size, &n);
    if (r == 1) co_return std::pair{error_code{}, n};
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) co_return std::pair{ec, std::size_t{0}};
    auto [wec] = co_await sock_.async_wait(wait, net::use_awaitable_tuple);
    if (wec) co_return std::pair{wec, std::size_t{0}};
  }
}

net::awaitable<error_code> Stream::wait_readable() {
  if (tls_ && ssl_ != nullptr && SSL_has_pending(ssl_) == 1) co_return error_code{};
  auto [ec] = co_await sock_.async_wait(net::tcp::socket::wait_read, net::use_awaitable_tuple);
  co_return ec;
}

net::awaitable<error_code> Stream::write_all(const char* data, std::size_t size) {
  if (!tls_) {
    auto [ec, n] =
        co_await net::asio::async_write(sock_, net::asio::buffer(data, size), net::use_awaitable_tuple);
    co_return ec;
  }
  while (size > 0) {
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, data, size, &n);
    if (r == 1) {
      data += n;
      size -= n;
      continue;
    }
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) co_return ec;
    auto [wec] = co_await sock_.async_wait(wait, net::use_awaitable_tuple);
    if (wec) co_return wec;
  }
  co_return error_code{};
}

void Stream::shutdown_nowait() noexcept {
  if (ssl_ == nullptr || !sock_.is_open()) return;
  if (SSL_is_init_finished(ssl_) == 1 && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) {
    SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's reply
  }
  ERR_clear_error();
}

}  // namespace phigate::tls
