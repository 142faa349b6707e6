// The annotation registry against what parse_annotations() does with each of its rows, the
// ingress.unsupported_annotations policy, and the conformance checks (every ingress-nginx name has a
// row, every supported row is exercised by a test).
#include "phigate/ingress/annotation_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);
const std::string kP(kPhigatePrefix);

const AnnotationOptions kWarn{};
const AnnotationOptions kFailClosed{.unsupported = config::UnsupportedAnnotations::FailClosed};

ParsedAnnotations parse(const std::map<std::string, std::string>& a, const AnnotationOptions& o = kWarn) {
  return parse_annotations(a, "shop", o);
}

std::size_t errors(const ParsedAnnotations& p) {
  std::size_t n = 0;
  for (const auto& pr : p.problems) n += pr.severity == config::Severity::Error;
  return n;
}

const AnnotationProblem* problem_for(const ParsedAnnotations& p, const std::string& key) {
  for (const auto& pr : p.problems) {
    if (pr.key == key) return &pr;
  }
  return nullptr;
}

const UnhonouredAnnotation* unhonoured_for(const ParsedAnnotations& p, const std::string& key) {
  for (const auto& u : p.unhonoured) {
    if (u.key == key) return &u;
  }
  return nullptr;
}

/// A valid value for every supported row: a new supported row needs one here (the test says so).
const std::map<std::string, std::string>& samples() {
  static const std::map<std::string, std::string> m = {
      {"affinity", "cookie"},
      {"affinity-canary-behavior", "legacy"},
      {"affinity-mode", "persistent"},
      {"allowlist-source-range", "10.0.0.0/8"},
      {"app-root", "/app"},
      {"auth-always-set-cookie", "true"},
      {"auth-cache-duration", "200 5m"},
      {"auth-cache-key", "$cookie_session"},
      {"auth-forward-authorization", "true"},
      {"auth-keepalive", "16"},
      {"auth-keepalive-requests", "1000"},
      {"auth-keepalive-share-vars", "false"},
      {"auth-keepalive-timeout", "60"},
      {"auth-method", "POST"},
      {"auth-proxy-set-headers", "auth-headers"},
      {"auth-realm", "Staff only"},
      {"auth-request-redirect", "https://app.example/"},
      {"auth-response-headers", "X-Auth-Request-User"},
      {"auth-secret", "users"},
      {"auth-secret-type", "auth-map"},
      {"auth-signin", "https://login.example/start"},
      {"auth-signin-redirect-param", "back"},
      {"auth-tls-pass-certificate-to-upstream", "true"},
      {"auth-tls-secret", "shop/ca"},
      {"auth-tls-verify-client", "off"},
      {"auth-tls-verify-depth", "2"},
      {"auth-type", "basic"},
      {"auth-url", "http://oauth2-proxy.shop.svc/oauth2/auth"},
      {"backend-protocol", "HTTPS"},
      {"canary", "true"},
      {"canary-by-cookie", "beta"},
      {"canary-by-header", "X-Canary"},
      {"canary-by-header-pattern", "^(a|b)$"},
      {"canary-by-header-value", "yes"},
      {"canary-weight", "10"},
      {"canary-weight-total", "1000"},
      {"client-body-buffer-size", "16k"},
      {"connection-proxy-header", "close"},
      {"cors-allow-credentials", "false"},
      {"cors-allow-headers", "X-Custom, Content-Type"},
      {"cors-allow-methods", "GET, POST"},
      {"cors-allow-origin", "https://app.example, https://*.example.com"},
      {"cors-expose-headers", "X-Total"},
      {"cors-max-age", "600"},
      {"custom-headers", "shop/headers"},
      {"custom-http-errors", "404,503"},
      {"default-backend", "errors"},
      {"denylist-source-range", "10.0.0.0/8"},
      {"disable-proxy-intercept-errors", "true"},
      {"enable-cors", "true"},
      {"enable-global-auth", "false"},
      {"force-ssl-redirect", "true"},
      {"from-to-www-redirect", "true"},
      {"health-check-healthy-threshold", "2"},
      {"health-check-interval", "5s"},
      {"health-check-path", "/healthz"},
      {"health-check-port", "8080"},
      {"health-check-timeout", "1s"},
      {"health-check-unhealthy-threshold", "3"},
      {"hsts", "false"},
      {"limit-allowlist", "10.0.0.0/8"},
      {"limit-burst-multiplier", "2"},
      {"limit-connections", "3"},
      {"limit-rate", "256"},
      {"limit-rate-after", "1024"},
      {"limit-rpm", "600"},
      {"limit-rps", "10"},
      {"limit-whitelist", "10.0.0.0/8"},
      {"load-balance", "ewma"},
      {"permanent-redirect", "https://www.example.com/"},
      {"permanent-redirect-code", "308"},
      {"phi", "true"},
      {"proxy-body-size", "8m"},
      {"proxy-connect-timeout", "5"},
      {"proxy-http-version", "1.1"},
      {"proxy-next-upstream", "error timeout"},
      {"proxy-next-upstream-timeout", "10"},
      {"proxy-next-upstream-tries", "3"},
      {"proxy-cookie-domain", "backend.local app.example"},
      {"proxy-cookie-path", "/internal /app"},
      {"proxy-set-headers", "upstream-headers"},
      {"proxy-read-timeout", "30"},
      {"proxy-redirect-from", "http://backend:8080/"},
      {"proxy-redirect-to", "https://app.example/"},
      {"proxy-request-buffering", "on"},
      {"proxy-send-timeout", "30"},
      {"proxy-ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"proxy-ssl-name", "backend.example"},
      {"proxy-ssl-protocols", "TLSv1.3"},
      {"proxy-ssl-secret", "shop/client"},
      {"proxy-ssl-server-name", "on"},
      {"proxy-ssl-verify", "on"},
      {"proxy-ssl-verify-depth", "2"},
      {"rewrite-target", "/$2"},
      {"satisfy", "any"},
      {"server-alias", "alias.example, *.alias.example"},
      {"service-upstream", "true"},
      {"session-cookie-expires", "3600"},
      {"session-cookie-max-age", "3600"},
      {"session-cookie-name", "SID"},
      {"session-cookie-path", "/app"},
      {"session-cookie-samesite", "Lax"},
      {"session-cookie-secure", "true"},
      {"use-regex", "true"},
      {"ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"ssl-passthrough", "true"},
      {"ssl-redirect", "false"},
      {"temporal-redirect", "/maintenance"},
      {"temporal-redirect-code", "307"},
      {"upstream-hash-by", "$request_uri"},
      {"upstream-vhost", "backend.internal:8080"},
      {"whitelist-source-range", "10.0.0.0/8"},
      {"x-forwarded-prefix", "/api"},
  };
  return m;
}

/// A value that asks for what a refused row names.
std::string turning_on(const AnnotationInfo& r) {
  if (r.off == "false") return "true";
  if (r.off == "0") return "10";
  return "x";
}

TEST(AnnotationRegistry, SortedUniqueAndFindable) {
  const auto rows = annotation_registry();
  ASSERT_GT(rows.size(), 140u);
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_LT(rows[i - 1].name, rows[i].name) << rows[i].name;
  for (const auto& r : rows) {
    EXPECT_EQ(find_annotation(r.name), &r) << r.name;
    EXPECT_FALSE(r.behaviour.empty()) << r.name;
    EXPECT_EQ(r.name.find('/'), std::string_view::npos) << r.name;  // no prefix
  }
  EXPECT_EQ(find_annotation("no-such-annotation"), nullptr);
  EXPECT_EQ(find_annotation(""), nullptr);
  EXPECT_EQ(find_annotation("Affinity"), nullptr);  // names are exact
}

// A parser only on supported rows: a refused or unsupported row with a parser would apply a
// value phigate then claims not to honour; a supported row without one would ignore it.
TEST(AnnotationRegistry, OnlySupportedRowsParse) {
  for (const auto& r : annotation_registry()) {
    const bool supported = r.support == Support::Supported || r.support == Support::SupportedWithDifferences;
    EXPECT_EQ(supported, r.parse != nullptr) << r.name;
  }
}

TEST(AnnotationRegistry, EveryIngressNginxNameHasARow) {
  std::ifstream in(std::string(PHIGATE_SOURCE_DIR) + "/tests/annotations/ingress_nginx_names.txt");
  ASSERT_TRUE(in) << "tests/annotations/ingress_nginx_names.txt";
  std::size_t documented = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string name, mark;
    words >> name >> mark;
    const auto* row = find_annotation(name);
    ASSERT_NE(row, nullptr) << name << ": no row in src/ingress/annotation_registry.cpp";
    if (mark.empty()) {
      ++documented;
      EXPECT_EQ(row->origin, AnnotationOrigin::IngressNginx) << name;
    } else if (mark == "code-only") {
      EXPECT_EQ(row->origin, AnnotationOrigin::IngressNginxCodeOnly) << name;
    } else {
      EXPECT_EQ(mark, "removed") << name;
      EXPECT_EQ(row->origin, AnnotationOrigin::IngressNginxRemoved) << name;
    }
  }
  EXPECT_EQ(documented, 130u);  // ingress-nginx v1.15.1's annotations.md
  // Every row that is not ingress-nginx's is phigate's own.
  for (const auto& r : annotation_registry()) {
    if (r.origin == AnnotationOrigin::Phigate) {
      EXPECT_TRUE(r.name == "phi" || r.name == "hsts" || r.name == "proxy-set-headers" ||
                  r.name == "auth-forward-authorization" || r.name.rfind("health-check-", 0) == 0)
          << r.name;
    }
  }
}

TEST(AnnotationRegistry, SupportedRowsParseUnderBothPrefixes) {
  for (const auto& r : annotation_registry()) {
    if (r.support != Support::Supported && r.support != Support::SupportedWithDifferences) continue;
    const auto sample = samples().find(std::string(r.name));
    ASSERT_NE(sample, samples().end()) << r.name << ": add a valid value to samples()";
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + std::string(r.name);
      // affinity: cookie, so that the session-cookie-* rows are not "no effect without affinity".
      std::map<std::string, std::string> a = {{key, sample->second}};
      if (r.group == "affinity" && r.name != "affinity") a[prefix + "affinity"] = "cookie";
      // custom-http-errors needs its error backend (else "no effect: errors pass through").
      if (r.name == "custom-http-errors") a[prefix + "default-backend"] = "errors";
      // canary-* only tune a canary Ingress (on another, any value is only "no effect").
      std::map<std::string, std::string> with;
      if (r.group == "canary" && r.name != "canary") with[prefix + "canary"] = "true";
      // auth-* (basic authentication) go together: auth-type: basic with its auth-secret.
      if (r.group == "auth") {
        with[prefix + "auth-type"] = "basic";
        with[prefix + "auth-secret"] = "users";
      }
      // proxy-redirect-from needs its -to.
      if (r.name == "proxy-redirect-from") with[prefix + "proxy-redirect-to"] = "https://app.example/";
      // client-body-buffer-size bounds proxy-request-buffering: "on" only.
      if (r.name == "client-body-buffer-size") with[prefix + "proxy-request-buffering"] = "on";
      // limit-burst-multiplier and limit-allowlist only tune a rate limit.
      if (r.name == "limit-burst-multiplier" || r.name == "limit-allowlist" || r.name == "limit-whitelist") {
        with[prefix + "limit-rps"] = "10";
      }
      a.insert(with.begin(), with.end());
      const auto p = parse(a, kFailClosed);
      EXPECT_TRUE(p.problems.empty()) << key << ": " << p.problems.at(0).message;
      EXPECT_TRUE(p.fail_closed.empty()) << key;
      // An invalid value is an error naming the key, whatever the policy.
      with[key] = "\x01 not a value";
      const auto bad = parse(with);
      ASSERT_NE(problem_for(bad, key), nullptr) << key;
      EXPECT_EQ(problem_for(bad, key)->severity, config::Severity::Error) << key;
      EXPECT_FALSE(bad.fail_closed.empty()) << key;
      // Supported with differences: listed (for `phigate validate`), not a warning.
      const auto* u = unhonoured_for(p, key);
      if (r.support == Support::SupportedWithDifferences && r.group != "backend-tls") {
        ASSERT_NE(u, nullptr) << key;
        EXPECT_EQ(u->support, Support::SupportedWithDifferences) << key;
        EXPECT_EQ(u->why, r.difference) << key;
      } else if (r.group != "backend-tls") {
        EXPECT_EQ(u, nullptr) << key;
      }
    }
  }
}

