#pragma once
// A client stream: TLS, or plain TCP when built without an SSL_CTX. Asio reads the socket
// (speculative, exhaustion-aware: no EAGAIN read and no epoll_ctl per request) into a ciphertext
// buffer that OpenSSL reads through a small BIO; OpenSSL writes straight to the descriptor.
// One run-time branch instead of two stream types keeps the connection code non-template.
// Worker thread only; owned by one connection; not movable (the BIO points at it).
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
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

  /// Bytes already taken off the socket before the handshake (the ClientHello read for TLS
  /// passthrough): OpenSSL reads them first, exactly as if they had just arrived.
  void preload(const unsigned char* data, std::size_t n);
  /// Server-side handshake. On failure, last_error() says why (OpenSSL's reason, no PHI).
  net::awaitable<net::error_code> handshake();
  /// Reads at least one byte. eof when the peer closed (close_notify or TCP FIN).
  net::awaitable<std::pair<net::error_code, std::size_t>> read_some(char* data, std::size_t size);
  /// Waits until a read would find something (socket readable, or TLS bytes already received:
  /// decrypted or not, in OpenSSL or in our ciphertext buffer), without needing a buffer: idle
  /// connections wait here holding none.
  net::awaitable<net::error_code> wait_readable();
  /// Writes all `size` bytes.
  net::awaitable<net::error_code> write_all(const char* data, std::size_t size);
  /// Best-effort close_notify without waiting for the peer's; then the socket may be closed.
  void shutdown_nowait() noexcept;
  /// From now on a read that fills less than its buffer tells the reactor the socket is empty
  /// (net::note_read_drained): the next read waits for the next event, with no read that fails
  /// first. Only for a connection on which a missed end of stream is harmless: a FIN (or RST) that
  /// came with the last bytes brings no event of its own, so it is seen only when a write fails or
  /// a deadline passes (an HTTP/2 connection: its streams' writes and its idle deadline). Never
  /// for HTTP/1.1, whose request body reads must see the client leave.
  void hint_short_reads() noexcept { short_read_hints_ = true; }

  const std::string& last_error() const noexcept { return last_error_; }

 private:
  /// Maps an SSL_* result: 0 = retry after waiting (sets `wait`), otherwise a final error.
  net::error_code classify(int ret, net::tcp::socket::wait_type& wait, bool& retry);
  /// Waits as `classify` asked: reads more ciphertext (wait_read) or waits until writable.
  net::awaitable<net::error_code> wait_for(net::tcp::socket::wait_type wait);
  /// One socket read into the ciphertext buffer (allocated here). EOF is recorded for OpenSSL to
  /// see (so close_notify and truncation are judged as before), other errors are returned.
  net::awaitable<net::error_code> fill();
  /// Frees the ciphertext buffer when OpenSSL has taken all of it.
  void release_if_empty() noexcept;
  static int bio_read(BIO* bio, char* out, std::size_t len, std::size_t* got);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);

 public:
  /// Ciphertext buffer sizes: reads start small; a read that fills the buffer (a bulk upload)
  /// switches to a full TLS record (16 KiB + header + AEAD overhead), a short one back.
  static constexpr std::size_t kSmallBuffer = 4096;
  static constexpr std::size_t kLargeBuffer = 16384 + 5 + 256;

 private:
  net::tcp::socket sock_;
  bool tls_;
  SSL* ssl_ = nullptr;
  std::string last_error_;
  std::unique_ptr<char[]> cbuf_;   // ciphertext from the socket not yet taken by OpenSSL
  std::size_t cbuf_size_ = 0;      // allocated size of cbuf_ (0: none)
  std::size_t cpos_ = 0;           // next unread byte in cbuf_
  std::size_t clen_ = 0;           // end of the bytes read into cbuf_
  bool big_reads_ = false;         // the last read filled its buffer: read a full record next
  bool eof_ = false;               // the peer's FIN was read: the BIO reports end of stream
  bool short_read_hints_ = false;  // hint_short_reads()
  bool filling_ = false;           // a socket read into cbuf_ is in flight
};

}  // namespace phigate::tls
