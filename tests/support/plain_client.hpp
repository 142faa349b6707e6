#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "support/byte_stream.hpp"

namespace phigate::test {

/// A plain-TCP client with the ByteStream read/write API: for the plain-HTTP listener and for raw,
/// deliberately malformed requests. Move-only; use from one thread.
class PlainClient : public ByteStream {
 public:
  /// Connects to host:port (loopback) within `timeout`. On failure `error` says why (e.g. refused).
  static ConnectResult<PlainClient> connect(const std::string& host, std::uint16_t port,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

  PlainClient(PlainClient&&) noexcept = default;
  PlainClient& operator=(PlainClient&&) noexcept = default;

  /// Half-closes: sends FIN, keeps reading possible. False if the socket is already closed.
  bool shutdown_write();

 protected:
  Io recv_raw(char* buf, std::size_t cap, std::size_t& got) override;
  Io send_raw(const char* buf, std::size_t len, std::size_t& sent) override;

 private:
  explicit PlainClient(int fd) : ByteStream(fd) {}
};

/// Polls `GET path` over plain HTTP (new connection each try, every ~5 ms) until the answer has status
/// `status`, or `timeout` passes. For readiness endpoints such as /readyz.
bool wait_http_status(const std::string& host, std::uint16_t port, const std::string& path,
                      std::chrono::milliseconds timeout, int status = 200);

}  // namespace phigate::test
