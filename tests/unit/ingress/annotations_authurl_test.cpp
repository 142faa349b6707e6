// External authentication annotations (auth-url and its settings; docs/auth-external.md): values,
// the SSRF rule (a Service of the cluster only), and translate's namespace and Service checks.
#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

#include "annotations_auth_impl.hpp"
#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN = "nginx.ingress.kubernetes.io/";

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

TEST(AuthUrlAnnotations, ServiceUrlAndSettings) {
  const auto r =
      parse({{kN + "auth-url", "https://oauth2-proxy.shop.svc.cluster.local:4180/oauth2/auth?a=1"},
             {kN + "auth-method", "POST"},
             {kN + "auth-signin", "https://$host/oauth2/start?rd=$escaped_request_uri"},
             {kN + "auth-signin-redirect-param", "back"},
             {kN + "auth-request-redirect", "https://app.example/"},
             {kN + "auth-response-headers", "X-Auth-Request-User, x-auth-request-email,X-Auth-Request-User"},
             {kN + "auth-always-set-cookie", "true"},
             {kN + "auth-proxy-set-headers", "auth-headers"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  const auto& a = r.policy.external_auth;
  EXPECT_TRUE(a.enabled);
  EXPECT_TRUE(a.https);
  EXPECT_EQ(a.host, "oauth2-proxy.shop.svc.cluster.local");
  EXPECT_EQ(a.service, "oauth2-proxy");
  EXPECT_EQ(a.namespace_, "shop");
  EXPECT_EQ(a.port, 4180);
  EXPECT_EQ(a.target, "/oauth2/auth?a=1");
  EXPECT_EQ(a.method, "POST");
  EXPECT_EQ(a.redirect_param, "back");
  EXPECT_EQ(a.request_redirect, "https://app.example/");
  EXPECT_EQ(a.response_headers, (std::vector<std::string>{"x-auth-request-user", "x-auth-request-email"}));
  EXPECT_TRUE(a.always_set_cookie);
  EXPECT_EQ(a.proxy_set_headers_ref, "shop/auth-headers");
}

TEST(AuthUrlAnnotations, DefaultsAsIngressNginx) {
  config::ExternalAuthPolicy a;
  EXPECT_EQ(detail::parse_auth_url_value("http://auth.shop.svc", a), "");
  EXPECT_EQ(a.port, 80);
  EXPECT_EQ(a.target, "/");
  EXPECT_EQ(a.method, "GET");
  EXPECT_EQ(a.redirect_param, "rd");
  config::ExternalAuthPolicy b;
  EXPECT_EQ(detail::parse_auth_url_value("https://auth.other.svc/x", b), "");  // namespace: translate's check
  EXPECT_EQ(b.port, 443);
  EXPECT_EQ(b.namespace_, "other");
}

// SSRF: an Ingress author must not make phigate send the client's cookies anywhere but to a
// Service of the cluster. Every other form fails the Ingress closed, the error naming the rule.
TEST(AuthUrlAnnotations, AnythingButAServiceFailsClosed) {
  for (const std::string url :
       {"https://auth.example.com/oauth2/auth", "http://10.0.0.1/auth", "http://[::1]/auth",
        "http://$host/auth", "http://auth.shop.svc.evil.com/auth", "http://user@auth.shop.svc/auth",
        "http://auth.svc/auth", "ftp://auth.shop.svc/", "//auth.shop.svc/", "http://auth.shop.svc:0/",
        "http://auth.shop.svc:99999/", "http://Auth.Shop.svc/", "http://auth.shop.svc/a b",
        "http://auth.shop.svc/$request_uri", "http://auth.shop.svc/a#frag", "http://auth.shop.svc?x",
        "http://a.b.shop.svc/", ""}) {
    const auto r = parse({{kN + "auth-url", url}});
    EXPECT_FALSE(r.fail_closed.empty()) << url;
    EXPECT_NE(r.fail_closed.find("auth-url"), std::string::npos) << url << ": " << r.fail_closed;
    config::ExternalAuthPolicy a;
    EXPECT_NE(detail::parse_auth_url_value(url, a).find("<service>.<namespace>.svc"), std::string::npos)
        << url;
  }
}

TEST(AuthUrlAnnotations, InvalidSettingsFailClosed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"auth-method", "GE T"},
      {"auth-method", ""},
      {"auth-signin", "/relative"},
      {"auth-signin", "javascript:alert(1)"},
      {"auth-signin", "https://login.example/$request_uri"},
      {"auth-signin", "https://login.example/\r\nX: y"},
      {"auth-signin-redirect-param", "r d"},
      {"auth-response-headers", "X-User,,"},
      {"auth-response-headers", "Content-Length"},
      {"auth-response-headers", "Transfer-Encoding, X-User"},
      {"auth-response-headers", "X User"},
      {"auth-request-redirect", "$request_uri"},
      {"auth-always-set-cookie", "yes please"},
      {"auth-proxy-set-headers", "other/headers"},
  };
  for (const auto& [key, value] : cases) {
    const auto r = parse({{kN + "auth-url", "http://auth.shop.svc/"}, {kN + key, value}});
    EXPECT_FALSE(r.fail_closed.empty()) << key << "=" << value;
  }
}

// What phigate does not build stays refused: the Ingress fails closed, never silently unchecked.
TEST(AuthUrlAnnotations, UnbuiltSettingsStayRefused) {
  for (const std::string key : {"auth-snippet"}) {
    const auto r = parse({{kN + "auth-url", "http://auth.shop.svc/"}, {kN + key, "1"}});
    EXPECT_FALSE(r.fail_closed.empty()) << key;
  }
}

// auth-keepalive*: validated; "0" closes each auth connection after its answer, anything else keeps
// them in the upstream pool (the default).
TEST(AuthUrlAnnotations, KeepaliveSettingsAreValidatedAndZeroClosesConnections) {
  const auto base = parse({{kN + "auth-url", "http://auth.shop.svc/"}});
  EXPECT_TRUE(base.policy.external_auth.keepalive);
  const auto off = parse({{kN + "auth-url", "http://auth.shop.svc/"}, {kN + "auth-keepalive", "0"}});
  EXPECT_TRUE(off.fail_closed.empty()) << off.fail_closed;
  EXPECT_FALSE(off.policy.external_auth.keepalive);
  const auto on = parse({{kN + "auth-url", "http://auth.shop.svc/"},
                         {kN + "auth-keepalive", "32"},
                         {kN + "auth-keepalive-requests", "1000"},
                         {kN + "auth-keepalive-timeout", "60"},
                         {kN + "auth-keepalive-share-vars", "true"}});
  EXPECT_TRUE(on.fail_closed.empty()) << on.fail_closed;
  EXPECT_TRUE(on.policy.external_auth.keepalive);
  for (const auto& [key, bad] :
       std::vector<std::pair<std::string, std::string>>{{"auth-keepalive", "-1"},
                                                        {"auth-keepalive", "many"},
                                                        {"auth-keepalive-requests", "0"},
                                                        {"auth-keepalive-timeout", "0"},
                                                        {"auth-keepalive-timeout", "60s"},
                                                        {"auth-keepalive-share-vars", "maybe"}}) {
    const auto r = parse({{kN + "auth-url", "http://auth.shop.svc/"}, {kN + key, bad}});
    EXPECT_NE(r.fail_closed.find(key), std::string::npos) << key << "=" << bad << ": " << r.fail_closed;
  }
}

TEST(AuthUrlAnnotations, CacheKeyAndDurations) {
  const auto r =
      parse({{kN + "auth-url", "http://auth.shop.svc/"},
             {kN + "auth-cache-key", "$cookie__oauth2_proxy|$http_authorization|$remote_user$host"},
             {kN + "auth-cache-duration", "200 202 10m, 401 30s,1h"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  const auto& a = r.policy.external_auth;
  EXPECT_EQ(a.cache_key, "$cookie__oauth2_proxy|$http_authorization|$remote_user$host");
  ASSERT_EQ(a.cache_durations.size(), 3u);
  EXPECT_EQ(a.cache_durations[0].statuses, (std::vector<int>{200, 202}));
  EXPECT_EQ(a.cache_durations[0].ttl, std::chrono::minutes(10));
  EXPECT_EQ(a.cache_durations[1].statuses, (std::vector<int>{401}));
  EXPECT_EQ(a.cache_durations[1].ttl, std::chrono::seconds(30));
  EXPECT_EQ(a.cache_durations[2].statuses, (std::vector<int>{200}));
  EXPECT_EQ(a.cache_durations[2].ttl, std::chrono::hours(1));
  // A variable phigate cannot expand would make a key that lets users share answers: refused.
  for (const std::string bad : {"$remote_addr", "$arg_x", "${host}", "$http_", "$cookie_", "", "a\tb"}) {
    std::string out;
    EXPECT_NE(detail::parse_auth_cache_key_value(bad, out), "") << bad;
  }
  for (const std::string bad :
       {"5m 200", "200", "200 0s", "100 5m", "600 5m", "200 2d", "200 5x", ",", "200 5m,"}) {
    std::vector<config::ExternalAuthPolicy::CacheRule> out;
    EXPECT_NE(detail::parse_auth_cache_duration_value(bad, out), "") << bad;
  }
}

}  // namespace
}  // namespace phigate::ingress
