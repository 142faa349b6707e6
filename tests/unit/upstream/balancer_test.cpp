// Endpoint choice: smooth weighted round robin, least request (P2C), EWMA, the consistent-hash
// ring, cookie affinity and its Set-Cookie line. Pure: the clock is passed in, no sockets.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "phigate/upstream/balancer.hpp"

namespace phigate::upstream {
namespace {

using namespace std::chrono_literals;

Cluster cluster(std::vector<std::string> keys, BalanceKind kind = BalanceKind::RoundRobin,
                std::vector<std::uint32_t> weights = {}) {
  Cluster c;
  c.name = "test";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    Endpoint e;
    e.key = keys[i];
    if (i < weights.size()) e.weight = weights[i];
    c.endpoints.push_back(std::move(e));
  }
  c.balance.kind = kind;
  return c;
}

Cluster five(BalanceKind kind) {
  return cluster({"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080", "10.0.0.5:8080"}, kind);
}

std::string picks(const Cluster& c, BalancerState& s, int n, PickInput in = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const auto p = pick(c, s, in);
    out += p.index == kNoEndpoint ? '-' : static_cast<char>('a' + p.index);
  }
  return out;
}

constexpr std::array kAllKinds = {BalanceKind::RoundRobin, BalanceKind::LeastRequest, BalanceKind::Ewma,
                                  BalanceKind::Hash};

TEST(Balancer, SmoothWeightedRoundRobin_IsNginxSequence) {
  auto c = cluster({"a", "b", "c"}, BalanceKind::RoundRobin, {5, 1, 1});
  BalancerState s;
  s.reset(c);
  EXPECT_EQ(picks(c, s, 7), "aabacaa");
  EXPECT_EQ(picks(c, s, 7), "aabacaa");  // the cycle repeats exactly
}

TEST(Balancer, RoundRobin_EqualWeightsCycleAndWeightZeroCountsAsOne) {
  auto c = cluster({"a", "b", "c"}, BalanceKind::RoundRobin, {1, 0, 1});
  BalancerState s;
  s.reset(c);
  EXPECT_EQ(picks(c, s, 6), "abcabc");
}

TEST(Balancer, LeastRequest_PrefersTheLessLoaded) {
  auto c = cluster({"a", "b"}, BalanceKind::LeastRequest);
  BalancerState s;
  s.reset(c);
  s.seed(42);
  for (int i = 0; i < 3; ++i) attempt_started(s, 0);
  // Two endpoints: the two choices are always both, so the less loaded one wins every time.
  EXPECT_EQ(picks(c, s, 20), std::string(20, 'b'));
  for (int i = 0; i < 3; ++i) attempt_ended(s, 0, 1ms, true);
  for (int i = 0; i < 2; ++i) attempt_started(s, 1);
  EXPECT_EQ(picks(c, s, 20), std::string(20, 'a'));
  EXPECT_EQ(s.in_flight(0), 0u);
  EXPECT_EQ(s.in_flight(1), 2u);
}

TEST(Balancer, LeastRequest_SpreadsOverManyEndpoints) {
  auto c = five(BalanceKind::LeastRequest);
  BalancerState s;
  s.reset(c);
  s.seed(7);
  std::map<std::size_t, int> count;
  // Every pick stays in flight: P2C keeps the counts within one or two of each other.
  for (int i = 0; i < 100; ++i) {
    const auto p = pick(c, s, {});
    ASSERT_NE(p.index, kNoEndpoint);
    attempt_started(s, p.index);
    ++count[p.index];
  }
  ASSERT_EQ(count.size(), 5u);
  for (const auto& [i, n] : count) EXPECT_LE(std::abs(n - 20), 3) << i;
}

