#include "phigate/upstream/pool.hpp"

#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

namespace phigate::upstream {

namespace {
enum class Peek { Silent, Eof, Data };
/// An idle keep-alive connection must have nothing to read: EOF means the upstream closed it
/// (its own keepalive_timeout), and bytes would be an unsolicited response. One MSG_PEEK.
Peek peek_socket(net::tcp::socket& s) {
  char c = 0;
  const auto n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return Peek::Data;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Peek::Silent;
  return Peek::Eof;
}

/// peek_socket for a TLS connection: readable bytes may be records without application data
/// (TLS 1.3 NewSessionTicket or KeyUpdate, RFC 8446 §4.6), which a backend may send at any
/// time. They are read through OpenSSL (non-blocking; the descriptor is) until the socket is
/// silent again; any application byte is Data (unsolicited), close_notify or an error is Eof.
/// Bounded: a backend streaming records keeps nothing pooled.
Peek peek(Connection& c) {
  if (!c.ssl) return peek_socket(c.socket);
  for (int round = 0; round < 8; ++round) {
    if (SSL_has_pending(c.ssl.get()) == 0) {
      const auto p = peek_socket(c.socket);
      if (p != Peek::Data) return p;
    }
    char buf[64];
    std::size_t n = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(c.ssl.get(), buf, sizeof buf, &n);
    if (r == 1) return Peek::Data;
    const int err = SSL_get_error(c.ssl.get(), r);
    ERR_clear_error();
    if (err != SSL_ERROR_WANT_READ) return Peek::Eof;
  }
  return Peek::Data;
}
}  // namespace

void Pool::pool_key(std::string& out, std::string_view endpoint_key, const BackendTls* tls) {
  out.assign(endpoint_key);
  if (tls != nullptr) {
    // '|' never occurs in "ip:port": a TLS key can never equal a plain one.
    out += '|';
    out += tls->identity();
  }
}

void Pool::close_idle(Idle& idle, bool check) {
  if (check && unsolicited_ != nullptr && peek(idle.conn) == Peek::Data) unsolicited_->inc();
  net::error_code ec;
  idle.conn.ssl.reset();
  idle.conn.socket.close(ec);
}

SSL_SESSION* Pool::session(std::string_view key) const {
  const auto it = sessions_.find(key);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Pool::store_session(std::string_view key, SSL* ssl) {
  SessionPtr s(SSL_get1_session(ssl));
  if (!s || SSL_SESSION_is_resumable(s.get()) != 1) return;
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    it->second = std::move(s);
    return;
  }
  // Endpoints come and go (pods): a full cache starts over rather than growing without bound.
  if (sessions_.size() >= kMaxSessions) sessions_.clear();
  sessions_.emplace(std::string(key), std::move(s));
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
    // socket now were never asked for; EOF means the upstream closed it. A recent batched check
    // that found it silent after its release vouches for it without a system call.
    if (vouched(idle, Clock::now()) || check_batch(idle, q)) {
      idle.conn.reused = true;
      return std::move(idle.conn);
    }
    if (const auto p = peek(idle.conn); p != Peek::Silent) {
      if (p == Peek::Data && unsolicited_ != nullptr) unsolicited_->inc();
      idle.conn.ssl.reset();
      idle.conn.socket.close(ec);
      continue;
    }
    idle.conn.reused = true;
    return std::move(idle.conn);
  }
  return std::nullopt;
}

bool Pool::vouched(const Idle& idle, Clock::time_point now) const noexcept {
  return idle.checked != Clock::time_point{} && now - idle.checked <= limits_.check_window;
}

bool Pool::check_batch(Idle& candidate, std::deque<Idle>& q) {
  // The candidate first, then the most recently released (taken next) not vouched for. poll()
  // reports data, EOF and errors alike: whatever it reports is decided by peek() when that entry
  // is taken (a TLS record may leave it usable). The time is taken before the call: what poll()
  // saw is at least that recent.
  const auto at = Clock::now();
  std::array<pollfd, kCheckBatch> fds{};
  std::array<Idle*, kCheckBatch> who{};
  std::size_t n = 0;
  const auto add = [&](Idle& i) {
    fds[n] = {i.conn.socket.native_handle(), POLLIN, 0};
    who[n++] = &i;
  };
  add(candidate);
  if (limits_.check_window.count() > 0) {
    for (auto it = q.rbegin(); it != q.rend() && n < kCheckBatch; ++it) {
      if (!vouched(*it, at)) add(*it);
    }
  }
  const int r = ::poll(fds.data(), n, 0);
  ++check_round_;
  if (r < 0) return false;  // peek() decides the candidate; the others stay as they were
  for (std::size_t i = 0; i < n; ++i) {
    // A closed descriptor (-1) is ignored by poll(): never silent. SSL_has_pending: OpenSSL may
    // hold a record the socket no longer shows (peek() drains TLS records): not silent either.
    const auto& c = who[i]->conn;
    const bool silent =
        fds[i].revents == 0 && fds[i].fd >= 0 && (!c.ssl || SSL_has_pending(c.ssl.get()) == 0);
    who[i]->checked = silent ? at : Clock::time_point{};
  }
  return candidate.checked == at;
}

void Pool::release(std::string_view key, Connection conn, Clock::time_point now) {
  net::error_code ec;
  if (limits_.idle_per_endpoint == 0 || conn.requests >= limits_.max_requests) {
    conn.ssl.reset();
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
      idle.conn.socket.async_wait(
          net::tcp::socket::wait_read,
          [alive = std::weak_ptr<Pool*>(alive_), key = key, id = idle.id](const net::error_code& e) {
            if (e == net::asio::error::operation_aborted) return;  // taken, evicted or closed
            if (const auto self = alive.lock()) (*self)->on_readable(key, id);
          });
    }
  }
}

void Pool::on_readable(std::string_view key, std::uint64_t id) {
  // The queue may be gone (swept empty, cleared) and the entry taken: look both up again.
  const auto qit = idle_.find(key);
  if (qit == idle_.end()) return;
  auto& q = qit->second;
  const auto it = std::find_if(q.begin(), q.end(), [id](const Idle& i) { return i.id == id; });
  if (it == q.end()) return;  // taken before this completion ran: acquire's peek decided
  if (it->conn.ssl) {
    // TLS: the readable bytes may be a session ticket or KeyUpdate. Drained and silent again, it
    // stays, and the next tick watches it again.
    const auto p = peek(it->conn);
    if (p == Peek::Silent) {
      it->watched = false;
      return;
    }
    if (p == Peek::Data && unsolicited_ != nullptr) unsolicited_->inc();
    close_idle(*it, false);
    q.erase(it);
    --idle_total_;
    return;
  }
  close_idle(*it, true);
  q.erase(it);
  --idle_total_;
}

void Pool::sweep(Clock::time_point now) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& q = it->second;
    // Oldest first: stop at the first one still young enough.
    while (!q.empty() && now - q.front().since >= limits_.idle_timeout) {
      close_idle(q.front(), false);
      q.pop_front();
      --idle_total_;
    }
    // Endpoints come and go (pods): an empty queue is dropped, so the map stays bounded.
    it = q.empty() ? idle_.erase(it) : std::next(it);
  }
}

void Pool::clear() {
  for (auto& [key, q] : idle_) {
    for (auto& i : q) close_idle(i, false);
  }
  idle_.clear();
  idle_total_ = 0;
  sessions_.clear();
}

}  // namespace phigate::upstream
