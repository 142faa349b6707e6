// proxy-next-upstream, -tries, -timeout: strict grammars, typed fields.
#include <gtest/gtest.h>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

using namespace std::chrono_literals;

ParsedAnnotations parse1(const std::string& key, const std::string& value) {
  return parse_annotations({{std::string(kNginxPrefix) + key, value}}, "shop");
}

TEST(RetryAnnotations, NextUpstreamListsBecomeBits) {
  auto p = parse1("proxy-next-upstream", "error timeout http_502");
  ASSERT_TRUE(p.fail_closed.empty()) << p.fail_closed;
  ASSERT_TRUE(p.policy.next_upstream.has_value());
  EXPECT_EQ(*p.policy.next_upstream,
            config::kNextUpstreamError | config::kNextUpstreamTimeout | config::kNextUpstreamHttp502);
  p = parse1("proxy-next-upstream", "off");
  ASSERT_TRUE(p.fail_closed.empty());
  EXPECT_EQ(*p.policy.next_upstream, 0);
  EXPECT_FALSE(parse1("proxy-next-upstream", "error").policy.next_upstream_tries.has_value());
}

TEST(RetryAnnotations, BadValuesFailClosed) {
  for (const char* v :
       {"", "off error", "error,timeout", "http_501", "ERROR", "non_idempotent", "error non_idempotent"}) {
    const auto p = parse1("proxy-next-upstream", v);
    EXPECT_FALSE(p.fail_closed.empty()) << v;
    EXPECT_FALSE(p.policy.next_upstream.has_value()) << v;
  }
  const auto ni = parse1("proxy-next-upstream", "error non_idempotent");
  ASSERT_FALSE(ni.problems.empty());
  EXPECT_NE(ni.problems[0].message.find("never sends a second copy"), std::string::npos)
      << ni.problems[0].message;
  for (const char* v : {"-1", "101", "3x", "", " 3"})
    EXPECT_FALSE(parse1("proxy-next-upstream-tries", v).fail_closed.empty()) << v;
  for (const char* v : {"-1", "2h", "abc"})
    EXPECT_FALSE(parse1("proxy-next-upstream-timeout", v).fail_closed.empty()) << v;
}

TEST(RetryAnnotations, TriesAndTimeout) {
  auto p = parse1("proxy-next-upstream-tries", "0");
  ASSERT_TRUE(p.fail_closed.empty());
  EXPECT_EQ(*p.policy.next_upstream_tries, 0u);
  p = parse1("proxy-next-upstream-tries", "5");
  EXPECT_EQ(*p.policy.next_upstream_tries, 5u);
  p = parse1("proxy-next-upstream-timeout", "0");
  ASSERT_TRUE(p.fail_closed.empty());
  EXPECT_EQ(*p.policy.next_upstream_timeout, 0ms);
  p = parse1("proxy-next-upstream-timeout", "10");
  EXPECT_EQ(*p.policy.next_upstream_timeout, 10s);
  p = parse1("proxy-next-upstream-timeout", "250ms");
  EXPECT_EQ(*p.policy.next_upstream_timeout, 250ms);
}

}  // namespace
}  // namespace phigate::ingress
