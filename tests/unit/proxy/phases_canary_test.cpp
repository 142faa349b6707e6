// Phase `canary`: which cluster a request goes to when its route has an ingress-nginx canary
// (affinity, then header, then cookie, then weight). Pure: snapshots built by hand.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "phases.hpp"
#include "phigate/upstream/balancer.hpp"

namespace phigate::proxy::detail {
namespace {

/// app.example / → main cluster 0 (10.0.0.1) with its canary, cluster 2 (10.0.0.2); other.example
/// / → cluster 1 (10.0.0.3). Canary clusters follow every path. Cookie affinity (INGRESSCOOKIE) on
/// each when `affinity`.
struct CanaryFixture {
  Snapshot snap;
  explicit CanaryFixture(config::CanaryPolicy rules, bool affinity = true) {
    auto main_policy = std::make_shared<config::RoutePolicy>();
    main_policy->resource = "Ingress ns/main";
    main_policy->affinity_cookie = affinity;
    auto canary_policy = std::make_shared<config::RoutePolicy>(*main_policy);
    canary_policy->resource = "Ingress ns/canary";
    rules.enabled = true;
    canary_policy->canary = rules;
    config::PathSpec canary;
    canary.path = "/";
    canary.backends = {"10.0.0.2:80"};
    canary.policy = canary_policy;
    config::RouteSpec r;
    r.host = "app.example";
    config::PathSpec p;
    p.path = "/";
    p.backends = {"10.0.0.1:80"};
    p.policy = main_policy;
    p.canary = std::make_shared<const config::PathSpec>(canary);
    r.paths.push_back(p);
    config::RouteSpec other;
    other.host = "other.example";
    config::PathSpec o;
    o.path = "/";
    o.backends = {"10.0.0.3:80"};
    o.policy = main_policy;
    other.paths.push_back(o);
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build({r, other}, diag);
    for (const auto* key : {"10.0.0.1:80", "10.0.0.3:80", "10.0.0.2:80"}) {  // main, other, canary
      upstream::Cluster c;
      upstream::Endpoint e;
      e.key = key;
      c.endpoints.push_back(e);
      c.balance.affinity_cookie = affinity;
      upstream::build_balancing(c);
      snap.clusters.push_back(std::move(c));
    }
  }
};

struct Req {
  http::MessageHead head;
  Request r{head};
  std::string host;
  // Not inlined: GCC 12 -O3 reports a false stringop-overflow when this is inlined into a loop.
  [[gnu::noinline]] explicit Req(std::string h = "app.example") : host(std::move(h)) {
    head.method = "GET";
    head.target = "/";
    head.headers.add("Host", host);
  }
};

/// Runs route then canary; returns the cluster chosen.
std::size_t cluster_for(const CanaryFixture& f, Req& q, std::uint32_t random = 0) {
  ConnectionView c;
  c.random = random;
  q.r.host_norm = q.host;
  q.r.path = "/";
  EXPECT_FALSE(phase::route(q.r, f.snap, c));
  EXPECT_NE(q.r.route, nullptr);
  EXPECT_FALSE(phase::canary(q.r, f.snap, c));
  EXPECT_EQ(q.r.canary, q.r.cluster == 2);
  return q.r.cluster;
}

TEST(CanaryPhase, CanaryClusterComesAfterEveryPath) {
  CanaryFixture f({});
  Req q;
  cluster_for(f, q);
  EXPECT_EQ(q.r.route->target, 0u);
  EXPECT_EQ(q.r.route->canary_target, 2u);
  ASSERT_TRUE(q.r.route->canary);
  EXPECT_EQ(q.r.route->canary->ingress, "ns/canary");
  Req o("other.example");
  EXPECT_EQ(cluster_for(f, o), 1u);  // a route without canary is untouched
  EXPECT_FALSE(o.r.route->canary);
}

TEST(CanaryPhase, PlainHeaderModeAlwaysNeverElseFallsThrough) {
  config::CanaryPolicy rules;
  rules.header = "X-Canary";
  rules.weight = 100;  // every request that falls through goes to the canary
  CanaryFixture f(rules, false);
  Req always;
  always.head.headers.add("x-canary", "always");
  EXPECT_EQ(cluster_for(f, always), 2u);
  Req never;
  never.head.headers.add("X-Canary", "never");
  EXPECT_EQ(cluster_for(f, never), 0u);  // never stops evaluation: the weight is not drawn
  Req other;
  other.head.headers.add("X-Canary", "maybe");
  EXPECT_EQ(cluster_for(f, other), 2u);  // fell through to the weight
  // Only the first field counts (ingress-nginx reads the first).
  Req two;
  two.head.headers.add("X-Canary", "never");
  two.head.headers.add("X-Canary", "always");
  EXPECT_EQ(cluster_for(f, two), 0u);
}

TEST(CanaryPhase, ValueModeOnlyTheExactValueClientAlwaysCannotForceIt) {
  config::CanaryPolicy rules;
  rules.header = "X_Canary";  // '_' is read as '-' (nginx $http_x_canary)
  rules.header_value = "blue";
  CanaryFixture f(rules, false);
  Req hit;
  hit.head.headers.add("X-Canary", "blue");
  EXPECT_EQ(cluster_for(f, hit), 2u);
  for (const char* v : {"always", "Blue", "blue ", "bluegreen", ""}) {
    Req q;
    q.head.headers.add("X-Canary", v);
    EXPECT_EQ(cluster_for(f, q), 0u) << v;
  }
  // "never" does not force the main either: it falls through (here, to a cookie).
  config::CanaryPolicy with_cookie = rules;
  with_cookie.cookie = "canary";
  CanaryFixture g(with_cookie, false);
  Req q;
  q.head.headers.add("X-Canary", "never");
  q.head.headers.add("Cookie", "canary=always");
  EXPECT_EQ(cluster_for(g, q), 2u);
}

TEST(CanaryPhase, PatternModePartialCaseSensitiveMatch) {
  config::CanaryPolicy rules;
  rules.header = "X-Region";
  rules.header_pattern = "^(eu|us)-";
  CanaryFixture f(rules, false);
  for (const char* v : {"eu-west", "us-east-1"}) {
    Req q;
    q.head.headers.add("X-Region", v);
    EXPECT_EQ(cluster_for(f, q), 2u) << v;
  }
  for (const char* v : {"EU-west", "ap-eu-1", "always"}) {
    Req q;
    q.head.headers.add("X-Region", v);
    EXPECT_EQ(cluster_for(f, q), 0u) << v;
  }
}

TEST(CanaryPhase, PrecedenceHeaderThenCookieThenWeight) {
  config::CanaryPolicy rules;
  rules.header = "X-Canary";
  rules.cookie = "canary";
  rules.weight = 100;
  CanaryFixture f(rules, false);
  Req header_never_cookie_always;
  header_never_cookie_always.head.headers.add("X-Canary", "never");
  header_never_cookie_always.head.headers.add("Cookie", "canary=always");
  EXPECT_EQ(cluster_for(f, header_never_cookie_always), 0u);
  Req header_always_cookie_never;
  header_always_cookie_never.head.headers.add("X-Canary", "always");
  header_always_cookie_never.head.headers.add("Cookie", "canary=never");
  EXPECT_EQ(cluster_for(f, header_always_cookie_never), 2u);
  Req cookie_never;
  cookie_never.head.headers.add("Cookie", "a=b; canary=never");
  EXPECT_EQ(cluster_for(f, cookie_never), 0u);  // beats weight 100
  Req cookie_other;
  cookie_other.head.headers.add("Cookie", "canary=yes");
  EXPECT_EQ(cluster_for(f, cookie_other), 2u);  // weight
}

TEST(CanaryPhase, WeightDrawAndTheWeightTotalQuirk) {
  config::CanaryPolicy rules;
  rules.weight = 10;
  CanaryFixture f(rules, false);
  std::size_t canary = 0;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Req q;
    canary += cluster_for(f, q, i) == 2u;
  }
  EXPECT_EQ(canary, 100u);  // random % 100 < 10
  // canary-weight-total below 100 is read as 100 (ingress-nginx): weight 10 of total 20 is 10%.
  rules.weight_total = 20;
  CanaryFixture g(rules, false);
  canary = 0;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Req q;
    canary += cluster_for(g, q, i) == 2u;
  }
  EXPECT_EQ(canary, 100u);
  rules.weight_total = 1000;
  rules.weight = 5;
  CanaryFixture h(rules, false);
  canary = 0;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Req q;
    canary += cluster_for(h, q, i) == 2u;
  }
  EXPECT_EQ(canary, 5u);
  rules.weight = 0;
  CanaryFixture z(rules, false);
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Req q;
    EXPECT_EQ(cluster_for(z, q, i), 0u);
  }
}

