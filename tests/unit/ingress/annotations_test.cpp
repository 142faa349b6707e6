#include "phigate/ingress/annotations.hpp"

#include <gtest/gtest.h>

#include <tuple>

#include <functional>

namespace phigate::ingress {
namespace {

using namespace std::chrono_literals;
using config::RoutePolicy;

const std::string kN(kNginxPrefix);
const std::string kP(kPhigatePrefix);

ParsedAnnotations parse(std::map<std::string, std::string> a, std::string_view ns = "shop") {
  return parse_annotations(a, ns);
}

std::size_t errors(const ParsedAnnotations& p) {
  std::size_t n = 0;
  for (const auto& pr : p.problems) n += pr.severity == config::Severity::Error;
  return n;
}

struct Good {
  const char* name;
  const char* value;
  std::function<bool(const RoutePolicy&)> check;
};

TEST(IngressAnnotations, ValidValues_SetTheTypedField) {
  const std::vector<Good> cases = {
      {"ssl-redirect", "false", [](const RoutePolicy& p) { return !p.ssl_redirect; }},
      {"ssl-redirect", "true", [](const RoutePolicy& p) { return p.ssl_redirect; }},
      {"ssl-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
       [](const RoutePolicy& p) {
         return p.ssl_ciphers == "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
       }},
      {"hsts", "false", [](const RoutePolicy& p) { return !p.hsts; }},
      {"force-ssl-redirect", "true", [](const RoutePolicy& p) { return p.force_ssl_redirect; }},
      {"auth-tls-pass-certificate-to-upstream", "true",
       [](const RoutePolicy& p) { return p.auth_tls_pass_certificate; }},
      {"proxy-ssl-server-name", "on", [](const RoutePolicy& p) { return p.proxy_ssl_server_name; }},
      {"proxy-ssl-server-name", "off", [](const RoutePolicy& p) { return !p.proxy_ssl_server_name; }},
      {"proxy-ssl-verify", "off", [](const RoutePolicy& p) { return !p.proxy_ssl_verify; }},
      {"whitelist-source-range", "10.0.0.0/8, 192.168.1.1 ,2001:DB8::/32",
       [](const RoutePolicy& p) {
         return p.allow_source_ranges ==
                std::vector<std::string>{"10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32"};
       }},
      {"allowlist-source-range", "0.0.0.0/0",
       [](const RoutePolicy& p) { return p.allow_source_ranges == std::vector<std::string>{"0.0.0.0/0"}; }},
      {"denylist-source-range", "::1,fe80::/10",
       [](const RoutePolicy& p) {
         return p.deny_source_ranges == std::vector<std::string>{"::1/128", "fe80::/10"};
       }},
      {"auth-tls-verify-client", "off",
       [](const RoutePolicy& p) { return p.verify_client == config::VerifyClient::Off; }},
      {"auth-tls-verify-client", "optional_no_ca",
       [](const RoutePolicy& p) { return p.verify_client == config::VerifyClient::OptionalNoCa; }},
      {"auth-tls-secret", "shop/client-ca",
       [](const RoutePolicy& p) {
         return p.auth_tls_secret == "shop/client-ca" && p.verify_client == config::VerifyClient::On;
       }},
      {"auth-tls-secret", "client-ca",
       [](const RoutePolicy& p) { return p.auth_tls_secret == "shop/client-ca"; }},
      {"auth-tls-verify-depth", "10", [](const RoutePolicy& p) { return p.auth_tls_verify_depth == 10; }},
      {"backend-protocol", "HTTPS",
       [](const RoutePolicy& p) { return p.backend_protocol == config::BackendProtocol::Https; }},
      {"backend-protocol", "http",
       [](const RoutePolicy& p) { return p.backend_protocol == config::BackendProtocol::Http; }},
      {"backend-protocol", "GRPC",
       [](const RoutePolicy& p) { return p.backend_protocol == config::BackendProtocol::Grpc; }},
      {"backend-protocol", "grpcs",
       [](const RoutePolicy& p) { return p.backend_protocol == config::BackendProtocol::Grpcs; }},
      {"proxy-ssl-secret", "shop/upstream-client",
       [](const RoutePolicy& p) { return p.proxy_ssl_secret == "shop/upstream-client"; }},
      {"proxy-ssl-verify-depth", "1", [](const RoutePolicy& p) { return p.proxy_ssl_verify_depth == 1; }},
      {"proxy-ssl-name", "Backend.Internal",
       [](const RoutePolicy& p) { return p.proxy_ssl_name == "backend.internal"; }},
      {"proxy-ssl-protocols", "TLSv1.3  TLSv1.2",
       [](const RoutePolicy& p) { return p.proxy_ssl_protocols == "TLSv1.2 TLSv1.3"; }},
      {"proxy-ssl-protocols", "TLSv1.3",
       [](const RoutePolicy& p) { return p.proxy_ssl_protocols == "TLSv1.3"; }},
      {"proxy-ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:!aNULL:@SECLEVEL=2",
       [](const RoutePolicy& p) {
         return p.proxy_ssl_ciphers == "ECDHE-RSA-AES128-GCM-SHA256:!aNULL:@SECLEVEL=2";
       }},
      {"proxy-body-size", "0", [](const RoutePolicy& p) { return p.body_size == 0u; }},
      {"proxy-body-size", "1024", [](const RoutePolicy& p) { return p.body_size == 1024u; }},
      {"proxy-body-size", "8m", [](const RoutePolicy& p) { return p.body_size == 8u << 20; }},
      {"proxy-body-size", "512K", [](const RoutePolicy& p) { return p.body_size == 512u << 10; }},
      {"proxy-body-size", "1g", [](const RoutePolicy& p) { return p.body_size == 1ULL << 30; }},
      {"proxy-connect-timeout", "5", [](const RoutePolicy& p) { return p.connect_timeout == 5s; }},
      {"proxy-send-timeout", "500ms", [](const RoutePolicy& p) { return p.send_timeout == 500ms; }},
      {"proxy-read-timeout", "30s", [](const RoutePolicy& p) { return p.read_timeout == 30s; }},
      {"proxy-read-timeout", "1h", [](const RoutePolicy& p) { return p.read_timeout == 1h; }},
      {"proxy-read-timeout", "2m", [](const RoutePolicy& p) { return p.read_timeout == 2min; }},
      {"proxy-connect-timeout", "1ms", [](const RoutePolicy& p) { return p.connect_timeout == 1ms; }},
      {"load-balance", "ewma",
       [](const RoutePolicy& p) { return p.load_balance == config::LoadBalance::Ewma; }},
      {"load-balance", "round_robin",
       [](const RoutePolicy& p) { return p.load_balance == config::LoadBalance::RoundRobin; }},
      {"load-balance", "least_request",
       [](const RoutePolicy& p) {
         return p.load_balance == config::LoadBalance::LeastRequest && p.load_balance_set;
       }},
      {"affinity", "cookie",
       [](const RoutePolicy& p) { return p.affinity_cookie && !p.affinity_persistent; }},
      {"upstream-hash-by", "$request_uri",
       [](const RoutePolicy& p) { return p.upstream_hash_by == "$request_uri"; }},
      {"upstream-hash-by", "$binary_remote_addr",
       [](const RoutePolicy& p) { return p.upstream_hash_by == "$binary_remote_addr"; }},
      {"upstream-hash-by", "$http_x-user_id",
       [](const RoutePolicy& p) { return p.upstream_hash_by == "$http_x-user_id"; }},
      {"upstream-hash-by", "$cookie_session",
       [](const RoutePolicy& p) { return p.upstream_hash_by == "$cookie_session"; }},
      {"upstream-hash-by", "$arg_id", [](const RoutePolicy& p) { return p.upstream_hash_by == "$arg_id"; }},
  };
  for (const auto& c : cases) {
    for (const auto& prefix : {kN, kP}) {
      const auto r = parse({{prefix + c.name, c.value}});
      EXPECT_TRUE(r.problems.empty())
          << prefix << c.name << "=" << c.value << ": " << r.problems.at(0).message;
      EXPECT_TRUE(r.fail_closed.empty());
      EXPECT_TRUE(c.check(r.policy)) << prefix << c.name << "=" << c.value;
    }
  }
}

TEST(IngressAnnotations, InvalidValues_AreErrorsAndFailClosedNamingKeyAndValue) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"ssl-redirect", "yes"},
      {"ssl-ciphers", ""},
      {"ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256; ssl_verify_client off"},
      {"hsts", "off"},
      {"ssl-redirect", "True"},
      {"ssl-redirect", " true"},
      {"force-ssl-redirect", "1"},
      {"auth-tls-pass-certificate-to-upstream", "on"},
      {"proxy-ssl-server-name", "true"},
      {"proxy-ssl-verify", "yes"},
      {"whitelist-source-range", ""},
      {"whitelist-source-range", "10.0.0.1/8"},  // host bits set
      {"whitelist-source-range", "10.0.0.0/33"},
      {"whitelist-source-range", "10.0.0.0/8,"},
      {"whitelist-source-range", "10.0.0.0/8;deny all"},
      {"allowlist-source-range", "example.com"},
      {"denylist-source-range", "2001:db8::1/32"},
      {"denylist-source-range", "10.0.0.0/+8"},
      {"auth-tls-verify-client", "required"},
      {"auth-tls-verify-client", "ON"},
      {"auth-tls-secret", "a/b/c"},
      {"auth-tls-secret", "Shop/ca"},
      {"auth-tls-secret", "other/ca"},  // cross-namespace
      {"auth-tls-verify-depth", "0"},
      {"auth-tls-verify-depth", "11"},
      {"auth-tls-verify-depth", "-1"},
      {"auth-tls-verify-depth", "1x"},
      {"backend-protocol", "AJP"},
      {"backend-protocol", "AUTO_HTTP"},
      {"backend-protocol", "GRPC2"},
      {"backend-protocol", "FCGI"},
      {"backend-protocol", "HTTPS "},
      {"proxy-ssl-secret", "other/client"},
      {"proxy-ssl-secret", ""},
      {"proxy-ssl-verify-depth", "100"},
      {"proxy-ssl-name", "$host"},
      {"proxy-ssl-name", "a..b"},
      {"proxy-ssl-name", "a b"},
      {"proxy-ssl-protocols", "TLSv1.1"},
      {"proxy-ssl-protocols", "TLSv1.2 SSLv3"},
      {"proxy-ssl-protocols", " "},
      {"proxy-ssl-ciphers", "HIGH; include /etc/passwd"},
      {"proxy-ssl-ciphers", ""},
      {"proxy-body-size", "8mb"},
      {"proxy-body-size", "-1"},
      {"proxy-body-size", "1.5m"},
      {"proxy-body-size", "99999999999999999999g"},
      {"proxy-body-size", "k"},
      {"proxy-connect-timeout", "0"},
      {"proxy-connect-timeout", "2h"},
      {"proxy-connect-timeout", "3601"},
      {"proxy-send-timeout", "5 s"},
      {"proxy-read-timeout", "1d"},
      {"proxy-read-timeout", "s"},
      {"load-balance", "least_conn"},
      {"load-balance", "EWMA"},
      {"upstream-hash-by", "$request_uri$host"},
      {"upstream-hash-by", "$http_"},
      {"upstream-hash-by", "$http_a b"},
      {"upstream-hash-by", "request_uri"},
      {"upstream-hash-by", "$remote_port"},
      {"affinity", "ip"},
      {"affinity", "Cookie"},
      {"affinity-mode", "sticky"},
      // Session cookie attributes reach a Set-Cookie line: response splitting and attribute
      // injection (Domain= planting the cookie on a parent domain) must not get through.
      {"session-cookie-name", "a b"},
      {"session-cookie-name", "route;Domain=example.com"},
      {"session-cookie-name", "route\r\nSet-Cookie: admin=1"},
      {"session-cookie-name", "a=b"},
      {"session-cookie-name", "a,b"},
      {"session-cookie-name", ""},
      {"session-cookie-name", std::string(129, 'a')},
      {"session-cookie-name", "caf\xc3\xa9"},
      {"session-cookie-path", "app"},
      {"session-cookie-path", "/app; Domain=evil.example"},
      {"session-cookie-path", "/app\r\nX-Injected: 1"},
      {"session-cookie-path", "/a b"},
      {"session-cookie-path", "/a,b"},
      {"session-cookie-path", ""},
      {"session-cookie-max-age", "0"},
      {"session-cookie-max-age", "-1"},
      {"session-cookie-max-age", "1h"},
      {"session-cookie-max-age", "999999999999"},
      {"session-cookie-expires", "172800; Domain=x"},
      {"session-cookie-expires", " 60"},
      {"session-cookie-samesite", "Lax; Secure"},
      {"session-cookie-samesite", "none\r\n"},
      {"session-cookie-secure", "yes"},
  };
  for (const auto& [name, value] : cases) {
    const auto key = kN + name;
    const auto r = parse({{key, value}});
    ASSERT_EQ(r.problems.size(), 1u) << key << "=" << value;
    EXPECT_EQ(r.problems[0].severity, config::Severity::Error) << key << "=" << value;
    EXPECT_EQ(r.problems[0].key, key);
    EXPECT_EQ(r.problems[0].value, quote_value(value));
    EXPECT_EQ(r.fail_closed, "invalid annotation " + key + "=" + quote_value(value));
  }
}

