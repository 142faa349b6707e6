#include "proxy_connection.hpp"

#include "phases.hpp"

#include "phigate/http/host.hpp"
#include "phigate/http/path.hpp"

#include "phigate/http/forwarding.hpp"
#include "phigate/net/proxy_protocol.hpp"
#include "phigate/net/socket.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Retryable;

inline constexpr std::size_t kFlushBytes = 16 * 1024;
/// Interim (1xx) responses accepted before the final one; more is a misbehaving upstream.
inline constexpr int kMaxInterimResponses = 8;

namespace {

/// RFC 9110 §9.2.1. Only these are sent again after a pooled connection failed under them: the
/// upstream may have acted on the first copy (a body-less POST or DELETE is not harmless twice).
bool is_safe_method(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE";
}

/// Request-smuggling and desync defences beyond llhttp's strict parsing. Returns why the request
/// must be refused (400, connection closed), or nullptr.
const char* strict_violation(const http::MessageHead& head, std::string_view host) {
  // Only HTTP/1.0 and 1.1 are spoken here; llhttp also admits 0.9 and 2.0 request lines.
  if (head.version_major != 1 || head.version_minor > 1) return "unsupported HTTP version";
  // h2c would switch protocols under our feet (RFC 9113 §3.1 removed it; proxies must not relay it).
  if (const auto* up = head.headers.find("upgrade")) {
    bool h2c = false;
    http::for_each_token(*up, [&](std::string_view t) { h2c = h2c || http::iequals(t, "h2c"); });
    if (h2c) return "Upgrade: h2c";
  }
  if (head.headers.count("upgrade") > 1) return "repeated Upgrade";
  // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host; a different Host is an
  // attempt to route by one name and be served as another.
  std::string_view t = head.target;
  if (!t.empty() && t.front() != '/' && t != "*") {
    const auto scheme = t.find("://");
    if (scheme == std::string_view::npos) return "malformed request target";
    const auto rest = t.substr(scheme + 3);
    const auto authority = rest.substr(0, rest.find_first_of("/?#"));
    if (router::RouteTable::normalize_host(authority) != router::RouteTable::normalize_host(host)) {
      return "absolute-form target names another host than Host";
    }
  }
  return nullptr;
}

/// `host` is normalised. HSTS is on for every TLS host unless the config lists the host under
/// tls.hsts.disabled_hosts or its Ingress says phigate.io/hsts: "false".
bool hsts_applies(const Snapshot& snap, std::string_view host, const config::RoutePolicy* policy) {
  if (snap.hsts_field.empty() || (policy != nullptr && !policy->hsts)) return false;
  const auto& off = snap.config->tls.hsts.disabled_hosts;
  if (off.empty()) return true;
  const auto dot = host.find('.');
  for (const auto& h : off) {
    if (h == host) return false;
    if (h.rfind("*.", 0) == 0 && dot != std::string_view::npos && dot > 0 &&
        std::string_view(h).substr(2) == host.substr(dot + 1))
      return false;
  }
  return true;
}

}  // namespace

ProxyConnection::ProxyConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock, bool tls)
    : ConnectionCore(worker, std::move(snap)),
      stream_(std::move(sock), tls ? snap_->tls->initial() : nullptr),
      tls_(tls),
      resp_parser_(http::Parser::Kind::Response, {64 * 1024, 64 * 1024, 1000}) {
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
  self->close();
}