TEST(CanaryPhase, AffinityToEitherSideSticksForgedCookieIsANormalDraw) {
  config::CanaryPolicy rules;
  rules.header = "X-Canary";
  rules.weight = 50;
  CanaryFixture f(rules);
  const auto main_id = upstream::affinity_id("10.0.0.1:80");
  const auto canary_id = upstream::affinity_id("10.0.0.2:80");
  Req to_main;
  to_main.head.headers.add("Cookie", "INGRESSCOOKIE=" + main_id);
  to_main.head.headers.add("X-Canary", "always");  // affinity comes first
  EXPECT_EQ(cluster_for(f, to_main, 0), 0u);
  Req to_canary;
  to_canary.head.headers.add("Cookie", "INGRESSCOOKIE=" + canary_id);
  to_canary.head.headers.add("X-Canary", "never");
  EXPECT_EQ(cluster_for(f, to_canary, 99), 2u);
  // A cookie naming no endpoint of either side (say, of another route) decides nothing.
  Req forged;
  forged.head.headers.add("Cookie", "INGRESSCOOKIE=" + upstream::affinity_id("10.0.0.3:80"));
  EXPECT_EQ(cluster_for(f, forged, 99), 0u);
  EXPECT_EQ(cluster_for(f, forged, 0), 2u);
}

}  // namespace
}  // namespace phigate::proxy::detail