TEST(AnnotationRegistry, NoEffectRowsWarnNamingThemUnderEitherPolicy) {
  for (const auto& r : annotation_registry()) {
    if (r.support != Support::NoEffect) continue;
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + std::string(r.name);
      for (const auto* options : {&kWarn, &kFailClosed}) {
        const auto p = parse({{key, "1"}}, *options);
        ASSERT_EQ(p.problems.size(), 1u) << key;
        EXPECT_EQ(p.problems[0].key, key);
        EXPECT_EQ(p.problems[0].severity, config::Severity::Warning) << key;
        EXPECT_NE(p.problems[0].message.find("has no effect"), std::string::npos) << p.problems[0].message;
        EXPECT_TRUE(p.fail_closed.empty()) << key;
        ASSERT_NE(unhonoured_for(p, key), nullptr) << key;
        EXPECT_EQ(unhonoured_for(p, key)->support, Support::NoEffect) << key;
      }
    }
  }
}

TEST(AnnotationRegistry, RefusedRowsFailClosedUnlessTurnedOff) {
  for (const auto& r : annotation_registry()) {
    if (r.support != Support::Refused) continue;
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + std::string(r.name);
      const auto value = turning_on(r);
      for (const auto* options : {&kWarn, &kFailClosed}) {
        const auto p = parse({{key, value}}, *options);
        const auto* pr = problem_for(p, key);
        ASSERT_NE(pr, nullptr) << key;
        EXPECT_EQ(pr->severity, config::Severity::Error) << key;
        EXPECT_EQ(errors(p), 1u) << key;
        // The canary row: not served at all (translate emits nothing of it), not a 503.
        if (r.name == "canary") {
          EXPECT_TRUE(p.canary);
        } else {
          EXPECT_FALSE(p.fail_closed.empty()) << key;
          EXPECT_NE(p.fail_closed.find(key), std::string::npos) << p.fail_closed;
        }
      }
      if (!r.off.empty()) {
        const auto off = parse({{key, std::string(r.off)}}, kFailClosed);
        EXPECT_EQ(errors(off), 0u) << key;
        ASSERT_EQ(off.problems.size(), 1u) << key;
        EXPECT_EQ(off.problems[0].severity, config::Severity::Warning) << key;
        EXPECT_TRUE(off.fail_closed.empty()) << key;
        // ... but not when the other prefix asks for it (phigate.io/ cannot switch it off).
        const auto& other = prefix == kN ? kP : kN;
        const auto split = parse({{key, std::string(r.off)}, {other + std::string(r.name), value}});
        EXPECT_GE(errors(split), 1u) << key;
      }
    }
  }
}

