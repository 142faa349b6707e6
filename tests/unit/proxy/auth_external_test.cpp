// auth-url's pure parts (auth_external.hpp): the subrequest's head, the auth-signin Location, the
// answer applied to the request (identity copied, spoofed fields removed), and the phase.
#include "auth_external.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace phigate::proxy::detail {
namespace {

struct Req {
  http::MessageHead head;
  Request r{head};
  Req() {
    head.method = "POST";
    head.target = "/api/items?id=7";
    head.headers.add("Host", "app.example");
    head.headers.add("Cookie", "a=1");
    head.headers.add("cookie", "b=2");
    head.headers.add("Content-Length", "11");
    head.headers.add("Transfer-Encoding", "chunked");
    head.headers.add("Connection", "keep-alive, X-Hop");
    head.headers.add("X-Hop", "secret-hop");
    head.headers.add("Upgrade", "websocket");
    head.headers.add("X-Original-URL", "https://evil.example/");
    head.headers.add("X-Forwarded-For", "6.6.6.6");
    head.headers.add("Accept", "text/html");
    r.host = "app.example";
    r.target = "/api/items?id=7";
  }
};

config::ExternalAuthPolicy policy() {
  config::ExternalAuthPolicy p;
  p.enabled = true;
  p.host = "auth.default.svc";
  p.target = "/oauth2/auth";
  return p;
}

TEST(ExternalAuthHead, CarriesTheOriginalRequestNeverItsFramingOrHopByHop) {
  Req q;
  const auto head = external_auth_head(q.r, policy(), {true, "req-1", "192.0.2.9"});
  EXPECT_EQ(head.rfind("GET /oauth2/auth HTTP/1.1\r\nHost: auth.default.svc\r\n", 0), 0u) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  for (const char* absent : {"Content-Length", "Transfer-Encoding", "Connection", "X-Hop", "secret-hop",
                             "Upgrade", "evil.example", "6.6.6.6", "X-Original-URI", "X-Scheme"})
    EXPECT_EQ(head.find(absent), std::string::npos) << absent << "\n" << head;
  for (const char* present :
       {"\r\nCookie: a=1; b=2\r\n", "\r\nAccept: text/html\r\n", "\r\nX-Request-ID: req-1\r\n",
        "\r\nX-Original-URL: https://app.example/api/items?id=7\r\n", "\r\nX-Original-Method: POST\r\n",
        "\r\nX-Sent-From: phigate\r\n", "\r\nX-Real-IP: 192.0.2.9\r\n", "\r\nX-Forwarded-For: 192.0.2.9\r\n",
        "\r\nX-Auth-Request-Redirect: /api/items?id=7\r\n"})
    EXPECT_NE(head.find(present), std::string::npos) << present << "\n" << head;
}

// The auth service judges what the backend gets: the normalised target (never the raw `//admin`,
// `/%61dmin`, `/x/../admin`), phigate's own X-Forwarded-* facts, and no field a client could forge
// as a proxy's (X-Forwarded-*, Forwarded, ssl-client-*, X-Original-*, X-Rewrite-Url) or spell so
// that CGI/WSGI reads it as one of phigate's (`_`).
TEST(ExternalAuthHead, JudgesTheNormalisedRequestAndNoForgedProxyFields) {
  Req q;
  q.head.method = "GET";
  q.head.target = "/public/../%61dmin";
  q.r.target = "/admin";
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"X-Forwarded-Host", "public.example"},
                                                        {"X-Forwarded-Uri", "/public"},
                                                        {"X-Forwarded-Method", "GET-forged"},
                                                        {"Forwarded", "for=1.2.3.4;host=public.example"},
                                                        {"ssl-client-verify", "SUCCESS"},
                                                        {"SSL-Client-Subject-DN", "CN=admin"},
                                                        {"X-Original-Uri", "/public"},
                                                        {"X-Rewrite-Url", "/public"},
                                                        {"X_Original_URL", "https://app.example/public"}})
    q.head.headers.add(name, value);
  const auto head = external_auth_head(q.r, policy(), {true, "req-1", "192.0.2.9"});
  for (const char* absent : {"public", "%61dmin", "..", "GET-forged", "1.2.3.4", "SUCCESS", "CN=admin", "X_"})
    EXPECT_EQ(head.find(absent), std::string::npos) << absent << "\n" << head;
  for (const char* present :
       {"\r\nX-Original-URL: https://app.example/admin\r\n", "\r\nX-Forwarded-Uri: /admin\r\n",
        "\r\nX-Forwarded-Host: app.example\r\n", "\r\nX-Forwarded-Proto: https\r\n",
        "\r\nX-Forwarded-Method: GET\r\n", "\r\nX-Auth-Request-Redirect: /admin\r\n"})
    EXPECT_NE(head.find(present), std::string::npos) << present << "\n" << head;
}

