#include "proxy_connection.hpp"

#include <sys/socket.h>

#include "auth_external.hpp"
#include "balance_input.hpp"
#include "basic_auth.hpp"
#include "error_backend.hpp"
#include "error_page.hpp"
#include "h2_connection.hpp"
#include "phigate/core/log.hpp"
#include "phigate/http/forwarding.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/net/proxy_protocol.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/health.hpp"
#include "upstream_attempt.hpp"
#include "upstream_head.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;
using core::Retryable;

inline constexpr std::size_t kFlushBytes = 16 * 1024;

http::ParserLimits parser_limits(const config::LimitsSpec& l) {
  return {l.request_line_bytes, l.request_header_bytes, l.header_count};
}

ProxyConnection::ProxyConnection(WorkerImpl& worker, SnapshotPtr snap, net::tcp::socket sock, bool tls)
    : ConnectionCore(worker, std::move(snap)),
      stream_(std::move(sock), tls ? snap_->tls->initial() : nullptr),
      tls_(tls),
      ex_([this] {
        http::ExchangeOptions o{parser_limits(snap_->config->limits)};
        o.upgrades = snap_->config->upstream.upgrades;  // snap_ is pinned for the connection's life
        return o;
      }()),
      link_(worker.io(), worker.pool(), worker.stats()) {
  net::error_code ec;
  peer_ = stream_.socket().remote_endpoint(ec);
  local_port_ = stream_.socket().local_endpoint(ec).port();
  const auto addr = peer_.address();
  peer_ip_ = addr.is_v6() && addr.to_v6().is_v4_mapped()
                 ? net::asio::ip::make_address_v4(net::asio::ip::v4_mapped, addr.to_v6()).to_string()
                 : addr.to_string();
  socket_ip_ = peer_ip_;
  peer_addr_ = access::parse_address(peer_ip_);
  peer_port_ = peer_.port();
  if (tls_) extra_fields_ = snap_->hsts_field;
}

net::awaitable<void> ProxyConnection::run(std::shared_ptr<ProxyConnection> self) {
  co_await self->serve();
  if (self->h2_) co_await serve_h2(self);
  self->close();
}

void ProxyConnection::expire() {
  if (h2_conn_ != nullptr) {
    h2_expire(*h2_conn_);  // per-stream deadlines (h2_connection.cpp)
    return;
  }
  if (tunnel_ != nullptr) {
    expire_tunnel();  // per-direction idle timeouts and the drain deadline (tunnel.cpp)
    return;
  }
  if (passthrough_ != nullptr) {
    expire_passthrough();  // connect timeout, idle timeout and the drain deadline (passthrough.cpp)
    return;
  }
  timed_out_ = true;
  if (pace_timer_) pace_timer_->cancel();  // a paced relay's wait ends with its deadline
  if (phase_ == Phase::UpConnect || phase_ == Phase::UpWrite || phase_ == Phase::UpRead) {
    link_.cancel();
  } else if (phase_ == Phase::Body) {
    // Keep the socket writable: a body too slow for body_idle/min_body_rate is answered 408.
    net::error_code ec;
    stream_.socket().cancel(ec);
  } else {
    cancel_socket(stream_.socket());
  }
  disarm();
}

void ProxyConnection::drain() {
  if (h2_conn_ != nullptr) {
    h2_drain(*h2_conn_);  // GOAWAY; open streams finish
    return;
  }
  close_after_response_ = true;
  if (idle) cancel_socket(stream_.socket());
}

void ProxyConnection::close() noexcept {
  disarm();
  phase_ = Phase::Closing;
  stream_.shutdown_nowait();
  net::error_code ec;
  stream_.socket().close(ec);
  link_.discard();
}

void ProxyConnection::release_idle_memory() noexcept {
  if (h2_conn_ != nullptr) return;  // the HTTP/2 driver frees its own when no stream is open
  static constexpr std::size_t kKeepCapacity = 1024;
  in_.release();
  link_.release_memory();  // 16 KiB, needed again only when the next request goes upstream
  for (auto* s : {&out_, &up_out_, &up_head_, &fwd_lines_}) {
    if (s->capacity() > kKeepCapacity) std::string().swap(*s);
  }
}

bool ProxyConnection::peer_trusted() {
  // The peer never changes; the trusted set only with a new snapshot generation.
  if (trusted_gen_ != req_snap_->generation) {
    trusted_gen_ = req_snap_->generation;
    trusted_ = peer_addr_ && req_snap_->trusted_proxies.contains(*peer_addr_);
  }
  return trusted_;
}

