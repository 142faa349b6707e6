#pragma once
// A client stream: TLS with OpenSSL running directly on the socket's descriptor (no BIO pair, no
// extra copy), or plain TCP when built without an SSL_CTX; readiness waits go through Asio.
// One run-time branch instead of two stream types keeps the connection code non-template.
// Worker thread only; owned by one connection.
#include <openssl/ssl.h>

#include <cstddef>
#include <string>

#include "phigate/net/asio.hpp"

namespace phigate::tls {

class Stream {
 public:
  /// Takes the socket; the connection starts with `ctx` (SNI may switch it during handshake).
  /// A null `ctx` makes a plain TCP stream (no handshake, no encryption).
  Stream(net::tcp::socket sock, SSL_CTX* ctx);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  net::tcp::socket& socket() noexcept { return sock_; }
  SSL* native() noexcept { return ssl_; }
  bool is_tls() const noexcept { return tls_; }

  /// Server-side handshake. On failure, last_error() says why (OpenSSL's reason, no PHI).
  net::awaitable<net::error_code> handshake();
  /// Reads at least one byte. eof when the peer closed (close_notify or TCP FIN).
  net::awaitable<std::pair<net::error_code, std::size_t>> read_some(char* data, std::size_t size);
  /// Waits until a read would find something (socket readable, or TLS bytes already decrypted
  /// and pending), without needing a buffer: idle connections wait here holding none.
  net::awaitable<net::error_code> wait_readable();
  /// Writes all `size` bytes.
  net::awaitable<net::error_code> write_all(const char* data, std::size_t size);
  /// Best-effort close_notify without waiting for the peer's; then the socket may be closed.
  void shutdown_nowait() noexcept;

  const std::string& last_error() const noexcept { return last_error_; }

 private:
  /// Maps an SSL_* result: 0 = retry after waiting (sets `wait`), otherwise a final error.
  net::error_code classify(int ret, net::tcp::socket::wait_type& wait, bool& retry);

  net::tcp::socket sock_;
  bool tls_;
  SSL* ssl_ = nullptr;
  std::string last_error_;
};

}  // namespace phigate::tls