void ProxyConnection::expire() {
  timed_out_ = true;
  const bool upstream_phase =
      phase_ == Phase::UpConnect || phase_ == Phase::UpWrite || phase_ == Phase::UpRead;
  if (upstream_phase && up_) {
    cancel_socket(up_->socket);
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
  close_after_response_ = true;
  if (idle) cancel_socket(stream_.socket());
}

void ProxyConnection::close() noexcept {
  disarm();
  phase_ = Phase::Closing;
  stream_.shutdown_nowait();
  net::error_code ec;
  stream_.socket().close(ec);
  if (up_) up_->socket.close(ec);
  up_.reset();
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
    auto [ec] = co_await stream_.socket().async_wait(net::tcp::socket::wait_read, net::use_awaitable_tuple);
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
  arm(Phase::Handshake, snap_->config->timeouts.tls_handshake);
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
  for (;;) {
    const bool ready = co_await wait_for_request(stream_);
    if (!ready) break;
    rf_ = RequestFacts{};
    head_started_ = false;
    response_status_ = 0;
    error_reason_ = {};
    client_bytes_ = 0;
    request_body_bytes_ = 0;
    request_id_.clear();
    const bool more = co_await serve_one();
    first_request_ = false;
    if (head_started_) finish_request();
    if (!more) break;
  }
  if (linger_) co_await linger();
}

ConnectionFacts ProxyConnection::connection_facts() {
  ConnectionFacts c;
  c.source_ip = socket_ip_;
  c.source_port = peer_.port();
  c.client_ip = client_ip_.empty() ? std::string_view(peer_ip_) : std::string_view(client_ip_);
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

void ProxyConnection::finish_request() {
  if (!worker_.audit_on()) return;
  const auto& snap = req_snap_ ? *req_snap_ : *snap_;
  if (rf_.start == std::chrono::system_clock::time_point{}) {
    rf_.start = std::chrono::system_clock::now();  // the head never completed
  } else {
    rf_.total = Clock::now() - req_started_;
  }
  rf_.status = response_status_;
  rf_.reason = error_reason_;
  rf_.response_bytes = client_bytes_;
  rf_.request_bytes = request_body_bytes_;
  const bool head = req_parser_.head_complete();
  rf_.request_id = request_id_;
  worker_.audit_submit(render_request(worker_.audit_json(), connection_facts(), rf_,
                                      head ? &req_parser_.head() : nullptr, snap.config->audit));
}

void ProxyConnection::audit_connection_failure(std::string_view action, std::string_view reason,
                                               std::string_view detail) {
  if (!worker_.audit_on()) return;
  const bool tls = action == "tls-handshake";
  worker_.audit_submit(render_connection_event(
      worker_.audit_json(), connection_facts(), std::chrono::system_clock::now(), action,
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

net::awaitable<bool> ProxyConnection::serve_one() {
  timed_out_ = false;
  const auto head_result = co_await read_request_head(stream_);
  if (head_result == HeadResult::Closed) co_return false;
  if (head_result == HeadResult::Failed) {
    PHI_LOG_DEBUG("[w{} c{}] bad request: {}", worker_.id(), id_, error_.to_string());
    decide(core::outcome_of(error_));
    rf_.target = req_parser_.head().target;  // as far as it was read: not normalised
    co_return co_await reply_error(stream_, error_, true);
  }
  rf_.start = std::chrono::system_clock::now();
  req_started_ = Clock::now();
  core::make_request_id(worker_.rng(), request_id_);
  // Pin the snapshot for this request: routes and clusters come from one generation. In the
  // steady state the worker's pointer has not changed and no reference count is touched.
  if (req_snap_.get() != worker_.snapshot().get()) {
    req_snap_ = worker_.snapshot();
    if (tls_) extra_fields_ = req_snap_->hsts_field;
  }
  auto& head = req_parser_.head();
  resolve_client();
  if (worker_.audit_on() && !worker_.audit_healthy() && !req_snap_->config->audit.block_on_overflow) {
    // 164.312(b): nothing is served that cannot be audited. Refused until the writer recovers.
    worker_.stats().audit_fail_closed.inc();
    decide(core::Outcome::AuditUnavailable);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::AuditUnavailable), false);
  }
  const auto host_count = head.headers.count("host");
  if (host_count > 1 || (host_count == 0 && head.version_minor >= 1)) {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
    decide(core::Outcome::HostHeader);
    co_return co_await reply_error(
        stream_, Error::downstream(ErrorKind::BadRequest, "missing or repeated Host"), true);
  }
  const std::string* host = head.headers.find("host");
  host_.assign(host ? std::string_view(*host) : std::string_view{});
  router::RouteTable::normalize_host_into(host_, host_norm_);
  rf_.host = host_norm_;
  rf_.target = head.target;  // until normalised
  // RFC 9110 §7.2 / RFC 3986 §3.2.2: `a.example:@b.example` is routed here as a.example and may be
  // read as b.example (or as userinfo) by the upstream; a value with `/`, `\`, `?`, `#`, `%` or
  // whitespace is likewise read differently by different parsers.
  if (!http::valid_host(host_)) {
    decide(core::Outcome::HostSyntax);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::BadRequest, "invalid Host"), true);
  }
  if (const char* why = strict_violation(head, host_)) {
    decide(core::Outcome::StrictHttp);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::BadRequest, why), true);
  }
  // Route, check and forward the normalised target: `/public/../admin` is `/admin` everywhere.
  if (const char* why = http::normalize_target(head.target, target_)) {
    decide(core::Outcome::PathNormalisation);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::BadRequest, why), true);
  }
  rf_.target = target_;
  if (tls_) {
    if (auto err = check_tls_policy()) {
      decide(core::outcome_of(*err));
      co_return co_await reply_error(stream_, *err, err->kind == ErrorKind::Misdirected);
    }
  }
  // target_ is origin-form after normalisation: its path is everything before the query. Routing
  // and access use the path as Java servers resolve it (`;parameters` removed per segment).
  const auto* route = req_snap_->routes.match_normalized(
      host_norm_, http::routing_path(std::string_view(target_).substr(0, target_.find('?')), route_path_));
  const config::RoutePolicy* policy = route ? route->policy.get() : nullptr;
  if (route != nullptr) {
    rf_.route = route->name;
    if (policy != nullptr && policy->resource.rfind("Ingress ", 0) == 0) {
      rf_.ingress = std::string_view(policy->resource).substr(8);
    }
  }
  if (tls_)
    extra_fields_ = hsts_applies(*req_snap_, host_norm_, policy) ? req_snap_->hsts_field : std::string_view{};
  // Plain HTTP only where an Ingress asked for it explicitly; everything else goes to HTTPS.
  if (!tls_ && (policy == nullptr || policy->ssl_redirect || policy->force_ssl_redirect)) {
    co_return co_await redirect_to_https();
  }
  // A host that requires client certificates is never served without TLS, whatever another
  // Ingress on the same host (or a host-less rule) says about plain HTTP: the certificate check
  // cannot happen there.
  // (An Ingress already failed closed answers its 503 below.)
  const bool failed_closed = policy != nullptr && !policy->fail_closed.empty();
  if (!tls_ && !failed_closed &&
      ((req_snap_->tls && req_snap_->tls->policy_for(host_norm_).verify() != config::VerifyClient::Off) ||
       (policy != nullptr && policy->verify_client != config::VerifyClient::Off))) {
    decide(core::Outcome::ClientCertificateNeedsTls);
    co_return co_await reply_error(
        stream_, Error::downstream(ErrorKind::Denied, "client certificate over plain HTTP"), false);
  }
  if (route == nullptr) {
    decide(core::Outcome::NoRoute);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::NoRoute), false);
  }
  const auto& acl = req_snap_->route_access[route->target];
  const bool global_ok = client_addr_ && req_snap_->global_access.admits(*client_addr_);
  if (!global_ok || (acl && !acl->admits(*client_addr_))) {
    // Source ranges (HIPAA 164.312(a)(1) access control): refused before anything reaches the
    // upstream; the connection stays usable when the request had no unread body.
    decide(!global_ok ? core::Outcome::AccessGlobal : core::Outcome::AccessSourceRange);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::Denied, "source address"), false);
  }
  if (policy != nullptr && !policy->fail_closed.empty()) {
    // An invalid Ingress keeps its hosts and paths claimed and answers 503, so that a protected
    // path never falls through to a broader route.
    decide(core::Outcome::FailClosed);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::Unavailable, policy->resource),
                                   false);
  }
  const auto& cfg = *req_snap_->config;
  RequestLimits limits{cfg.timeouts.upstream_connect, cfg.timeouts.upstream_send, cfg.timeouts.upstream_read,
                       cfg.limits.request_body_bytes};
  if (policy != nullptr) {
    if (policy->connect_timeout) limits.connect = *policy->connect_timeout;
    if (policy->send_timeout) limits.send = *policy->send_timeout;
    if (policy->read_timeout) limits.read = *policy->read_timeout;
    if (policy->body_size) limits.body_bytes = *policy->body_size;
  }
  if (limits.body_bytes != 0 && head.content_length && *head.content_length > limits.body_bytes) {
    decide(core::Outcome::BodyTooLarge);
    co_return co_await reply_error(stream_, Error::downstream(ErrorKind::BodyTooLarge), true);
  }
  decide(core::Outcome::Proxied);
  co_return co_await proxy_request(*route, limits);
}

