#include "phigate/upstream/pool.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace phigate::upstream {

namespace {
enum class Peek { Silent, Eof, Data };
/// An idle keep-alive connection must have nothing to read: EOF means the upstream closed it
/// (its own keepalive_timeout), and bytes would be an unsolicited response. One MSG_PEEK.
Peek peek(net::tcp::socket& s) {
  char c = 0;
  const auto n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return Peek::Data;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Peek::Silent;
  return Peek::Eof;
}
}  // namespace

void Pool::close_idle(Idle& idle, bool check) {
  if (check && unsolicited_ != nullptr && peek(idle.conn.socket) == Peek::Data) unsolicited_->inc();
  net::error_code ec;
  idle.conn.socket.close(ec);
}

std::optional<Connection> Pool::acquire(std::string_view key, Clock::time_point now) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return std::nullopt;
  auto& q = it->second;
  while (!q.empty()) {
    Idle idle = std::move(q.back());
    q.pop_back();
    --idle_total_;
    net::error_code ec;
    if (idle.watched) idle.conn.socket.cancel(ec);  // its handler sees operation_aborted
    if (now - idle.since >= limits_.idle_timeout) {
      close_idle(idle, false);
      continue;
    }
    // Checked on every reuse, watched or not: a watch's completion may be queued behind the
    // request taking the connection now, and a hot connection has no watch yet. Bytes in the
    // socket now were never asked for; EOF means the upstream closed it.
    if (const auto p = peek(idle.conn.socket); p != Peek::Silent) {
      if (p == Peek::Data && unsolicited_ != nullptr) unsolicited_->inc();
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
  if (it == idle_.end()) it = idle_.emplace(std::string(key), Queue{}).first;
  auto& q = it->second;
  if (q.size() >= limits_.idle_per_endpoint) {
    close_idle(q.front(), false);  // the least recently used goes (a watch on it is aborted)
    q.pop_front();
    --idle_total_;
  }
  q.push_back({std::move(conn), now, ++next_id_, false});
  ++idle_total_;
}

void Pool::watch_idle(Clock::time_point now) {
  for (auto& [key, q] : idle_) {
    // Oldest first (the back is reused first): the unwatched old enough are a run at the front
    // after the watched ones.
    for (auto& idle : q) {
      if (now - idle.since < kWatchAfter) break;
      if (idle.watched) continue;
      idle.watched = true;
      // Asio re-arms the descriptor for a non-speculative wait (EPOLL_CTL_MOD), so bytes or EOF
      // that arrived before the wait are reported too.
      idle.conn.socket.async_wait(net::tcp::socket::wait_read,
                                  [alive = std::weak_ptr<Pool*>(alive_), queue = &q, epoch = epoch_,
                                   id = idle.id](const net::error_code& e) {
                                    if (e == net::asio::error::operation_aborted)
                                      return;  // taken, evicted or closed
                                    const auto self = alive.lock();
                                    if (!self || (*self)->epoch_ != epoch) return;
                                    (*self)->on_readable(*queue, id);
                                  });
    }
  }
}

void Pool::on_readable(Queue& q, std::uint64_t id) {
  const auto it = std::find_if(q.begin(), q.end(), [id](const Idle& i) { return i.id == id; });
  if (it == q.end()) return;  // taken before this completion ran: acquire's peek decided
  close_idle(*it, true);
  q.erase(it);
  --idle_total_;
}

void Pool::sweep(Clock::time_point now) {
  for (auto& [key, q] : idle_) {
    // Oldest first: stop at the first one still young enough.
    while (!q.empty() && now - q.front().since >= limits_.idle_timeout) {
      close_idle(q.front(), false);
      q.pop_front();
      --idle_total_;
    }
  }
}

void Pool::clear() {
  for (auto& [key, q] : idle_) {
    for (auto& i : q) close_idle(i, false);
  }
  idle_.clear();
  idle_total_ = 0;
  ++epoch_;  // watches still queued point into the queues just freed
}

}  // namespace phigate::upstream
