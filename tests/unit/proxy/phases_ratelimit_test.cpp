// Phase rate-limit (ingress-nginx limit-rps, limit-rpm, limit-burst-multiplier, limit-connections,
// limit-allowlist): its place after the access checks, the key (the client address the
// client-address phase settled on, never a forged X-Forwarded-For), 503 or 429 with Retry-After,
// the allowlist, and that it fails closed without its table. Snapshots built by hand, the clock
// injected through ConnectionView::now.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "phases.hpp"
#include "phigate/access/cidr.hpp"

namespace phigate::proxy::detail {
namespace {

using core::Outcome;

struct Fixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  // rps.example: limit-rps 2, multiplier 1 (burst 2), allowlist 10.1.0.0/16;
  // conn.example: limit-connections 1; both.example: rps 100 and rpm 3 (multiplier 0);
  // free.example: no limit.
  explicit Fixture(int status = 503) {
    auto& c = *cfg;
    c.limits.rate_limit_status = status;
    const auto add = [&](std::string host, config::RateLimitPolicy rl) {
      auto p = std::make_shared<config::RoutePolicy>();
      p->resource = "Ingress ns/" + host;
      p->ssl_redirect = false;
      p->rate_limit = std::move(rl);
      config::RouteSpec r;
      r.host = std::move(host);
      for (const char* path : {"/", "/api"}) {
        config::PathSpec ps;
        ps.path = path;
        ps.backends = {"127.0.0.1:1"};
        ps.policy = p;
        r.paths.push_back(std::move(ps));
      }
      c.routes.push_back(std::move(r));
      return p;
    };
    config::RateLimitPolicy rps;
    rps.rps = 2;
    rps.burst_multiplier = 1;
    rps.allowlist = {"10.1.0.0/16"};
    const auto rps_policy = add("rps.example", rps);
    config::RateLimitPolicy conn;
    conn.connections = 1;
    add("conn.example", conn);
    config::RateLimitPolicy both;
    both.rps = 100;
    both.rpm = 3;
    both.burst_multiplier = 0;
    add("both.example", both);
    add("free.example", {});
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build(c.routes, diag);
    snap.route_access.resize(8);
    snap.config = cfg;
    snap.trusted_proxies.add(*access::parse_cidr("192.0.2.0/24"));
    snap.rate_limiter = std::make_shared<RateLimiter>(1024);
    access::CidrSet allow;
    allow.add(*access::parse_cidr("10.1.0.0/16"));
    snap.limit_allowlists.emplace(rps_policy.get(), std::move(allow));
  }
};

struct Req {
  http::MessageHead head;
  Request r{head};
  std::optional<access::Address> addr;
  ConnectionView c;
  Req(std::string host, std::string peer, std::int64_t ms, std::string target = "/x", std::string xff = {}) {
    head.method = "GET";
    head.target = std::move(target);
    head.version_minor = 1;
    head.headers.add("Host", host);
    if (!xff.empty()) head.headers.add("X-Forwarded-For", xff);
    addr = access::parse_address(peer);
    c.peer_ip = peer_ip_ = std::move(peer);
    c.peer_addr = &addr;
    c.peer_trusted = peer_ip_.rfind("192.0.2.", 0) == 0;
    c.now = std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms));
  }
  PhaseResult run(const Fixture& f) { return run_phases(r, f.snap, c); }
  std::string peer_ip_;
};

PhaseResult once(const Fixture& f, std::string host, std::string peer, std::int64_t ms,
                 std::string target = "/x", std::string xff = {}) {
  Req q(std::move(host), std::move(peer), ms, std::move(target), std::move(xff));
  return q.run(f);
}

TEST(RateLimitPhase, IsAfterAccessAndFailClosedAndBeforeEverythingThatAnswers) {
  std::vector<std::string_view> names;
  for (const auto& p : request_phases()) names.push_back(p.name);
  const auto at = [&](std::string_view n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  ASSERT_LT(at("rate-limit"), static_cast<std::ptrdiff_t>(names.size()));
  EXPECT_LT(at("access"), at("rate-limit"));
  EXPECT_LT(at("fail-closed"), at("rate-limit"));
  EXPECT_LT(at("rate-limit"), at("annotation-redirect"));
  EXPECT_LT(at("rate-limit"), at("cors"));
  EXPECT_LT(at("rate-limit"), at("canary"));
}

TEST(RateLimitPhase, BurstThenRefusedWith503AndTheOutcome) {
  const Fixture f;
  // rps 2, burst 2: three at once, the fourth refused; every path of the Ingress shares it.
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.1", 0, "/x"));
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.1", 0, "/api/y"));
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.1", 0, "/"));
  const auto d = once(f, "rps.example", "198.51.100.1", 0, "/api");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::RateLimited);
  EXPECT_EQ(decision_status(*d), 503);
  EXPECT_EQ(d->error.reason(), "rate_limited");
  EXPECT_FALSE(d->must_close);
  // Another address, and another Ingress, are not affected; 500 ms later one more fits.
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.2", 0));
  EXPECT_FALSE(once(f, "free.example", "198.51.100.1", 0));
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.1", 500));
  EXPECT_TRUE(once(f, "rps.example", "198.51.100.1", 500));
}