void ProxyConnection::release_idle_memory() noexcept {
  ConnectionCore::release_idle_memory();
  up_in_.release();  // 16 KiB, needed again only when the next request goes upstream
  for (auto* s : {&up_out_, &up_head_}) {
    if (s->capacity() > kKeepCapacity) std::string().swap(*s);
  }
}

void ProxyConnection::resolve_client() {
  client_ip_.assign(peer_ip_);
  client_addr_ = peer_addr_;
  if (!peer_trusted()) return;
  xff_values_.clear();
  for (const auto& h : req_parser_.head().headers) {
    if (http::iequals(h.name, "x-forwarded-for")) xff_values_.emplace_back(h.value);
  }
  if (xff_values_.empty()) return;
  if (const auto c = access::client_behind_proxies(xff_values_, req_snap_->trusted_proxies)) {
    client_ip_.assign(c->text);
    client_addr_ = c->address;
  }
}

std::optional<Error> ProxyConnection::check_tls_policy() {
  // The newest snapshot decides what the host requires; the handshake's policy lives in the
  // connection's own. A policy change on reload therefore also ends in 421, and the client
  // reconnects under the new one.
  const auto& wanted = req_snap_->tls->policy_for(host_norm_);
  if (conn_policy_ == nullptr || !conn_policy_->same(wanted)) {
    // RFC 9110 §15.5.20. SNI a.example (no client certificate) then Host: b.example (required)
    // must never reach b's backend; nor may a host be reached under weaker ciphers.
    worker_.stats().misdirected.inc();
    return Error::downstream(ErrorKind::Misdirected, "Host does not match the TLS server name's policy");
  }
  if (wanted.verify() == config::VerifyClient::Off) return std::nullopt;
  // Re-checked on every request, resumed sessions included: the certificate and its verdict
  // come from the session, so a session without one is refused here even if it was resumed.
  if (!client_cert_) client_cert_ = tls::describe_client(stream_.native(), wanted);
  if (client_cert_->refusal != nullptr) {
    worker_.stats().client_cert_refusals.inc();
    return Error::downstream(ErrorKind::ClientCertificate, client_cert_->refusal);
  }
  return std::nullopt;
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

net::awaitable<bool> ProxyConnection::redirect_to_https() {
  const auto& head = req_parser_.head();
  const auto configured = req_snap_->https_redirect_port;
  const auto location = https_location(host_, target_, configured != 0 ? configured : worker_.https_port());
  if (location.empty() || head.headers.count("host") != 1) {
    decide(core::Outcome::HostHeader);
    co_return co_await reply_error(
        stream_, core::Error::downstream(core::ErrorKind::BadRequest, "redirect needs one valid Host"), true);
  }
  // A request body we did not read would be parsed as the next request: close instead.
  const bool close =
      !req_parser_.message_complete() || !head.keep_alive || close_after_response_ || worker_.draining();
  out_.clear();
  http::append_local_reply(out_, 308, head.version_minor, close, "308 Permanent Redirect\n", location,
                           head.method == "HEAD");
  worker_.stats().count_response(308);
  response_status_ = 308;
  worker_.stats().redirects.inc();
  decide(core::Outcome::Redirected);
  if (co_await flush_client(stream_)) co_return false;
  co_return !close;
}

net::awaitable<std::optional<Error>> ProxyConnection::connect_upstream(const net::tcp::endpoint& ep,
                                                                       RequestLimits limits) {
  up_.emplace(upstream::Connection{net::tcp::socket(worker_.io())});
  arm(Phase::UpConnect, limits.connect);
  auto [ec] = co_await up_->socket.async_connect(ep, net::use_awaitable_tuple);
  if (ec) {
    worker_.stats().upstream_connect_failures.inc();
    if (timed_out_) co_return timeout_error(Phase::UpConnect);
    co_return Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes, ec.message());
  }
  net::error_code ignored;
  up_->socket.set_option(net::tcp::no_delay(true), ignored);
  worker_.stats().upstream_connects.inc();
  co_return std::nullopt;
}

