#include "phases.hpp"

#include <algorithm>

#include "auth_external.hpp"
#include "basic_auth.hpp"

#include <array>
#include <vector>

#include "phigate/core/host_map.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/http/host.hpp"
#include "phigate/http/path.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

namespace {

Decision refuse(Outcome o, ErrorKind k, std::string context, bool must_close) {
  return Decision{o, Error::downstream(k, std::move(context)), must_close};
}

/// An absolute-form target must name the Host's host. Returns why the request must be refused
/// (400, connection closed), or nullptr. (Version, h2c and repeated Upgrade are the HTTP/1 codec's
/// refusals: http::Http1Exchange::feed_head; an HTTP/2 codec has its own.)
const char* strict_violation(const http::MessageHead& head, std::string_view host) {
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
  if (!snap.config) return true;
  const auto& off = snap.config->tls.hsts.disabled_hosts;
  if (off.empty()) return true;
  for (const auto& h : off) {
    if (core::host_matches(h, host)) return false;  // exact, or "*.suffix" one label deeper
  }
  return true;
}

// The client address goes first: every record, the audit 503's included, names the client
// behind trusted proxies, and the access lists act on it.
constexpr auto kPhases = std::to_array<PhaseEntry>({
    {"client-address", &phase::client_address},
    {"audit-healthy", &phase::audit_healthy},
    {"host", &phase::host},
    {"target", &phase::target},
    {"tls-policy", &phase::tls_policy},
    {"www-redirect", &phase::www_redirect},
    {"route", &phase::route},
    {"plain-redirect", &phase::plain_redirect},
    {"client-cert-needs-tls", &phase::client_cert_needs_tls},
    {"no-route", &phase::no_route},
    {"access", &phase::access},
    {"fail-closed", &phase::fail_closed},
    {"rate-limit", &phase::rate_limit},
    {"annotation-redirect", &phase::annotation_redirect},
    {"app-root", &phase::app_root},
    {"cors", &phase::cors},
    {"response-headers", &phase::response_headers},
    {"auth-basic", &phase::auth_basic},        // then verify_basic_auth() (basic_auth.hpp), after the phases
    {"auth-external", &phase::auth_external},  // then run_external_auth() (auth_external.hpp), after it
    {"rewrite", &phase::rewrite},
    {"canary", &phase::canary},
    {"limits", &phase::limits},
    {"body-size", &phase::body_size},
});

}  // namespace