TEST(Balancer, Ewma_PrefersTheFasterEndpointOnceLatenciesAreReported) {
  auto c = cluster({"slow", "fast"}, BalanceKind::Ewma);
  BalancerState s;
  s.reset(c);
  s.seed(1);
  const auto t0 = Clock::time_point{} + 1h;
  PickInput in;
  in.now = t0;
  for (int i = 0; i < 5; ++i) {
    (void)pick(c, s, in);  // the pick records the clock attempt_ended uses
    attempt_started(s, 0);
    attempt_ended(s, 0, 200ms, true);
    attempt_started(s, 1);
    attempt_ended(s, 1, 5ms, true);
  }
  EXPECT_GT(s.ewma_ns(0), s.ewma_ns(1));
  EXPECT_EQ(picks(c, s, 20, in), std::string(20, 'b'));
  // Load counts as well: enough requests in flight on the fast one make the slow one better.
  for (int i = 0; i < 100; ++i) attempt_started(s, 1);
  EXPECT_EQ(pick(c, s, in).index, 0u);
}

TEST(Balancer, Ewma_AFailureCountsAsSlowEvenWhenItWasQuick) {
  auto c = cluster({"refusing", "ok"}, BalanceKind::Ewma);
  BalancerState s;
  s.reset(c);
  PickInput in;
  in.now = Clock::time_point{} + 1h;
  (void)pick(c, s, in);
  attempt_started(s, 0);
  attempt_ended(s, 0, 100us, false);  // connection refused at once
  attempt_started(s, 1);
  attempt_ended(s, 1, 50ms, true);
  EXPECT_EQ(picks(c, s, 10, in), std::string(10, 'b'));
}

TEST(Balancer, Ewma_AnIdleSlowEndpointDecaysAndIsTriedAgain) {
  auto c = cluster({"slow", "fast"}, BalanceKind::Ewma);
  BalancerState s;
  s.reset(c);
  PickInput in;
  in.now = Clock::time_point{} + 1h;
  (void)pick(c, s, in);
  attempt_ended(s, 0, 100ms, true);
  (void)pick(c, s, in);
  attempt_ended(s, 1, 10ms, true);
  EXPECT_EQ(pick(c, s, in).index, 1u);
  // The fast one is measured again now; the slow one has not been heard of for a minute.
  in.now += 60s;
  (void)pick(c, s, in);
  attempt_ended(s, 1, 10ms, true);
  EXPECT_EQ(pick(c, s, in).index, 0u);
}

TEST(Balancer, Hash_SameKeySameEndpointAndKeysSpread) {
  auto c = five(BalanceKind::Hash);
  build_balancing(c);
  EXPECT_EQ(c.balance.ring.size(), 5 * kRingPointsPerWeight);
  BalancerState s;
  s.reset(c);
  std::map<std::size_t, int> count;
  for (int k = 0; k < 10000; ++k) {
    const auto key = "user-" + std::to_string(k);
    PickInput in;
    in.hash_key = key;
    const auto p = pick(c, s, in);
    ASSERT_NE(p.index, kNoEndpoint);
    EXPECT_EQ(pick(c, s, in).index, p.index);
    ++count[p.index];
  }
  ASSERT_EQ(count.size(), 5u);
  for (const auto& [i, n] : count) EXPECT_NEAR(n, 2000, 600) << i;
}

TEST(Balancer, Hash_RemovingAnEndpointMovesOnlyItsKeys) {
  auto before = five(BalanceKind::Hash);
  build_balancing(before);
  auto after =
      cluster({"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.4:8080", "10.0.0.5:8080"}, BalanceKind::Hash);
  build_balancing(after);
  BalancerState s1, s2;
  s1.reset(before);
  s2.reset(after);
  int moved = 0;
  for (int k = 0; k < 10000; ++k) {
    const auto key = "session-" + std::to_string(k);
    PickInput in;
    in.hash_key = key;
    const auto& was = before.endpoints[pick(before, s1, in).index].key;
    const auto& now = after.endpoints[pick(after, s2, in).index].key;
    if (was == now) continue;
    ++moved;
    EXPECT_EQ(was, "10.0.0.3:8080") << key << " moved although its endpoint stayed";
  }
  EXPECT_GE(moved, 1500);
  EXPECT_LE(moved, 2500);
}

