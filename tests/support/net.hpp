#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phigate::test {

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the kernel's choice, closes.
/// Another process may take it before the caller binds it; start-up helpers retry on EADDRINUSE.
/// Throws std::runtime_error if no socket can be bound.
std::uint16_t free_port();

struct HostPort {
  std::string host{};  ///< without brackets for IPv6 ("::1")
  std::uint16_t port = 0;
};

/// Parses "127.0.0.1:1234", "localhost:80" or "[::1]:8443". nullopt if the port is missing, not a
/// number, 0 or above 65535.
std::optional<HostPort> parse_host_port(std::string_view text);

/// Polls (every ~5 ms, bounded by `timeout`) until a TCP connect to host:port succeeds. Loopback only.
bool wait_for_port(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);

/// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the TCP handshakes (up to
/// its backlog), and nothing is ever read or answered — a backend that hangs in a TLS handshake or
/// before its response. Closed when destroyed. Throws std::runtime_error if it cannot listen.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

namespace detail {

/// Non-blocking TCP connect to a numeric or local host name, bounded by `timeout`. Returns an O_CLOEXEC,
/// O_NONBLOCK fd owned by the caller, or -1 with `error` set.
int connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                std::string& error);

}  // namespace detail
}  // namespace phigate::test
