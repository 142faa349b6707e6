#pragma once
// A plain TCP stream with the same coroutine shape as tls::Stream (read_some/write_all), so
// that protocol code is written once for both. Worker thread only.
#include "phigate/net/asio.hpp"

namespace phigate::net {

class PlainStream {
 public:
  explicit PlainStream(tcp::socket sock) : sock_(std::move(sock)) {}
  tcp::socket& socket() noexcept { return sock_; }

  awaitable<std::pair<error_code, std::size_t>> read_some(char* data, std::size_t size) {
    auto [ec, n] = co_await sock_.async_read_some(asio::buffer(data, size), use_awaitable_tuple);
    co_return std::pair{ec, n};
  }
  awaitable<error_code> write_all(const char* data, std::size_t size) {
    auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(data, size), use_awaitable_tuple);
    co_return ec;
  }
  void shutdown_nowait() noexcept {}

 private:
  tcp::socket sock_;
};

}  // namespace phigate::net