TEST(AnnotationRegistry, UnsupportedRowsWarnOrFailClosedByPolicy) {
  for (const auto& r : annotation_registry()) {
    if (r.support != Support::Unsupported) continue;
    for (const auto& prefix : {kN, kP}) {
      const auto key = prefix + std::string(r.name);
      const auto warn = parse({{key, "x"}});
      ASSERT_EQ(warn.problems.size(), 1u) << key;
      EXPECT_EQ(warn.problems[0].severity, config::Severity::Warning) << key;
      EXPECT_NE(warn.problems[0].message.find(r.behaviour), std::string::npos) << warn.problems[0].message;
      EXPECT_TRUE(warn.fail_closed.empty()) << key;
      ASSERT_NE(unhonoured_for(warn, key), nullptr) << key;
      EXPECT_EQ(unhonoured_for(warn, key)->support, Support::Unsupported);

      const auto fail = parse({{key, "x"}}, kFailClosed);
      ASSERT_EQ(errors(fail), 1u) << key;
      EXPECT_EQ(fail.problems[0].message.rfind(key + "=\"x\": unsupported annotation", 0), 0u)
          << fail.problems[0].message;
      EXPECT_NE(fail.problems[0].message.find("ingress.unsupported_annotations is fail_closed"),
                std::string::npos);
      EXPECT_EQ(fail.fail_closed, "unsupported annotation " + key + "=\"x\"");
      EXPECT_EQ(unhonoured_for(fail, key), nullptr) << key;  // an error, not a note
    }
  }
}

