#include "phigate/upstream/pool.hpp"

#include <sys/socket.h>

namespace phigate::upstream {

namespace {
constexpr auto kPeekAfter = std::chrono::seconds(1);
/// An idle keep-alive connection must have nothing to read: EOF means the upstream closed it
/// (its own keepalive_timeout), and bytes would be an unsolicited response. One MSG_PEEK.
bool still_idle(net::tcp::socket& s) {
  char c = 0;
  const auto n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

std::optional<Connection> Pool::acquire(std::string_view key, Clock::time_point now) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return std::nullopt;
  auto& q = it->second;
  while (!q.empty()) {
    Idle idle = std::move(q.back());
    q.pop_back();
    --idle_total_;
    // The peek costs a syscall: only for connections idle long enough for the upstream's own
    // keep-alive timeout to matter. A hot connection closed under us is caught by the proxy's
    // retry-once for requests without a body.
    const bool check = now - idle.since >= kPeekAfter;
    if (now - idle.since >= limits_.idle_timeout || (check && !still_idle(idle.conn.socket))) {
      net::error_code ec;
      idle.conn.socket.close(ec);
      continue;
    }
    idle.conn.reused = true;
    return std::move(idle.conn);
  }
  return std::nullopt;
}

void Pool::release(std::string_view key, Connection conn, Clock::time_point now) {
  net::error_code ec;
  if (limits_.idle_per_endpoint == 0 || conn.requests >= limits_.max_requests) {
    conn.socket.close(ec);
    return;
  }
  auto it = idle_.find(key);
  if (it == idle_.end()) it = idle_.emplace(std::string(key), std::deque<Idle>{}).first;
  auto& q = it->second;
  if (q.size() >= limits_.idle_per_endpoint) {
    q.front().conn.socket.close(ec);  // the least recently used goes
    q.pop_front();
    --idle_total_;
  }
  q.push_back({std::move(conn), now});
  ++idle_total_;
}

void Pool::sweep(Clock::time_point now) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& q = it->second;
    // Oldest first: stop at the first one still young enough.
    while (!q.empty() && now - q.front().since >= limits_.idle_timeout) {
      net::error_code ec;
      q.front().conn.socket.close(ec);
      q.pop_front();
      --idle_total_;
    }
    it = q.empty() ? idle_.erase(it) : std::next(it);
  }
}

void Pool::clear() {
  for (auto& [key, q] : idle_) {
    for (auto& i : q) {
      net::error_code ec;
      i.conn.socket.close(ec);
    }
  }
  idle_.clear();
  idle_total_ = 0;
}

}  // namespace phigate::upstream