net::awaitable<bool> ProxyConnection::read_proxy_header() {
  namespace pp = net::proxy_protocol;
  arm(Phase::Handshake, snap_->config->timeouts.tls_handshake);
  unsigned char buf[pp::kMaxHeader];
  std::size_t have = 0;  // header bytes already taken off the socket
  const int fd = stream_.socket().native_handle();
  for (;;) {
    auto [ec] = co_await stream_.socket().async_wait(net::tcp::socket::wait_read, net::deferred_tuple);
    if (ec) co_return false;
    // Peek, so that the bytes after the header stay in the socket for TLS (or HTTP) to read.
    const ssize_t n = ::recv(fd, buf + have, sizeof buf - have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (n <= 0) co_return false;
    const auto r = pp::parse(buf, have + static_cast<std::size_t>(n));
    if (r.status == pp::Status::Invalid) {
      worker_.stats().proxy_protocol_errors.inc();
      PHI_LOG_DEBUG("[w{} c{}] PROXY protocol: {}", worker_.id(), id_, r.error);
      audit_connection_failure("proxy-protocol", "bad_request", r.error);
      co_return false;
    }
    // NeedMore: everything received so far is header; Done: exactly the header's bytes.
    const std::size_t take = r.status == pp::Status::Done ? r.consumed - have : static_cast<std::size_t>(n);
    if (::recv(fd, buf + have, take, 0) != static_cast<ssize_t>(take)) co_return false;
    have += take;
    if (r.status == pp::Status::NeedMore) {
      if (have == sizeof buf) co_return false;
      continue;
    }
    if (!r.local) {
      peer_ip_ = r.source_ip;
      peer_addr_ = access::parse_address(peer_ip_);
      peer_port_ = r.source_port;
    }
    co_return true;
  }
}

net::awaitable<bool> ProxyConnection::start_session() {
  if (snap_->config->listeners.proxy_protocol) {
    const bool ok = co_await read_proxy_header();
    if (!ok) co_return false;
  }
  if (!tls_) co_return true;
  if (!snap_->passthrough.empty()) {
    // The ClientHello was read within timeouts.tls_handshake: the handshake keeps that deadline.
    const bool done = co_await passthrough_or_terminate();
    if (done) co_return false;
  } else {
    arm(Phase::Handshake, snap_->config->timeouts.tls_handshake);
  }
  if (const auto ec = co_await stream_.handshake()) {
    worker_.stats().tls_handshake_failures.inc();
    const std::string why = timed_out_ ? std::string("timeout")
                                       : (stream_.last_error().empty() ? ec.message() : stream_.last_error());
    PHI_LOG_DEBUG("[w{} c{}] TLS handshake failed: {}", worker_.id(), id_, why);
    audit_connection_failure("tls-handshake", timed_out_ ? "client_timeout" : "tls_handshake", why);
    co_return false;
  }
  if (SSL_session_reused(stream_.native()) == 1) worker_.stats().tls_resumed.inc();
  conn_policy_ = tls::policy_of(stream_.native());
  if (const char* sni = SSL_get_servername(stream_.native(), TLSEXT_NAMETYPE_host_name)) server_name_ = sni;
  co_return true;
}

net::awaitable<void> ProxyConnection::serve() {
  // GCC 12 miscompiles `if (!co_await f())` (the resumed frame sees a garbage `this`): keep
  // every co_await result in a variable before testing it.
  const bool started = co_await start_session();
  if (!started) co_return;
  if (tls_) {
    // RFC 9113 §3.2: "h2" negotiated by ALPN means the client speaks HTTP/2 from its first byte.
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(stream_.native(), &alpn, &alpn_len);
    if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') {
      h2_ = true;
      co_return;  // run() hands the connection to serve_h2()
    }
  }
  for (;;) {
    const bool ready = co_await wait_for_request();
    if (!ready) break;
    bool more = false;
    {
      InFlight f;  // this request's state: it ends with this block
      more = co_await serve_one(f);
      first_request_ = false;
      if (f.head_started) finish_request(f);
    }
    ex_.next_request();
    if (!more) break;
  }
  if (linger_) co_await linger();
}

net::awaitable<bool> ProxyConnection::wait_for_request() {
  if (!in_.empty()) co_return true;  // pipelined: the next request is already here
  if (close_after_response_) co_return false;
  const auto& t = snap_->config->timeouts;
  // A new connection gets request_header to start its first request, not keepalive_idle:
  // otherwise a client that completes TLS and sends nothing holds a slot for a minute.
  arm(Phase::Idle, first_request_ ? std::min(t.request_header, t.keepalive_idle) : t.keepalive_idle);
  idle = true;
  trimmed = false;
  idle_since = worker_.now();
  // This small frame is all an idle connection keeps on the coroutine stack; the request
  // frames (serve_one and below) exist only while a request is in progress.
  const auto ec = co_await stream_.wait_readable();
  idle = false;
  co_return !ec;
}

net::awaitable<ProxyConnection::HeadResult> ProxyConnection::read_request_head(InFlight& f) {
  const auto& t = snap_->config->timeouts;
  bool started = !in_.empty();
  f.head_started = started;
  if (started) {
    arm(Phase::Header, t.request_header);
  } else {
    arm(Phase::Idle, first_request_ ? std::min(t.request_header, t.keepalive_idle) : t.keepalive_idle);
  }
  for (;;) {
    if (!in_.empty()) {
      std::size_t used = 0;
      const auto st = ex_.feed_head(in_.data(), in_.size(), used);
      in_.consume(used);
      if (st == http::Http1Exchange::HeadStatus::Error) {
        error_ = ex_.error();
        co_return HeadResult::Failed;
      }
      if (st == http::Http1Exchange::HeadStatus::Ready) co_return HeadResult::Ready;
    }
    if (close_after_response_ && !started) co_return HeadResult::Closed;  // drain: idle, so leave
    auto [ec, n] = co_await stream_.read_some(in_.space(), in_.space_size());
    if (ec || n == 0) {
      idle = false;
      if (timed_out_ && started) {
        error_ = timeout_error(phase_);
        co_return HeadResult::Failed;
      }
      // EOF or idle timeout between requests is a normal end; mid-head it is a client error.
      if (!started && ex_.at_message_start()) co_return HeadResult::Closed;
      error_ = Error::downstream(ErrorKind::ClientClosed, "closed mid-request head");
      co_return HeadResult::Failed;
    }
    in_.commit(n);
    if (!started) {
      started = true;
      f.head_started = true;
      idle = false;
      arm(Phase::Header, t.request_header);
    }
  }
}

net::awaitable<net::error_code> ProxyConnection::flush_client(InFlight& f) {
  if (out_.empty()) co_return net::error_code{};
  arm(Phase::ClientWrite, snap_->config->timeouts.body_idle);
  f.client_bytes += out_.size();
  auto ec = co_await stream_.write_all(out_.data(), out_.size());
  out_.clear();
  co_return ec;
}

net::awaitable<net::error_code> ProxyConnection::flush_paced(InFlight& f, Pacer& pacer) {
  const auto body_idle = snap_->config->timeouts.body_idle;
  net::error_code ec;
  // Bounded: every round writes one slice (at least 1 byte) or ends; each wait is at most a
  // slice's time at the rate (about 1/8 s, 1 s for a rate of 1 KiB/s) and ends early on expire().
  for (std::size_t off = 0; off < out_.size();) {
    const auto wait = pacer.before_write(Clock::now());
    if (wait > Clock::duration::zero()) {
      if (!pace_timer_) pace_timer_.emplace(worker_.io());
      // The client-write deadline covers the wait too; the drain deadline's expire() cancels it.
      arm(Phase::ClientWrite, body_idle + std::chrono::ceil<std::chrono::milliseconds>(wait));
      pace_timer_->expires_after(wait);
      auto [tec] = co_await pace_timer_->async_wait(net::deferred_tuple);
      if (tec || timed_out_) {
        ec = tec ? tec : net::asio::error::timed_out;
        break;
      }
    }
    const auto n = pacer.slice(out_.size() - off);
    arm(Phase::ClientWrite, body_idle);
    f.client_bytes += n;
    ec = co_await stream_.write_all(out_.data() + off, n);
    if (ec) break;
    pacer.sent(n);
    off += n;
  }
  out_.clear();
  co_return ec;
}