TEST(IngressAnnotations, CookieAffinity_EveryAttributeParsedWithoutWarnings) {
  const auto r = parse({{kN + "affinity", "cookie"},
                        {kN + "affinity-mode", "persistent"},
                        {kN + "session-cookie-name", "route_v2"},
                        {kN + "session-cookie-path", "/portal/"},
                        {kN + "session-cookie-max-age", "3600"},
                        {kN + "session-cookie-expires", "172800"},
                        {kN + "session-cookie-secure", "true"},
                        {kN + "session-cookie-samesite", "lax"}});
  EXPECT_TRUE(r.problems.empty()) << r.problems.at(0).message;
  EXPECT_TRUE(r.not_enforced.empty());
  const auto& p = r.policy;
  EXPECT_TRUE(p.affinity_cookie);
  EXPECT_TRUE(p.affinity_persistent);
  EXPECT_EQ(p.session_cookie_name, "route_v2");
  EXPECT_EQ(p.session_cookie_path, "/portal/");
  EXPECT_EQ(p.session_cookie_max_age, 3600u);
  EXPECT_EQ(p.session_cookie_expires, 172800u);
  EXPECT_TRUE(p.session_cookie_secure);
  EXPECT_EQ(p.session_cookie_samesite, "Lax");  // canonical spelling
}

