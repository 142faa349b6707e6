// TLS passthrough (ssl-passthrough under listeners.tls_passthrough; docs/annotations.md): on an
// HTTPS listener whose snapshot has passthrough hosts, the ClientHello is read before the
// handshake (net::client_hello decides; at most kMaxPeekBytes, within timeouts.tls_handshake).
// A name that is not a passthrough host, no name, or bytes that are not a ClientHello: the bytes
// go to the TLS stream unchanged (tls::Stream::preload) and the handshake runs as always (and
// fails on its own for garbage). A passthrough host: the source ranges are checked (global and
// the Ingress's), a ready endpoint of the host's backend is picked and connected, the ClientHello
// is written to it first, then both directions are spliced byte for byte without being parsed.
//
// Splice: two coroutines, one fixed buffer each (memory does not grow with traffic). An EOF in
// one direction is passed on as a half-close (shutdown(SHUT_WR) of the other side): TLS 1.2/1.3
// peers may close their write side first. An error ends both. The connection's one coarse
// deadline covers the connect (timeouts.upstream_connect), then idleness: no byte in either
// direction for timeouts.upstream_read ends it, as does the drain deadline.
//
// Audit: a "passthrough-start" record when the splice starts, one "passthrough" record when the
// connection ends (bytes each way, duration, what ended it) or is refused (source range, no
// endpoint, connect failure); a client that stalls or closes before a whole ClientHello gets the
// same tls-handshake failure record as a handshake that fails.
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "phigate/core/log.hpp"
#include "phigate/net/client_hello.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/health.hpp"
#include "proxy_connection.hpp"

