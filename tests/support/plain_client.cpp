#include "support/plain_client.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "support/net.hpp"
#include "support/spawn_impl.hpp"

namespace phigate::test {

ConnectResult<PlainClient> PlainClient::connect(const std::string& host, std::uint16_t port,
                                                std::chrono::milliseconds timeout) {
  detail::ignore_sigpipe();
  ConnectResult<PlainClient> out;
  const int fd = detail::connect_tcp(host, port, timeout, out.error);
  if (fd >= 0) out.client.emplace(PlainClient(fd));
  return out;
}

bool PlainClient::shutdown_write() {
  return fd_ >= 0 && ::shutdown(fd_, SHUT_WR) == 0;
}

ByteStream::Io PlainClient::recv_raw(char* buf, std::size_t cap, std::size_t& got) {
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n > 0) {
      got = static_cast<std::size_t>(n);
      return Io::Done;
    }
    if (n == 0) return Io::Eof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::WantRead;
    error_ = std::string("recv: ") + std::strerror(errno);
    return Io::Error;
  }
}

ByteStream::Io PlainClient::send_raw(const char* buf, std::size_t len, std::size_t& sent) {
  for (;;) {
    const ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
      sent = static_cast<std::size_t>(n);
      return Io::Done;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::WantWrite;
    error_ = std::string("send: ") + std::strerror(errno);
    return Io::Error;
  }
}

bool wait_http_status(const std::string& host, std::uint16_t port, const std::string& path,
                      std::chrono::milliseconds timeout, int status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (auto c = PlainClient::connect(host, port, left)) {
      if (c->write(request, left)) {
        const auto resp = c->read_http_response(left);
        if (resp && resp->status == status) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace phigate::test