net::awaitable<bool> ProxyConnection::reply(InFlight& f, int status, std::string_view body,
                                            std::string_view location, std::string_view extra_fields,
                                            bool must_close) {
  f.status = status;
  out_.clear();
  const auto r = ex_.append_local_reply(out_, status, body, location, extra_fields, must_close,
                                        close_after_response_ || worker_.draining());
  worker_.stats().count_response(status);
  const auto ec = co_await flush_client(f);
  // A client still sending a body we refused would get a reset on its next write, and a reset
  // can discard our reply before it reads it: drain for a moment first (nginx lingering_close).
  linger_ = !ec && r.linger;
  co_return !ec && r.keep_alive;
}

net::awaitable<bool> ProxyConnection::reply_error(InFlight& f, const Error& error, bool must_close,
                                                  std::string_view more_fields) {
  f.reason = error.reason();
  const int status = error.status();
  if (status == 0) co_return false;
  std::string body = std::to_string(status) + " " + http::reason_phrase(status);
  // These two tell the client what to fix (nginx words the first the same way); never PHI.
  if (error.kind == ErrorKind::ClientCertificate || error.kind == ErrorKind::Misdirected) {
    body += ": ";
    body += error.context;
  }
  body += "\n";
  if (more_fields.empty()) co_return co_await reply(f, status, body, {}, extra_fields_, must_close);
  std::string fields(extra_fields_);
  fields += more_fields;
  co_return co_await reply(f, status, body, {}, fields, must_close);
}

ConnectionFacts ProxyConnection::connection_facts(std::string_view client_ip) {
  ConnectionFacts c;
  c.source_ip = socket_ip_;
  c.source_port = peer_.port();
  c.client_ip = client_ip.empty() ? std::string_view(peer_ip_) : client_ip;
  if (tls_ && stream_.native() != nullptr && SSL_is_init_finished(stream_.native()) == 1) {
    c.tls_version = SSL_version(stream_.native()) == TLS1_3_VERSION ? "1.3" : "1.2";
    c.tls_cipher = SSL_get_cipher_name(stream_.native());
    c.server_name = server_name_;
    if (conn_policy_ != nullptr && conn_policy_->verify() != config::VerifyClient::Off) {
      if (!client_cert_) client_cert_ = tls::describe_client(stream_.native(), *conn_policy_);
      c.cert = &*client_cert_;
    }
  }
  c.worker = worker_.id();
  c.connection = id_;
  return c;
}

void ProxyConnection::finish_request(InFlight& f) {
  // Metrics and audit read the one outcome set where the request ended (core/outcome.hpp).
  count_outcome(worker_.stats(), f.facts.outcome);
  if (!worker_.audit_on()) return;
  const auto& snap = req_snap_ ? *req_snap_ : *snap_;
  auto& rf = f.facts;
  if (f.started == Clock::time_point{}) {
    rf.start = std::chrono::system_clock::now();  // the head never completed
  } else {
    rf.total = Clock::now() - f.started;
  }
  rf.status = f.status;
  rf.reason = f.reason;
  rf.response_bytes = f.client_bytes;
  rf.request_bytes = ex_.body_bytes();
  rf.request_id = f.request_id;
  rf.failed_attempts = f.attempts;
  const bool head = ex_.request_head_complete();
  worker_.audit_submit(render_request(worker_.audit_json(),
                                      connection_facts(f.req ? std::string_view(f.req->client_ip) : ""), rf,
                                      head ? &ex_.request() : nullptr, snap.config->audit));
}

void ProxyConnection::audit_connection_failure(std::string_view action, std::string_view reason,
                                               std::string_view detail) {
  if (!worker_.audit_on()) return;
  const bool tls = action == "tls-handshake";
  worker_.audit_submit(render_connection_event(
      worker_.audit_json(), connection_facts({}), std::chrono::system_clock::now(), action,
      tls ? "error" : "denied", tls ? "tls" : "listeners.proxy_protocol", reason, detail));
}

net::awaitable<void> ProxyConnection::linger() {
  // Read and drop what the client still sends, until it stops, 1 s passes or 1 MiB went by.
  // Our side is done: close_notify (TLS) and FIN, so the client sees the end after our reply.
  stream_.shutdown_nowait();
  ::shutdown(stream_.socket().native_handle(), SHUT_WR);
  arm(Phase::Closing, std::chrono::seconds(1));
  std::size_t dropped = 0;
  while (dropped < (1u << 20)) {
    in_.consume(in_.size());
    auto [ec, n] = co_await stream_.read_some(in_.space(), in_.space_size());
    if (ec || n == 0) break;
    dropped += n;
  }
  disarm();
}

