#include "auth_external.hpp"

#include <algorithm>
#include <array>

#include "phigate/core/strings.hpp"
#include "phigate/http/parser.hpp"
#include "upstream_attempt.hpp"
#include "worker_impl.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;
using Clock = std::chrono::steady_clock;

namespace {

/// Fields of the client's request that never go to the auth service: hop-by-hop (RFC 9110 §7.6.1),
/// framing (there is no body), and those phigate sets itself (a client must not choose them).
constexpr std::array<std::string_view, 20> kNotForwarded = {
    "connection",       "keep-alive",
    "proxy-connection", "te",
    "trailer",          "transfer-encoding",
    "upgrade",          "content-length",
    "expect",           "host",
    "x-original-url",   "x-original-method",
    "x-sent-from",      "x-real-ip",
    "x-forwarded-for",  "x-auth-request-redirect",
    "x-request-id",     "x-original-uri",
    "x-scheme",         "x-forwarded-proto",
};

bool not_forwarded(std::string_view name, const http::HeaderList& headers) {
  for (const auto n : kNotForwarded) {
    if (core::iequals(name, n)) return true;
  }
  if (core::iequals(name, "cookie")) return true;  // joined into one field below
  // Fields the client's Connection names are hop-by-hop too.
  bool named = false;
  for (const auto& h : headers) {
    if (!core::iequals(h.name, "connection")) continue;
    http::for_each_token(h.value, [&](std::string_view tok) { named = named || core::iequals(tok, name); });
  }
  return named;
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

/// The request URI as the client sent it (nginx's $request_uri); the normalised target for an
/// absolute-form request line.
std::string_view request_uri(const Request& r) {
  if (!r.head.target.empty() && r.head.target.front() == '/') return r.head.target;
  return r.target;
}

void percent_encode(std::string& out, std::string_view v) {
  constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

/// A Host value that may go into a URL of a Location: hostname or IP, optional port.
bool plain_host(std::string_view host) {
  return !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == ':' || c == '[' ||
           c == ']';
  });
}

void count(metrics::WorkerShard& stats, metrics::WorkerShard::AuthExternal what) noexcept {
  stats.auth_external[static_cast<std::size_t>(what)].inc();
}

/// 500, fail closed; `detail` (static) is the audit record's event.reason.
Decision auth_error(std::string why, std::string_view detail) {
  auto e = Error::internal(std::move(why));
  e.reason_detail = detail;
  return Decision{Outcome::AuthExternalError, std::move(e), false};
}

}  // namespace

std::string external_auth_head(const Request& r, const config::ExternalAuthPolicy& p,
                               const AuthRequestInfo& info) {
  const std::string_view scheme = info.tls ? "https" : "http";
  const auto uri = request_uri(r);
  std::string out;
  out.reserve(512 + r.head.headers.storage_bytes());
  out.append(p.method).append(" ").append(p.target).append(" HTTP/1.1\r\n");
  field(out, "Host", p.host);
  std::string cookies;
  for (const auto& h : r.head.headers) {
    if (core::iequals(h.name, "cookie")) {
      if (!cookies.empty()) cookies += "; ";
      cookies += h.value;  // RFC 9113 §8.2.3: HTTP/2 crumbs joined for HTTP/1.1
      continue;
    }
    if (not_forwarded(h.name, r.head.headers)) continue;
    field(out, h.name, h.value);
  }
  if (!cookies.empty()) field(out, "Cookie", cookies);
  field(out, "X-Request-ID", info.request_id);
  if (p.method != "GET") {
    // As ingress-nginx: with auth-method the original URI and scheme are sent too.
    field(out, "X-Original-URI", uri);
    field(out, "X-Scheme", scheme);
  }
  std::string url(scheme);
  url.append("://").append(r.host).append(uri);
  field(out, "X-Original-URL", url);
  field(out, "X-Original-Method", r.head.method);
  field(out, "X-Sent-From", "phigate");
  field(out, "X-Real-IP", info.client_ip);
  field(out, "X-Forwarded-For", info.client_ip);
  field(out, "X-Auth-Request-Redirect",
        p.request_redirect.empty() ? uri : std::string_view(p.request_redirect));
  out += p.request_fields;  // auth-proxy-set-headers (checked by translate)
  out += "\r\n";
  return out;
}