namespace phase {

PhaseResult client_address(Request& r, const Snapshot& s, const ConnectionView& c) {
  r.client_ip.assign(c.peer_ip);
  r.client_addr = c.peer_addr != nullptr ? *c.peer_addr : std::nullopt;
  // Only a trusted proxy may name another client (nginx real_ip_recursive); anyone else's
  // X-Forwarded-For is a forgery to get past an allow list.
  if (!c.peer_trusted) return std::nullopt;
  std::vector<std::string_view> xff;
  for (const auto& h : r.head.headers) {
    if (http::iequals(h.name, "x-forwarded-for")) xff.emplace_back(h.value);
  }
  if (xff.empty()) return std::nullopt;
  if (const auto fc = access::client_behind_proxies(xff, s.trusted_proxies)) {
    r.client_ip.assign(fc->text);
    r.client_addr = fc->address;
  }
  return std::nullopt;
}

PhaseResult audit_healthy(Request&, const Snapshot& s, const ConnectionView& c) {
  // HIPAA 164.312(b): nothing is served that cannot be audited. Refused until the writer
  // recovers, unless the operator chose to block the worker instead (audit.overflow: block).
  const bool block = s.config && s.config->audit.block_on_overflow;
  if (c.audit_on && !c.audit_healthy && !block) {
    return refuse(Outcome::AuditUnavailable, ErrorKind::AuditUnavailable, {}, false);
  }
  return std::nullopt;
}

PhaseResult host(Request& r, const Snapshot&, const ConnectionView&) {
  const auto& head = r.head;
  const auto count = head.headers.count("host");
  if (count > 1 || (count == 0 && head.version_minor >= 1)) {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1; two are read differently by different parsers.
    return refuse(Outcome::HostHeader, ErrorKind::BadRequest, "missing or repeated Host", true);
  }
  const std::string* h = head.headers.find("host");
  r.host.assign(h != nullptr ? std::string_view(*h) : std::string_view{});
  router::RouteTable::normalize_host_into(r.host, r.host_norm);
  // RFC 9110 §7.2 / RFC 3986 §3.2.2: `a.example:@b.example` is routed here as a.example and may be
  // read as b.example (or as userinfo) by the upstream; a value with `/`, `\`, `?`, `#`, `%` or
  // whitespace is likewise read differently by different parsers.
  if (!http::valid_host(r.host)) {
    return refuse(Outcome::HostSyntax, ErrorKind::BadRequest, "invalid Host", true);
  }
  if (const char* why = strict_violation(head, r.host)) {
    return refuse(Outcome::StrictHttp, ErrorKind::BadRequest, why, true);
  }
  return std::nullopt;
}

PhaseResult target(Request& r, const Snapshot&, const ConnectionView&) {
  // Route, check and forward the normalised target: `/public/../admin` is `/admin` everywhere.
  if (const char* why = http::normalize_target(r.head.target, r.target)) {
    return refuse(Outcome::PathNormalisation, ErrorKind::BadRequest, why, true);
  }
  // The target is origin-form now: its path is everything before the query. Routing and access
  // use the path as Java servers resolve it (`;parameters` removed per segment).
  r.path = http::routing_path(std::string_view(r.target).substr(0, r.target.find('?')), r.route_path);
  return std::nullopt;
}

PhaseResult tls_policy(Request& r, const Snapshot& s, const ConnectionView& c) {
  if (!c.tls) return std::nullopt;
  // The newest snapshot decides what the host requires; the handshake's policy lives in the
  // connection's own. A policy change on reload therefore also ends in 421, and the client
  // reconnects under the new one. No TLS contexts at all: nothing to compare with, refused.
  const tls::HostPolicy* wanted = s.tls ? &s.tls->policy_for(r.host_norm) : nullptr;
  if (wanted == nullptr || c.conn_policy == nullptr || !c.conn_policy->same(*wanted)) {
    // RFC 9110 §15.5.20. SNI a.example (no client certificate) then Host: b.example (required)
    // must never reach b's backend; nor may a host be reached under weaker ciphers.
    return refuse(Outcome::Misdirected, ErrorKind::Misdirected,
                  "Host does not match the TLS server name's policy", true);
  }
  if (wanted->verify() == config::VerifyClient::Off) return std::nullopt;
  // Re-checked on every request, resumed sessions included: the certificate and its verdict
  // come from the session. A certificate the connection did not describe is no certificate.
  if (c.client_cert == nullptr) {
    return refuse(Outcome::ClientCertificate, ErrorKind::ClientCertificate, "no client certificate", false);
  }
  if (c.client_cert->refusal != nullptr) {
    return refuse(Outcome::ClientCertificate, ErrorKind::ClientCertificate, c.client_cert->refusal, false);
  }
  return std::nullopt;
}

PhaseResult route(Request& r, const Snapshot& s, const ConnectionView& c) {
  r.route = s.routes.match_normalized(r.host_norm, r.path);
  r.policy = r.route != nullptr ? r.route->policy.get() : nullptr;
  r.cluster = r.route != nullptr ? r.route->target : 0;
  r.hsts = c.tls && hsts_applies(s, r.host_norm, r.policy);
  return std::nullopt;
}

PhaseResult plain_redirect(Request& r, const Snapshot& s, const ConnectionView& c) {
  // Plain HTTP only where an Ingress asked for it explicitly; everything else goes to HTTPS.
  if (c.tls || (r.policy != nullptr && !r.policy->ssl_redirect && !r.policy->force_ssl_redirect)) {
    return std::nullopt;
  }
  const auto port = s.https_redirect_port != 0 ? s.https_redirect_port : c.https_port;
  auto& location = r.rare().location;
  location = https_location(r.host, r.target, port);
  // HTTP/1.0 without Host passed the host phase, but there is nothing to redirect to.
  if (location.empty() || r.head.headers.count("host") != 1) {
    location.clear();
    return refuse(Outcome::HostHeader, ErrorKind::BadRequest, "redirect needs one valid Host", true);
  }
  // Whether the 308 closes (unread body, Connection: close, drain) is the codec's choice. The
  // error is not replied: decision_status() is 308 and the Location is r.rare().location.
  return Decision{
      Outcome::Redirected,
      Error{ErrorKind::Internal, core::ErrorSource::Downstream, core::Retryable::No, "redirect to https"},
      false, 308};
}

PhaseResult client_cert_needs_tls(Request& r, const Snapshot& s, const ConnectionView& c) {
  // A host that requires client certificates is never served without TLS, whatever another
  // Ingress on the same host (or a host-less rule) says about plain HTTP: the certificate check
  // cannot happen there. An Ingress already failed closed answers its 503 later.
  if (c.tls) return std::nullopt;
  const bool failed_closed = r.policy != nullptr && !r.policy->fail_closed.empty();
  if (failed_closed) return std::nullopt;
  const bool host_requires = s.tls && s.tls->policy_for(r.host_norm).verify() != config::VerifyClient::Off;
  const bool route_requires = r.policy != nullptr && r.policy->verify_client != config::VerifyClient::Off;
  if (host_requires || route_requires) {
    return refuse(Outcome::ClientCertificateNeedsTls, ErrorKind::Denied, "client certificate over plain HTTP",
                  false);
  }
  return std::nullopt;
}

PhaseResult no_route(Request& r, const Snapshot&, const ConnectionView&) {
  if (r.route == nullptr) return refuse(Outcome::NoRoute, ErrorKind::NoRoute, {}, false);
  return std::nullopt;
}

PhaseResult access(Request& r, const Snapshot& s, const ConnectionView&) {
  if (r.route == nullptr) return refuse(Outcome::NoRoute, ErrorKind::NoRoute, {}, false);
  // Source ranges (HIPAA 164.312(a)(1) access control): refused before anything reaches the
  // upstream; the connection stays usable when the request had no unread body. A route whose
  // list is missing from the snapshot cannot be checked: refused (fail closed).
  const bool known = r.route->target < s.route_access.size();
  const auto* acl = known ? s.route_access[r.route->target].get() : nullptr;
  const bool global_ok = r.client_addr && s.global_access.admits(*r.client_addr);
  if (!global_ok) {
    return refuse(Outcome::AccessGlobal, ErrorKind::Denied, "source address", false);
  }
  if (!known) return refuse(Outcome::AccessSourceRange, ErrorKind::Denied, "source address", false);
  if (acl == nullptr) return std::nullopt;
  const auto& addr = *r.client_addr;
  // satisfy: any (nginx `satisfy any`): the allowlist and authentication are alternatives, when
  // the path has both. The denylist (and the global lists above) are never relaxed.
  const auto* p = r.policy;
  const bool any = p != nullptr && p->satisfy == config::Satisfy::Any && !acl->allow.empty() &&
                   (p->basic_auth.enabled || p->external_auth.enabled);
  if (any && !acl->deny.contains(addr)) {
    // In the allowlist: no authentication asked. Outside it: the auth phases decide.
    r.satisfied_by_allowlist = acl->allow.contains(addr);
    return std::nullopt;
  }
  if (!acl->admits(addr)) {
    return refuse(Outcome::AccessSourceRange, ErrorKind::Denied, "source address", false);
  }
  return std::nullopt;
}

PhaseResult fail_closed(Request& r, const Snapshot&, const ConnectionView&) {
  // An invalid Ingress keeps its hosts and paths claimed and answers 503, so that a protected
  // path never falls through to a broader route.
  if (r.policy != nullptr && !r.policy->fail_closed.empty()) {
    return refuse(Outcome::FailClosed, ErrorKind::Unavailable, r.policy->resource, false);
  }
  return std::nullopt;
}

PhaseResult limits(Request& r, const Snapshot& s, const ConnectionView&) {
  if (s.config) {
    const auto& cfg = *s.config;
    r.limits = {cfg.timeouts.upstream_connect, cfg.timeouts.upstream_send, cfg.timeouts.upstream_read,
                cfg.limits.request_body_bytes};
    r.limits.response_rate = cfg.limits.response_rate;
    r.limits.response_rate_after = cfg.limits.response_rate_after;
  }
  if (const auto* p = r.policy) {
    if (p->connect_timeout) r.limits.connect = *p->connect_timeout;
    if (p->send_timeout) r.limits.send = *p->send_timeout;
    if (p->read_timeout) r.limits.read = *p->read_timeout;
    if (p->body_size) r.limits.body_bytes = *p->body_size;
    // limit-rate / limit-rate-after are KiB (ingress-nginx renders `limit_rate {{.}}k`); "0" on the
    // Ingress turns a global rate off, as an annotation overrides nginx's ConfigMap value.
    if (p->rate_limit.rate_kib) r.limits.response_rate = std::uint64_t{*p->rate_limit.rate_kib} << 10;
    if (p->rate_limit.rate_after_kib)
      r.limits.response_rate_after = std::uint64_t{*p->rate_limit.rate_after_kib} << 10;
    if (p->request_buffering && s.config) {
      const auto cap = s.config->limits.request_buffer_bytes;
      r.limits.buffer_body = true;
      r.limits.buffer_bytes = std::min(p->body_buffer_bytes.value_or(cap), cap);
    }
  }
  return std::nullopt;
}

PhaseResult body_size(Request& r, const Snapshot&, const ConnectionView&) {
  // Refused from its announced length, before a byte of it is read or reaches the upstream; the
  // unread body would be parsed as the next request, so the connection closes.
  const auto& cl = r.head.content_length;
  if (r.limits.body_bytes != 0 && cl && *cl > r.limits.body_bytes) {
    return refuse(Outcome::BodyTooLarge, ErrorKind::BodyTooLarge, {}, true);
  }
  // proxy-request-buffering: a body announced over the in-memory bound is never read.
  if (r.limits.buffer_body && cl && *cl > r.limits.buffer_bytes) {
    return refuse(Outcome::BodyTooLarge, ErrorKind::BodyTooLarge, {}, true);
  }
  return std::nullopt;
}

}  // namespace phase