PhaseResult ProxyConnection::decide(InFlight& f, bool again) {
  // Pin the snapshot for this request: routes and clusters come from one generation. In the
  // steady state the worker's pointer has not changed and no reference count is touched.
  if (req_snap_.get() != worker_.snapshot().get()) req_snap_ = worker_.snapshot();
  const auto& snap = *req_snap_;
  // An auth answer's cookies (auth_fields_) are the last request's: never this one's.
  extra_fields_ = tls_ ? std::string_view(snap.hsts_field) : std::string_view{};
  // A second decision: who verified the first one's Basic credentials (the field may be gone).
  const void* verified_by = again && f.req ? f.req->auth_verified : nullptr;
  std::string verified_user = verified_by != nullptr ? f.req->rare_or_empty().auth_user : std::string();
  // ... and what auth-url's answer allowed (the subrequest is not sent again under the same policy).
  ExternalAuthResult external_prev;
  if (again && f.req && f.req->has_rare()) external_prev = std::move(f.req->rare().auth_external);
  auto& r = f.req.emplace(ex_.request());
  ConnectionView view;
  view.tls = tls_;
  view.peer_ip = peer_ip_;
  view.peer_addr = &peer_addr_;
  view.peer_trusted = peer_trusted();
  view.conn_policy = conn_policy_;
  if (tls_ && conn_policy_ != nullptr && conn_policy_->verify() != config::VerifyClient::Off) {
    // Re-checked on every request, resumed sessions included: the certificate and its verdict
    // come from the session.
    if (!client_cert_) client_cert_ = tls::describe_client(stream_.native(), *conn_policy_);
    view.client_cert = &*client_cert_;
  }
  view.audit_on = worker_.audit_on();
  view.audit_healthy = worker_.audit_healthy();
  view.https_port = worker_.https_port();
  view.random = static_cast<std::uint32_t>(worker_.rng().next());
  view.again = again;
  view.now = std::chrono::steady_clock::now();
  view.auth_verified = verified_by;
  view.auth_verified_user = verified_user;
  view.auth_external_prev = &external_prev;
  auto decision = run_phases(r, snap, view);
  auto& rf = f.facts;
  const auto& x = r.rare_or_empty();
  rf.user_name = x.auth_user;
  rf.user_email = {};
  rf.host = r.host_norm;
  rf.target = r.target.empty() ? std::string_view(r.head.target) : std::string_view(r.target);
  rf.rewritten = !x.upstream_target.empty();
  rf.satisfied_by_allowlist = r.satisfied_by_allowlist;
  // A second decision (after a buffered body) starts from nothing of the first one's snapshot.
  rf.route = {};
  rf.ingress = {};
  rf.canary = {};
  if (r.route != nullptr) {
    rf.route = r.route->name;
    if (r.policy != nullptr && r.policy->resource.rfind("Ingress ", 0) == 0) {
      rf.ingress = std::string_view(r.policy->resource).substr(8);
    }
    if (r.canary && r.route->canary) rf.canary = r.route->canary->ingress;
  }
  if (tls_) extra_fields_ = r.hsts ? snap.hsts_field : std::string_view{};
  rf.outcome = decision ? decision->outcome : Outcome::Proxied;
  return decision;
}

net::awaitable<PhaseResult> ProxyConnection::authorize(InFlight& f) {
  // auth-type: basic: the credentials the phases accepted are verified off the event loop; then
  // auth-url's subrequest. Both before anything of the request (its body included) reaches a
  // backend or is buffered (basic_auth.hpp, auth_external.hpp).
  auto& r = *f.req;
  PhaseResult decision;
  if (r.auth_pending) decision = co_await verify_basic_auth(r, worker_.stats());
  if (!decision && r.auth_external_pending) {
    timed_out_ = false;
    const AuthRequestInfo info{tls_, f.request_id, r.client_ip};
    decision = co_await run_external_auth(worker_, link_, *this, r, *req_snap_, info);
  }
  const auto& x = r.rare_or_empty();
  if (x.auth_user.empty() && !x.auth_external.user.empty()) f.facts.user_name = x.auth_external.user;
  f.facts.user_email = x.auth_external.email;
  if (!x.auth_external.set_cookie.empty()) {
    // auth-always-set-cookie, or an allowed request: the auth answer's cookies go to the client.
    auth_fields_.assign(extra_fields_);
    auth_fields_ += x.auth_external.set_cookie;
    extra_fields_ = auth_fields_;
  }
  if (decision) f.facts.outcome = decision->outcome;
  co_return decision;
}

net::awaitable<bool> ProxyConnection::answer(InFlight& f, const Decision& decision) {
  auto& r = *f.req;
  const auto& x = r.rare_or_empty();
  if (is_redirect(decision)) {
    const int status = decision_status(decision);
    co_return co_await reply(f, status, redirect_body(decision), x.location, {}, decision.must_close);
  }
  if (is_preflight(decision)) {
    std::string fields(extra_fields_);  // HSTS, then the CORS fields
    fields += x.response_fields;
    co_return co_await reply(f, 204, {}, {}, fields, decision.must_close);
  }
  if (is_auth_challenge(decision)) {
    // 401 with the route's realm; CORS fields too (a browser reads the 401 of a cross-origin call).
    f.reason = decision.error.reason();
    std::string fields(extra_fields_);
    fields += x.response_fields;
    fields += www_authenticate_field(r.policy->basic_auth.realm);
    co_return co_await reply(f, 401, "401 Unauthorized\n", {}, fields, decision.must_close);
  }
  co_return co_await reply_error(f, decision.error, decision.must_close, x.reply_fields);
}

net::awaitable<bool> ProxyConnection::serve_one(InFlight& f) {
  timed_out_ = false;
  const auto head_result = co_await read_request_head(f);
  if (head_result == HeadResult::Closed) co_return false;
  if (head_result == HeadResult::Failed) {
    PHI_LOG_DEBUG("[w{} c{}] bad request: {}", worker_.id(), id_, error_.to_string());
    f.facts.outcome = core::outcome_of(error_);
    f.facts.target = ex_.request().target;  // as far as it was read: not normalised
    co_return co_await reply_error(f, error_, true);
  }
  worker_.stats().requests_http1.inc();
  f.facts.start = std::chrono::system_clock::now();
  f.started = Clock::now();
  core::make_request_id(worker_.rng(), f.request_id);
  auto decision = decide(f);
  if (!decision && (f.req->auth_pending || f.req->auth_external_pending)) decision = co_await authorize(f);
  if (decision) co_return co_await answer(f, *decision);
  co_return co_await proxy_request(f);
}

net::awaitable<std::optional<Error>> ProxyConnection::flush_upstream(const upstream::Timeouts& t,
                                                                     Retryable r) {
  // Without an asynchronous operation when the socket takes it all at once (Link::try_send).
  net::error_code ec;
  std::size_t n = link_.try_send(up_out_, ec);
  if (!ec && n < up_out_.size()) {
    const auto [ec2, n2] = co_await link_.send(std::string_view(up_out_).substr(n), t, *this);
    ec = ec2;
    n += n2;
  }
  attempt_sent_ += n;
  up_out_.clear();
  co_return link_.sent(ec, r, *this);
}