TEST(Balancer, Hash_AnUnusableEndpointsKeysWalkOnAndComeBack) {
  auto c = five(BalanceKind::Hash);
  build_balancing(c);
  BalancerState s;
  s.reset(c);
  PickInput in;
  in.hash_key = "patient-portal-user";
  const auto home = pick(c, s, in).index;
  c.endpoints[home].terminating = true;
  const auto other = pick(c, s, in).index;
  EXPECT_NE(other, home);
  EXPECT_NE(other, kNoEndpoint);
  EXPECT_EQ(pick(c, s, in).index, other);  // consistently the next one on the ring
  c.endpoints[home].terminating = false;
  EXPECT_EQ(pick(c, s, in).index, home);
}

TEST(Balancer, Hash_NoKeyFallsBackToRoundRobin) {
  auto c = cluster({"a", "b", "c"}, BalanceKind::Hash);
  build_balancing(c);
  BalancerState s;
  s.reset(c);
  EXPECT_EQ(picks(c, s, 6), "abcabc");
}

TEST(Balancer, UnusableEndpoints_NeverPickedByAnyAlgorithm) {
  for (const auto kind : kAllKinds) {
    auto c = five(kind);
    build_balancing(c);
    c.endpoints[0].terminating = true;
    c.endpoints[2].terminating = true;
    c.endpoints[3].terminating = true;
    BalancerState s;
    s.reset(c);
    for (int k = 0; k < 200; ++k) {
      const auto key = std::to_string(k);
      PickInput in;
      in.hash_key = key;
      const auto i = pick(c, s, in).index;
      EXPECT_TRUE(i == 1 || i == 4) << static_cast<int>(kind) << " picked " << i;
    }
    for (auto& e : c.endpoints) e.terminating = true;
    EXPECT_EQ(pick(c, s, {}).index, kNoEndpoint) << static_cast<int>(kind);
  }
}

TEST(Balancer, TriedEndpoints_AvoidedWhileAnUntriedUsableOneExists) {
  for (const auto kind : kAllKinds) {
    auto c = five(kind);
    build_balancing(c);
    c.endpoints[4].terminating = true;
    BalancerState s;
    s.reset(c);
    const std::array<std::size_t, 3> tried = {0, 1, 3};
    for (int k = 0; k < 50; ++k) {
      const auto key = std::to_string(k);
      PickInput in;
      in.hash_key = key;
      in.tried = tried;
      EXPECT_EQ(pick(c, s, in).index, 2u) << static_cast<int>(kind);
    }
    // Every usable one tried: a tried one again rather than nothing (the caller caps attempts).
    const std::array<std::size_t, 4> all = {0, 1, 2, 3};
    PickInput in;
    in.hash_key = "k";
    in.tried = all;
    const auto i = pick(c, s, in).index;
    EXPECT_TRUE(i <= 3) << static_cast<int>(kind) << " picked " << i;
  }
}

TEST(Balancer, StateUsedWithAnotherClusterSize_StaysInBounds) {
  auto big = five(BalanceKind::LeastRequest);
  auto small = cluster({"a", "b"}, BalanceKind::LeastRequest);
  BalancerState s;
  s.reset(big);
  attempt_started(s, 4);
  EXPECT_LT(pick(small, s, {}).index, 2u);  // a request pinned to another snapshot
  attempt_ended(s, 4, 1ms, true);           // index beyond the resized state: ignored
  attempt_ended(s, 1, 1ms, true);           // never started here: saturates at 0
  EXPECT_EQ(s.in_flight(1), 0u);
  EXPECT_LT(pick(big, s, {}).index, 5u);
}

TEST(Balancer, Reset_KeepsStateForTheSameEndpointsOnly) {
  auto c = cluster({"a", "b"}, BalanceKind::LeastRequest);
  BalancerState s;
  s.reset(c);
  attempt_started(s, 1);
  s.reset(c);  // a reload that did not touch this cluster
  EXPECT_EQ(s.in_flight(1), 1u);
  auto d = cluster({"a", "c"}, BalanceKind::LeastRequest);
  s.reset(d);
  EXPECT_EQ(s.in_flight(1), 0u);
}

// ---- cookie affinity ----