TEST(ExternalAuthHead, AuthMethodAddsOriginalUriAndSchemeAndConfigMapFields) {
  Req q;
  auto p = policy();
  p.method = "POST";
  p.request_redirect = "https://app.example/back";
  p.request_fields = "X-Team: blue\r\n";
  const auto head = external_auth_head(q.r, p, {false, "r", "10.0.0.1"});
  EXPECT_EQ(head.rfind("POST /oauth2/auth HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(head.find("\r\nX-Original-URI: /api/items?id=7\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nX-Scheme: http\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nX-Auth-Request-Redirect: https://app.example/back\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nX-Team: blue\r\n\r\n"), std::string::npos);
  // The method's body framing is never sent: the subrequest has no body.
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
}

TEST(ExternalAuthSignin, RdIsTheEncodedOriginalUrlUnlessAlreadyThere) {
  auto p = policy();
  p.signin = "https://login.example/start";
  EXPECT_EQ(external_auth_signin(p, true, "app.example", "/a?b=c&d=e f"),
            "https://login.example/start?rd=https%3A%2F%2Fapp.example%2Fa%3Fb%3Dc%26d%3De%20f");
  p.signin = "https://login.example/start?x=1";
  p.redirect_param = "back";
  EXPECT_EQ(external_auth_signin(p, false, "app.example:8080", "/"),
            "https://login.example/start?x=1&back=http%3A%2F%2Fapp.example%3A8080%2F");
  p.signin = "https://$host/oauth2/start?back=$escaped_request_uri";
  EXPECT_EQ(external_auth_signin(p, true, "app.example", "/a b"),
            "https://app.example/oauth2/start?back=%2Fa%20b");
  // A Host that could inject into Location: no redirect at all.
  EXPECT_EQ(external_auth_signin(p, true, "app.example\r\nSet-Cookie: x", "/"), "");
}

TEST(ExternalAuthAnswer, IdentityCopiedAndSpoofedFieldsAlwaysRemoved) {
  Req q;
  q.head.headers.add("X-Auth-Request-User", "mallory");
  q.head.headers.add("x-auth-request-groups", "admins");
  auto p = policy();
  p.response_headers = {"x-auth-request-user", "x-auth-request-groups"};
  http::HeaderList answer;
  answer.add("X-Auth-Request-User", "alice");
  answer.add("X-Auth-Request-Email", "alice@example.org");
  answer.add("Set-Cookie", "s=1");
  answer.add("Set-Cookie", "t=2");
  apply_auth_answer(q.r, p, answer, true);
  EXPECT_EQ(q.head.headers.count("x-auth-request-user"), 1u);
  EXPECT_EQ(*q.head.headers.find("x-auth-request-user"), "alice");
  EXPECT_EQ(q.head.headers.count("x-auth-request-groups"), 0u);  // absent from the answer: still removed
  EXPECT_EQ(q.head.headers.count("x-auth-request-email"), 0u);   // not listed: not copied
  EXPECT_EQ(q.r.rare_or_empty().auth_external.user, "alice");
  EXPECT_EQ(q.r.rare_or_empty().auth_external.email, "alice@example.org");
  EXPECT_EQ(q.r.rare_or_empty().auth_external.set_cookie, "Set-Cookie: s=1\r\nSet-Cookie: t=2\r\n");
  // The identity is bounded for the audit record.
  http::HeaderList longer;
  longer.add("X-Forwarded-User", std::string(500, 'u'));
  Req q2;
  apply_auth_answer(q2.r, p, longer, true);
  EXPECT_EQ(q2.r.rare_or_empty().auth_external.user.size(), kAuthIdentityBytes);
  // A refusal edits nothing of the request.
  Req q3;
  q3.head.headers.add("X-Auth-Request-User", "mallory");
  apply_auth_answer(q3.r, p, answer, false);
  EXPECT_EQ(*q3.head.headers.find("x-auth-request-user"), "mallory");
  EXPECT_EQ(q3.r.rare_or_empty().auth_external.user, "");
}

TEST(ExternalAuthPhase, MarksTheRequestOnceAndFailsClosedWithoutCluster) {
  auto pol = std::make_shared<config::RoutePolicy>();
  pol->external_auth = policy();
  Snapshot s;
  Req q;
  q.r.policy = pol.get();
  ConnectionView c;
  // No cluster for the policy: never served unchecked.
  const auto d = phase::auth_external(q.r, s, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, core::Outcome::FailClosed);
  s.clusters.resize(3);
  s.auth_clusters.emplace(pol.get(), 2);
  Req q2;
  q2.r.policy = pol.get();
  EXPECT_FALSE(phase::auth_external(q2.r, s, c));
  EXPECT_TRUE(q2.r.auth_external_pending);
  EXPECT_EQ(q2.r.auth_cluster, 2u);
  // Decided again (buffered body) under the same policy: the first answer stands, no subrequest.
  ExternalAuthResult prev;
  prev.by = pol.get();
  prev.user = "alice";
  c.again = true;
  c.auth_external_prev = &prev;
  Req q3;
  q3.r.policy = pol.get();
  EXPECT_FALSE(phase::auth_external(q3.r, s, c));
  EXPECT_FALSE(q3.r.auth_external_pending);
  EXPECT_EQ(q3.r.rare_or_empty().auth_external.user, "alice");
  // Another policy (a reload changed the Ingress): asked again.
  auto other = std::make_shared<config::RoutePolicy>(*pol);
  s.auth_clusters.emplace(other.get(), 1);
  Req q4;
  q4.r.policy = other.get();
  EXPECT_FALSE(phase::auth_external(q4.r, s, c));
  EXPECT_TRUE(q4.r.auth_external_pending);
  // No auth-url: nothing.
  config::RoutePolicy none;
  Req q5;
  q5.r.policy = &none;
  EXPECT_FALSE(phase::auth_external(q5.r, s, c));
  EXPECT_FALSE(q5.r.auth_external_pending);
}

TEST(ExternalAuthCache, KeyExpandsVariablesAndTellsRequestsApart) {
  config::RoutePolicy pol;
  pol.resource = "Ingress shop/web";
  pol.external_auth = policy();
  pol.external_auth.cache_key = "$cookie_b|$http_x_team|$host$request_uri";
  Req q;
  q.r.policy = &pol;
  q.r.host_norm = "app.example";
  q.head.headers.add("X-Team", "blue");
  const auto k = auth_cache_key(q.r, pol.external_auth);
  EXPECT_NE(k.find("$1:2"), std::string::npos) << k;  // $cookie_b = "2" (from the second Cookie field)
  EXPECT_NE(k.find("$4:blue"), std::string::npos) << k;
  EXPECT_NE(k.find("$11:app.example$15:/api/items?id=7"), std::string::npos) << k;
  EXPECT_NE(k.find("Ingress shop/web"), std::string::npos) << k;
  // Another value of any variable is another key; so is another Ingress.
  Req q2;
  q2.r.policy = &pol;
  q2.r.host_norm = "app.example";
  q2.head.headers.add("X-Team", "red");
  EXPECT_NE(auth_cache_key(q2.r, pol.external_auth), k);
  auto other = pol;
  other.resource = "Ingress shop/other";
  q.r.policy = &other;
  EXPECT_NE(auth_cache_key(q.r, other.external_auth), k);
  // Another method or host of the same Ingress is another key (a GET's "yes" never answers a DELETE).
  q.r.policy = &pol;
  q.head.method = "DELETE";
  EXPECT_NE(auth_cache_key(q.r, pol.external_auth), k);
  q.head.method = "POST";
  q.r.host_norm = "b.example";
  EXPECT_NE(auth_cache_key(q.r, pol.external_auth), k);
  q.r.host_norm = "app.example";
  EXPECT_EQ(auth_cache_key(q.r, pol.external_auth), k);
  // A variable without a value: not cached (all requests without the cookie would share one entry).
  auto anon = pol;
  anon.external_auth.cache_key = "$cookie_session";
  q.r.policy = &anon;
  EXPECT_EQ(auth_cache_key(q.r, anon.external_auth), "");
  anon.external_auth.cache_key = "$remote_user";  // no basic auth verified
  EXPECT_EQ(auth_cache_key(q.r, anon.external_auth), "");
  q.r.policy = &other;
  // No key: not cached; an oversized expansion: not cached.
  other.external_auth.cache_key.clear();
  EXPECT_EQ(auth_cache_key(q.r, other.external_auth), "");
  other.external_auth.cache_key = "$http_x_big";
  q.head.headers.add("X-Big", std::string(kAuthCacheKeyBytes, 'x'));
  EXPECT_EQ(auth_cache_key(q.r, other.external_auth), "");
}

// nginx's proxy_cache rules: an answer with Set-Cookie (someone's session), no-store/no-cache/private
// or Vary: * is never cached.
TEST(ExternalAuthCache, SessionAndUncacheableAnswersAreNotKept) {
  http::HeaderList ok;
  ok.add("X-Auth-Request-User", "alice");
  ok.add("Cache-Control", "max-age=60");
  EXPECT_TRUE(auth_answer_cacheable(ok));
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"Set-Cookie", "_oauth2_proxy=abc; Path=/"},
                                                        {"Cache-Control", "max-age=0, no-store"},
                                                        {"cache-control", "Private"},
                                                        {"Cache-Control", "no-cache"},
                                                        {"Vary", "*"}}) {
    auto h = ok;
    h.add(name, value);
    EXPECT_FALSE(auth_answer_cacheable(h)) << name << ": " << value;
  }
}