std::string external_auth_signin(const config::ExternalAuthPolicy& p, bool tls, std::string_view host,
                                 std::string_view target) {
  if (!plain_host(host)) return {};
  const std::string_view scheme = tls ? "https" : "http";
  std::string escaped_uri;
  percent_encode(escaped_uri, target);
  std::string out;
  std::string_view s = p.signin;
  while (!s.empty()) {
    const auto dollar = s.find('$');
    out.append(s.substr(0, dollar));
    if (dollar == std::string_view::npos) break;
    s.remove_prefix(dollar + 1);
    if (s.starts_with("escaped_request_uri")) {
      out += escaped_uri;
      s.remove_prefix(19);
    } else if (s.starts_with("scheme")) {
      out += scheme;
      s.remove_prefix(6);
    } else if (s.starts_with("host")) {
      out += host;
      s.remove_prefix(4);
    } else {
      return {};  // the annotation parser refused any other variable
    }
  }
  // Appended unless the URL already carries the parameter (ingress-nginx's rule).
  const auto q = out.find('?');
  if (q != std::string::npos) {
    std::string_view query(out);
    query.remove_prefix(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const auto item = query.substr(0, amp);
      if (item.starts_with(p.redirect_param + "=")) return out;
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  out += q == std::string::npos ? '?' : '&';
  out += p.redirect_param;
  out += '=';
  std::string original(scheme);
  original.append("://").append(host).append(target);
  percent_encode(out, original);
  return out;
}

void apply_auth_answer(Request& r, const config::ExternalAuthPolicy& p, const http::HeaderList& answer,
                       bool allowed) {
  auto& result = r.auth_external;
  result.set_cookie.clear();
  for (const auto& h : answer) {
    if (core::iequals(h.name, "set-cookie"))
      result.set_cookie.append("Set-Cookie: ").append(h.value).append("\r\n");
  }
  if (!allowed) return;
  // Spoofing: a client must never supply what the auth service vouches for, even when this answer
  // lacks the field.
  for (const auto& name : p.response_headers) r.head.headers.remove(name);
  for (const auto& name : p.response_headers) {
    for (const auto& h : answer) {
      if (core::iequals(h.name, name)) r.head.headers.add(h.name, h.value);
    }
  }
  const auto first = [&](std::string_view a, std::string_view b) -> std::string {
    const auto* v = answer.find(a);
    if (v == nullptr) v = answer.find(b);
    if (v == nullptr) return {};
    return v->substr(0, kAuthIdentityBytes);
  };
  result.user = first("x-auth-request-user", "x-forwarded-user");
  result.email = first("x-auth-request-email", "x-forwarded-email");
}

namespace phase {

PhaseResult auth_external(Request& r, const Snapshot& s, const ConnectionView& c) {
  if (r.policy == nullptr || !r.policy->external_auth.enabled) return std::nullopt;
  // A buffered request decided again: the first answer stands under the same policy.
  if (c.again && c.auth_external_prev != nullptr && c.auth_external_prev->by == r.policy) {
    r.auth_external = *c.auth_external_prev;
    return std::nullopt;
  }
  const auto it = s.auth_clusters.find(r.policy);
  if (it == s.auth_clusters.end() || it->second >= s.clusters.size()) {
    // translate or compile failed such a path closed; never serve it unchecked if they did not.
    return Decision{Outcome::FailClosed,
                    Error::downstream(ErrorKind::Unavailable, "auth-url without a cluster"), false};
  }
  r.auth_cluster = it->second;
  r.auth_external_pending = true;
  return std::nullopt;
}

}  // namespace phase

net::awaitable<std::optional<Decision>> run_external_auth(WorkerImpl& worker, upstream::Link& link,
                                                          upstream::Deadline& deadline, Request& r,
                                                          const Snapshot& snap, const AuthRequestInfo& info) {
  using AE = metrics::WorkerShard::AuthExternal;
  r.auth_external_pending = false;
  const auto& p = r.policy->external_auth;
  const auto& cluster = snap.clusters[r.auth_cluster];
  const auto head = external_auth_head(r, p, info);
  const auto until = Clock::now() + snap.config->limits.auth_timeout;
  const auto left = [&] {
    const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    return std::max(d, std::chrono::milliseconds(1));
  };
  const auto fail = [&](std::string why, std::string_view detail) {
    count(worker.stats(), AE::Error);
    return std::optional<Decision>(auth_error(std::move(why), detail));
  };
  AttemptPlan plan(worker, cluster, r, p.method, r.auth_cluster);
  http::Parser parser(http::Parser::Kind::Response,
                      http::ParserLimits{kAuthHeadBytes, kAuthHeadBytes, kAuthHeadFields});
  parser.expect_no_body(p.method == "HEAD");
  std::optional<Error> err;
  std::size_t picked_index = upstream::kNoEndpoint;
  // Two tries at most: the second only after a stale pooled connection that got no byte back.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto picked = plan.next();
    if (picked.index == upstream::kNoEndpoint) {
      if (!err) err = Error::upstream(ErrorKind::NoHealthyEndpoint, core::Retryable::No);
      break;
    }
    picked_index = picked.index;
    const auto& ep = cluster.endpoints[picked.index];
    err.reset();
    if (!link.take_pooled(ep, attempt, worker.now(), cluster.tls.get())) {
      const auto t = left();
      err = co_await link.connect(ep, {t, t, t}, deadline, cluster.tls.get());
    }
    if (!err) {
      const auto t = left();
      auto [ec, n] = co_await link.send(head, {t, t, t}, deadline);
      (void)n;
      err = link.sent(ec, core::Retryable::OnlyIfReused, deadline);
    }
    // Read the answer: head within kAuthHeadBytes, body read and dropped up to kAuthBodyBytes.
    std::size_t body = 0;
    while (!err && !parser.message_complete()) {
      auto& in = link.input();
      if (in.empty()) {
        const auto t = left();
        auto [ec, n] = co_await link.read({t, t, t}, deadline);
        Error e;
        const auto st = link.received(ec, n, deadline, e);
        if (st == upstream::Link::ReadStatus::Error) {
          err = e;
          break;
        }
        if (st == upstream::Link::ReadStatus::Eof) {
          if (parser.finish() == http::ParseStatus::Error || !parser.message_complete())
            err = Error::upstream(ErrorKind::UpstreamReset, core::Retryable::OnlyIfReused, "auth answer cut");
          break;
        }
        continue;
      }
      std::size_t used = 0;
      const auto st = parser.feed(in.data(), in.size(), used);
      for (const auto b : parser.body()) body += b.size();
      parser.clear_body();
      in.consume(used);
      if (st == http::ParseStatus::Error) {
        err = parser.error();
        break;
      }
      if (parser.head_complete() && parser.head().status < 200) {
        err = Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No, "auth answer 1xx");
        break;
      }
      if (body > kAuthBodyBytes) {
        err = Error::upstream(ErrorKind::UpstreamBadResponse, core::Retryable::No,
                              "auth answer body too large");
        break;
      }
    }
    if (!err) break;
    const bool stale = link.reused() && !link.got_bytes() && err->source == core::ErrorSource::Upstream;
    plan.report(picked.index, attempt_result(*err));
    link.discard();
    if (!stale) break;
    parser.reset();
  }
  if (err) {
    if (deadline.upstream_timed_out() || err->kind == ErrorKind::UpstreamTimeout ||
        err->kind == ErrorKind::ConnectTimeout)
      co_return fail("auth service timed out", "auth_external_timeout");
    if (err->kind == ErrorKind::UpstreamBadResponse || err->kind == ErrorKind::HeaderTooLarge)
      co_return fail("auth service: " + std::string(err->reason()), "auth_external_bad_answer");
    co_return fail("auth service: " + std::string(err->reason()), "auth_external_unreachable");
  }
  const auto& answer = parser.head();
  plan.report(picked_index,
              answer.status >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success);
  link.finish(parser.should_keep_alive() && link.input().empty(), worker.now());
  const int status = answer.status;
  if (status >= 200 && status < 300) {
    apply_auth_answer(r, p, answer.headers, true);
    r.auth_external.by = r.policy;
    count(worker.stats(), AE::Allowed);
    co_return std::nullopt;
  }
  apply_auth_answer(r, p, answer.headers, false);
  if (!p.always_set_cookie) r.auth_external.set_cookie.clear();
  if (status == 401) {
    count(worker.stats(), AE::Unauthorized);
    if (!p.signin.empty()) {
      r.location = external_auth_signin(p, info.tls, r.host, request_uri(r));
      if (r.location.empty()) co_return fail("no signin URL for this Host", "auth_external_bad_signin");
      co_return Decision{Outcome::AuthExternalSignin,
                         Error::downstream(ErrorKind::Unauthorized, "auth-signin"), false, 302};
    }
    co_return Decision{Outcome::AuthExternalUnauthorized,
                       Error::downstream(ErrorKind::Unauthorized, "auth service answered 401"), false};
  }
  if (status == 403) {
    count(worker.stats(), AE::Forbidden);
    co_return Decision{Outcome::AuthExternalForbidden,
                       Error::downstream(ErrorKind::Denied, "auth service answered 403"), false};
  }
  co_return fail("auth service answered " + std::to_string(status), "auth_external_status");
}

}  // namespace phigate::proxy::detail
