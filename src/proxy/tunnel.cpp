// WebSocket and other upgrades: the byte-for-byte splice after a 101 (ProxyConnection::tunnel).
//
// The codec decided everything HTTP (which upgrades are allowed, that the 101 names the protocol
// asked for); from here no byte is parsed. Two coroutines, one per direction, each reading one
// side into its fixed buffer and writing it to the other (memory does not grow with traffic);
// the first to end — EOF, error, idle timeout, drain deadline — ends both (no half-close is
// forwarded: WebSocket closes in-band, RFC 6455 §7, before either TCP side closes).
//
// Deadlines: the connection keeps its one coarse deadline (checked by the worker tick). Each
// direction only notes when its last byte went through; the deadline sits at the earlier of
// "client → upstream idle for t.send" and "upstream → client idle for t.read" (ingress-nginx's
// proxy-send-timeout / proxy-read-timeout), and expire_tunnel() re-arms it when neither is idle.
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "phigate/core/log.hpp"
#include "proxy_connection.hpp"

namespace phigate::proxy::detail {

using TunnelClose = metrics::WorkerShard::TunnelClose;

/// One splice's state, in tunnel()'s frame; the connection points at it while it runs. It is the
/// link's Deadline too: the tunnel arms the connection's deadline itself, never per wait.
struct TunnelState final : upstream::Deadline {
  std::chrono::milliseconds send_idle{};  // client -> upstream (proxy-send-timeout)
  std::chrono::milliseconds read_idle{};  // upstream -> client (proxy-read-timeout)
  Clock::time_point to_upstream_at{};     // last byte client -> upstream (worker's coarse clock)
  Clock::time_point to_client_at{};       // last byte upstream -> client
  std::uint64_t to_upstream = 0;
  std::uint64_t to_client = 0;
  std::optional<TunnelClose> closed;
  bool writing_client = false;  // a TLS record may be half written: no close_notify in between
  bool timed_out = false;

  void arm_upstream(Wait, std::chrono::milliseconds) noexcept override {}
  bool upstream_timed_out() const noexcept override { return timed_out; }
  Clock::time_point next_deadline() const noexcept {
    return std::min(to_upstream_at + send_idle, to_client_at + read_idle);
  }
};

net::awaitable<bool> ProxyConnection::tunnel(InFlight& f, const upstream::Timeouts& t) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto& stats = worker_.stats();
  TunnelState s;
  s.send_idle = t.send;
  s.read_idle = t.read;
  s.to_upstream_at = s.to_client_at = worker_.now();
  const auto started = Clock::now();
  const std::string_view protocol = ex_.upgrade_protocol();
  stats.tunnels_opened.inc();
  stats.tunnels_open.add(1);
  if (worker_.audit_on()) {
    worker_.audit_submit(render_tunnel_start(
        worker_.audit_json(), connection_facts(f.req ? std::string_view(f.req->client_ip) : ""),
        std::chrono::system_clock::now(), f.request_id, protocol, f.facts.route, f.facts.upstream));
  }
  tunnel_ = &s;
  deadline = s.next_deadline();
  // The snapshot stays pinned (req_snap_, snap_) for as long as the tunnel lives: a reload
  // changes nothing here. Both directions run until both returned; the first to end closes both.
  co_await (tunnel_to_upstream(s, t) && tunnel_to_client(s, t));
  tunnel_ = nullptr;
  disarm();
  const auto why = s.closed.value_or(TunnelClose::Client);
  stats.tunnels_open.add(-1);
  stats.tunnels_closed[static_cast<std::size_t>(why)].inc();
  PHI_LOG_DEBUG("[w{} c{}] tunnel closed: {}", worker_.id(), id_,
                metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)]);
  auto& rf = f.facts;
  rf.tunnel_protocol = protocol;  // ex_ keeps it until next_request(), after finish_request
  rf.tunnel_to_upstream = s.to_upstream;
  rf.tunnel_to_client = s.to_client;
  rf.tunnel_duration = Clock::now() - started;
  rf.tunnel_closed_by = metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)];
  co_return false;  // a tunnel ends the connection
}

