// Blocking byte stream over one accepted socket, plain TCP or TLS, and the read buffer on top of it.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::test_upstream {

/// One accepted connection. Owns the fd and the SSL object; used by exactly one thread.
class Stream {
 public:
  /// Takes ownership of `fd`. With a non-null `tls` the stream speaks TLS once handshake() succeeds.
  Stream(int fd, SSL_CTX* tls);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// Completes the server side of the TLS handshake; true at once for plain TCP.
  bool handshake();
  /// Reads up to `n` bytes: the count read, 0 at end of stream, -1 on error (reset, TLS failure).
  ssize_t read_some(char* data, std::size_t n);
  /// Writes all `n` bytes; false if the peer went away.
  bool write_all(const char* data, std::size_t n);
  bool write_all(std::string_view data) { return write_all(data.data(), data.size()); }
  /// Waits (at most 2 s) until the peer has acknowledged everything written, then aborts with a TCP RST
  /// (SO_LINGER 0). The stream is closed afterwards.
  void reset();
  /// Orderly close: TLS close_notify, FIN, then a bounded drain of late input. The stream is closed
  /// afterwards.
  void close_gracefully();

  /// Negotiated protocol version ("TLSv1.3"), SNI host name and ALPN protocol; empty when not TLS or
  /// not sent.
  std::string tls_version() const;
  std::string tls_sni() const;
  std::string tls_alpn() const;
  bool is_tls() const { return tls_; }

 private:
  int fd_;
  bool tls_;
  SSL* ssl_ = nullptr;
};

/// Read buffer over a Stream: parsers look at buffered() and consume() what they used.
class Reader {
 public:
  /// Largest head or line a parser may wait for; fill() always has room for this much.
  static constexpr std::size_t kMaxPendingBytes = 64 * 1024;

  explicit Reader(Stream& stream) : stream_(stream), buf_(2 * kMaxPendingBytes) {}

  /// Unconsumed bytes; the view is valid until the next fill() or consume().
  std::string_view buffered() const { return {buf_.data() + begin_, end_ - begin_}; }
  void consume(std::size_t n);
  /// Reads more bytes into the buffer. False at end of stream or on error. Callers never wait for more
  /// than kMaxPendingBytes, so there is always room after compaction.
  bool fill();

 private:
  Stream& stream_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace phigate::test_upstream