TEST(AnnotationRegistry, UnknownNamesAreUnsupportedAccessControlLookingOnesErrors) {
  for (const auto& prefix : {kN, kP}) {
    const auto key = prefix + "something-new";
    const auto warn = parse({{key, "x"}});
    ASSERT_EQ(warn.problems.size(), 1u);
    EXPECT_EQ(warn.problems[0].severity, config::Severity::Warning);
    EXPECT_EQ(warn.problems[0].message, "unknown annotation: ignored");
    const auto fail = parse({{key, "x"}}, kFailClosed);
    ASSERT_EQ(errors(fail), 1u);
    EXPECT_EQ(fail.fail_closed, "unsupported annotation " + key + "=\"x\"");
    // Access-control-looking unknown names fail closed under either policy.
    for (const char* name : {"auth-foo", "ip-whitelist", "Whitelist-Source-Ranges", "Satisfy"}) {
      for (const auto* options : {&kWarn, &kFailClosed}) {
        const auto p = parse({{prefix + name, "10.0.0.0/8"}}, *options);
        EXPECT_EQ(errors(p), 1u) << name;
        EXPECT_FALSE(p.fail_closed.empty()) << name;
      }
    }
  }
}

// An Ingress author who must not get an unsupported feature ignored under fail_closed tries to
// slip one past the policy: another spelling, the other prefix, a phigate.io/ override.
TEST(AnnotationRegistry, FailClosedCannotBeDodged) {
  // A misspelled supported name is unknown: under fail_closed, an error, not silently ignored.
  for (const char* key : {"nginx.ingress.kubernetes.io/Rewrite-Target", "phigate.io/rewrite_target",
                          "nginx.ingress.kubernetes.io/ssl-redirect "}) {
    const auto p = parse({{key, "/"}}, kFailClosed);
    EXPECT_EQ(errors(p), 1u) << key;
  }
  // phigate.io/ wins, but naming an unsupported feature under it is still unsupported.
  const auto both =
      parse({{kN + "mirror-target", "http://x"}, {kP + "mirror-target", "http://x"}}, kFailClosed);
  EXPECT_EQ(errors(both), 1u);
  EXPECT_FALSE(both.fail_closed.empty());
  // A no-effect row does not shield an unsupported one next to it.
  const auto mixed = parse({{kN + "proxy-buffering", "on"}, {kN + "mirror-target", "http://x"}}, kFailClosed);
  EXPECT_EQ(errors(mixed), 1u);
  EXPECT_NE(mixed.fail_closed.find("mirror-target"), std::string::npos);
  // Snippets stay errors under warn, whatever the other prefix says.
  EXPECT_EQ(errors(parse({{kP + "configuration-snippet", ""}})), 1u);
  // The value is quoted in the message and in fail_closed (log injection).
  const auto crlf = parse({{kN + "mirror-target", "a\r\nERROR forged"}}, kFailClosed);
  ASSERT_EQ(errors(crlf), 1u);
  EXPECT_EQ(crlf.problems[0].message.find('\n'), std::string::npos);
  EXPECT_EQ(crlf.fail_closed.find('\n'), std::string::npos);
}

