#include "health_checker.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/read.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <charconv>
#include <optional>
#include <string_view>

#include "phigate/core/log.hpp"
#include "phigate/upstream/backend_tls.hpp"

namespace phigate::server::detail {

namespace {
/// Enough of a response for its status line; a probe never reads more.
constexpr std::size_t kMaxStatusLine = 1024;
}  // namespace

struct HealthChecker::Probe {
  Probe(net::asio::io_context& io, upstream::ProbeTarget target) : t(std::move(target)), timer(io) {}
  upstream::ProbeTarget t;
  net::asio::steady_timer timer;
  bool stopped = false;
};

HealthChecker::HealthChecker(metrics::ControlStats& stats) : stats_(stats) {}

HealthChecker::~HealthChecker() {
  stop();
}

void HealthChecker::start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    auto guard = net::asio::make_work_guard(io_);
    io_.run();
  });
}

void HealthChecker::update(std::vector<upstream::ProbeTarget> targets) {
  net::asio::post(io_, [this, t = std::move(targets)]() mutable { apply(std::move(t)); });
}

void HealthChecker::stop() {
  if (!started_) return;
  started_ = false;
  net::asio::post(io_, [this] {
    for (auto& [id, p] : probes_) {
      p->stopped = true;
      p->timer.cancel();
    }
    probes_.clear();
    io_.stop();
  });
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::apply(std::vector<upstream::ProbeTarget> targets) {
  std::map<std::string, std::shared_ptr<Probe>> next;
  std::vector<std::shared_ptr<Probe>> fresh;
  for (auto& t : targets) {
    if (auto it = probes_.find(t.id); it != probes_.end()) {
      next.emplace(t.id, std::move(it->second));
      probes_.erase(it);
      continue;
    }
    auto p = std::make_shared<Probe>(io_, std::move(t));
    fresh.push_back(p);
    next.emplace(p->t.id, std::move(p));
  }
  for (auto& [id, p] : probes_) {  // gone from the configuration
    p->stopped = true;
    p->timer.cancel();
  }
  probes_ = std::move(next);
  // New probes' first checks are spread evenly over their interval (from a random start), so a
  // reload that brings 5,000 endpoints does not probe them in one burst.
  const double start = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    const auto interval = fresh[i]->t.settings.interval;
    auto first = upstream::first_probe_offset(i, fresh.size(), interval);
    first = std::chrono::milliseconds((first.count() + static_cast<std::int64_t>(start * interval.count())) %
                                      std::max<std::int64_t>(1, interval.count()));
    net::asio::co_spawn(io_, run(fresh[i], first), net::asio::detached);
  }
  count_states();
  PHI_LOG_DEBUG("health: {} active checks ({} new)", probes_.size(), fresh.size());
}

void HealthChecker::count_states() {
  std::int64_t healthy = 0, unhealthy = 0;
  for (const auto& [id, p] : probes_) (p->t.state->ok() ? healthy : unhealthy) += 1;
  stats_.health_endpoints_healthy.store(healthy);
  stats_.health_endpoints_unhealthy.store(unhealthy);
}