Cluster sticky(bool persistent = false) {
  auto c = five(BalanceKind::RoundRobin);
  c.balance.affinity_cookie = true;
  c.balance.affinity_persistent = persistent;
  build_balancing(c);
  return c;
}

TEST(BalancerAffinity, CookieValue_Is32HexDigitsPerEndpointAndHidesTheAddress) {
  const auto c = sticky();
  std::set<std::string> ids;
  for (const auto& e : c.endpoints) {
    ASSERT_EQ(e.affinity_id.size(), 32u);
    EXPECT_TRUE(valid_cookie_value(e.affinity_id)) << e.affinity_id;
    // Neither the address as text nor its bytes in hex (10.0.0.x = 0a00000x; a 32-bit pattern
    // matches a random value by chance with probability ~6e-9).
    const auto ip = e.key.substr(0, e.key.find(':'));
    const std::string ip_hex = "0a00000" + std::string(1, ip.back());
    for (const std::string& part : {e.key, ip, ip_hex}) {
      EXPECT_EQ(e.affinity_id.find(part), std::string::npos) << e.affinity_id << " contains " << part;
    }
    ids.insert(e.affinity_id);
    EXPECT_EQ(affinity_id(e.key), e.affinity_id);  // stable within the process (every worker, reloads)
  }
  EXPECT_EQ(ids.size(), 5u);
}

TEST(BalancerAffinity, NoCookie_BalancedAndSetsTheCookie) {
  const auto c = sticky();
  BalancerState s;
  s.reset(c);
  const auto p = pick(c, s, {});
  ASSERT_NE(p.index, kNoEndpoint);
  EXPECT_TRUE(p.set_cookie);
}

TEST(BalancerAffinity, ValidCookie_GoesToItsEndpointWithoutSettingItAgain) {
  const auto c = sticky();
  BalancerState s;
  s.reset(c);
  for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
    PickInput in;
    in.affinity_value = c.endpoints[i].affinity_id;
    for (int k = 0; k < 3; ++k) {
      const auto p = pick(c, s, in);
      EXPECT_EQ(p.index, i);
      EXPECT_FALSE(p.set_cookie);
    }
  }
}

TEST(BalancerAffinity, ForgedOrForeignCookie_RebalancedWithANewCookie) {
  const auto c = sticky(true);
  BalancerState s;
  s.reset(c);
  for (const std::string& v :
       {std::string(), std::string("0123456789abcdef0123456789abcdef"), std::string("10.0.0.1:8080"),
        std::string("ZZZ"), c.endpoints[0].affinity_id.substr(0, 31) + "G"}) {
    PickInput in;
    in.affinity_value = v;
    const auto p = pick(c, s, in);
    EXPECT_NE(p.index, kNoEndpoint);
    EXPECT_TRUE(p.set_cookie) << v;  // persistent mode too: nothing to go back to
  }
}

TEST(BalancerAffinity, UnusableEndpoint_BalancedModeRepinsPersistentModeKeepsTheCookie) {
  for (const bool persistent : {false, true}) {
    auto c = sticky(persistent);
    BalancerState s;
    s.reset(c);
    c.endpoints[2].terminating = true;
    PickInput in;
    in.affinity_value = c.endpoints[2].affinity_id;
    const auto p = pick(c, s, in);
    EXPECT_NE(p.index, 2u);
    EXPECT_NE(p.index, kNoEndpoint);
    EXPECT_EQ(p.set_cookie, !persistent);
    // The same when the endpoint was tried by this request (its connect failed).
    c.endpoints[2].terminating = false;
    const std::array<std::size_t, 1> tried = {2};
    in.tried = tried;
    const auto q = pick(c, s, in);
    EXPECT_NE(q.index, 2u);
    EXPECT_EQ(q.set_cookie, !persistent);
  }
}

TEST(BalancerAffinity, EndpointGoneAfterReload_NewCookie) {
  auto c = sticky(true);
  const auto old_id = c.endpoints[4].affinity_id;
  c.endpoints.pop_back();
  build_balancing(c);
  BalancerState s;
  s.reset(c);
  PickInput in;
  in.affinity_value = old_id;
  const auto p = pick(c, s, in);
  EXPECT_LT(p.index, 4u);
  EXPECT_TRUE(p.set_cookie);
}

