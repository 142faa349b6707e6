// The upstream-flow annotations (annotations_upstream.cpp) as parse_annotations applies them:
// proxy-http-version, connection-proxy-header, custom-http-errors, default-backend and
// disable-proxy-intercept-errors, proxy-request-buffering and client-body-buffer-size.
#include <gtest/gtest.h>

#include "annotations_impl.hpp"  // detail::parse_nginx_size (src/ingress, private)
#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);

const AnnotationOptions kFailClosed{.unsupported = config::UnsupportedAnnotations::FailClosed};

ParsedAnnotations parse(std::map<std::string, std::string> a, const AnnotationOptions& o = {}) {
  return parse_annotations(a, "shop", o);
}

const AnnotationProblem* problem_for(const ParsedAnnotations& p, const std::string& key) {
  for (const auto& pr : p.problems) {
    if (pr.key == key) return &pr;
  }
  return nullptr;
}

const UnenforcedAnnotation* not_enforced_for(const ParsedAnnotations& p, const std::string& key) {
  for (const auto& n : p.not_enforced) {
    if (n.key == key) return &n;
  }
  return nullptr;
}

TEST(IngressAnnotationsUpstream, ProxyHttpVersionOneOneIsANoOp) {
  const auto r = parse({{kN + "proxy-http-version", "1.1"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.unhonoured.empty());
  EXPECT_TRUE(r.fail_closed.empty());
  // Under fail_closed too: 1.1 asks for nothing phigate lacks.
  EXPECT_TRUE(parse({{kN + "proxy-http-version", "1.1"}}, kFailClosed).fail_closed.empty());
}

TEST(IngressAnnotationsUpstream, ProxyHttpVersionOneZeroFollowsTheUnsupportedPolicy) {
  const auto key = kN + "proxy-http-version";
  const auto warn = parse({{key, "1.0"}});
  ASSERT_NE(problem_for(warn, key), nullptr);
  EXPECT_EQ(problem_for(warn, key)->severity, config::Severity::Warning);
  EXPECT_NE(problem_for(warn, key)->message.find("HTTP/1.0"), std::string::npos);
  EXPECT_TRUE(warn.fail_closed.empty());
  ASSERT_EQ(warn.unhonoured.size(), 1u);
  EXPECT_EQ(warn.unhonoured[0].support, Support::Unsupported);

  const auto closed = parse({{key, "1.0"}}, kFailClosed);
  ASSERT_NE(problem_for(closed, key), nullptr);
  EXPECT_EQ(problem_for(closed, key)->severity, config::Severity::Error);
  EXPECT_NE(closed.fail_closed.find("proxy-http-version"), std::string::npos);
  EXPECT_NE(problem_for(closed, key)->message.find("ingress.unsupported_annotations"), std::string::npos);
}

TEST(IngressAnnotationsUpstream, ProxyHttpVersionOtherValuesAreErrors) {
  for (const char* v : {"2", "2.0", "1", "1.1 ", "HTTP/1.1", ""}) {
    const auto r = parse({{kN + "proxy-http-version", v}});
    EXPECT_FALSE(r.fail_closed.empty()) << v;
  }
}

TEST(IngressAnnotationsUpstream, ConnectionProxyHeader) {
  const auto key = kN + "connection-proxy-header";
  const auto close = parse({{key, "close"}});
  EXPECT_TRUE(close.fail_closed.empty());
  EXPECT_TRUE(close.policy.connection_close);
  // Never applied to WebSocket upgrades: said as a warning (translate reports not_enforced).
  ASSERT_NE(not_enforced_for(close, key), nullptr);
  EXPECT_NE(not_enforced_for(close, key)->message.find("WebSocket"), std::string::npos);

  const auto keep = parse({{key, "keep-alive"}});
  EXPECT_TRUE(keep.fail_closed.empty());
  EXPECT_FALSE(keep.policy.connection_close);
  EXPECT_EQ(not_enforced_for(keep, key), nullptr);

  for (const char* v : {"Close", "upgrade", "close, upgrade", "", "keep-alive\r\nX-Evil: 1"}) {
    const auto r = parse({{key, v}});
    EXPECT_FALSE(r.fail_closed.empty()) << v;
    EXPECT_FALSE(r.policy.connection_close) << v;
  }
}

TEST(IngressAnnotationsUpstream, CustomHttpErrorsListSortedDistinct) {
  const auto r = parse({{kN + "custom-http-errors", "503, 404,500,404"}, {kN + "default-backend", "errors"}});
  EXPECT_TRUE(r.problems.empty()) << r.problems.at(0).message;
  EXPECT_EQ(r.policy.custom_http_errors, (std::vector<std::uint16_t>{404, 500, 503}));
  EXPECT_EQ(r.policy.default_backend, "errors");
  EXPECT_TRUE(r.policy.intercept_errors);
}

TEST(IngressAnnotationsUpstream, CustomHttpErrorsBadValuesFailClosed) {
  for (const char* v : {"", "404,", ",404", "399", "600", "200", "302", "4040", "40", "abc", "404;503",
                        "+404", "404 503", "0x194"}) {
    const auto r = parse({{kN + "custom-http-errors", v}, {kN + "default-backend", "errors"}});
    EXPECT_FALSE(r.fail_closed.empty()) << v;
    EXPECT_TRUE(r.policy.custom_http_errors.empty()) << v;
  }
}

TEST(IngressAnnotationsUpstream, CustomHttpErrorsWithoutDefaultBackendWarns) {
  const auto key = kN + "custom-http-errors";
  const auto r = parse({{key, "404"}});
  EXPECT_TRUE(r.fail_closed.empty());
  ASSERT_NE(not_enforced_for(r, key), nullptr);
  EXPECT_NE(not_enforced_for(r, key)->message.find("no error backend"), std::string::npos);
  EXPECT_EQ(not_enforced_for(parse({{key, "404"}, {kN + "default-backend", "errors"}}), key), nullptr);
}

TEST(IngressAnnotationsUpstream, DefaultBackendIsAServiceOfTheSameNamespace) {
  EXPECT_EQ(parse({{kN + "default-backend", "custom-errors-1"}}).policy.default_backend, "custom-errors-1");
  // Another namespace, a DNS name, upper case, a leading digit or dash: refused (never read as
  // "namespace/name": an Ingress author cannot send error pages to another tenant's Service).
  for (const char* v :
       {"other/errors", "errors.other.svc", "Errors", "1errors", "-errors", "", "errors:80"}) {
    const auto r = parse({{kN + "default-backend", v}});
    EXPECT_FALSE(r.fail_closed.empty()) << v;
    EXPECT_TRUE(r.policy.default_backend.empty()) << v;
  }
}

TEST(IngressAnnotationsUpstream, DisableProxyInterceptErrors) {
  EXPECT_FALSE(parse({{kN + "disable-proxy-intercept-errors", "true"}}).policy.intercept_errors);
  EXPECT_TRUE(parse({{kN + "disable-proxy-intercept-errors", "false"}}).policy.intercept_errors);
  EXPECT_FALSE(parse({{kN + "disable-proxy-intercept-errors", "yes"}}).fail_closed.empty());
}

// proxy-request-buffering: "on" buffers, "off" streams (phigate's default), anything else fails the
// Ingress closed naming the field.
TEST(IngressAnnotationsUpstream, ProxyRequestBuffering) {
  const auto key = kN + "proxy-request-buffering";
  const auto on = parse({{key, "on"}});
  EXPECT_TRUE(on.fail_closed.empty());
  EXPECT_TRUE(on.policy.request_buffering);
  EXPECT_EQ(not_enforced_for(on, key), nullptr);
  EXPECT_FALSE(on.policy.body_buffer_bytes);
  const auto off = parse({{key, "off"}});
  EXPECT_TRUE(off.fail_closed.empty());
  EXPECT_FALSE(off.policy.request_buffering);
  EXPECT_FALSE(parse({}).policy.request_buffering);  // phigate streams unless told
  for (const char* v : {"true", "ON", "1", "", "on "}) {
    const auto r = parse({{key, v}});
    EXPECT_NE(r.fail_closed.find("proxy-request-buffering"), std::string::npos) << v;
    EXPECT_FALSE(r.policy.request_buffering) << v;
  }
  // gRPC requests are streams of messages: never buffered, and said so.
  const auto grpc = parse({{key, "on"}, {kN + "backend-protocol", "GRPC"}});
  EXPECT_TRUE(grpc.fail_closed.empty());
  EXPECT_FALSE(grpc.policy.request_buffering);
  ASSERT_NE(not_enforced_for(grpc, key), nullptr);
  EXPECT_NE(not_enforced_for(grpc, key)->message.find("gRPC"), std::string::npos);
}

// The one nginx size parser (proxy-body-size and client-body-buffer-size both use it).
TEST(IngressAnnotationsUpstream, NginxSizeSyntax) {
  const std::pair<const char*, std::uint64_t> good[] = {
      {"0", 0},           {"8192", 8192},
      {"8k", 8192},       {"8K", 8192},
      {"1m", 1u << 20},   {"1M", 1u << 20},
      {"2g", 2ULL << 30}, {"100b", 100},
      {"100B", 100},      {"18014398509481983k", 18014398509481983ULL << 10}};
  for (const auto& [v, n] : good) {
    std::uint64_t out = 12345;
    EXPECT_EQ(detail::parse_nginx_size(v, out), "") << v;
    EXPECT_EQ(out, n) << v;
  }
  for (const char* v : {"", "k", "b", "8kb", "8mb", "-8k", "+8", "8 k", " 8k", "8k ", "1.5m", "8t", "0x10",
                        "99999999999999999999", "18014398509481984k"}) {
    std::uint64_t out = 12345;
    EXPECT_NE(detail::parse_nginx_size(v, out), "") << v;
    EXPECT_EQ(out, 12345u) << v;  // untouched on error
  }
  // Both annotations read it the same way.
  for (const char* v : {"100b", "8K", "1g"}) {
    std::uint64_t n = 0;
    ASSERT_EQ(detail::parse_nginx_size(v, n), "");
    const auto body = parse({{kN + "proxy-body-size", v}});
    EXPECT_TRUE(body.fail_closed.empty()) << v;
    EXPECT_EQ(body.policy.body_size, std::optional<std::uint64_t>(n)) << v;
  }
  EXPECT_FALSE(parse({{kN + "proxy-body-size", "8mb"}}).fail_closed.empty());
}

// client-body-buffer-size: nginx's size syntax; the bound for proxy-request-buffering: "on" only.
TEST(IngressAnnotationsUpstream, ClientBodyBufferSize) {
  const auto key = kN + "client-body-buffer-size";
  const auto on = kN + "proxy-request-buffering";
  const std::pair<const char*, std::uint64_t> good[] = {
      {"8192", 8192},   {"8k", 8192},       {"8K", 8192}, {"1m", 1u << 20},
      {"1M", 1u << 20}, {"2g", 2ULL << 30}, {"100b", 100}};
  for (const auto& [v, n] : good) {
    const auto r = parse({{key, v}, {on, "on"}});
    EXPECT_TRUE(r.fail_closed.empty()) << v << ": " << r.fail_closed;
    ASSERT_TRUE(r.policy.body_buffer_bytes) << v;
    EXPECT_EQ(*r.policy.body_buffer_bytes, n) << v;
    EXPECT_EQ(not_enforced_for(r, key), nullptr) << v;
  }
  // 0 would refuse every body (review F6): an error too.
  for (const char* v : {"", "0", "0k", "k", "8kb", "-8k", "8 k", " 8k", "1.5m", "8t", "0x10",
                        "99999999999999999999", "18014398509481984k"}) {
    const auto r = parse({{key, v}, {on, "on"}});
    EXPECT_NE(r.fail_closed.find("client-body-buffer-size"), std::string::npos) << v;
    const auto* pr = problem_for(r, key);
    ASSERT_NE(pr, nullptr) << v;
    EXPECT_EQ(pr->severity, config::Severity::Error);
  }
  // Without proxy-request-buffering: "on" it bounds nothing: a warning, and an invalid value still
  // fails the Ingress closed.
  for (const char* mode : {"", "off"}) {
    std::map<std::string, std::string> a{{key, "16k"}};
    if (*mode != 0) a[on] = mode;
    const auto r = parse(a);
    EXPECT_TRUE(r.fail_closed.empty());
    ASSERT_NE(not_enforced_for(r, key), nullptr) << mode;
    EXPECT_NE(not_enforced_for(r, key)->message.find("no effect"), std::string::npos);
  }
  EXPECT_FALSE(parse({{key, "lots"}}).fail_closed.empty());
}

}  // namespace
}  // namespace phigate::ingress