net::awaitable<void> HealthChecker::run(std::shared_ptr<Probe> p, std::chrono::milliseconds first) {
  auto wait = first;
  for (;;) {
    p->timer.expires_after(wait);
    co_await p->timer.async_wait(net::use_awaitable_tuple);  // cancelled: `stopped` says why
    if (p->stopped) co_return;
    const bool passed = co_await check(p->t);
    if (p->stopped) co_return;
    stats_.health_probes.fetch_add(1, std::memory_order_relaxed);
    if (!passed) stats_.health_probe_failures.fetch_add(1, std::memory_order_relaxed);
    if (p->t.state->record(passed)) {
      // Endpoint ids only: an address is not PHI.
      PHI_LOG_WARN("health: {} is now {}",
                   p->t.address.address().to_string() + ":" + std::to_string(p->t.address.port()),
                   p->t.state->ok() ? "healthy" : "unhealthy");
      count_states();
    }
    wait = upstream::next_probe_delay(p->t.settings.interval,
                                      std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
  }
}

namespace {

/// The probe's connection: plain TCP, or TLS over it (OpenSSL on the non-blocking socket, waiting
/// through Asio, so the deadline's close ends whichever wait is pending).
struct ProbeIo {
  net::tcp::socket& sock;
  SSL* ssl = nullptr;  // null: plain

  net::awaitable<bool> write_all(std::string_view bytes) {
    if (ssl == nullptr) {
      auto [ec, n] = co_await net::asio::async_write(sock, net::asio::buffer(bytes.data(), bytes.size()),
                                                     net::use_awaitable_tuple);
      co_return !ec && n == bytes.size();
    }
    const auto io = co_await upstream::tls_write_all(sock, ssl, bytes);
    ERR_clear_error();  // an alert: the probe fails, nothing to report
    co_return !io.ec;
  }

  /// Some bytes into `buf`; 0 at end of stream or on any error (a probe only needs to know that
  /// it got no status line).
  net::awaitable<std::size_t> read_some(char* buf, std::size_t size) {
    if (ssl == nullptr) {
      auto [ec, n] = co_await sock.async_read_some(net::asio::buffer(buf, size), net::use_awaitable_tuple);
      co_return ec ? 0 : n;
    }
    const auto io = co_await upstream::tls_read_some(sock, ssl, buf, size);
    ERR_clear_error();
    co_return io.ec ? 0 : io.bytes;
  }
};

}  // namespace

net::awaitable<bool> HealthChecker::check(const upstream::ProbeTarget& t) {
  // Shared with the deadline's handler, which may run after this frame is gone.
  struct State {
    explicit State(net::asio::io_context& io) : sock(io), deadline(io) {}
    net::tcp::socket sock;
    net::asio::steady_timer deadline;
    bool timed_out = false;
  };
  auto st = std::make_shared<State>(io_);
  auto& sock = st->sock;
  // One deadline for connect, handshake, write and read: closing the socket ends whichever wait
  // is pending (the SSL below is only touched after a wait returned, on this thread).
  st->deadline.expires_after(t.settings.timeout);
  st->deadline.async_wait([st](const net::error_code& ec) {
    if (ec) return;
    st->timed_out = true;
    net::error_code ignored;
    st->sock.close(ignored);
  });
  const bool& timed_out = st->timed_out;
  auto addr = t.address;
  if (t.settings.port != 0) addr.port(t.settings.port);
  auto [cec] = co_await sock.async_connect(addr, net::use_awaitable_tuple);
  bool ok = !cec && !timed_out;
  upstream::SslPtr ssl;  // declared after st: freed (no I/O) before the socket closes
  if (ok && t.tls != nullptr) {
    // The same context, name check and client certificate as the workers' connections: a backend
    // whose certificate does not verify fails its check, so it is taken out before a request
    // would be refused on it. No session is offered: a probe every few seconds per endpoint does
    // not need resumption, and the workers' session caches stay theirs.
    ssl = t.tls->new_ssl();
    ok = ssl != nullptr && SSL_set_fd(ssl.get(), static_cast<int>(sock.native_handle())) == 1;
    if (ok) {
      const auto failure = co_await upstream::handshake(sock, ssl.get());
      ok = !failure && !timed_out;
      // The reason (unknown CA, name mismatch...) is what the workers' audit records say when a
      // request meets it; the checker logs only the change of state.
    }
    ERR_clear_error();
  }
  if (ok && !t.tcp_only) {
    ProbeIo io{sock, ssl.get()};
    std::string host = t.settings.host;
    if (host.empty()) {
      host = addr.address().is_v6() ? "[" + addr.address().to_string() + "]" : addr.address().to_string();
      host += ":" + std::to_string(addr.port());
    }
    const std::string req = "GET " + t.settings.path + " HTTP/1.1\r\nHost: " + host +
                            "\r\nUser-Agent: phigate-health-check\r\nConnection: close\r\n\r\n";
    ok = co_await io.write_all(req) && !timed_out;
    std::string buf;
    while (ok && buf.find("\r\n") == std::string::npos && buf.size() < kMaxStatusLine) {
      char chunk[512];
      const auto n = co_await io.read_some(chunk, sizeof chunk);
      if (n == 0 || timed_out) {
        ok = false;
        break;
      }
      buf.append(chunk, n);
    }
    // "HTTP/1.x NNN ...": anything else (a backend that is not speaking HTTP) fails the check.
    int status = 0;
    if (ok && buf.size() >= 12 && buf.compare(0, 7, "HTTP/1.") == 0 && buf[8] == ' ') {
      auto [ptr, ec] = std::from_chars(buf.data() + 9, buf.data() + 12, status);
      if (ec != std::errc{} || ptr != buf.data() + 12) status = 0;
    }
    ok = ok && status >= t.settings.status_min && status <= t.settings.status_max;
  }
  st->deadline.cancel();
  ssl.reset();  // no close_notify: the connection is dropped either way (SslFree)
  net::error_code ignored;
  sock.close(ignored);
  co_return ok;
}

}  // namespace phigate::server::detail
