#include "support/byte_stream.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

namespace phigate::test {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

std::string timeout_text(std::chrono::milliseconds t) {
  return "timed out after " + std::to_string(t.count()) + " ms";
}

}  // namespace

ByteStream::~ByteStream() {
  close();
}

ByteStream::ByteStream(ByteStream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      closed_(other.closed_),
      error_(std::move(other.error_)),
      in_(std::move(other.in_)) {}

ByteStream& ByteStream::operator=(ByteStream&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    closed_ = other.closed_;
    error_ = std::move(other.error_);
    in_ = std::move(other.in_);
  }
  return *this;
}

void ByteStream::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  closed_ = true;
}

void ByteStream::reset() {
  if (fd_ >= 0) {
    const linger lg{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close();
}

bool ByteStream::wait_fd(bool for_write, Clock::time_point deadline) {
  pollfd p{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  for (;;) {
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;  // includes POLLHUP/POLLERR: the next read/write reports them
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool ByteStream::fill(Clock::time_point deadline) {
  if (fd_ < 0 || closed_) return false;
  std::array<char, 65536> buf{};
  for (;;) {
    std::size_t got = 0;
    switch (recv_raw(buf.data(), buf.size(), got)) {
      case Io::Done:
        in_.append(buf.data(), got);
        return true;
      case Io::Eof:
        closed_ = true;
        return false;
      case Io::Error:
        closed_ = true;
        return false;
      case Io::WantRead:
        if (!wait_fd(false, deadline)) return false;
        break;
      case Io::WantWrite:
        if (!wait_fd(true, deadline)) return false;
        break;
    }
  }
}

std::string ByteStream::take(std::size_t n) {
  std::string out = in_.substr(0, n);
  in_.erase(0, n);
  return out;
}

bool ByteStream::write(std::string_view data, std::chrono::milliseconds timeout) {
  error_.clear();
  const auto deadline = Clock::now() + timeout;
  if (fd_ < 0) {
    error_ = "write on a closed connection";
    return false;
  }
  while (!data.empty()) {
    std::size_t sent = 0;
    switch (send_raw(data.data(), data.size(), sent)) {
      case Io::Done:
        data.remove_prefix(sent);
        break;
      case Io::WantWrite:
        if (!wait_fd(true, deadline)) {
          error_ = "write " + timeout_text(timeout);
          return false;
        }
        break;
      case Io::WantRead:
        if (!wait_fd(false, deadline)) {
          error_ = "write " + timeout_text(timeout);
          return false;
        }
        break;
      case Io::Eof:
      case Io::Error:
        if (error_.empty()) error_ = "write failed: connection closed";
        return false;
    }
  }
  return true;
}

std::string ByteStream::read_some(std::chrono::milliseconds timeout) {
  error_.clear();
  if (in_.empty() && !fill(Clock::now() + timeout) && !closed_) error_ = "read " + timeout_text(timeout);
  return take(in_.size());
}

std::optional<std::string> ByteStream::read_until(std::string_view needle,
                                                  std::chrono::milliseconds timeout) {
  error_.clear();
  std::size_t searched = 0;
  auto done = [&](std::string_view buf) {
    // Resume the search just before the new bytes instead of rescanning the whole buffer.
    const std::size_t from = searched >= needle.size() ? searched - needle.size() + 1 : 0;
    searched = buf.size();
    return buf.find(needle, from) != std::string_view::npos;
  };
  const auto deadline = Clock::now() + timeout;
  while (!done(in_)) {
    if (!fill(deadline)) {
      if (!closed_) error_ = "read_until " + timeout_text(timeout);
      return std::nullopt;
    }
  }
  return take(in_.find(needle) + needle.size());
}

std::optional<std::string> ByteStream::read_until(const std::function<bool(std::string_view)>& done,
                                                  std::chrono::milliseconds timeout) {
  error_.clear();
  const auto deadline = Clock::now() + timeout;
  while (!done(in_)) {
    if (!fill(deadline)) {
      if (!closed_) error_ = "read_until " + timeout_text(timeout);
      return std::nullopt;
    }
  }
  return take(in_.size());
}

std::string ByteStream::read_all(std::chrono::milliseconds timeout) {
  error_.clear();
  const auto deadline = Clock::now() + timeout;
  while (fill(deadline)) {
  }
  if (!closed_) error_ = "read_all " + timeout_text(timeout);
  return take(in_.size());
}

std::optional<HttpResponse> ByteStream::read_http_response(std::chrono::milliseconds timeout,
                                                           bool head_request) {
  error_.clear();
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    HttpParseResult r = parse_http_response(in_, head_request, closed_);
    switch (r.state) {
      case HttpParseResult::State::Complete:
        in_.erase(0, r.response.wire_bytes);
        return std::move(r.response);
      case HttpParseResult::State::Invalid:
        error_ = "invalid response: " + r.error;
        return std::nullopt;
      case HttpParseResult::State::NeedMore:
        break;
    }
    if (closed_) {
      if (error_.empty()) {
        error_ = in_.empty() ? "connection closed before any response"
                             : "connection closed mid-response (" + std::to_string(in_.size()) + " bytes)";
      }
      return std::nullopt;
    }
    if (!fill(deadline) && !closed_) {
      error_ = "read_http_response " + timeout_text(timeout);
      return std::nullopt;
    }
  }
}

}  // namespace phigate::test