// A buffered request is decided again once its body is whole (ConnectionView::again): the second
// decision is not charged, so a buffered upload costs one request of its rate, not two.
TEST(RateLimitPhase, TheSecondDecisionOfABufferedRequestIsNotCharged) {
  const Fixture f;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(once(f, "rps.example", "198.51.100.7", 0));
    Req again("rps.example", "198.51.100.7", 0);
    again.c.again = true;
    EXPECT_FALSE(again.run(f)) << i;
  }
  EXPECT_TRUE(once(f, "rps.example", "198.51.100.7", 0));  // the fourth head is refused, as before
}

TEST(RateLimitPhase, PathSpellingsShareTheLimit) {
  const Fixture f;
  // Normalised before routing: dot segments, %-encoding and ;params reach the same Ingress.
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.3", 0, "/api/../x"));
  EXPECT_FALSE(once(f, "rps.example", "198.51.100.3", 0, "/%61pi"));
  EXPECT_FALSE(once(f, "RPS.example", "198.51.100.3", 0, "/api;a=b"));
  EXPECT_TRUE(once(f, "rps.example:80", "198.51.100.3", 0, "/x"));
}

TEST(RateLimitPhase, Status429CarriesRetryAfter) {
  const Fixture f(429);
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(once(f, "rps.example", "198.51.100.4", 0));
  Req q("rps.example", "198.51.100.4", 100);
  const auto d = q.run(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(decision_status(*d), 429);
  EXPECT_EQ(d->outcome, Outcome::RateLimited);
  EXPECT_EQ(q.r.rare_or_empty().reply_fields, "Retry-After: 1\r\n");  // 400 ms, rounded up to whole seconds
  // 503 (the default) has no Retry-After.
  const Fixture g;
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(once(g, "rps.example", "198.51.100.4", 0));
  Req q2("rps.example", "198.51.100.4", 0);
  ASSERT_TRUE(q2.run(g));
  EXPECT_EQ(q2.r.rare_or_empty().reply_fields, "");
}

TEST(RateLimitPhase, AllowlistedAddressesAreNeverLimited) {
  const Fixture f;
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(once(f, "rps.example", "10.1.2.3", 0)) << i;
  // Just outside the range: limited.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(once(f, "rps.example", "10.2.0.1", 0));
  EXPECT_TRUE(once(f, "rps.example", "10.2.0.1", 0));
}

TEST(RateLimitPhase, ForgedForwardedForFromAnUntrustedPeerDoesNotChangeTheKey) {
  const Fixture f;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(once(f, "rps.example", "198.51.100.5", 0, "/x", "203.0.113." + std::to_string(i)));
  }
  // A fresh forged address each time, still the peer's bucket; nor can it claim the allowlist.
  EXPECT_TRUE(once(f, "rps.example", "198.51.100.5", 0, "/x", "203.0.113.99"));
  EXPECT_TRUE(once(f, "rps.example", "198.51.100.5", 0, "/x", "10.1.0.1"));
  // Behind a trusted proxy the client it names is the key.
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(once(f, "rps.example", "192.0.2.1", 0, "/x", "203.0.113.7"));
  EXPECT_TRUE(once(f, "rps.example", "192.0.2.2", 0, "/x", "203.0.113.7"));
  EXPECT_FALSE(once(f, "rps.example", "192.0.2.1", 0, "/x", "203.0.113.8"));
}

TEST(RateLimitPhase, RpsAndRpmBothApply) {
  const Fixture f;
  // rps 100 would admit these; rpm 3 with no burst admits one per 20 s.
  EXPECT_FALSE(once(f, "both.example", "198.51.100.6", 0));
  const auto d = once(f, "both.example", "198.51.100.6", 1000);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->error.context, "limit-rpm");
  // 10 ms apart: the rps bucket (no burst, 10 ms a request) was charged by the request rpm
  // refused (as with nginx's two limit_req), so it must have leaked again too.
  EXPECT_TRUE(once(f, "both.example", "198.51.100.6", 19990));
  EXPECT_FALSE(once(f, "both.example", "198.51.100.6", 20000));
  EXPECT_TRUE(once(f, "both.example", "198.51.100.6", 20001));  // rps: 1 ms after the last
}

TEST(RateLimitPhase, ConnectionsAreTheRequestsInFlight) {
  const Fixture f;
  auto first = std::make_unique<Req>("conn.example", "198.51.100.7", 0);
  ASSERT_FALSE(first->run(f));
  // A second request (another HTTP/2 stream, another connection) while the first is in flight.
  Req second("conn.example", "198.51.100.7", 0, "/api");
  const auto d = second.run(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::ConnectionLimited);
  EXPECT_EQ(d->error.reason(), "connection_limited");
  EXPECT_FALSE(once(f, "conn.example", "198.51.100.8", 0));  // another client
  first.reset();                                             // the request ended
  EXPECT_FALSE(once(f, "conn.example", "198.51.100.7", 0));
}

TEST(RateLimitPhase, FailsClosedWithoutItsTable) {
  Fixture f;
  f.snap.rate_limiter.reset();
  const auto d = once(f, "conn.example", "198.51.100.9", 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::FailClosed);
  EXPECT_FALSE(once(f, "free.example", "198.51.100.9", 0));
  f.snap.limit_allowlists.clear();
  f.snap.rate_limiter = std::make_shared<RateLimiter>(1024);
  const auto e = once(f, "rps.example", "10.1.0.1", 0);  // an allowlist that was not compiled
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, Outcome::FailClosed);
}

}  // namespace
}  // namespace phigate::proxy::detail