TEST(IngressAnnotations, CookieSettingsWithoutAffinity_WarnThatTheyDoNothing) {
  const auto r = parse({{kN + "session-cookie-name", "route"}, {kN + "affinity-mode", "balanced"}});
  ASSERT_EQ(r.problems.size(), 2u);
  for (const auto& pr : r.problems) {
    EXPECT_EQ(pr.severity, config::Severity::Warning);
    EXPECT_NE(pr.message.find("without affinity: cookie"), std::string::npos);
  }
  EXPECT_TRUE(r.fail_closed.empty());
}

TEST(IngressAnnotations, BalancingAnnotations_AreEnforcedSoNoLongerWarn) {
  const auto r = parse({{kN + "load-balance", "ewma"}, {kN + "upstream-hash-by", "$http_x_user"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.not_enforced.empty());
  EXPECT_TRUE(r.policy.load_balance_set);
  EXPECT_FALSE(parse({}).policy.load_balance_set);  // no annotation: the global default applies
}

TEST(IngressAnnotations, Snippets_RejectedUnderBothPrefixesWhateverTheValue) {
  for (const auto& key : {kN + "configuration-snippet", kN + "server-snippet", kN + "auth-snippet",
                          kP + "stream-snippet", kN + "modsecurity-snippet"}) {
    const auto r = parse({{key, "more_set_headers \"X: y\";"}});
    ASSERT_EQ(errors(r), 1u) << key;
    EXPECT_NE(r.problems[0].message.find("snippet"), std::string::npos);
    EXPECT_EQ(r.fail_closed, "invalid annotation " + key + "=\"more_set_headers \\\"X: y\\\";\"");
  }
  // Overriding a snippet with the other prefix does not make it acceptable.
  const auto both = parse({{kN + "server-snippet", ""}, {kP + "server-snippet", ""}});
  EXPECT_EQ(errors(both), 2u);
}

// Keys from manifest files are not validated by an API server: a CR/LF in one must not reach the
// log through fail_closed (log injection). Found by fuzz/annotations.cpp.
TEST(IngressAnnotations, KeyWithControlBytes_IsQuotedInFailClosed) {
  const std::string key = kN + "server-snippet\nERROR forged line";
  const auto r = parse({{key, "x"}});
  ASSERT_EQ(errors(r), 1u);
  EXPECT_EQ(r.fail_closed.find('\n'), std::string::npos) << r.fail_closed;
  EXPECT_EQ(r.fail_closed, "invalid annotation " + quote_value(key, 320) + "=\"x\"");
}

TEST(IngressAnnotations, UnknownNameUnderOurPrefixes_IsAWarningOtherPrefixesIgnored) {
  const auto r = parse({{kN + "proxy-buffering", "on"},
                        {kP + "something-new", "x"},
                        {"kubernetes.io/ingress.class", "phigate"},
                        {"example.com/anything", "{{ evil }}"}});
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_EQ(r.problems[0].severity, config::Severity::Warning);
  EXPECT_EQ(r.problems[0].key, kN + "proxy-buffering");
  EXPECT_EQ(r.problems[1].key, kP + "something-new");
  EXPECT_TRUE(r.fail_closed.empty());
}

TEST(IngressAnnotations, UnsupportedAccessControl_FailsClosedInsteadOfServingUnprotected) {
  for (const auto& name : {"auth-type", "auth-url", "auth-secret", "auth-tls-match-cn", "satisfy"}) {
    const auto r = parse({{kN + name, "basic"}});
    EXPECT_EQ(errors(r), 1u) << name;
    EXPECT_FALSE(r.fail_closed.empty()) << name;
  }
}

TEST(IngressAnnotations, AccessControlTypos_FailClosedInsteadOfBeingIgnored) {
  // A misspelled restriction would otherwise be a warning and the backend served without it.
  for (const auto& key :
       {kN + "whitelist-source-ranges", kN + "allowlist_source_range", kP + "Denylist-Source-Range",
        kN + "Auth-TLS-Secret", kN + "auth_tls_verify_client", kN + "ip-whitelist"}) {
    const auto r = parse({{key, "10.0.0.0/8"}});
    EXPECT_EQ(errors(r), 1u) << key;
    EXPECT_FALSE(r.fail_closed.empty()) << key;
  }
}

TEST(IngressAnnotations, MisprefixedAccessControl_FailsClosed) {
  for (const auto& key : {std::string("nginx.ingress.kubernetes.io.auth-tls-secret"),
                          std::string("nginx.ingres.kubernetes.io/auth-tls-secret"),
                          std::string("ingress.kubernetes.io/whitelist-source-range"),
                          std::string("auth-tls-secret"), std::string("phigate/denylist-source-range")}) {
    const auto r = parse({{key, "shop/ca"}});
    ASSERT_EQ(errors(r), 1u) << key;
    EXPECT_NE(r.problems[0].message.find("its prefix is neither"), std::string::npos) << key;
    EXPECT_FALSE(r.fail_closed.empty()) << key;
  }
  // Other controllers' and Kubernetes' own keys that restrict nothing stay ignored.
  for (const auto& key :
       {std::string("kubernetes.io/ingress.class"), std::string("example.com/owner"),
        std::string("nginx.org/rewrites"), std::string("ingress.kubernetes.io/rewrite-target")}) {
    const auto r = parse({{key, "x"}});
    EXPECT_TRUE(r.problems.empty()) << key;
  }
}

TEST(IngressAnnotations, PhigatePrefixWinsOverNginx) {
  const auto r = parse({{kN + "proxy-body-size", "1m"}, {kP + "proxy-body-size", "2m"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.policy.body_size, 2u << 20);
  // An invalid value that is overridden does not count.
  const auto o = parse({{kN + "load-balance", "bogus"}, {kP + "load-balance", "ewma"}});
  EXPECT_TRUE(o.problems.empty());
  EXPECT_EQ(o.policy.load_balance, config::LoadBalance::Ewma);
}

TEST(IngressAnnotations, Defaults_WhenNoAnnotation) {
  const auto r = parse({});
  const RoutePolicy d;
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.policy.ssl_redirect, d.ssl_redirect);
  EXPECT_EQ(r.policy.verify_client, config::VerifyClient::Off);
  EXPECT_FALSE(r.policy.body_size);
  EXPECT_FALSE(r.policy.connect_timeout);
  EXPECT_TRUE(r.policy.upstream_hash_by.empty());
}

TEST(IngressAnnotations, AllowlistAndWhitelist_MergedWithoutDuplicates) {
  const auto r = parse({{kN + "allowlist-source-range", "10.0.0.0/8, 192.0.2.0/24"},
                        {kN + "whitelist-source-range", "192.0.2.0/24,198.51.100.7"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.policy.allow_source_ranges,
            (std::vector<std::string>{"10.0.0.0/8", "192.0.2.0/24", "198.51.100.7/32"}));
}

TEST(IngressAnnotations, AuthTls_VerifyClientExplicitWinsOverDefault) {
  const auto r = parse({{kN + "auth-tls-secret", "ca"}, {kN + "auth-tls-verify-client", "optional"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.policy.verify_client, config::VerifyClient::Optional);
}

TEST(IngressAnnotations, AuthTls_VerifyClientOnWithoutSecretIsAnError) {
  for (const char* v : {"on", "optional"}) {
    const auto r = parse({{kN + "auth-tls-verify-client", v}});
    EXPECT_EQ(errors(r), 1u) << v;
    EXPECT_EQ(r.fail_closed, "invalid annotation " + kN + "auth-tls-verify-client=\"" + v + "\"");
  }
  EXPECT_TRUE(parse({{kN + "auth-tls-verify-client", "optional_no_ca"}}).problems.empty());
}

TEST(IngressAnnotations, ProxySsl_VerifiesByDefaultAndWithoutSecretUsesTheSystemStore) {
  // phigate verifies HTTPS backends unless told not to (ingress-nginx's default is off).
  EXPECT_TRUE(parse({}).policy.proxy_ssl_verify);
  const auto https = parse({{kN + "backend-protocol", "HTTPS"}, {kN + "proxy-ssl-verify", "on"}});
  EXPECT_TRUE(https.problems.empty());
  EXPECT_TRUE(https.not_enforced.empty());
  EXPECT_TRUE(https.policy.proxy_ssl_verify);
}

TEST(IngressAnnotations, ProxySsl_WithAPlainBackendSaysItHasNoEffect) {
  const auto r = parse({{kN + "proxy-ssl-verify", "on"}, {kN + "proxy-ssl-name", "a.example"}});
  EXPECT_TRUE(r.problems.empty());
  ASSERT_EQ(r.not_enforced.size(), 2u);
  EXPECT_NE(r.not_enforced[0].message.find("backend is plain HTTP"), std::string::npos);
}

TEST(IngressAnnotations, Phi_MarksThePolicy) {
  EXPECT_FALSE(parse({}).policy.phi);
  EXPECT_TRUE(parse({{"phigate.io/phi", "true"}}).policy.phi);
  EXPECT_FALSE(parse({{"phigate.io/phi", "false"}}).policy.phi);
  EXPECT_EQ(errors(parse({{"phigate.io/phi", "yes please"}})), 1u);
}

TEST(IngressAnnotations, FailClosed_FirstErrorInKeyOrderAllErrorsReported) {
  const auto r = parse({{kN + "proxy-read-timeout", "forever"}, {kN + "load-balance", "random"}});
  EXPECT_EQ(errors(r), 2u);
  EXPECT_EQ(r.fail_closed, "invalid annotation " + kN + "load-balance=\"random\"");
}

TEST(IngressAnnotations, QuoteValue_EscapesAndTruncates) {
  EXPECT_EQ(quote_value("abc"), "\"abc\"");
  EXPECT_EQ(quote_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote_value("line\nforged: x\x7f\xc3\xa9"), "\"line\\x0aforged: x\\x7f\\xc3\\xa9\"");
  const std::string long_value(150, 'x');
  EXPECT_EQ(quote_value(long_value), "\"" + std::string(100, 'x') + "\" (truncated)");
  const auto r = parse({{kN + "load-balance", long_value}});
  EXPECT_EQ(r.fail_closed,
            "invalid annotation " + kN + "load-balance=\"" + std::string(100, 'x') + "\" (truncated)");
}

TEST(IngressAnnotationsHealth, HealthCheckValuesSetTheTypedFields) {
  const auto r = parse({{kP + "health-check-path", "/healthz?full=1"},
                        {kP + "health-check-interval", "5s"},
                        {kP + "health-check-timeout", "500ms"},
                        {kP + "health-check-healthy-threshold", "2"},
                        {kP + "health-check-unhealthy-threshold", "4"},
                        {kP + "health-check-port", "8081"}});
  EXPECT_EQ(errors(r), 0u);
  EXPECT_EQ(r.policy.health_check_path, "/healthz?full=1");
  EXPECT_EQ(r.policy.health_check_interval, 5s);
  EXPECT_EQ(r.policy.health_check_timeout, 500ms);
  EXPECT_EQ(r.policy.health_check_healthy_threshold, 2u);
  EXPECT_EQ(r.policy.health_check_unhealthy_threshold, 4u);
  EXPECT_EQ(r.policy.health_check_port, 8081);
  EXPECT_TRUE(r.not_enforced.empty());
  EXPECT_FALSE(parse({}).policy.health_check_path.has_value());
}

TEST(IngressAnnotationsHealth, InvalidHealthCheckValuesAreErrors) {
  const std::vector<std::pair<const char*, const char*>> bad = {
      {"health-check-path", "healthz"},           // not absolute
      {"health-check-path", "/a b"},              // a space would split the request line
      {"health-check-path", "/a\r\nHost: evil"},  // CRLF: a forged probe request
      {"health-check-path", ""},
      {"health-check-interval", "0"},
      {"health-check-interval", "50ms"},  // under 100ms: a probe storm
      {"health-check-interval", "2h"},
      {"health-check-interval", "fast"},
      {"health-check-timeout", "5ms"},
      {"health-check-timeout", "61s"},  // over 60 s: a tenant could park probe sockets
      {"health-check-healthy-threshold", "0"},
      {"health-check-healthy-threshold", "101"},
      {"health-check-unhealthy-threshold", "-1"},
      {"health-check-unhealthy-threshold", "3x"},
      {"health-check-port", "0"},
      {"health-check-port", "65536"},
      {"health-check-port", "http"},
  };
  for (const auto& [name, value] : bad) {
    EXPECT_EQ(errors(parse({{kP + name, value}})), 1u) << name << "=" << value;
  }
}

TEST(IngressAnnotations, ProxySsl_AppliesToGrpcsAndNotToGrpc) {
  // GRPCS is TLS to the backend exactly as HTTPS is: proxy-ssl-* shape it. GRPC is plain HTTP/2.
  const auto grpcs = parse({{kN + "backend-protocol", "GRPCS"}, {kN + "proxy-ssl-name", "a.example"}});
  EXPECT_TRUE(grpcs.problems.empty());
  EXPECT_TRUE(grpcs.not_enforced.empty());
  EXPECT_EQ(grpcs.policy.backend_protocol, config::BackendProtocol::Grpcs);
  const auto grpc = parse({{kN + "backend-protocol", "GRPC"}, {kN + "proxy-ssl-name", "a.example"}});
  EXPECT_TRUE(grpc.problems.empty());
  ASSERT_EQ(grpc.not_enforced.size(), 1u);
  EXPECT_NE(grpc.not_enforced[0].message.find("backend is plain HTTP"), std::string::npos);
}

TEST(IngressAnnotations, BackendProtocol_RefusesAjpFcgiAutoHttpSayingWhatIsSupported) {
  for (const char* v : {"AJP", "FCGI", "AUTO_HTTP"}) {
    const auto r = parse({{kN + "backend-protocol", v}});
    ASSERT_EQ(errors(r), 1u) << v;
    EXPECT_NE(r.problems[0].message.find("GRPCS"), std::string::npos) << r.problems[0].message;
    EXPECT_FALSE(r.fail_closed.empty()) << v;
  }
}

// Features phigate does not have whose absence changes who can reach what or where traffic goes:
// an error (the Ingress fails closed) unless the value turns them off, never a silent warning.
TEST(IngressAnnotationsRefused, LimitsFailClosedUnlessZeroUnderBothPrefixes) {
  for (const char* name : {"global-rate-limit", "global-rate-limit-window", "global-rate-limit-key",
                           "global-rate-limit-ignored-cidrs"}) {
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + name;
      for (const char* value : {"10", "1m", "$remote_addr", "10.0.0.0/8", "00", " 0", ""}) {
        const auto r = parse({{key, value}});
        ASSERT_EQ(errors(r), 1u) << key << "=" << value;
        EXPECT_TRUE(r.problems[0].unsupported) << key;
        EXPECT_EQ(r.problems[0].message.rfind(key + "=" + quote_value(value) + ": ", 0), 0u)
            << r.problems[0].message;
        EXPECT_NE(r.problems[0].message.find("not enforced by phigate: the Ingress fails closed"),
                  std::string::npos)
            << r.problems[0].message;
        EXPECT_EQ(r.fail_closed, "unsupported annotation " + key + "=" + quote_value(value));
      }
      // ingress-nginx: 0 is no limit. Nothing to enforce: said, not refused.
      const auto off = parse({{key, "0"}});
      ASSERT_EQ(off.problems.size(), 1u) << key;
      EXPECT_EQ(off.problems[0].severity, config::Severity::Warning) << key;
      EXPECT_NE(off.problems[0].message.find("no effect"), std::string::npos) << off.problems[0].message;
      EXPECT_TRUE(off.fail_closed.empty()) << key;
    }
  }
  const auto r = parse({{kN + "global-rate-limit", "10"}});
  EXPECT_EQ(r.problems.at(0).message,
            "nginx.ingress.kubernetes.io/global-rate-limit=\"10\": rate limits are not enforced by phigate: "
            "the Ingress fails closed");
}

// limit-rate / limit-rate-after (response bandwidth, KiB as ingress-nginx renders them): typed,
// bounded; anything else fails the Ingress closed, naming the annotation.
TEST(IngressAnnotationsRateLimit, BandwidthValuesAreParsedAndBadOnesFailClosed) {
  for (const auto& prefix : {kN, kP}) {
    const auto r = parse({{prefix + "limit-rate", "256"}, {prefix + "limit-rate-after", "1024"}});
    EXPECT_TRUE(r.problems.empty()) << prefix;
    EXPECT_EQ(r.policy.rate_limit.rate_kib, std::optional<std::uint32_t>(256));
    EXPECT_EQ(r.policy.rate_limit.rate_after_kib, std::optional<std::uint32_t>(1024));
    EXPECT_FALSE(r.policy.rate_limit.any());  // no table entry for a bandwidth limit
    const auto zero = parse({{prefix + "limit-rate", "0"}});
    EXPECT_TRUE(zero.problems.empty());
    EXPECT_EQ(zero.policy.rate_limit.rate_kib, std::optional<std::uint32_t>(0));  // overrides the global
    EXPECT_EQ(parse({{prefix + "limit-rate", "10485760"}}).problems.size(), 0u);
    EXPECT_EQ(parse({{prefix + "limit-rate-after", "1073741824"}}).problems.size(), 0u);
    for (const char* name : {"limit-rate", "limit-rate-after"}) {
      for (const char* value : {"-1", "10k", "1.5", " 10", "", "0x10", "99999999999", "1073741825"}) {
        const auto bad = parse({{prefix + name, value}});
        ASSERT_EQ(errors(bad), 1u) << name << "=" << value;
        EXPECT_EQ(bad.problems[0].key, prefix + name);
        EXPECT_EQ(bad.problems[0].message.rfind("expected KiB", 0), 0u) << bad.problems[0].message;
        EXPECT_NE(bad.fail_closed.find(prefix + name), std::string::npos) << bad.fail_closed;
      }
    }
    EXPECT_EQ(errors(parse({{prefix + "limit-rate", "10485761"}})), 1u);
  }
  // One prefix cannot loosen the other's bandwidth limit.
  const auto both = parse({{kN + "limit-rate", "100"}, {kP + "limit-rate", "0"}});
  EXPECT_EQ(errors(both), 1u);
  EXPECT_FALSE(both.fail_closed.empty());
}

// limit-rps, limit-rpm, limit-connections, limit-burst-multiplier, limit-allowlist/-whitelist
// (docs/rate-limits.md): typed values; anything else fails the Ingress closed (ingress-nginx reads
// a bad number as "no limit").
TEST(IngressAnnotationsRateLimit, ValuesAreParsedUnderBothPrefixes) {
  for (const auto& prefix : {kN, kP}) {
    const auto r = parse({{prefix + "limit-rps", "10"},
                          {prefix + "limit-rpm", "600"},
                          {prefix + "limit-connections", "3"},
                          {prefix + "limit-burst-multiplier", "2"},
                          {prefix + "limit-allowlist", "10.0.0.0/8, 2001:db8::/32"},
                          {prefix + "limit-whitelist", "192.0.2.1,10.0.0.0/8"}});
    EXPECT_TRUE(r.problems.empty()) << r.problems.at(0).message;
    const auto& rl = r.policy.rate_limit;
    EXPECT_EQ(rl.rps, 10u);
    EXPECT_EQ(rl.rpm, 600u);
    EXPECT_EQ(rl.connections, 3u);
    EXPECT_EQ(rl.burst_multiplier, 2u);
    EXPECT_EQ(rl.allowlist, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"}));
  }
  EXPECT_EQ(parse({}).policy.rate_limit.burst_multiplier, 5u);  // ingress-nginx's default
  EXPECT_FALSE(parse({}).policy.rate_limit.any());
  // "0" is no limit, without a word.
  const auto zero = parse({{kN + "limit-rps", "0"}});
  EXPECT_TRUE(zero.problems.empty());
  EXPECT_FALSE(zero.policy.rate_limit.any());
}

TEST(IngressAnnotationsRateLimit, InvalidValuesFailClosed) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"limit-rps", "ten"},
                                                        {"limit-rps", "-1"},
                                                        {"limit-rps", " 5"},
                                                        {"limit-rps", "1000001"},
                                                        {"limit-rpm", "5r/m"},
                                                        {"limit-connections", "1.5"},
                                                        {"limit-burst-multiplier", "1001"},
                                                        {"limit-allowlist", "10.0.0.1/8"},
                                                        {"limit-whitelist", "example.com"}}) {
    // Next to another, valid, limit: the invalid one alone fails the Ingress.
    const std::string other = name == "limit-connections" ? "limit-rps" : "limit-connections";
    const auto r = parse({{kN + other, "10"}, {kN + name, value}});
    EXPECT_EQ(errors(r), 1u) << name << "=" << value;
    EXPECT_FALSE(r.fail_closed.empty()) << name << "=" << value;
  }
}

TEST(IngressAnnotationsRateLimit, BurstMultiplierAndAllowlistWarnWithoutALimit) {
  for (const auto& prefix : {kN, kP}) {
    const auto alone = parse({{prefix + "limit-burst-multiplier", "5"}});
    ASSERT_EQ(alone.problems.size(), 1u);
    EXPECT_EQ(alone.problems[0].severity, config::Severity::Warning);
    EXPECT_NE(alone.problems[0].message.find("no effect"), std::string::npos);
    EXPECT_TRUE(alone.fail_closed.empty());

    const auto with = parse({{prefix + "limit-burst-multiplier", "5"}, {prefix + "limit-rpm", "600"}});
    EXPECT_TRUE(with.problems.empty());
    // A connection limit has no burst: the multiplier still does nothing.
    EXPECT_EQ(parse({{prefix + "limit-burst-multiplier", "5"}, {prefix + "limit-connections", "2"}})
                  .problems.size(),
              1u);

    const auto allow = parse({{prefix + "limit-allowlist", "10.0.0.0/8"}});
    ASSERT_EQ(allow.problems.size(), 1u);
    EXPECT_EQ(allow.problems[0].severity, config::Severity::Warning);
    EXPECT_TRUE(parse({{prefix + "limit-allowlist", "10.0.0.0/8"}, {prefix + "limit-connections", "2"}})
                    .problems.empty());
  }
  // Next to a limit of 0 (no limit) it does nothing either.
  const auto zero = parse({{kN + "limit-burst-multiplier", "5"}, {kN + "limit-rps", "0"}});
  EXPECT_EQ(zero.problems.size(), 1u);
  EXPECT_EQ(errors(zero), 0u);
}

// A policy engine may require nginx.ingress.kubernetes.io/limit-*: phigate.io/ winning must not
// loosen it (a higher rate, a wider allowlist, no limit).
TEST(IngressAnnotationsRateLimit, OnePrefixCannotLoosenTheOther) {
  for (const auto& [name, nginx, phigate] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"limit-rps", "10", "1000"},
           {"limit-rpm", "10", "0"},
           {"limit-connections", "2", "0"},
           {"limit-burst-multiplier", "1", "100"},
           {"limit-allowlist", "10.0.0.0/8", "0.0.0.0/0"}}) {
    const std::string other = name == "limit-connections" ? "limit-rps" : "limit-connections";
    const auto r = parse({{kN + other, "5"}, {kN + name, nginx}, {kP + name, phigate}});
    EXPECT_EQ(errors(r), 1u) << name;
    EXPECT_FALSE(r.fail_closed.empty()) << name;
    EXPECT_EQ(errors(parse({{kN + other, "5"}, {kN + name, nginx}, {kP + name, nginx}})), 0u) << name;
  }
}

TEST(IngressAnnotationsRefused, WafTrueFailsClosedFalseWarnsOtherValuesInvalid) {
  for (const char* name : {"enable-modsecurity", "enable-owasp-core-rules"}) {
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + name;
      const auto on = parse({{key, "true"}});
      ASSERT_EQ(errors(on), 1u) << key;
      EXPECT_TRUE(on.problems[0].unsupported);
      EXPECT_EQ(on.problems[0].message.rfind(key + "=\"true\": phigate has no web application firewall", 0),
                0u)
          << on.problems[0].message;
      EXPECT_EQ(on.fail_closed, "unsupported annotation " + key + "=\"true\"");

      const auto off = parse({{key, "false"}});
      ASSERT_EQ(off.problems.size(), 1u) << key;
      EXPECT_EQ(off.problems[0].severity, config::Severity::Warning);
      EXPECT_TRUE(off.fail_closed.empty());

      for (const char* bad : {"True", "on", "1", ""}) {
        const auto r = parse({{key, bad}});
        ASSERT_EQ(errors(r), 1u) << key << "=" << bad;
        EXPECT_FALSE(r.problems[0].unsupported);
        EXPECT_EQ(r.fail_closed, "invalid annotation " + key + "=" + quote_value(bad));
      }
    }
  }
  // Without a WAF a transaction id names nothing: a warning.
  const auto id = parse({{kN + "modsecurity-transaction-id", "$request_id"}});
  ASSERT_EQ(id.problems.size(), 1u);
  EXPECT_EQ(id.problems[0].severity, config::Severity::Warning);
  EXPECT_NE(id.problems[0].message.find("web application firewall"), std::string::npos);
}

