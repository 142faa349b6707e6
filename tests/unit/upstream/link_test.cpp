// The upstream layer's pure rules: which endpoint, and whether a failed attempt may be sent again.
#include <gtest/gtest.h>

#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/link.hpp"

namespace phigate::upstream {
namespace {

TEST(UpstreamRetryRule, OnlyTheFirstAttemptOnAReusedConnectionBeforeAnyByteOfASafeBodylessRequest) {
  const auto stale = core::Error::upstream(core::ErrorKind::UpstreamReset, core::Retryable::OnlyIfReused);
  EXPECT_TRUE(Link::may_retry(stale, 0, true, false, false, "GET"));
  EXPECT_TRUE(Link::may_retry(stale, 0, true, false, false, "HEAD"));
  EXPECT_TRUE(Link::may_retry(stale, 0, true, false, false, "OPTIONS"));
  EXPECT_FALSE(Link::may_retry(stale, 0, false, false, false, "GET"));  // fresh connection
  EXPECT_FALSE(Link::may_retry(stale, 0, true, true, false, "GET"));    // a response byte arrived
  EXPECT_FALSE(Link::may_retry(stale, 0, true, false, false, "DELETE"));
  EXPECT_FALSE(Link::may_retry(stale, 0, true, false, false, "PUT"));
  const auto no = core::Error::upstream(core::ErrorKind::UpstreamReset, core::Retryable::No);
  EXPECT_FALSE(Link::may_retry(no, 0, true, false, false, "GET"));
  const auto client = core::Error::downstream(core::ErrorKind::ClientClosed);
  EXPECT_FALSE(Link::may_retry(client, 0, true, false, false, "GET"));
}

TEST(UpstreamPick, RoundRobinOverTheClusterAndNothingFromAnEmptyOne) {
  Cluster c;
  for (const char* k : {"e0", "e1", "e2"}) {
    Endpoint e;
    e.key = k;
    c.endpoints.push_back(std::move(e));
  }
  BalancerState s;
  s.reset(c);
  std::vector<std::string_view> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(c.endpoints[pick(c, s, {}).index].key);
  EXPECT_EQ(seen, (std::vector<std::string_view>{"e0", "e1", "e2", "e0", "e1", "e2"}));
  Cluster empty;
  s.reset(empty);
  EXPECT_EQ(pick(empty, s, {}).index, kNoEndpoint);
}

}  // namespace
}  // namespace phigate::upstream