TEST(ExternalAuthCache, EntriesExpireAndAreBounded) {
  AuthCache cache(2);
  const auto t0 = AuthCache::Clock::time_point{} + std::chrono::hours(1);
  cache.insert("a", {200, {}, t0 + std::chrono::seconds(10)});
  ASSERT_NE(cache.find("a", t0), nullptr);
  EXPECT_EQ(cache.find("a", t0)->status, 200);
  EXPECT_EQ(cache.find("a", t0 + std::chrono::seconds(10)), nullptr);  // expired
  EXPECT_EQ(cache.find("b", t0), nullptr);
  cache.insert("b", {401, {}, t0 + std::chrono::seconds(10)});
  cache.insert("c", {200, {}, t0 + std::chrono::seconds(10)});  // "a" goes
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("a", t0), nullptr);
  auto p = policy();
  EXPECT_EQ(auth_cache_ttl(p, 200), std::chrono::minutes(5));  // ingress-nginx's default
  EXPECT_EQ(auth_cache_ttl(p, 401), std::chrono::minutes(5));
  EXPECT_EQ(auth_cache_ttl(p, 403), std::chrono::seconds(0));
  p.cache_durations = {{{403}, std::chrono::seconds(7)}};
  EXPECT_EQ(auth_cache_ttl(p, 403), std::chrono::seconds(7));
  EXPECT_EQ(auth_cache_ttl(p, 200), std::chrono::seconds(0));
  // Only the fields the request needs are kept.
  p.response_headers = {"x-team"};
  http::HeaderList answer;
  answer.add("X-Team", "blue");
  answer.add("X-Other", "no");
  answer.add("Set-Cookie", "s=1");
  const auto kept = auth_cache_fields(p, answer);
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.find("x-other"), nullptr);
}

}  // namespace
}  // namespace phigate::proxy::detail