net::awaitable<std::optional<Error>> ProxyConnection::read_body_bytes(InFlight& f) {
  const auto& cfg = *req_snap_->config;
  if (ex_.take_continue()) {
    out_ = http::Http1Exchange::kContinue;
    const auto ec = co_await flush_client(f);
    if (ec) co_return Error::downstream(ErrorKind::ClientClosed, "writing 100");
  }
  // Slow bodies: body_idle between reads, and in all body_idle plus one second per
  // min_body_rate bytes of time spent waiting for the client (upstream waits don't count).
  auto wait = cfg.timeouts.body_idle;
  if (const auto rate = cfg.limits.min_body_rate; rate != 0) {
    const auto allowed = cfg.timeouts.body_idle + std::chrono::milliseconds(ex_.body_bytes() * 1000 / rate);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(allowed - f.body_wait);
    wait = std::clamp(left, std::chrono::milliseconds(0), wait);
  }
  arm(Phase::Body, wait);
  const auto wait_start = Clock::now();
  auto [ec, n] = co_await stream_.read_some(in_.space(), in_.space_size());
  f.body_wait += Clock::now() - wait_start;
  if (ec || n == 0) {
    co_return timed_out_ ? timeout_error(Phase::Body)
                         : Error::downstream(ErrorKind::ClientClosed, "closed mid-request body");
  }
  in_.commit(n);
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> ProxyConnection::buffer_request_body(InFlight& f) {
  const auto& cfg = *req_snap_->config;
  const auto& lim = f.req->limits;
  const auto budget = cfg.limits.request_buffer_worker_bytes;
  auto& held = worker_.stats().request_buffer_bytes;
  const auto shed = [&] {
    worker_.stats().request_buffer_shed.inc();
    return Error::downstream(ErrorKind::Overloaded, "request buffer budget spent");
  };
  // The bound: client-body-buffer-size (capped), and proxy-body-size when it is smaller.
  const auto bound = lim.body_bytes != 0 ? std::min(lim.body_bytes, lim.buffer_bytes) : lim.buffer_bytes;
  f.buffered = true;
  ex_.buffer_body();
  // The most this body can hold: its announced length, else the bound. Nothing is charged for an
  // announced length: memory is allocated, and charged, as bytes arrive (review F1).
  auto most = bound;
  if (const auto& cl = f.req->head.content_length; cl && !f.req->head.chunked) most = std::min(most, *cl);
  std::string piece;
  while (!ex_.request_complete()) {
    if (in_.empty()) {
      if (auto err = co_await read_body_bytes(f)) co_return err;
    }
    // The bytes at hand are parsed into a scratch piece (at most one read's worth), checked against
    // the bound, then given room (charged) and appended: the body never grows outside what is
    // charged, and each pass parses all that arrived.
    piece.clear();
    std::size_t used = 0;
    const auto st = ex_.feed_body(in_.data(), in_.size(), used, piece, bound);  // over the bound: 413
    in_.consume(used);
    if (st == http::Http1Exchange::BodyStatus::Error) co_return ex_.error();
    if (!make_body_room(f.body, f.body.size() + piece.size(), most, f.body_hold, held, budget))
      co_return shed();
    f.body.append(piece);
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> ProxyConnection::send_request(InFlight& f, const upstream::Timeouts& t) {
  if (f.buffered) {
    // The body is whole in memory (buffer_request_body): head and body, as often as attempts
    // need. A small body goes in the head's write; a larger one is written from where it lies.
    if (f.body.size() <= kFlushBytes) {
      up_out_ += f.body;
      co_return co_await flush_upstream(t, Retryable::OnlyIfReused);
    }
    if (auto err = co_await flush_upstream(t, Retryable::OnlyIfReused)) co_return err;
    auto [ec, n] = co_await link_.send(f.body, t, *this);
    attempt_sent_ += n;
    co_return link_.sent(ec, Retryable::OnlyIfReused, *this);
  }
  const auto body_limit = f.req->limits.body_bytes;
  // up_out_ holds the request head; body bytes are appended and flushed in kFlushBytes pieces.
  while (!ex_.request_complete()) {
    if (in_.empty()) {
      if (!up_out_.empty()) {
        if (auto err = co_await flush_upstream(t, Retryable::OnlyIfReused)) co_return err;
      }
      if (auto err = co_await read_body_bytes(f)) co_return err;
    }
    std::size_t used = 0;
    const auto st = ex_.feed_body(in_.data(), in_.size(), used, up_out_, body_limit);
    in_.consume(used);
    if (st == http::Http1Exchange::BodyStatus::Error) co_return ex_.error();
    if (up_out_.size() >= kFlushBytes) {
      if (auto err = co_await flush_upstream(t, Retryable::No)) co_return err;
    }
  }
  if (!up_out_.empty()) {
    if (auto err = co_await flush_upstream(t, Retryable::OnlyIfReused)) co_return err;
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> ProxyConnection::relay_response(InFlight& f,
                                                                     const upstream::Timeouts& t) {
  using RS = http::Http1Exchange::ResponseStatus;
  ex_.begin_response(f.set_cookie.empty() ? extra_fields_ : std::string_view(f.set_cookie),
                     close_after_response_ || worker_.draining(), f.req->response_edits(),
                     f.req->rare_or_empty().response_fields);
  auto& in = link_.input();
  const auto upstream_error = [&](Error e, Retryable r) {
    e.source = core::ErrorSource::Upstream;
    e.retryable = r;
    return e;
  };
  // limit-rate: every byte of this response (head, framing, body: nginx counts what the connection
  // sent) goes out at the rate after limit-rate-after; unlimited responses pay one branch a flush.
  Pacer pacer(f.req->limits.response_rate, f.req->limits.response_rate_after);
  const auto flush = [&]() { return pacer.active() ? flush_paced(f, pacer) : flush_client(f); };
  for (;;) {
    const bool had_head = ex_.response_head_sent();
    RS st = RS::NeedMore;
    if (in.empty()) {
      if (!out_.empty() && had_head) {
        const auto ec = co_await flush();
        if (ec) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      }
      Error err;
      upstream::Link::IoResult io;
      if (link_.is_tls()) {
        io = co_await link_.read(t, *this);
      } else {
        io = co_await link_.read_plain(t, *this);  // no coroutine frame for the operation
      }
      const auto [ec, n] = io;
      const auto rs = link_.received(ec, n, *this, err);
      if (rs == upstream::Link::ReadStatus::Error) co_return err;
      if (rs == upstream::Link::ReadStatus::Eof) {
        st = ex_.upstream_eof(out_);  // completes a body delimited by close (RFC 9112 §6.3 rule 8)
        if (st == RS::Error) {
          co_return upstream_error(ex_.error(), link_.got_bytes() ? Retryable::No : Retryable::OnlyIfReused);
        }
      }
    }
    if (st != RS::Complete && !in.empty()) {
      std::size_t used = 0;
      st = ex_.feed_response(in.data(), in.size(), used, out_);
      in.consume(used);
      if (st == RS::Error) co_return upstream_error(ex_.error(), Retryable::No);
    }
    if (!had_head && ex_.response_head_sent()) {
      const int status = ex_.response_status();
      if (retry_statuses_ != 0 && (retry_statuses_ & upstream::status_condition(status)) != 0) {
        // proxy_next_upstream http_5xx: this answer is dropped unseen (nothing of it was written
        // to the client) and the request goes to another endpoint.
        out_.clear();
        status_retry_ = status;
        co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "retried on status");
      }
      if (intercept_ != nullptr && intercepts(intercept_, status)) {
        // custom-http-errors: the same spot, the same rule: nothing of this answer was written to
        // the client, and its body is never read (the connection is discarded, never pooled).
        out_.clear();
        intercepted_ = status;
        co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "intercepted");
      }
      worker_.stats().count_response(status);
      f.status = status;
      f.facts.upstream_first_byte = Clock::now() - f.up_sent;
      // No attempt can use a buffered body once an answer is accepted for the client: its memory
      // and budget share go back now, not after the relay (a slow reader would hold them).
      f.body_hold.release();
      std::string().swap(f.body);
    }
    if (st == RS::Complete || out_.size() >= kFlushBytes) {
      const auto ec = co_await flush();
      if (ec) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      if (st == RS::Complete) co_return std::nullopt;
    }
  }
}

net::awaitable<bool> ProxyConnection::proxy_request(InFlight& f) {
  const auto grpc_refused = [&]() -> net::awaitable<bool> {
    // backend-protocol GRPC/GRPCS: the backend speaks HTTP/2 only. An HTTP/1.x request is refused
    // (503, fail-closed) rather than sent in a protocol the backend would misread.
    const auto err = Error::downstream(ErrorKind::Unavailable, "grpc backend needs an HTTP/2 client");
    f.facts.outcome = core::outcome_of(err);
    co_return co_await reply_error(f, err, !ex_.request_complete());
  };
  if (req_snap_->clusters[f.req->cluster].grpc) co_return co_await grpc_refused();
  // proxy-request-buffering: "on": the whole body first, before any upstream is chosen or
  // connected (a WebSocket upgrade has no body: nothing to buffer).
  if (f.req->limits.buffer_body && f.req->head.has_body()) {
    if (auto err = co_await buffer_request_body(f)) {
      f.facts.outcome = core::outcome_of(*err);
      if (err->source == core::ErrorSource::Downstream && err->status() == 0) {
        f.reason = err->reason();
        co_return false;
      }
      co_return co_await reply_error(f, *err, !ex_.request_complete());
    }
    // Reading the body can take minutes: the request goes on under the configuration, the audit
    // log's health and the endpoints current now, not those of when its head came (review F2). A
    // client whose access was withdrawn meanwhile, or an Ingress removed, is refused; nothing has
    // gone upstream yet, and the body is read, so the connection stays in step.
    auto decision = decide(f, true);
    if (!decision && (f.req->auth_pending || f.req->auth_external_pending ||
                      f.req->rare_or_empty().auth_external.by != nullptr))
      decision = co_await authorize(f);
    if (decision) co_return co_await answer(f, *decision);
    const auto& lim = f.req->limits;
    if ((lim.body_bytes != 0 && f.body.size() > lim.body_bytes) ||
        (lim.buffer_body && f.body.size() > lim.buffer_bytes)) {
      const auto err = Error::downstream(ErrorKind::BodyTooLarge);
      f.facts.outcome = core::outcome_of(err);
      co_return co_await reply_error(f, err, false);
    }
    if (req_snap_->clusters[f.req->cluster].grpc) co_return co_await grpc_refused();
  }
  co_return co_await forward_request(f);
}

net::awaitable<bool> ProxyConnection::forward_request(InFlight& f) {
  auto& r = *f.req;
  auto& head = r.head;
  const auto& cluster = req_snap_->clusters[r.cluster];
  // Build the upstream head once: hop-by-hop fields out, forwarding fields in (as lines after the
  // client's fields: forwarding_lines).
  http::remove_hop_by_hop(head.headers);
  set_client_cert_headers(head.headers, r.policy);
  fwd_lines_.clear();
  const http::ForwardInfo fwd{peer_ip_,     peer_trusted(), tls_ ? "https" : "http", r.host, local_port_,
                              f.request_id, r.client_ip};
  if (req_snap_->audit_reads_forwarding) {
    http::set_forwarding_headers(head.headers, fwd);  // the audit record reads them there
  } else {
    http::forwarding_lines(head.headers, fwd, fwd_lines_);
  }
  const auto upstream_target = prepare_upstream_head(
      r, head.headers, ex_.upgrade_requested() ? UpstreamHop::Upgrade : UpstreamHop::Http1);
  up_head_.clear();
  ex_.append_upstream_head(up_head_, upstream_target, fwd_lines_);
  const upstream::Timeouts t{r.limits.connect, r.limits.send, r.limits.read};
  AttemptPlan plan(worker_, cluster, r, head.method);
  auto& balancer = plan.balancer;
  bool entered_send = false;  // a request body may have been read: it cannot be sent again
  for (int attempt = 0;; ++attempt) {
    const auto picked = plan.next();
    if (picked.index == upstream::kNoEndpoint) {
      // ingress-nginx: a path whose Service has no active endpoint is served by its default-backend.
      if (attempt == 0 && r.route != nullptr && r.route->has_error_backend)
        co_return co_await proxy_to_error_backend(f, upstream_target);
      const auto err = Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No);
      f.facts.outcome = core::outcome_of(err);
      if (replaces_status(r.policy, err.status(), true))
        co_return co_await serve_error_page(f, err.status(), &err);
      co_return co_await reply_error(f, err, !ex_.request_complete());
    }
    const auto& ep = cluster.endpoints[picked.index];
    timed_out_ = false;
    f.facts.upstream = ep.key;
    f.facts.upstream_attempts = static_cast<unsigned>(attempt) + 1;
    f.set_cookie.clear();
    if (picked.set_cookie) {
      f.set_cookie = extra_fields_;
      upstream::append_affinity_cookie(f.set_cookie, cluster, picked.index, r.route->affinity_cookie_path());
    }
    upstream::attempt_started(balancer, picked.index);
    const auto attempt_start = plan.by_latency ? Clock::now() : Clock::time_point{};
    const auto latency = [&] { return plan.by_latency ? Clock::now() - attempt_start : Clock::duration(-1); };
    attempt_sent_ = 0;
    status_retry_ = 0;
    std::optional<Error> err;
    bool relayed = false;  // this attempt reached the response (the codec's head state is its own)
    bool sending = false;  // this attempt began writing the request
    if (!link_.take_pooled(ep, attempt, worker_.now(), cluster.tls.get())) {
      err = co_await link_.connect(ep, t, *this, cluster.tls.get());
    }
    if (!err) {
      f.up_sent = Clock::now();
      // 0 for a pooled connection; on a retry this attempt's figure replaces the first one's.
      f.facts.upstream_connect = link_.connect_time();
      up_out_ = up_head_;
      entered_send = sending = true;
      // A 5xx named by proxy_next_upstream is dropped unseen only while another attempt is
      // possible; the last attempt's answer goes to the client whatever it is.
      retry_statuses_ =
          plan.status_retry_possible(head.has_body() && !f.buffered)
              ? static_cast<std::uint16_t>(plan.rs.when & ~(upstream::kNextError | upstream::kNextTimeout))
              : 0;
      intercepted_ = 0;
      intercept_ = r.policy;
      err = co_await send_request(f, t);
      if (!err) {
        relayed = true;
        err = co_await relay_response(f, t);
      }
      retry_statuses_ = 0;
      intercept_ = nullptr;
    }
    upstream::attempt_ended(balancer, picked.index, latency(), !err);
    if (!err) {
      plan.report(picked.index,
                  f.status >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success);
      if (ex_.upgraded()) co_return co_await tunnel(f, t);
      // Back to the pool only when both messages ended exactly at their framing; a byte left over
      // closes it (Link::finish counts it as unsolicited).
      // connection-proxy-header: close: this connection served its one request.
      link_.finish(ex_.upstream_reusable(!link_.input().empty()) && !closes_upstream(r), Clock::now());
      disarm();
      co_return ex_.client_keep_alive() && !close_after_response_ && !worker_.draining();
    }
    if (intercepted_ != 0) {
      // custom-http-errors: the answer was dropped unseen; its unread body must never meet another
      // request, so the connection goes.
      plan.report(picked.index, intercepted_ >= 500 ? upstream::AttemptResult::Status5xx
                                                    : upstream::AttemptResult::Success);
      link_.discard();
      co_return co_await serve_error_page(f, std::exchange(intercepted_, 0), nullptr);
    }
    upstream::AttemptEnd end;
    end.idempotent = plan.idempotent;
    // A buffered body is whole in memory: sent again as it was (idempotent requests only).
    end.body_consumed = head.has_body() && entered_send && !f.buffered;
    end.reused = link_.reused();
    if (status_retry_ != 0) {
      end.failure = upstream::Failure::Status;
      end.status = status_retry_;
      plan.report(picked.index, status_retry_ >= 500 ? upstream::AttemptResult::Status5xx
                                                     : upstream::AttemptResult::Success);
    } else {
      // Over TLS a failed write may have delivered records before it failed (OpenSSL reports a
      // whole write or nothing): once sending began, count the request as sent.
      const std::uint64_t sent = link_.is_tls() && sending && attempt_sent_ == 0 ? 1 : attempt_sent_;
      end.failure =
          upstream::classify(*err, sent, link_.got_bytes() || (relayed && ex_.response_head_sent()));
      if (err->source == core::ErrorSource::Upstream) plan.report(picked.index, attempt_result(*err));
    }
    f.attempts.push_back(
        {ep.key, status_retry_ != 0 ? std::string_view("http_status") : err->reason(), status_retry_});
    link_.discard();
    PHI_LOG_DEBUG("[w{} c{}] upstream {} attempt {}: {}", worker_.id(), id_, ep.key, attempt + 1,
                  err->to_string());
    // RFC 9112 §9.3.1: the pooled connection was closed under us; a new one, once, free.
    if (plan.stale_retry(end)) continue;
    if (plan.retry(upstream::next_upstream_allows(plan.rs, end))) continue;
    f.facts.outcome = core::outcome_of(*err);
    // (A dropped answer is always followed by another attempt: `more` checked the same limits. Should
    // the budget or the health of the endpoints change in between, the client gets a 502.)
    // A dropped answer (status_retry_) never reached the client: it gets a 502 like any failure.
    if ((relayed && ex_.response_head_sent() && status_retry_ == 0) ||
        (err->source == core::ErrorSource::Downstream && err->status() == 0)) {
      f.reason = err->reason();
      co_return false;
    }
    // custom-http-errors: phigate's own upstream error with a listed code gets the page too.
    if (err->source == core::ErrorSource::Upstream && replaces_status(r.policy, err->status(), true))
      co_return co_await serve_error_page(f, err->status(), &*err);
    co_return co_await reply_error(f, *err, !ex_.request_complete());
  }
}

net::awaitable<std::optional<Error>> ProxyConnection::error_backend_exchange(InFlight& f,
                                                                             std::string_view head,
                                                                             bool with_body) {
  const auto& r = *f.req;
  const auto index = r.route->error_target;
  const auto& cluster = req_snap_->clusters[index];
  // The HTTP/1 side of error_backend_attempts (error_backend.hpp).
  struct Codec {
    ProxyConnection& c;
    InFlight& f;
    std::string_view head;
    bool with_body;
    const upstream::Cluster& cluster;
    upstream::Timeouts t;
    void begin(const upstream::Endpoint& ep, int attempt) {
      c.timed_out_ = false;
      if (with_body) {
        f.facts.upstream = ep.key;
        f.facts.upstream_attempts = static_cast<unsigned>(attempt) + 1;
      }
    }
    net::awaitable<std::optional<Error>> connect(const upstream::Endpoint& ep, int attempt) {
      if (c.link_.take_pooled(ep, attempt, c.worker_.now(), cluster.tls.get())) co_return std::nullopt;
      co_return co_await c.link_.connect(ep, t, c, cluster.tls.get());
    }
    net::awaitable<std::optional<Error>> exchange() {
      f.up_sent = Clock::now();
      c.attempt_sent_ = 0;
      c.up_out_ = head;
      // The page's GET / asks for no upgrade: its 101 (or another 1xx but 100) is a failed fetch.
      if (!with_body) c.ex_.error_page_response();
      auto err =
          with_body ? co_await c.send_request(f, t) : co_await c.flush_upstream(t, Retryable::OnlyIfReused);
      if (!err) err = co_await c.relay_response(f, t);  // intercept_ is null: never intercepted again
      co_return err;
    }
    upstream::AttemptResult result() const {
      return f.status >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success;
    }
    bool reusable() const { return c.ex_.upstream_reusable(!c.link_.input().empty()); }
    bool tunnelled() const { return c.ex_.upgraded(); }
    bool response_started() const { return c.ex_.response_head_sent(); }
  };
  Codec codec{*this, f, head, with_body, cluster, {r.limits.connect, r.limits.send, r.limits.read}};
  AttemptPlan plan(worker_, cluster, r, with_body ? std::string_view(r.head.method) : "GET", index);
  co_return co_await error_backend_attempts(codec, link_, plan, cluster, r, with_body && r.head.has_body());
}

net::awaitable<bool> ProxyConnection::proxy_to_error_backend(InFlight& f, std::string_view upstream_target) {
  auto& r = *f.req;
  const std::string request_id(f.request_id);
  // The original request, with X-Code: 503 and the fields the default-backend is told; whatever
  // the client sent under those names is replaced, and so are forwarding_lines' of those names
  // (X-Request-ID): they join the fields first.
  http::add_raw_lines(r.head.headers, fwd_lines_);
  fwd_lines_.clear();
  set_error_page_fields(r.head.headers, error_page_fields(r, 503, {}, request_id));
  up_head_.clear();
  ex_.append_upstream_head(up_head_, upstream_target);
  f.facts.error_page = 503;
  f.set_cookie.clear();
  const auto err = co_await error_backend_exchange(f, up_head_, true);
  if (!err) {
    if (ex_.upgraded()) co_return co_await tunnel(f, {r.limits.connect, r.limits.send, r.limits.read});
    disarm();
    co_return ex_.client_keep_alive() && !close_after_response_ && !worker_.draining();
  }
  f.facts.outcome = core::outcome_of(*err);
  if (ex_.response_head_sent() || (err->source == core::ErrorSource::Downstream && err->status() == 0)) {
    f.reason = err->reason();
    co_return false;
  }
  co_return co_await reply_error(f, *err, !ex_.request_complete());
}

net::awaitable<bool> ProxyConnection::serve_error_page(InFlight& f, int code, const Error* own) {
  auto& r = *f.req;
  if (own != nullptr) f.reason = own->reason();
  f.set_cookie.clear();  // an affinity cookie for the main's endpoint has nothing to do with the page
  if (r.route != nullptr && r.route->has_error_backend) {
    // Ours are fields (audit_reads_forwarding) or in this request's forwarding lines
    // (forward_request, the only caller, made them); a trusted proxy's X-Request-Id stayed a field.
    const auto xff = http::forwarded_value(r.head.headers, fwd_lines_, "x-forwarded-for");
    const auto* rid = r.head.headers.find("x-request-id");
    const std::string request_id = rid != nullptr ? *rid : std::string(f.request_id);
    std::string page_head;
    append_error_page_head(page_head, r.head.method, r.host, xff.value_or(""),
                           error_page_fields(r, code, r.target, request_id));
    f.facts.error_page = code;
    const auto err = co_await error_backend_exchange(f, page_head, false);
    if (!err) {
      disarm();
      co_return ex_.client_keep_alive() && !close_after_response_ && !worker_.draining();
    }
    if (ex_.response_head_sent() || (err->source == core::ErrorSource::Downstream && err->status() == 0)) {
      f.reason = err->reason();
      co_return false;  // part of the page went out, or the client went away
    }
    f.facts.error_page = 0;
  }
  // phigate's own answer with the same status: the replaced answer never shows.
  if (own != nullptr) co_return co_await reply_error(f, *own, !ex_.request_complete());
  f.reason = "error_page_unavailable";
  const std::string body = std::to_string(code) + " " + http::reason_phrase(code) + "\n";
  co_return co_await reply(f, code, body, {}, extra_fields_, !ex_.request_complete());
}

void ProxyConnection::set_client_cert_headers(http::HeaderList& headers, const config::RoutePolicy* policy) {
  // Whatever the client sent under these names is forged: only we may set them.
  headers.remove_if([](const http::Header& h) {
    return h.name.size() >= 11 && http::iequals(std::string_view(h.name).substr(0, 11), "ssl-client-");
  });
  if (!tls_ || conn_policy_ == nullptr || conn_policy_->verify() == config::VerifyClient::Off) return;
  if (!client_cert_) client_cert_ = tls::describe_client(stream_.native(), *conn_policy_);
  const auto& c = *client_cert_;
  headers.add("ssl-client-verify", c.verify);
  if (!c.present) return;
  headers.add("ssl-client-subject-dn", c.subject);
  headers.add("ssl-client-issuer-dn", c.issuer);
  headers.add("ssl-client-serial", c.serial);
  headers.add("ssl-client-fingerprint", c.fingerprint);
  if (policy != nullptr && policy->auth_tls_pass_certificate) headers.add("ssl-client-cert", c.escaped_pem);
}

}  // namespace phigate::proxy::detail
