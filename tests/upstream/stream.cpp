#include "stream.hpp"

#include <openssl/err.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace phigate::test_upstream {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kResetDrainWait = std::chrono::seconds(2);
constexpr auto kLingerWait = std::chrono::seconds(1);
constexpr std::size_t kLingerMaxBytes = 1024 * 1024;
}  // namespace

Stream::Stream(int fd, SSL_CTX* tls) : fd_(fd), tls_(tls != nullptr) {
  if (tls == nullptr) return;
  ssl_ = SSL_new(tls);
  if (ssl_ != nullptr && SSL_set_fd(ssl_, fd_) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_ == nullptr) ERR_clear_error();
}

Stream::~Stream() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // SSL_set_fd's BIO does not own the fd; closed below
  if (fd_ >= 0) ::close(fd_);
}

bool Stream::handshake() {
  if (!tls_) return true;
  if (ssl_ == nullptr) return false;
  if (SSL_accept(ssl_) == 1) return true;
  ERR_clear_error();  // leave nothing queued for this thread's next SSL_get_error
  return false;
}

ssize_t Stream::read_some(char* data, std::size_t n) {
  if (!tls_) {
    for (;;) {
      const ssize_t got = ::recv(fd_, data, n, 0);
      if (got >= 0) return got;
      if (errno != EINTR) return -1;
    }
  }
  std::size_t got = 0;
  if (SSL_read_ex(ssl_, data, n, &got) == 1) return static_cast<ssize_t>(got);
  // SSL_OP_IGNORE_UNEXPECTED_EOF makes a FIN without close_notify a plain end of stream too.
  const int err = SSL_get_error(ssl_, 0);
  ERR_clear_error();
  return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

bool Stream::write_all(const char* data, std::size_t n) {
  while (n > 0) {
    std::size_t written = 0;
    if (tls_) {
      if (SSL_write_ex(ssl_, data, n, &written) != 1) {
        ERR_clear_error();
        return false;
      }
    } else {
      const ssize_t w = ::send(fd_, data, n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      written = static_cast<std::size_t>(w);
    }
    data += written;
    n -= written;
  }
  return true;
}

void Stream::reset() {
  if (fd_ < 0) return;
  // An RST makes Linux discard unsent data, which would turn reset=mid_body into a cut at a random
  // point. TIOCOUTQ counts bytes not yet acknowledged by the peer: wait for it to drain (bounded).
  const auto deadline = Clock::now() + kResetDrainWait;
  int pending = 0;
  while (::ioctl(fd_, TIOCOUTQ, &pending) == 0 && pending > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const linger abort_on_close{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  ::close(fd_);
  fd_ = -1;
}

void Stream::close_gracefully() {
  if (fd_ < 0) return;
  if (ssl_ != nullptr && SSL_shutdown(ssl_) < 0) ERR_clear_error();
  ::shutdown(fd_, SHUT_WR);
  // RFC 9112 §9.6: closing with unread input makes the kernel send an RST, which may destroy the
  // response before the client has read it. Drain what the client still sends, for a short while.
  const auto deadline = Clock::now() + kLingerWait;
  std::size_t drained = 0;
  char sink[16 * 1024];
  while (drained < kLingerMaxBytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{.fd = fd_, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t got = ::recv(fd_, sink, sizeof sink, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    drained += static_cast<std::size_t>(got);
  }
  ::close(fd_);
  fd_ = -1;
}

std::string Stream::tls_version() const {
  return ssl_ != nullptr ? SSL_get_version(ssl_) : "";
}

std::string Stream::tls_sni() const {
  const char* name = ssl_ != nullptr ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return name != nullptr ? name : "";
}

std::string Stream::tls_alpn() const {
  if (ssl_ == nullptr) return "";
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &proto, &len);
  return proto != nullptr ? std::string(reinterpret_cast<const char*>(proto), len) : "";
}

void Reader::consume(std::size_t n) {
  begin_ += std::min(n, end_ - begin_);
  if (begin_ == end_) begin_ = end_ = 0;
}

bool Reader::fill() {
  if (end_ == buf_.size()) {
    if (begin_ == 0) return false;  // unreachable while callers respect kMaxPendingBytes
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const ssize_t got = stream_.read_some(buf_.data() + end_, buf_.size() - end_);
  if (got <= 0) return false;
  end_ += static_cast<std::size_t>(got);
  return true;
}

}  // namespace phigate::test_upstream
