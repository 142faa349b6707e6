// The upstream layer's pure rules: which endpoint (the retry rules are in retry_test.cpp).
#include <gtest/gtest.h>

#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/link.hpp"

namespace phigate::upstream {
namespace {

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