net::awaitable<net::error_code> ProxyConnection::write_upstream(const char* data, std::size_t n,
                                                                RequestLimits limits) {
  arm(Phase::UpWrite, limits.send);
  auto [ec, written] =
      co_await net::asio::async_write(up_->socket, net::asio::buffer(data, n), net::use_awaitable_tuple);
  co_return ec;
}

net::awaitable<std::optional<Error>> ProxyConnection::flush_upstream(RequestLimits limits, Retryable r) {
  if (auto ec = co_await write_upstream(up_out_.data(), up_out_.size(), limits)) {
    co_return Error::upstream(timed_out_ ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset, r,
                              ec.message());
  }
  up_out_.clear();
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> ProxyConnection::send_request(bool chunked, RequestLimits limits) {
  const auto& cfg = *req_snap_->config;
  const auto& head = req_parser_.head();
  // up_out_ holds the request head; body bytes are appended and flushed in kFlushBytes pieces.
  while (head.has_body() && !req_parser_.message_complete()) {
    if (in_.empty()) {
      if (!up_out_.empty()) {
        if (auto err = co_await flush_upstream(limits, Retryable::OnlyIfReused)) co_return err;
      }
      // RFC 9110 §10.1.1: the client waits for 100 Continue before sending the body.
      if (head.expect_continue && !sent_continue_ && head.version_minor >= 1) {
        sent_continue_ = true;
        out_ = "HTTP/1.1 100 Continue\r\n\r\n";
        if (co_await flush_client(stream_))
          co_return Error::downstream(ErrorKind::ClientClosed, "writing 100");
      }
      // Slow bodies: body_idle between reads, and in all body_idle plus one second per
      // min_body_rate bytes of time spent waiting for the client (upstream waits don't count).
      auto wait = cfg.timeouts.body_idle;
      if (const auto rate = cfg.limits.min_body_rate; rate != 0) {
        const auto allowed =
            cfg.timeouts.body_idle + std::chrono::milliseconds(request_body_bytes_ * 1000 / rate);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(allowed - body_wait_);
        wait = std::clamp(left, std::chrono::milliseconds(0), wait);
      }
      arm(Phase::Body, wait);
      const auto wait_start = Clock::now();
      auto [ec, n] = co_await stream_.read_some(in_.space(), in_.space_size());
      body_wait_ += Clock::now() - wait_start;
      if (ec || n == 0) {
        co_return timed_out_ ? timeout_error(Phase::Body)
                             : Error::downstream(ErrorKind::ClientClosed, "closed mid-request body");
      }
      in_.commit(n);
    }
    std::size_t used = 0;
    const auto st = req_parser_.feed(in_.data(), in_.size(), used);
    for (const auto piece : req_parser_.body()) {
      request_body_bytes_ += piece.size();
      if (chunked) http::append_chunk_header(up_out_, piece.size());
      up_out_.append(piece);
      if (chunked) up_out_.append(http::kChunkEnd);
    }
    req_parser_.clear_body();
    in_.consume(used);
    if (st == http::ParseStatus::Error) co_return req_parser_.error();
    if (limits.body_bytes != 0 && request_body_bytes_ > limits.body_bytes) {
      co_return Error::downstream(ErrorKind::BodyTooLarge);
    }
    if (up_out_.size() >= kFlushBytes) {
      if (auto err = co_await flush_upstream(limits, Retryable::No)) co_return err;
    }
  }
  if (chunked) up_out_.append(http::kLastChunk);
  if (!up_out_.empty()) {
    if (auto err = co_await flush_upstream(limits, Retryable::OnlyIfReused)) co_return err;
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> ProxyConnection::relay_response(bool& started, bool& got_bytes,
                                                                     RequestLimits limits) {
  const auto& req = req_parser_.head();
  const bool head_only = req.method == "HEAD";
  resp_parser_.reset();
  resp_parser_.expect_no_body(head_only);
  // Bytes left from another exchange are never part of this response (they made that upstream
  // connection unusable; see proxy_request).
  up_in_.consume(up_in_.size());
  bool head_sent = false;
  bool rechunk = false;
  int interim = 0;
  for (;;) {
    if (up_in_.empty()) {
      if (!out_.empty() && head_sent) {
        if (co_await flush_client(stream_))
          co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      }
      arm(Phase::UpRead, limits.read);
      auto [ec, n] = co_await up_->socket.async_read_some(
          net::asio::buffer(up_in_.space(), up_in_.space_size()), net::use_awaitable_tuple);
      if (ec || n == 0) {
        if (timed_out_) {
          worker_.stats().upstream_timeouts.inc();
          co_return timeout_error(Phase::UpRead);
        }
        if (ec == net::asio::error::eof && resp_parser_.body_until_eof()) {
          resp_parser_.finish();  // EOF delimits this body (RFC 9112 §6.3 rule 8)
        } else {
          co_return Error::upstream(ErrorKind::UpstreamReset,
                                    got_bytes ? Retryable::No : Retryable::OnlyIfReused,
                                    ec ? ec.message() : "eof");
        }
      } else {
        got_bytes = true;
        up_in_.commit(n);
      }
    }
    std::size_t used = 0;
    const auto st =
        up_in_.empty() ? http::ParseStatus::Paused : resp_parser_.feed(up_in_.data(), up_in_.size(), used);
    if (st == http::ParseStatus::Error) co_return resp_parser_.error();
    auto& rh = resp_parser_.head();
    if (resp_parser_.head_complete() && rh.status >= 100 && rh.status < 200) {
      // Interim responses: we answered Expect ourselves and do not tunnel upgrades; skip them.
      // A backend that sends them without end would hold the exchange (and this loop) forever.
      up_in_.consume(used);
      resp_parser_.clear_body();
      if (rh.status == 101) {
        co_return Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "101 unsupported");
      }
      if (++interim > kMaxInterimResponses) {
        co_return Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "too many 1xx responses");
      }
      continue;
    }
    if (resp_parser_.head_complete() && !head_sent) {
      http::Framing framing;
      const bool bodyless = head_only || rh.status == 204 || rh.status == 304;
      if (rh.content_length && rh.status != 204 && rh.status != 304) {
        framing = {http::Framing::Kind::ContentLength, *rh.content_length};
      } else if (!bodyless) {
        if (req.version_minor >= 1) {
          framing.kind = http::Framing::Kind::Chunked;
          rechunk = true;
        } else {
          framing.kind = http::Framing::Kind::UntilClose;  // HTTP/1.0 client: close delimits the body
          client_keep_alive_ = false;
        }
      }
      http::remove_hop_by_hop(rh.headers);
      const bool close = !client_keep_alive_ || close_after_response_ || worker_.draining();
      if (close) client_keep_alive_ = false;
      // HSTS (RFC 6797) on every HTTPS response, unless the application already sets its own.
      const bool own_hsts = !extra_fields_.empty() && rh.headers.find("strict-transport-security") != nullptr;
      http::append_response_head(out_, rh.status, rh.reason, req.version_minor, rh.headers, framing, close,
                                 own_hsts ? std::string_view{} : extra_fields_);
      worker_.stats().count_response(rh.status);
      response_status_ = rh.status;
      rf_.upstream_first_byte = Clock::now() - up_sent_;
      head_sent = true;
      started = true;
    }
    for (const auto piece : resp_parser_.body()) {
      if (rechunk) http::append_chunk_header(out_, piece.size());
      out_.append(piece);
      if (rechunk) out_.append(http::kChunkEnd);
    }
    resp_parser_.clear_body();
    up_in_.consume(used);
    if (resp_parser_.message_complete()) {
      if (rechunk) out_.append(http::kLastChunk);
      if (co_await flush_client(stream_)) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      co_return std::nullopt;
    }
    if (out_.size() >= kFlushBytes) {
      if (co_await flush_client(stream_)) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
    }
  }
}

net::awaitable<bool> ProxyConnection::proxy_request(const router::Route& route, RequestLimits limits) {
  const auto& cluster = req_snap_->clusters[route.target];
  auto& head = req_parser_.head();
  client_keep_alive_ = head.keep_alive;
  sent_continue_ = false;
  request_body_bytes_ = 0;
  body_wait_ = {};

  // Build the upstream head once: hop-by-hop fields out, forwarding fields in.
  http::remove_hop_by_hop(head.headers);
  set_client_cert_headers(head.headers, route.policy.get());
  http::set_forwarding_headers(head.headers, {peer_ip_, peer_trusted(), tls_ ? "https" : "http", host_,
                                              local_port_, request_id_, client_ip_});
  http::Framing framing;
  if (head.chunked) {
    framing.kind = http::Framing::Kind::Chunked;
  } else if (head.content_length) {
    framing = {http::Framing::Kind::ContentLength, *head.content_length};
  }
  up_head_.clear();
  http::append_request_head(up_head_, head.method, target_, head.headers, framing);

  net::error_code ec;  // close() errors on a socket we drop anyway are of no interest
  for (int attempt = 0;; ++attempt) {
    if (cluster.endpoints.empty()) {
      decide(core::Outcome::NoHealthyEndpoint);
      co_return co_await reply_error(stream_, Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No),
                                     !req_parser_.message_complete());
    }
    const auto& ep = cluster.endpoints[worker_.next_endpoint(route.target, cluster.endpoints.size())];
    timed_out_ = false;
    rf_.upstream = ep.key;
    rf_.upstream_attempts = static_cast<unsigned>(attempt) + 1;
    // A retry goes on a new connection: the pool may hold more connections the upstream dropped.
    up_ = attempt == 0 ? worker_.pool().acquire(ep.key, worker_.now()) : std::nullopt;
    const bool pooled = up_.has_value();
    const auto connect_start = Clock::now();
    if (pooled) {
      worker_.stats().upstream_reuses.inc();
    } else if (auto err = co_await connect_upstream(ep.address, limits)) {
      up_.reset();
      PHI_LOG_DEBUG("[w{} c{}] upstream {}: {}", worker_.id(), id_, ep.key, err->to_string());
      decide(core::outcome_of(*err));
      co_return co_await reply_error(stream_, *err, !req_parser_.message_complete());
    }
    up_sent_ = Clock::now();
    // 0 for a pooled connection; on a retry this attempt's figure replaces the first one's.
    rf_.upstream_connect = pooled ? Clock::duration::zero() : up_sent_ - connect_start;
    up_out_ = up_head_;
    bool started = false;
    bool got_bytes = false;
    auto err = co_await send_request(head.chunked, limits);
    if (!err) err = co_await relay_response(started, got_bytes, limits);
    if (!err) {
      // Back to the pool only when both messages ended cleanly by their framing.
      ++up_->requests;
      // Any byte after the response (a body on HEAD/204/304, more than Content-Length, a second
      // response) is unexplained: whatever it is, it must never be read as another client's
      // answer. The connection is closed, and the bytes dropped.
      const bool leftover = !up_in_.empty();
      if (leftover) {
        worker_.stats().upstream_unsolicited.inc();
        up_in_.consume(up_in_.size());
      }
      // After HEAD, and after a 204/304 that announced content, the content the upstream may still
      // write was never read: it could arrive after the peek at the next acquire and be taken as
      // that request's answer. Such a connection is not pooled (HEAD is rare; one connect).
      const bool unread_content = head.method == "HEAD" || resp_parser_.head().framing_suspect;
      const bool reusable = resp_parser_.message_complete() && resp_parser_.should_keep_alive() &&
                            req_parser_.message_complete() && !leftover && !unread_content;
      if (reusable) {
        // Idle since now, not since the last tick: the watch threshold counts from here.
        worker_.pool().release(ep.key, std::move(*up_), Clock::now());
      } else {
        up_->socket.close(ec);
      }
      up_.reset();
      disarm();
      co_return client_keep_alive_ && !close_after_response_ && !worker_.draining();
    }
    const bool reused = up_->reused;
    up_->socket.close(ec);
    up_.reset();
    // A pooled connection the upstream closed just as we reused it: retry once on a fresh one,
    // but only when nothing of the request body was consumed and no response byte arrived.
    if (err->source == core::ErrorSource::Upstream && err->retryable == Retryable::OnlyIfReused && reused &&
        !got_bytes && !head.has_body() && is_safe_method(head.method) && attempt == 0) {
      worker_.stats().upstream_retries.inc();
      continue;
    }
    PHI_LOG_DEBUG("[w{} c{}] request failed: {}", worker_.id(), id_, err->to_string());
    decide(core::outcome_of(*err));
    if (started || (err->source == core::ErrorSource::Downstream && err->status() == 0)) co_return false;
    co_return co_await reply_error(stream_, *err, !req_parser_.message_complete());
  }
}

}  // namespace phigate::proxy::detail