TEST(IngressAnnotationsPassthrough, SslPassthroughIsParsedTheSwitchIsTheCompileStepsToCheck) {
  // listeners.tls_passthrough is configuration: the compile step refuses the Ingress when it is off
  // (tests/unit/compile/passthrough_test.cpp); the parser only reads the value strictly.
  for (const auto& prefix : {kN, kP}) {
    const auto key = prefix + "ssl-passthrough";
    const auto on = parse({{key, "true"}});
    EXPECT_EQ(errors(on), 0u);
    EXPECT_TRUE(on.policy.ssl_passthrough);
    EXPECT_TRUE(on.fail_closed.empty());
    const auto off = parse({{key, "false"}});
    EXPECT_EQ(errors(off), 0u);
    EXPECT_FALSE(off.policy.ssl_passthrough);
    EXPECT_EQ(errors(parse({{key, "yes"}})), 1u);
  }
  // The two prefixes must agree either way: who decrypts the connection is not for one to decide.
  EXPECT_EQ(errors(parse({{kN + "ssl-passthrough", "false"}, {kP + "ssl-passthrough", "true"}})), 1u);
  EXPECT_EQ(errors(parse({{kN + "ssl-passthrough", "true"}, {kP + "ssl-passthrough", "true"}})), 0u);
}