namespace phigate::proxy::detail {

using TunnelClose = metrics::WorkerShard::TunnelClose;
using PassthroughResult = metrics::WorkerShard::PassthroughResult;

struct PassthroughState {
  explicit PassthroughState(net::asio::io_context& io) : up(io) {}
  net::tcp::socket up;
  bool connecting = true;         // the deadline is the connect timeout
  bool to_upstream_done = false;  // client EOF passed on as a half-close
  bool to_client_done = false;    // upstream EOF passed on as a half-close
  Clock::time_point last_byte{};  // either direction (worker's coarse clock)
  std::chrono::milliseconds idle{};
  std::uint64_t to_upstream = 0;
  std::uint64_t to_client = 0;
  std::optional<TunnelClose> closed;
};

net::awaitable<bool> ProxyConnection::passthrough_or_terminate() {
  namespace ch = net::client_hello;
  arm(Phase::Handshake, snap_->config->timeouts.tls_handshake);
  auto buf = std::make_unique_for_overwrite<unsigned char[]>(ch::kMaxPeekBytes);
  std::size_t have = 0;
  ch::Result r;
  for (;;) {
    auto [ec, n] = co_await stream_.socket().async_read_some(
        net::asio::buffer(buf.get() + have, ch::kMaxPeekBytes - have), net::use_awaitable_tuple);
    if (ec || n == 0) {
      // Nothing to hand to TLS: the client stalled (timeouts.tls_handshake) or left first.
      worker_.stats().tls_handshake_failures.inc();
      const std::string_view why =
          timed_out_ ? "timeout before a whole ClientHello" : "closed before a whole ClientHello";
      PHI_LOG_DEBUG("[w{} c{}] TLS handshake failed: {}", worker_.id(), id_, why);
      audit_connection_failure("tls-handshake", timed_out_ ? "client_timeout" : "tls_handshake", why);
      co_return true;
    }
    have += n;
    r = ch::parse(buf.get(), have);
    if (r.status != ch::Status::NeedMore || have == ch::kMaxPeekBytes) break;
  }
  // Decided on the configuration current now that the hello is whole, not the one of the accept
  // (up to timeouts.tls_handshake earlier): a reload that removed the host or narrowed its ranges
  // applies. The passthrough path reads only req_snap_ from here on.
  req_snap_ = worker_.snapshot();
  const auto& table = req_snap_->passthrough;
  const auto it =
      r.status == ch::Status::Done && !r.server_name.empty() ? table.find(r.server_name) : table.end();
  if (it == table.end()) {
    // Terminated here: OpenSSL reads the same bytes first (and refuses them if they are not TLS).
    stream_.preload(buf.get(), have);
    co_return false;
  }
  co_await passthrough(it->second, r.server_name,
                       std::string_view(reinterpret_cast<const char*>(buf.get()), have));
  co_return true;
}

net::awaitable<void> ProxyConnection::passthrough(const Snapshot::Passthrough& target,
                                                  std::string_view server_name, std::string_view hello) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto& stats = worker_.stats();
  const auto& timeouts = req_snap_->config->timeouts;
  PassthroughFacts pf;
  pf.server_name = server_name;
  pf.ingress = target.ingress;
  const auto refuse = [&](PassthroughResult result, std::string_view decision, std::string_view reason) {
    stats.passthrough[static_cast<std::size_t>(result)].inc();
    PHI_LOG_DEBUG("[w{} c{}] passthrough refused: {}", worker_.id(), id_, reason);
    if (!worker_.audit_on()) return;
    pf.end = true;
    pf.decision = decision;
    pf.reason = reason;
    worker_.audit_submit(
        render_passthrough(worker_.audit_json(), connection_facts({}), std::chrono::system_clock::now(), pf));
  };
  // Nothing is spliced that cannot be audited: as the audit-healthy phase does for requests.
  if (worker_.audit_on() && !worker_.audit_healthy() && !req_snap_->config->audit.block_on_overflow) {
    refuse(PassthroughResult::AuditUnavailable, "error", "audit_unavailable");
    co_return;
  }
  // Source ranges: `access:` of the config, then the Ingress's (whitelist-source-range…), on the
  // client address (the PROXY header's when the listener has one). Unknown address: refused. A
  // peer in trusted_proxies without a PROXY header is a proxy standing for many clients (there is
  // no X-Forwarded-For in an undecrypted connection): refused whenever a source range applies.
  // Whether a PROXY header was read is the accept-time configuration's (snap_).
  const bool known =
      target.cluster < req_snap_->route_access.size() && target.cluster < req_snap_->clusters.size();
  const auto* acl = known ? req_snap_->route_access[target.cluster].get() : nullptr;
  const bool ranges = !req_snap_->global_access.allow.empty() || !req_snap_->global_access.deny.empty() ||
                      (acl != nullptr && (!acl->allow.empty() || !acl->deny.empty()));
  const bool proxy_peer = peer_addr_ && !snap_->config->listeners.proxy_protocol &&
                          req_snap_->trusted_proxies.contains(*peer_addr_);
  if (!known || !peer_addr_ || !req_snap_->global_access.admits(*peer_addr_) ||
      (acl != nullptr && !acl->admits(*peer_addr_)) || (ranges && proxy_peer)) {
    refuse(PassthroughResult::Denied, "denied", "access_denied");
    co_return;
  }
  const auto& cluster = req_snap_->clusters[target.cluster];
  auto& balancer = worker_.balancer(target.cluster);
  upstream::PickInput in;
  in.now = worker_.now();
  const auto pick = upstream::pick(cluster, balancer, in);
  if (pick.index == upstream::kNoEndpoint || pick.index >= cluster.endpoints.size()) {
    refuse(PassthroughResult::NoEndpoint, "error", "no_endpoint");
    co_return;
  }
  const auto& ep = cluster.endpoints[pick.index];
  pf.upstream = ep.key;

  PassthroughState s(worker_.io());
  passthrough_ = &s;
  arm(Phase::UpConnect, timeouts.upstream_connect);
  upstream::attempt_started(balancer, pick.index);
  const auto connect_started = Clock::now();
  auto [cec] = co_await s.up.async_connect(ep.address, net::use_awaitable_tuple);
  if (!cec) {
    net::error_code ignored;
    s.up.set_option(net::tcp::no_delay(true), ignored);
    auto [wec, wn] = co_await net::asio::async_write(s.up, net::asio::buffer(hello.data(), hello.size()),
                                                     net::use_awaitable_tuple);
    cec = wec;
    s.to_upstream = wn;
  }
  upstream::attempt_ended(balancer, pick.index, Clock::now() - connect_started, !cec);
  upstream::report_attempt(cluster, pick.index,
                           cec ? upstream::AttemptResult::ConnectFailure : upstream::AttemptResult::Success,
                           worker_.now());
  if (cec) {
    passthrough_ = nullptr;
    disarm();
    refuse(PassthroughResult::ConnectFailed, "error",
           timed_out_ ? "upstream_connect_timeout" : "upstream_connect");
    co_return;
  }