TEST(AnnotationRegistry, UnhonouredListsDifferencesAndNoEffectInKeyOrder) {
  const auto p = parse({{kN + "proxy-buffering", "on"},
                        {kN + "backend-protocol", "HTTPS"},
                        {kN + "mirror-target", "http://x"},
                        {kN + "proxy-connect-timeout", "5"},
                        {kN + "ssl-redirect", "true"}});
  EXPECT_TRUE(p.fail_closed.empty());
  ASSERT_EQ(p.unhonoured.size(), 4u);
  EXPECT_EQ(p.unhonoured[0].key, kN + "backend-protocol");
  EXPECT_EQ(p.unhonoured[0].support, Support::SupportedWithDifferences);
  EXPECT_EQ(p.unhonoured[1].key, kN + "mirror-target");
  EXPECT_EQ(p.unhonoured[1].support, Support::Unsupported);
  EXPECT_EQ(p.unhonoured[2].key, kN + "proxy-buffering");
  EXPECT_EQ(p.unhonoured[2].support, Support::NoEffect);
  EXPECT_EQ(p.unhonoured[3].key, kN + "proxy-connect-timeout");
  EXPECT_EQ(p.unhonoured[3].support, Support::SupportedWithDifferences);
  // A supported-with-differences row that also has no effect (proxy-ssl-* on a plain backend) is
  // listed once, as no effect.
  const auto plain = parse({{kN + "proxy-ssl-protocols", "TLSv1.3"}});
  ASSERT_EQ(plain.unhonoured.size(), 1u);
  EXPECT_EQ(plain.unhonoured[0].support, Support::NoEffect);
}