std::span<const PhaseEntry> request_phases() noexcept {
  return kPhases;
}

PhaseResult run_phases(Request& r, const Snapshot& s, const ConnectionView& c) {
  // Until the route phase says otherwise, an HTTPS reply carries the snapshot's HSTS field.
  r.hsts = c.tls && !s.hsts_field.empty();
  for (const auto& p : kPhases) {
    if (auto d = p.run(r, s, c)) return d;
  }
  return std::nullopt;
}

int decision_status(const Decision& d) noexcept {
  if (d.status != 0) return d.status;
  return d.outcome == Outcome::Redirected ? 308 : d.error.status();
}

bool is_redirect(const Decision& d) noexcept {
  return core::outcome_info(d.outcome).how == core::How::Redirected;
}

std::string redirect_body(const Decision& d) {
  // permanent-redirect / temporal-redirect: nginx's `return <code> <url>` with an empty body.
  if (d.outcome == Outcome::AnnotationRedirect) return {};
  return redirect_body(decision_status(d));
}

std::string redirect_body(int status) {
  std::string body = std::to_string(status);
  body += ' ';
  body += http::reason_phrase(status);
  body += '\n';
  return body;
}

std::string https_location(std::string_view host, std::string_view target, std::uint16_t https_port) {
  // Drop the port the client used for plain HTTP; keep IPv6 brackets.
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return {};
    name = name.substr(0, close + 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (name.empty()) return {};
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '-' || ch == '.' || ch == '[' || ch == ']' || ch == ':';
    if (!ok) return {};
  }
  // Absolute-form targets carry their own scheme and host: keep only path and query.
  if (!target.empty() && target.front() != '/') {
    const auto scheme = target.find("://");
    if (scheme == std::string_view::npos) return {};
    const auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  std::string loc = "https://";
  loc += name;
  if (https_port != 443) {
    loc += ':';
    loc += std::to_string(https_port);
  }
  loc += target.empty() ? std::string_view("/") : target;
  return loc;
}

void count_outcome(metrics::WorkerShard& stats, core::Outcome o) noexcept {
  stats.count_outcome(o);
  switch (o) {
    case Outcome::Misdirected:
      stats.misdirected.inc();
      break;
    case Outcome::ClientCertificate:
      stats.client_cert_refusals.inc();
      break;
    case Outcome::AuditUnavailable:
      stats.audit_fail_closed.inc();
      break;
    case Outcome::Redirected:
    case Outcome::AppRootRedirect:
    case Outcome::AnnotationRedirect:
    case Outcome::WwwRedirect:
      stats.redirects.inc();
      break;
    default:
      break;
  }
}

}  // namespace phigate::proxy::detail