  // The start record first: a splice whose record the writer refused does not begin.
  if (worker_.audit_on() &&
      !worker_.audit_submit(render_passthrough(worker_.audit_json(), connection_facts({}),
                                               std::chrono::system_clock::now(), pf))) {
    passthrough_ = nullptr;
    disarm();
    net::error_code ignored;
    s.up.close(ignored);
    refuse(PassthroughResult::AuditUnavailable, "error", "audit_unavailable");
    co_return;
  }
  stats.passthrough[static_cast<std::size_t>(PassthroughResult::Spliced)].inc();
  stats.passthrough_bytes_to_upstream.inc(s.to_upstream);
  const auto started = Clock::now();
  s.connecting = false;
  s.idle = timeouts.upstream_read;
  s.last_byte = worker_.now();
  deadline = s.last_byte + s.idle;
  co_await (passthrough_pump(s, true) && passthrough_pump(s, false));
  passthrough_ = nullptr;
  disarm();
  net::error_code ignored;
  s.up.close(ignored);
  const auto why = s.closed.value_or(TunnelClose::Client);
  PHI_LOG_DEBUG("[w{} c{}] passthrough closed: {}", worker_.id(), id_,
                metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)]);
  if (worker_.audit_on()) {
    pf.end = true;
    pf.to_upstream = s.to_upstream;
    pf.to_client = s.to_client;
    pf.duration = Clock::now() - started;
    pf.closed_by = metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)];
    worker_.audit_submit(
        render_passthrough(worker_.audit_json(), connection_facts({}), std::chrono::system_clock::now(), pf));
  }
}

net::awaitable<void> ProxyConnection::passthrough_pump(PassthroughState& s, bool to_upstream) {
  auto& stats = worker_.stats();
  auto& from = to_upstream ? stream_.socket() : s.up;
  auto& to = to_upstream ? s.up : stream_.socket();
  net::Buffer buf{kBufferBytes};
  for (;;) {
    auto [rec, n] = co_await from.async_read_some(net::asio::buffer(buf.space(), buf.space_size()),
                                                  net::use_awaitable_tuple);
    if (s.closed) co_return;
    if (rec == net::asio::error::eof || (!rec && n == 0)) {
      // Half-close: the other side may still be sending (a TLS peer may close its write side first).
      ::shutdown(to.native_handle(), SHUT_WR);
      (to_upstream ? s.to_upstream_done : s.to_client_done) = true;
      if (s.to_upstream_done && s.to_client_done) {
        end_passthrough(s, to_upstream ? TunnelClose::Client : TunnelClose::Upstream);
      }
      co_return;
    }
    if (rec) {
      end_passthrough(s, to_upstream ? TunnelClose::ClientError : TunnelClose::UpstreamError);
      co_return;
    }
    s.last_byte = worker_.now();
    auto [wec, wn] =
        co_await net::asio::async_write(to, net::asio::buffer(buf.space(), n), net::use_awaitable_tuple);
    if (s.closed) co_return;
    if (wec) {
      end_passthrough(s, to_upstream ? TunnelClose::UpstreamError : TunnelClose::ClientError);
      co_return;
    }
    s.last_byte = worker_.now();
    if (to_upstream) {
      s.to_upstream += wn;
      stats.passthrough_bytes_to_upstream.inc(wn);
    } else {
      s.to_client += wn;
      stats.passthrough_bytes_to_client.inc(wn);
    }
  }
}

void ProxyConnection::end_passthrough(PassthroughState& s, TunnelClose why) noexcept {
  if (s.closed) return;
  s.closed = why;
  cancel_socket(stream_.socket());  // shutdown + cancel: the pending read or write returns now
  cancel_socket(s.up);
}

void ProxyConnection::expire_passthrough() {
  auto& s = *passthrough_;
  const auto now = worker_.now();
  if (s.connecting) {
    timed_out_ = true;
    net::error_code ec;
    s.up.cancel(ec);  // the connect (or the ClientHello's write) returns now
    disarm();
    return;
  }
  if (now < deadline) {
    // The tick expires every connection once the drain deadline passed, whatever its own.
    end_passthrough(s, TunnelClose::Drain);
    return;
  }
  if (now - s.last_byte >= s.idle) {
    end_passthrough(s, TunnelClose::Idle);
    return;
  }
  deadline = s.last_byte + s.idle;  // bytes moved since it was armed: not idle yet
}

}  // namespace phigate::proxy::detail
