// Route::canary and canary_target (after every path and the fallback, in route order), and the
// compiled canary rules.
#include "phigate/router/canary.hpp"

#include <gtest/gtest.h>

#include "phigate/router/route_table.hpp"

namespace phigate::router {
namespace {

config::PathSpec path(std::string p, const std::string& canary_ingress = "") {
  config::PathSpec s;
  s.path = std::move(p);
  s.backends = {"127.0.0.1:1"};
  if (!canary_ingress.empty()) {
    auto pol = std::make_shared<config::RoutePolicy>();
    pol->resource = "Ingress " + canary_ingress;
    pol->canary.enabled = true;
    pol->canary.header = "X_Canary";
    pol->canary.weight = 7;
    pol->canary.weight_total = 50;
    config::PathSpec c = s;
    c.policy = pol;
    s.canary = std::make_shared<const config::PathSpec>(c);
  }
  return s;
}

TEST(RouteCanary, TargetsFollowEveryPathAndTheFallbackDuplicatesIncluded) {
  config::Diagnostics diag;
  const std::vector<config::RouteSpec> routes = {
      {"a.example", {path("/", "ns/c1"), path("/x")}, {}},
      {"a.example", {path("/", "ns/dup")}, {}},  // a duplicate keeps its slot (compile counts it)
      {"b.example", {path("/", "ns/c3")}, {}},
  };
  const auto t = RouteTable::build(routes, diag, path("/"));
  const auto* a = t.match("a.example", "/");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->target, 0u);
  ASSERT_TRUE(a->canary);
  EXPECT_EQ(a->canary_target, 5u);  // 4 paths, the fallback, then the first canary
  EXPECT_EQ(a->canary->ingress, "ns/c1");
  const auto* b = t.match("b.example", "/");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->canary_target, 7u);
  EXPECT_FALSE(t.match("a.example", "/x")->canary);
  EXPECT_FALSE(t.match("c.example", "/")->canary);  // the fallback has none
}

TEST(RouteCanary, CompiledRulesHeaderFoldedTotalQuirk) {
  const auto rule = compile_canary(*path("/", "ns/c").canary);
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->header, "x-canary");
  EXPECT_EQ(rule->total, 100u);  // 50 is read as 100
  EXPECT_EQ(rule->weight, 7u);
  config::PathSpec none;
  EXPECT_FALSE(compile_canary(none));  // no policy: no rules
}

TEST(RouteCanary, DecideNeverWithoutRulesAndWeightZeroNeverDraws) {
  CanaryRule r;
  const std::string always = "always";
  EXPECT_EQ(decide_canary(r, &always, "always", 0), CanaryChoice::None);  // no header, cookie or weight
  r.weight = 100;
  EXPECT_EQ(decide_canary(r, nullptr, {}, 99), CanaryChoice::Canary);
  r.weight = 1;
  EXPECT_EQ(decide_canary(r, nullptr, {}, 1), CanaryChoice::None);
  EXPECT_EQ(decide_canary(r, nullptr, {}, 100), CanaryChoice::Canary);
}

}  // namespace
}  // namespace phigate::router