TEST(IngressAnnotationsCanary, CanaryTrueIsACanaryFalseIsAnOrdinaryIngress) {
  for (const auto& prefix : {kN, kP}) {
    const auto key = prefix + "canary";
    const auto on = parse({{key, "true"}, {prefix + "canary-weight", "10"}});
    EXPECT_TRUE(on.canary);
    EXPECT_TRUE(on.problems.empty()) << on.problems.at(0).message;
    EXPECT_TRUE(on.policy.canary.enabled);
    EXPECT_EQ(on.policy.canary.weight, 10u);

    const auto off = parse({{key, "false"}, {prefix + "canary-by-header", "X-Canary"}});
    EXPECT_FALSE(off.canary);
    ASSERT_EQ(off.problems.size(), 1u);  // canary-by-header: no effect
    for (const auto& pr : off.problems) EXPECT_EQ(pr.severity, config::Severity::Warning) << pr.key;
    EXPECT_TRUE(off.fail_closed.empty());

    // What ingress-nginx reads as true (Go's ParseBool) is a canary.
    for (const char* v : {"True", "TRUE", "1", "t"}) {
      const auto r = parse({{key, v}});
      EXPECT_TRUE(r.canary) << v;
      EXPECT_EQ(errors(r), 0u) << v;
      EXPECT_TRUE(r.policy.canary.enabled) << v;
    }
    // What it reads as false is an ordinary Ingress (review finding F1: an Ingress ingress-nginx
    // serves must never vanish, or its paths fall through to a broader route and its policy).
    for (const char* v : {"False", "0", "f", "FALSE"}) {
      const auto r = parse({{key, v}});
      EXPECT_FALSE(r.canary) << v;
      EXPECT_EQ(errors(r), 0u) << v;
      EXPECT_TRUE(r.fail_closed.empty()) << v;
    }
    // Anything else ingress-nginx defaults to "not a canary": which was meant is unknowable, so it
    // is not a canary (its paths stay claimed) and fails closed (they answer 503).
    for (const char* v : {"yes", " true", ""}) {
      const auto r = parse({{key, v}});
      EXPECT_FALSE(r.canary) << v;
      ASSERT_EQ(errors(r), 1u) << v;
      EXPECT_FALSE(r.fail_closed.empty()) << v;
    }
  }
  // canary-* without canary: nothing to tune.
  const auto lone = parse({{kN + "canary-weight", "50"}});
  EXPECT_FALSE(lone.canary);
  ASSERT_EQ(lone.problems.size(), 1u);
  EXPECT_EQ(lone.problems[0].severity, config::Severity::Warning);
  EXPECT_NE(lone.problems[0].message.find("no effect"), std::string::npos);
  // phigate.io/ wins, but it may not switch off what the nginx key asks for: not a canary (its
  // paths stay claimed) and failed closed until the two agree (review finding F2).
  const auto split = parse({{kN + "canary", "true"}, {kP + "canary", "false"}});
  EXPECT_FALSE(split.canary);
  EXPECT_EQ(errors(split), 1u);
  EXPECT_FALSE(split.fail_closed.empty());
  // The reverse too: which was meant is unknowable, so an ordinary Ingress, failed closed (a
  // canary claims nothing, and its paths would fall through to a broader route).
  const auto reverse = parse({{kN + "canary", "false"}, {kP + "canary", "true"}});
  EXPECT_FALSE(reverse.canary);
  EXPECT_FALSE(reverse.fail_closed.empty());
  EXPECT_FALSE(is_canary({}));
}

