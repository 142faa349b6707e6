// upstream.retry in phigate.yaml, and the proxy_next_upstream grammar both it and the
// annotation use.
#include <gtest/gtest.h>

#include "phigate/config/loader.hpp"

namespace phigate::config {
namespace {

using namespace std::chrono_literals;

std::optional<Config> load(const std::string& retry, Diagnostics& diag) {
  return load_config_text("listeners: { http: [\"127.0.0.1:0\"] }\nupstream:\n  retry: " + retry + "\n",
                          "/tmp/phigate-retry-test.yaml", diag);
}

TEST(RetryConfig, Defaults) {
  const UpstreamSpec u;
  EXPECT_EQ(u.next_upstream, kNextUpstreamError | kNextUpstreamTimeout);
  EXPECT_EQ(u.next_upstream_tries, 3u);
  EXPECT_EQ(u.next_upstream_timeout, 0ms);
  EXPECT_EQ(u.retry_budget_percent, 20u);
}

TEST(RetryConfig, LoadsEveryKey) {
  Diagnostics diag;
  const auto cfg = load(
      "{ next_upstream: [error, http_503], tries: 5, timeout: 2s, budget_percent: 10, budget_min_per_second: "
      "1 }",
      diag);
  ASSERT_TRUE(cfg) << diag.to_string();
  EXPECT_EQ(cfg->upstream.next_upstream, kNextUpstreamError | kNextUpstreamHttp503);
  EXPECT_EQ(cfg->upstream.next_upstream_tries, 5u);
  EXPECT_EQ(cfg->upstream.next_upstream_timeout, 2s);
  EXPECT_EQ(cfg->upstream.retry_budget_percent, 10u);
  EXPECT_EQ(cfg->upstream.retry_budget_min_per_second, 1u);
}

TEST(RetryConfig, BadValuesNameTheField) {
  for (const char* bad :
       {"{ next_upstream: [non_idempotent] }", "{ next_upstream: [bogus] }", "{ next_upstream: \"error\" }",
        "{ tries: -1 }", "{ budget_percent: 101 }", "{ unknown: 1 }"}) {
    Diagnostics diag;
    EXPECT_FALSE(load(bad, diag)) << bad;
    ASSERT_TRUE(diag.has_errors()) << bad;
    EXPECT_EQ(diag.entries()[0].field.rfind("upstream.retry", 0), 0u) << bad << ": " << diag.to_string();
  }
}

TEST(RetryConfig, NextUpstreamGrammar) {
  std::uint16_t bits = 99;
  EXPECT_EQ(parse_next_upstream("off", bits), "");
  EXPECT_EQ(bits, 0);
  EXPECT_EQ(parse_next_upstream("timeout  http_504", bits), "");
  EXPECT_EQ(bits, kNextUpstreamTimeout | kNextUpstreamHttp504);
  EXPECT_EQ(parse_next_upstream("invalid_header", bits), "");
  EXPECT_EQ(bits, kNextUpstreamError);
  bits = 7;
  EXPECT_NE(parse_next_upstream("", bits), "");
  EXPECT_NE(parse_next_upstream("off http_502", bits), "");
  EXPECT_NE(parse_next_upstream("http_418", bits), "");
  EXPECT_EQ(bits, 7) << "a refused value leaves the output alone";
}

}  // namespace
}  // namespace phigate::config
