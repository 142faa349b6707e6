#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "support/http_response.hpp"

namespace phigate::test {

/// Outcome of PlainClient::connect / TlsClient::connect: a connected client, or why there is none.
template <class T>
struct ConnectResult {
  std::optional<T> client{};
  std::string error{};  ///< connect or handshake failure; "" on success

  explicit operator bool() const { return client.has_value(); }
  T& operator*() { return *client; }
  T* operator->() { return &*client; }
};

/// The blocking, always-bounded client side of one connection, shared by PlainClient and TlsClient: it
/// owns the socket and a receive buffer, and every read or write takes a timeout. Bytes read but not yet
/// consumed stay buffered for the next call (pipelined responses). Move-only; use from one thread.
class ByteStream {
 public:
  virtual ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  /// Writes all of `data`; false on error or timeout (see error()).
  bool write(std::string_view data, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Returns buffered bytes if any, else waits up to `timeout` for at least one byte. "" means timeout,
  /// EOF (closed()) or error (error()).
  std::string read_some(std::chrono::milliseconds timeout);
  /// Reads until `needle` arrives; returns and consumes everything up to and including it. nullopt on
  /// timeout, EOF or error (the bytes stay buffered).
  std::optional<std::string> read_until(std::string_view needle, std::chrono::milliseconds timeout);
  /// Reads until `done(buffered bytes)` is true; returns and consumes the whole buffer. nullopt on
  /// timeout, EOF or error (the bytes stay buffered).
  std::optional<std::string> read_until(const std::function<bool(std::string_view)>& done,
                                        std::chrono::milliseconds timeout);
  /// Reads until EOF (or TLS close_notify) or `timeout`, and returns everything, buffered bytes included.
  /// Check closed() to tell EOF from timeout.
  std::string read_all(std::chrono::milliseconds timeout);
  /// Reads exactly one response (see parse_http_response) and leaves later bytes buffered; a 1xx interim
  /// response is returned on its own (call again for the final one). Pass `head_request` when answering a
  /// HEAD. nullopt on timeout, EOF mid-response, error or unparsable bytes; error() says which.
  std::optional<HttpResponse> read_http_response(std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                                 bool head_request = false);

  /// Bytes received but not consumed yet; valid until the next call on this object.
  std::string_view buffered() const { return in_; }
  /// True once the peer closed (EOF, TLS close_notify) or the connection failed.
  bool closed() const { return closed_; }
  /// Why the most recent read/write call failed (timeout, reset, TLS alert, parse error); "" if it did not.
  const std::string& error() const { return error_; }
  /// Aborts the connection with a TCP RST (SO_LINGER 0) without any TLS close_notify.
  void reset();
  /// Closes the socket without any TLS close_notify.
  void close();
  /// The socket, or -1 after close(); owned by this object.
  int fd() const { return fd_; }

 protected:
  enum class Io { Done, WantRead, WantWrite, Eof, Error };

  explicit ByteStream(int fd) : fd_(fd) {}
  ByteStream(ByteStream&& other) noexcept;
  ByteStream& operator=(ByteStream&& other) noexcept;

  /// Reads up to `cap` bytes without blocking; on Done `got` > 0. On Error sets error_.
  virtual Io recv_raw(char* buf, std::size_t cap, std::size_t& got) = 0;
  /// Writes up to `len` bytes without blocking; on Done `sent` > 0. On Error sets error_.
  virtual Io send_raw(const char* buf, std::size_t len, std::size_t& sent) = 0;
  /// Waits for `fd_` to become readable/writable until `deadline`; false on timeout.
  bool wait_fd(bool for_write, std::chrono::steady_clock::time_point deadline);
  /// Appends bytes a subclass read on its own (e.g. while waiting for a TLS session ticket).
  void buffer_input(const char* data, std::size_t n) { in_.append(data, n); }

  int fd_ = -1;
  bool closed_ = false;
  std::string error_;

 private:
  /// Appends at least one byte to in_ unless the deadline passes or the stream ends; false then.
  bool fill(std::chrono::steady_clock::time_point deadline);
  std::string take(std::size_t n);

  std::string in_;
};

}  // namespace phigate::test
