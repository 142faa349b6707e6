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

/// The request URI the auth service judges (nginx's $request_uri): the normalised target, exactly
/// what was routed and what the backend gets (before rewrite-target). Never the raw one: `//admin`,
/// `/%61dmin` or `/x/../admin` would reach the backend as /admin while a path rule of the auth
/// service saw something else.
std::string_view request_uri(const Request& r) {
  return r.target;
}

/// A field name that may go to the auth service: letters, digits and '-' only (CGI/WSGI map '_'
/// and others to the same variable as a field phigate sets), as the backend's forwarding rules.
bool token_name(std::string_view n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

/// Fields whose prefix says a proxy set them: the client's are forged (phigate sets its own
/// X-Forwarded-* below; it does not send client-certificate facts to the auth service).
bool forged_prefix(std::string_view n) {
  const auto starts = [&](std::string_view p) {
    return n.size() >= p.size() && core::iequals(n.substr(0, p.size()), p);
  };
  return starts("x-forwarded-") || starts("ssl-client-") || starts("x-original-") ||
         core::iequals(n, "forwarded") || core::iequals(n, "x-rewrite-url");
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
    if (!token_name(h.name) || forged_prefix(h.name) || not_forwarded(h.name, r.head.headers)) continue;
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
  // What forward-auth services that read X-Forwarded-* (Authelia, oauth2-proxy --reverse-proxy)
  // judge: phigate's own facts, never the client's (dropped above).
  field(out, "X-Forwarded-Proto", scheme);
  field(out, "X-Forwarded-Host", r.host);
  field(out, "X-Forwarded-Uri", uri);
  field(out, "X-Forwarded-Method", r.head.method);
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
  auto& result = r.rare().auth_external;
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

namespace {

/// nginx's $http_<name>: the field (name '_' → '-', any case); repeated fields joined by ", "
/// (Cookie: "; ").
std::string http_variable(const http::HeaderList& headers, std::string_view var) {
  std::string name(var);
  std::replace(name.begin(), name.end(), '_', '-');
  const bool cookie = core::iequals(name, "cookie");
  std::string out;
  for (const auto& h : headers) {
    if (!core::iequals(h.name, name)) continue;
    if (!out.empty()) out += cookie ? "; " : ", ";
    out += h.value;
  }
  return out;
}

/// nginx's $cookie_<name>: the first cookie of that name in the Cookie fields.
std::string cookie_variable(const http::HeaderList& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (!core::iequals(h.name, "cookie")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const auto semi = v.find(';');
      auto pair = v.substr(0, semi);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      v.remove_prefix(semi + 1);
    }
  }
  return {};
}

void length_prefixed(std::string& out, std::string_view part) {
  out += std::to_string(part.size());
  out += ':';
  out += part;
}

}  // namespace

std::string auth_cache_key(const Request& r, const config::ExternalAuthPolicy& p) {
  if (p.cache_key.empty() || r.policy == nullptr) return {};
  std::string out;
  // ingress-nginx keys by server name + auth location + the key; phigate by the Ingress, the host,
  // the routed path rule and the client's method too: a "yes" for GET /public never answers a
  // DELETE, another host, or another path rule of the same Ingress.
  length_prefixed(out, r.policy->resource);
  length_prefixed(out, r.host_norm);
  length_prefixed(out, r.route != nullptr ? std::string_view(r.route->name) : std::string_view{});
  length_prefixed(out, r.head.method);
  length_prefixed(out, p.method);
  length_prefixed(out, p.host);
  length_prefixed(out, p.target);
  std::string_view k = p.cache_key;
  while (!k.empty()) {
    const auto dollar = k.find('$');
    if (dollar != 0) {
      length_prefixed(out, k.substr(0, dollar));
      if (dollar == std::string_view::npos) break;
      k.remove_prefix(dollar);
    }
    std::size_t end = 1;
    while (end < k.size() && (std::isalnum(static_cast<unsigned char>(k[end])) != 0 || k[end] == '_')) ++end;
    const auto var = k.substr(1, end - 1);
    k.remove_prefix(end);
    out += '$';  // a variable's value never reads as literal text
    std::string value;
    if (var == "host") {
      value = r.host_norm;
    } else if (var == "request_uri") {
      value = request_uri(r);
    } else if (var == "remote_user") {
      // Basic credentials verified just before (auth-type: basic); "" without them.
      if (r.auth_verified != nullptr) value = r.rare_or_empty().auth_user;
    } else if (var.starts_with("http_")) {
      value = http_variable(r.head.headers, var.substr(5));
    } else if (var.starts_with("cookie_")) {
      value = cookie_variable(r.head.headers, var.substr(7));
    } else {
      return {};  // the annotation parser refused any other variable: never cache under a guess
    }
    // A variable without a value would put every such request (say, all without the session
    // cookie, one of them signed in by a bearer token) under one entry: not cached.
    if (value.empty()) return {};
    length_prefixed(out, value);
    if (out.size() > kAuthCacheKeyBytes) return {};
  }
  return out.size() > kAuthCacheKeyBytes ? std::string() : out;
}

const AuthCache::Entry* AuthCache::find(const std::string& key, Clock::time_point now) const {
  const auto it = map_.find(key);
  return it != map_.end() && it->second.expiry > now ? &it->second : nullptr;
}

void AuthCache::insert(const std::string& key, Entry e) {
  if (max_ == 0) return;
  if (const auto it = map_.find(key); it != map_.end()) {
    it->second = std::move(e);  // answered again after it expired: its place in the order stays
    return;
  }
  if (map_.size() >= max_) {
    map_.erase(order_.front());
    order_.pop_front();
  }
  map_.emplace(key, std::move(e));
  order_.push_back(key);
}

http::HeaderList auth_cache_fields(const config::ExternalAuthPolicy& p, const http::HeaderList& answer) {
  http::HeaderList out;
  for (const auto& h : answer) {
    bool keep = core::iequals(h.name, "set-cookie") || core::iequals(h.name, "x-auth-request-user") ||
                core::iequals(h.name, "x-forwarded-user") || core::iequals(h.name, "x-auth-request-email") ||
                core::iequals(h.name, "x-forwarded-email");
    for (const auto& n : p.response_headers) keep = keep || core::iequals(h.name, n);
    if (keep) out.add(h.name, h.value);
  }
  return out;
}

bool auth_answer_cacheable(const http::HeaderList& answer) {
  for (const auto& h : answer) {
    // As nginx's proxy_cache: a Set-Cookie answer is someone's session (never replayed to another
    // request), and the auth service may forbid keeping the answer.
    if (core::iequals(h.name, "set-cookie")) return false;
    if (core::iequals(h.name, "vary") && h.value.find('*') != std::string::npos) return false;
    if (core::iequals(h.name, "cache-control")) {
      bool no = false;
      http::for_each_token(h.value, [&](std::string_view tok) {
        no = no || core::iequals(tok, "no-store") || core::iequals(tok, "private") ||
             core::iequals(tok, "no-cache") || tok.starts_with("no-cache=") || tok.starts_with("private=");
      });
      if (no) return false;
    }
  }
  return true;
}

std::chrono::seconds auth_cache_ttl(const config::ExternalAuthPolicy& p, int status) {
  if (p.cache_durations.empty()) {
    // ingress-nginx's default auth-cache-duration: "200 202 401 5m".
    return status == 200 || status == 202 || status == 401 ? std::chrono::minutes(5)
                                                           : std::chrono::seconds(0);
  }
  for (const auto& rule : p.cache_durations) {
    if (std::find(rule.statuses.begin(), rule.statuses.end(), status) != rule.statuses.end()) return rule.ttl;
  }
  return std::chrono::seconds(0);
}

namespace phase {

PhaseResult auth_external(Request& r, const Snapshot& s, const ConnectionView& c) {
  if (r.policy == nullptr || !r.policy->external_auth.enabled) return std::nullopt;
  // A buffered request decided again: the first answer stands under the same policy.
  if (c.again && c.auth_external_prev != nullptr && c.auth_external_prev->by == r.policy) {
    r.rare().auth_external = *c.auth_external_prev;
    return std::nullopt;
  }
  const auto it = s.auth_clusters.find(r.policy);
  if (it == s.auth_clusters.end() || it->second >= s.clusters.size()) {
    // translate or compile failed such a path closed; never serve it unchecked if they did not.
    return Decision{Outcome::FailClosed,
                    Error::downstream(ErrorKind::Unavailable, "auth-url without a cluster"), false};
  }
  if (r.satisfied_by_allowlist) {
    // satisfy: any, the client is in the allowlist: no subrequest. The fields the auth service
    // would vouch for are still never the client's (spoofing an identity to the backend).
    for (const auto& name : r.policy->external_auth.response_headers) r.head.headers.remove(name);
    return std::nullopt;
  }
  r.auth_cluster = it->second;
  r.auth_external_pending = true;
  return std::nullopt;
}

}  // namespace phase

namespace {

/// The request's fate from an answer (fresh or cached): 2xx allowed, 401 (sign-in), 403, else 500.
std::optional<Decision> conclude(WorkerImpl& worker, Request& r, const config::ExternalAuthPolicy& p,
                                 const AuthRequestInfo& info, int status, const http::HeaderList& fields) {
  using AE = metrics::WorkerShard::AuthExternal;
  if (status >= 200 && status < 300) {
    apply_auth_answer(r, p, fields, true);
    r.rare().auth_external.by = r.policy;
    count(worker.stats(), AE::Allowed);
    return std::nullopt;
  }
  apply_auth_answer(r, p, fields, false);
  if (!p.always_set_cookie) r.rare().auth_external.set_cookie.clear();
  if (status == 401) {
    count(worker.stats(), AE::Unauthorized);
    if (!p.signin.empty()) {
      auto& location = r.rare().location;
      location = external_auth_signin(p, info.tls, r.host, request_uri(r));
      if (location.empty()) {
        count(worker.stats(), AE::Error);
        return auth_error("no signin URL for this Host", "auth_external_bad_signin");
      }
      return Decision{Outcome::AuthExternalSignin, Error::downstream(ErrorKind::Unauthorized, "auth-signin"),
                      false, 302};
    }
    return Decision{Outcome::AuthExternalUnauthorized,
                    Error::downstream(ErrorKind::Unauthorized, "auth service answered 401"), false};
  }
  if (status == 403) {
    count(worker.stats(), AE::Forbidden);
    return Decision{Outcome::AuthExternalForbidden,
                    Error::downstream(ErrorKind::Denied, "auth service answered 403"), false};
  }
  count(worker.stats(), AE::Error);
  return auth_error("auth service answered " + std::to_string(status), "auth_external_status");
}

}  // namespace

net::awaitable<std::optional<Decision>> run_external_auth(WorkerImpl& worker, upstream::Link& link,
                                                          upstream::Deadline& deadline, Request& r,
                                                          const Snapshot& snap, const AuthRequestInfo& info) {
  using AE = metrics::WorkerShard::AuthExternal;
  r.auth_external_pending = false;
  const auto& p = r.policy->external_auth;
  const auto& cluster = snap.clusters[r.auth_cluster];
  thread_local AuthCache cache;  // one per worker thread: no lock
  const auto cache_key = auth_cache_key(r, p);
  if (!cache_key.empty()) {
    if (const auto* hit = cache.find(cache_key, Clock::now())) {
      count(worker.stats(), AE::Cached);
      const auto fields = hit->fields;  // the entry may go while the request runs
      co_return conclude(worker, r, p, info, hit->status, fields);
    }
  }
  if (link.is_open()) link.discard();  // never another exchange's connection
  const auto head = external_auth_head(r, p, info);
  const auto until = Clock::now() + snap.config->limits.auth_timeout;
  const auto left = [&] {
    const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    return std::max(d, std::chrono::milliseconds(1));
  };
  const auto client_gone = [&] { return info.stream != nullptr && info.stream->client_gone(); };
  const auto closed = [] {
    return std::optional<Decision>(
        Decision{Outcome::ClientClosed,
                 Error::downstream(ErrorKind::ClientClosed, "client left during auth-url"), true});
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
    link.discard();
    // HTTP/2: the client reset its stream (the wait was cancelled): not the auth service's fault,
    // no retry for a request nobody waits for.
    if (client_gone()) co_return closed();
    const bool stale = link.reused() && !link.got_bytes() && err->source == core::ErrorSource::Upstream;
    plan.report(picked.index, attempt_result(*err));
    if (!stale) break;
    parser.reset();
  }
  if (client_gone()) co_return closed();
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
  link.finish(p.keepalive && parser.should_keep_alive() && link.input().empty(), worker.now());
  if (!cache_key.empty() && auth_answer_cacheable(answer.headers)) {
    if (const auto ttl = auth_cache_ttl(p, answer.status); ttl.count() > 0) {
      auto fields = auth_cache_fields(p, answer.headers);
      if (fields.storage_bytes() <= kAuthCacheFieldBytes)
        cache.insert(cache_key, {answer.status, std::move(fields), Clock::now() + ttl});
    }
  }
  co_return conclude(worker, r, p, info, answer.status, answer.headers);
}

}  // namespace phigate::proxy::detail