net::awaitable<void> ProxyConnection::tunnel_to_upstream(TunnelState& s, const upstream::Timeouts& t) {
  auto& stats = worker_.stats();
  for (;;) {
    // First what the client sent after its request head without waiting for the 101.
    if (!in_.empty()) {
      const std::size_t n = in_.size();
      auto [ec, written] = co_await link_.send(std::string_view(in_.data(), n), t, s);
      if (s.closed) co_return;
      if (ec) {
        end_tunnel(s, TunnelClose::UpstreamError);
        co_return;
      }
      in_.consume(n);
      s.to_upstream += n;
      stats.tunnel_bytes_to_upstream.inc(n);
      s.to_upstream_at = worker_.now();
    }
    if (s.closed) co_return;
    auto [ec, n] = co_await stream_.read_some(in_.space(), in_.space_size());
    if (s.closed) co_return;  // the other direction or the deadline ended it (this read was cancelled)
    if (ec || n == 0) {
      const bool eof = ec == net::asio::error::eof || (!ec && n == 0);
      end_tunnel(s, eof ? TunnelClose::Client : TunnelClose::ClientError);
      co_return;
    }
    in_.commit(n);
    s.to_upstream_at = worker_.now();
  }
}

net::awaitable<void> ProxyConnection::tunnel_to_client(TunnelState& s, const upstream::Timeouts& t) {
  auto& stats = worker_.stats();
  auto& in = link_.input();
  for (;;) {
    // First the bytes that came in the same read as the 101 head (the codec left them).
    if (!in.empty()) {
      const std::size_t n = in.size();
      s.writing_client = true;
      const auto ec = co_await stream_.write_all(in.data(), n);
      s.writing_client = false;
      if (s.closed) co_return;
      if (ec) {
        end_tunnel(s, TunnelClose::ClientError);
        co_return;
      }
      in.consume(n);
      s.to_client += n;
      stats.tunnel_bytes_to_client.inc(n);
      s.to_client_at = worker_.now();
    }
    if (s.closed) co_return;
    core::Error err;
    auto [ec, n] = co_await link_.read(t, s);
    if (s.closed) co_return;
    const auto rs = link_.received(ec, n, s, err);
    if (rs == upstream::Link::ReadStatus::Eof) {
      end_tunnel(s, TunnelClose::Upstream);
      co_return;
    }
    if (rs == upstream::Link::ReadStatus::Error) {
      end_tunnel(s, TunnelClose::UpstreamError);
      co_return;
    }
    s.to_client_at = worker_.now();
  }
}

void ProxyConnection::end_tunnel(TunnelState& s, TunnelClose why) noexcept {
  if (s.closed) return;
  s.closed = why;
  // TLS: close_notify first (best effort), so the client sees a clean end of the stream — unless
  // a record is half written, which an alert must not interleave with.
  if (!s.writing_client) stream_.shutdown_nowait();
  cancel_socket(stream_.socket());  // shutdown + cancel: the pending read or write returns now
  link_.cancel();
}

void ProxyConnection::expire_tunnel() {
  auto& s = *tunnel_;
  const auto now = worker_.now();
  if (now < deadline) {
    // The tick expires every connection once the drain deadline passed, whatever its own.
    s.timed_out = true;
    end_tunnel(s, TunnelClose::Drain);
    return;
  }
  if (now - s.to_upstream_at >= s.send_idle || now - s.to_client_at >= s.read_idle) {
    s.timed_out = true;
    end_tunnel(s, TunnelClose::Idle);
    return;
  }
  deadline = s.next_deadline();  // bytes moved since it was armed: not idle yet
}

}  // namespace phigate::proxy::detail