TEST(IngressAnnotationsRefused, OnePrefixCannotSwitchOffWhatTheOtherAsksFor) {
  // A policy engine may require nginx.ingress.kubernetes.io/enable-modsecurity or a rate limit;
  // phigate.io/ winning must not turn that into a warning (review finding F2).
  for (const auto& [name, on, off] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"enable-modsecurity", "true", "false"},
                                                                      {"limit-rps", "10", "0"},
                                                                      {"ssl-passthrough", "true", "false"}}) {
    const auto r = parse({{kN + name, on}, {kP + name, off}});
    EXPECT_EQ(errors(r), 1u) << name;
    EXPECT_FALSE(r.fail_closed.empty()) << name;
    // Both off, or only one key: as before.
    EXPECT_EQ(errors(parse({{kN + name, off}, {kP + name, off}})), 0u) << name;
    EXPECT_EQ(errors(parse({{kP + name, off}})), 0u) << name;
  }
}

TEST(IngressAnnotationsRefused, OtherUnknownNamesStayWarnings) {
  // The registry's unsupported rows, an unknown name and a no-effect row: warnings (by default).
  for (const auto& [name, message] : std::vector<std::pair<std::string, std::string>>{
           {"mirror-host", "unsupported annotation, ignored: "},
           {"mirror-target", "unsupported annotation, ignored: "},
           {"limit-whatever", "unknown annotation: ignored"},
           {"proxy-buffering", "has no effect: "}}) {
    const auto r = parse({{kN + name, "true"}});
    ASSERT_EQ(r.problems.size(), 1u) << name;
    EXPECT_EQ(r.problems[0].severity, config::Severity::Warning) << name;
    EXPECT_EQ(r.problems[0].message.rfind(message, 0), 0u) << name << ": " << r.problems[0].message;
  }
}
}  // namespace
}  // namespace phigate::ingress