const auto kNow =
    std::chrono::system_clock::time_point{} + std::chrono::seconds(784111777);  // 1994-11-06 08:49:37Z

TEST(BalancerAffinity, SetCookieLine_DefaultsAndEveryAttribute) {
  auto c = sticky();
  std::string out;
  append_affinity_cookie(out, c, 1, "/app", kNow);
  EXPECT_EQ(out, "Set-Cookie: INGRESSCOOKIE=" + c.endpoints[1].affinity_id + "; Path=/app; HttpOnly\r\n");

  c.balance.cookie_name = "route";
  c.balance.cookie_path = "/portal";
  c.balance.cookie_max_age = 3600;
  c.balance.cookie_expires = 60;
  c.balance.cookie_secure = true;
  c.balance.cookie_samesite = "Strict";
  out = "X: y\r\n";  // appended, never replaced
  append_affinity_cookie(out, c, 0, "/app", kNow);
  EXPECT_EQ(
      out,
      "X: y\r\nSet-Cookie: route=" + c.endpoints[0].affinity_id +
          "; Path=/portal; Max-Age=3600; Expires=Sun, 06 Nov 1994 08:50:37 GMT; Secure; SameSite=Strict; "
          "HttpOnly\r\n");
}

TEST(BalancerAffinity, SetCookieLine_SameSiteNoneImpliesSecure) {
  auto c = sticky();
  c.balance.cookie_samesite = "None";
  std::string out;
  append_affinity_cookie(out, c, 0, "/", kNow);
  EXPECT_NE(out.find("; Secure; SameSite=None; HttpOnly\r\n"), std::string::npos) << out;
}

TEST(BalancerAffinity, SetCookieLine_RefusesInjectedValues) {
  auto c = sticky();
  // A name that is not a token: no line at all rather than a forged one.
  for (const std::string name :
       {"a\r\nSet-Cookie: admin=1", "a;Domain=example.com", "a b", "a=b", "", "a,b"}) {
    c.balance.cookie_name = name;
    std::string out;
    append_affinity_cookie(out, c, 0, "/", kNow);
    EXPECT_TRUE(out.empty()) << name;
  }
  c.balance.cookie_name = "INGRESSCOOKIE";
  // A bad path (configured or the route's) falls back to "/".
  for (const std::string path :
       {"/a\r\nX-Injected: 1", "/a; Domain=evil.example", "relative", "/a b", "/a,b"}) {
    c.balance.cookie_path = path;
    std::string out;
    append_affinity_cookie(out, c, 0, "/", kNow);
    EXPECT_EQ(out, "Set-Cookie: INGRESSCOOKIE=" + c.endpoints[0].affinity_id + "; Path=/; HttpOnly\r\n")
        << path;
    c.balance.cookie_path.clear();
    out.clear();
    append_affinity_cookie(out, c, 0, path, kNow);
    EXPECT_EQ(out, "Set-Cookie: INGRESSCOOKIE=" + c.endpoints[0].affinity_id + "; Path=/; HttpOnly\r\n")
        << path;
  }
  // An unknown SameSite value is left out, never pasted.
  c.balance.cookie_samesite = "Lax; Domain=evil.example";
  std::string out;
  append_affinity_cookie(out, c, 0, "/", kNow);
  EXPECT_EQ(out.find("Domain"), std::string::npos);
  EXPECT_EQ(out.find("SameSite"), std::string::npos);
  // Exactly one CRLF, at the end.
  EXPECT_EQ(out.find("\r\n"), out.size() - 2);
  // Out-of-range index or no affinity: nothing.
  out.clear();
  append_affinity_cookie(out, c, 99, "/", kNow);
  EXPECT_TRUE(out.empty());
  c.balance.affinity_cookie = false;
  append_affinity_cookie(out, c, 0, "/", kNow);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace phigate::upstream