/// Every supported row is exercised by at least one test under tests/unit or tests/integration
/// (this file excluded: samples() names them all), the name as a whole word after '/' or '"'.
TEST(AnnotationConformance, EverySupportedRowIsNamedByATest) {
  namespace fs = std::filesystem;
  std::string corpus;
  for (const char* sub : {"/tests/unit", "/tests/integration"}) {
    for (const auto& e : fs::recursive_directory_iterator(std::string(PHIGATE_SOURCE_DIR) + sub)) {
      if (!e.is_regular_file() || e.path().filename() == "annotation_registry_test.cpp") continue;
      const auto ext = e.path().extension();
      if (ext != ".cpp" && ext != ".hpp") continue;
      std::ifstream in(e.path());
      corpus.append(std::istreambuf_iterator<char>(in), {});
      corpus += '\n';
    }
  }
  const auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; };
  const auto named = [&](std::string_view name) {
    for (auto pos = corpus.find(name); pos != std::string::npos; pos = corpus.find(name, pos + 1)) {
      const char before = pos == 0 ? ' ' : corpus[pos - 1];
      const auto end = pos + name.size();
      const char after = end < corpus.size() ? corpus[end] : ' ';
      if ((before == '/' || before == '"') && !word(after)) return true;
    }
    return false;
  };
  for (const auto& r : annotation_registry()) {
    if (r.support != Support::Supported && r.support != Support::SupportedWithDifferences) continue;
    EXPECT_TRUE(named(r.name)) << r.name
                               << " is supported, but no test under tests/unit or tests/integration "
                               << "names it (\"" << r.name << "\" or .../" << r.name << ")";
  }
}

TEST(AnnotationRegistry, MarkdownAndJsonListEveryRow) {
  const auto md = annotations_markdown();
  const auto json = annotations_json();
  for (const auto& r : annotation_registry()) {
    EXPECT_NE(md.find("| `" + std::string(r.name) + "` |"), std::string::npos) << r.name;
    EXPECT_NE(json.find("{\"name\": \"" + std::string(r.name) + "\""), std::string::npos) << r.name;
  }
  EXPECT_NE(md.find("ingress.unsupported_annotations"), std::string::npos);
}

}  // namespace
}  // namespace phigate::ingress
