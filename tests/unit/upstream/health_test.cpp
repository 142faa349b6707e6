// Endpoint health, event by event: active-check thresholds, passive ejection and its back-off,
// the ejection cap (also under two threads reporting at once), expiry, probe scheduling, and the
// registry that carries state across snapshot builds. No sockets, no wall clock.
#include "phigate/upstream/health.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "phigate/upstream/backend_tls.hpp"
#include "phigate/upstream/balancer.hpp"

namespace phigate::upstream {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kT0 = Clock::time_point(1000s);

ActiveCheckSettings active(unsigned healthy, unsigned unhealthy, bool initial = true) {
  ActiveCheckSettings s;
  s.enabled = true;
  s.path = "/healthz";
  s.healthy_threshold = healthy;
  s.unhealthy_threshold = unhealthy;
  s.initial_healthy = initial;
  return s;
}

PassiveSettings passive(unsigned failures = 3, unsigned percent = 50) {
  PassiveSettings s;
  s.consecutive_failures = failures;
  s.base_ejection = 10s;
  s.max_ejection = 35s;
  s.max_ejected_percent = percent;
  return s;
}

/// A cluster of `n` endpoints sharing one group, as the snapshot builder makes it.
Cluster cluster(std::size_t n, const PassiveSettings& p, HealthRegistry* reg = nullptr) {
  HealthRegistry scratch;
  auto& r = reg != nullptr ? *reg : scratch;
  Cluster c;
  c.name = "app.example /";
  c.health = r.group(c.name, p);
  for (std::size_t i = 0; i < n; ++i) {
    Endpoint e;
    e.address =
        net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(8000 + i));
    e.key = "127.0.0.1:" + std::to_string(8000 + i);
    e.health = r.endpoint(c.name, e, ActiveCheckSettings{}, nullptr, c.health);
    c.endpoints.push_back(std::move(e));
  }
  return c;
}

/// Reports `k` failures of endpoint i; true if one of them ejected it.
bool fail(const Cluster& c, std::size_t i, unsigned k, Clock::time_point now,
          AttemptResult r = AttemptResult::Status5xx) {
  bool ejected = false;
  for (unsigned j = 0; j < k; ++j) ejected = report_attempt(c, i, r, now) || ejected;
  return ejected;
}

TEST(ActiveHealth, UnhealthyAfterNFailuresHealthyAfterMPasses) {
  ActiveHealth h(active(2, 3));
  EXPECT_TRUE(h.ok());
  EXPECT_FALSE(h.record(false));
  EXPECT_FALSE(h.record(false));
  EXPECT_TRUE(h.ok());
  EXPECT_TRUE(h.record(false));  // the third in a row
  EXPECT_FALSE(h.ok());
  EXPECT_FALSE(h.record(true));
  EXPECT_FALSE(h.ok());
  EXPECT_TRUE(h.record(true));  // the second in a row
  EXPECT_TRUE(h.ok());
}

TEST(ActiveHealth, APassBetweenFailuresStartsTheCountAgain) {
  ActiveHealth h(active(2, 3));
  h.record(false);
  h.record(false);
  h.record(true);
  h.record(false);
  h.record(false);
  EXPECT_TRUE(h.ok());
  h.record(false);
  EXPECT_FALSE(h.ok());
  // And a failure between passes while unhealthy.
  h.record(true);
  h.record(false);
  h.record(true);
  EXPECT_FALSE(h.ok());
  h.record(true);
  EXPECT_TRUE(h.ok());
}

TEST(ActiveHealth, InitialUnhealthyWaitsForTheFirstPassingCheckOnly) {
  ActiveHealth h(active(3, 3, false));
  EXPECT_FALSE(h.ok());
  EXPECT_FALSE(h.record(false));
  EXPECT_FALSE(h.ok());
  // Checked once already: now the whole threshold applies.
  h.record(true);
  h.record(true);
  EXPECT_FALSE(h.ok());
  h.record(true);
  EXPECT_TRUE(h.ok());

  ActiveHealth fresh(active(3, 3, false));
  EXPECT_TRUE(fresh.record(true));  // the very first check passing
  EXPECT_TRUE(fresh.ok());
}

TEST(ActiveHealth, AFailingActiveCheckMakesTheEndpointUnusable) {
  HealthRegistry r;
  Cluster c;
  c.name = "x";
  c.health = r.group("x", passive());
  Endpoint e;
  e.key = "127.0.0.1:1";
  e.health = r.endpoint("x", e, active(1, 1), nullptr, c.health);
  c.endpoints.push_back(e);
  EXPECT_TRUE(endpoint_usable(c, 0, kT0));
  e.health->active()->record(false);
  EXPECT_FALSE(endpoint_usable(c, 0, kT0));
  e.health->active()->record(true);
  EXPECT_TRUE(endpoint_usable(c, 0, kT0));
}

TEST(PassiveHealth, ConsecutiveFailuresEjectASuccessResetsTheCount) {
  auto c = cluster(4, passive(3));
  EXPECT_FALSE(fail(c, 0, 2, kT0));
  EXPECT_FALSE(report_attempt(c, 0, AttemptResult::Success, kT0));
  EXPECT_FALSE(fail(c, 0, 2, kT0));  // 2 since the success
  EXPECT_TRUE(endpoint_usable(c, 0, kT0));
  EXPECT_TRUE(fail(c, 0, 1, kT0, AttemptResult::ConnectFailure));  // every failure kind counts
  EXPECT_FALSE(endpoint_usable(c, 0, kT0));
  EXPECT_TRUE(endpoint_usable(c, 1, kT0));
  EXPECT_EQ(c.health->ejected_count(), 1u);
  // Reports arriving during the ejection (requests already under way) do not eject again.
  EXPECT_FALSE(fail(c, 0, 5, kT0 + 1s, AttemptResult::Reset));
  EXPECT_EQ(c.endpoints[0].health->ejections(), 1u);
}

TEST(PassiveHealth, EjectionExpiresAndTheSlotIsGivenBack) {
  auto c = cluster(2, passive(1));
  ASSERT_TRUE(fail(c, 0, 1, kT0));
  EXPECT_FALSE(endpoint_usable(c, 0, kT0 + 9s));
  EXPECT_EQ(c.health->ejected_count(), 1u);
  EXPECT_TRUE(endpoint_usable(c, 0, kT0 + 10s));                     // base_ejection × 1
  EXPECT_EQ(c.health->ejected_count(), 0u);                          // released lazily by that look
  EXPECT_FALSE(release_expired(*c.endpoints[0].health, kT0 + 11s));  // exactly once
  EXPECT_EQ(c.health->ejected_count(), 0u);
}

TEST(PassiveHealth, BackOffGrowsWithRepeatedEjectionsUpToTheMaximum) {
  const auto s = passive(1);
  EXPECT_EQ(ejection_time(s, 1), 10s);
  EXPECT_EQ(ejection_time(s, 2), 20s);
  EXPECT_EQ(ejection_time(s, 3), 30s);
  EXPECT_EQ(ejection_time(s, 4), 35s);  // capped
  EXPECT_EQ(ejection_time(s, 4'000'000'000u), 35s);

  auto c = cluster(2, s);
  auto now = kT0;
  const std::chrono::seconds expected[] = {10s, 20s, 30s, 35s, 35s};
  for (const auto d : expected) {
    ASSERT_TRUE(fail(c, 0, 1, now));
    EXPECT_FALSE(endpoint_usable(c, 0, now + d - 1ms)) << d.count();
    EXPECT_TRUE(endpoint_usable(c, 0, now + d)) << d.count();
    now += d;
  }
  EXPECT_EQ(c.endpoints[0].health->ejections(), 5u);
}

TEST(PassiveHealth, AnExpiredEjectionNotYetReleasedPassesItsSlotToTheNextEjection) {
  auto c = cluster(2, passive(1));
  ASSERT_TRUE(fail(c, 0, 1, kT0));
  // Nobody looked at endpoint 0 after its expiry: the next failure re-ejects it on the same slot.
  ASSERT_TRUE(fail(c, 0, 1, kT0 + 15s));
  EXPECT_EQ(c.health->ejected_count(), 1u);
  EXPECT_FALSE(endpoint_usable(c, 0, kT0 + 15s + 19s));  // second ejection: 20 s
  EXPECT_TRUE(endpoint_usable(c, 0, kT0 + 35s));
  EXPECT_EQ(c.health->ejected_count(), 0u);
}

TEST(PassiveHealth, ALongHealthyStretchForgetsTheBackOff) {
  auto c = cluster(2, passive(1));
  ASSERT_TRUE(fail(c, 0, 1, kT0));
  ASSERT_TRUE(endpoint_usable(c, 0, kT0 + 10s));
  report_attempt(c, 0, AttemptResult::Success, kT0 + 20s);  // within max_ejection of the end
  EXPECT_EQ(c.endpoints[0].health->ejections(), 1u);
  report_attempt(c, 0, AttemptResult::Success, kT0 + 10s + 36s);
  EXPECT_EQ(c.endpoints[0].health->ejections(), 0u);
  ASSERT_TRUE(fail(c, 0, 1, kT0 + 50s));
  EXPECT_TRUE(endpoint_usable(c, 0, kT0 + 60s));  // 10 s again, not 20 s
}

struct CapCase {
  std::size_t endpoints;
  unsigned percent;
  std::uint32_t allowed;
};

class EjectionCap : public ::testing::TestWithParam<CapCase> {};

TEST_P(EjectionCap, NeverMoreThanTheConfiguredShare) {
  const auto [n, percent, allowed] = GetParam();
  auto c = cluster(n, passive(1, percent));
  std::uint32_t ejected = 0;
  for (std::size_t i = 0; i < n; ++i) ejected += fail(c, i, 3, kT0) ? 1 : 0;
  EXPECT_EQ(ejected, allowed);
  EXPECT_EQ(c.health->ejected_count(), allowed);
  std::size_t usable = 0;
  for (std::size_t i = 0; i < n; ++i) usable += endpoint_usable(c, i, kT0) ? 1 : 0;
  EXPECT_EQ(usable, n - allowed);
  // Once the ejections expire, the others may be ejected in their turn.
  for (std::size_t i = 0; i < n; ++i) endpoint_usable(c, i, kT0 + 10s);
  EXPECT_EQ(c.health->ejected_count(), 0u);
  std::uint32_t second = 0;
  for (std::size_t i = n; i-- > 0;) second += fail(c, i, 1, kT0 + 10s) ? 1 : 0;
  EXPECT_EQ(second, allowed);
}

INSTANTIATE_TEST_SUITE_P(Shares, EjectionCap,
                         ::testing::Values(CapCase{2, 50, 1}, CapCase{3, 50, 1}, CapCase{5, 50, 2},
                                           CapCase{1, 50, 0}, CapCase{5, 100, 5}, CapCase{5, 0, 0}));

TEST(EjectionCap, ExpiredEjectionsOfOthersAreReleasedBeforeTheCapIsJudged) {
  auto c = cluster(2, passive(1));
  ASSERT_TRUE(fail(c, 0, 1, kT0));
  EXPECT_FALSE(fail(c, 1, 1, kT0 + 5s));  // cap: 1 of 2
  // Endpoint 0's ejection expired and nobody looked at it: endpoint 1's ejection releases it.
  EXPECT_TRUE(fail(c, 1, 1, kT0 + 10s));
  EXPECT_EQ(c.health->ejected_count(), 1u);
  EXPECT_TRUE(endpoint_usable(c, 0, kT0 + 10s));
  EXPECT_FALSE(endpoint_usable(c, 1, kT0 + 10s));
}

TEST(EjectionCap, TerminatingEndpointsDoNotCountTowardsTheCap) {
  // Two serving and two terminating endpoints: 50% of the two that serve is one, not two.
  auto c = cluster(4, passive(1));
  c.endpoints[2].terminating = c.endpoints[3].terminating = true;
  EXPECT_TRUE(fail(c, 0, 1, kT0));
  EXPECT_FALSE(fail(c, 1, 1, kT0)) << "ejecting the second serving endpoint would empty the route";
  EXPECT_TRUE(endpoint_usable(c, 1, kT0));
}

TEST(EjectionCap, PassiveChecksOffNeverEject) {
  auto p = passive(1);
  p.enabled = false;
  auto c = cluster(4, p);
  EXPECT_FALSE(fail(c, 0, 100, kT0));
  EXPECT_TRUE(endpoint_usable(c, 0, kT0));
}

TEST(EjectionCap, TwoThreadsReportingAtOnceLoseNoSlot) {
  // Two workers hammer every endpoint with failures while time moves past ejections' ends; the
  // group's count must always equal the endpoints holding a slot, and never exceed the cap.
  for (int round = 0; round < 20; ++round) {
    auto p = passive(1);
    p.base_ejection = 1ms;
    p.max_ejection = 3ms;
    auto c = cluster(5, p);
    std::atomic<bool> over_cap{false};
    std::atomic<std::uint64_t> ejections{0};
    auto worker = [&](int seed) {
      for (int k = 0; k < 20000; ++k) {
        const auto now = kT0 + std::chrono::microseconds(k * 10);
        const std::size_t i = static_cast<std::size_t>(k * 7 + seed) % 5;
        if (report_attempt(c, i, AttemptResult::Reset, now)) ejections.fetch_add(1);
        endpoint_usable(c, (i + 1) % 5, now);
        if (c.health->ejected_count() > 2) over_cap = true;
      }
    };
    std::thread a(worker, 0), b(worker, 3);
    a.join();
    b.join();
    EXPECT_FALSE(over_cap.load());
    EXPECT_GT(ejections.load(), 10u);
    std::uint32_t holding = 0;
    for (const auto& e : c.endpoints) {
      // Release what has expired by far; what is left holds a slot.
      release_expired(*e.health, kT0 + 1h);
    }
    EXPECT_EQ(c.health->ejected_count(), holding) << "round " << round;
  }
}

TEST(EjectionCap, TwoThreadsFindingTheSameExpiryReleaseItsSlotOnce) {
  // Both threads look at the same expired ejection at the same moment, many times over: the slot
  // must be given back exactly once each time (a double release would wrap the count around).
  auto c = cluster(2, passive(1));
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  constexpr int kRounds = 30000;
  auto looker = [&] {
    for (int round = 1; round <= kRounds; ++round) {
      // Spin (both threads wake together), yielding only when this core is shared.
      for (int k = 0; go.load(std::memory_order_acquire) < round; ++k) {
        if (k > 2000) std::this_thread::yield();
      }
      endpoint_usable(c, 0, kT0 + std::chrono::hours(round));
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  };
  std::thread a(looker), b(looker);
  int bad_round = 0;
  for (int round = 1; round <= kRounds; ++round) {
    // Eject endpoint 0 (10 s) an hour × round in, then let both look 1 h later, long expired.
    fail(c, 0, 1, kT0 + std::chrono::hours(round - 1));
    go.store(round, std::memory_order_release);
    while (done.load(std::memory_order_acquire) < 2 * round) std::this_thread::yield();
    if (c.health->ejected_count() != 0 && bad_round == 0) {
      bad_round = round;
      go.store(kRounds, std::memory_order_release);  // let both threads finish at once
      break;
    }
  }
  a.join();
  b.join();
  EXPECT_EQ(bad_round, 0) << "count " << c.health->ejected_count();
  if (bad_round == 0) {
    EXPECT_EQ(c.endpoints[0].health->ejections(), static_cast<unsigned>(kRounds));  // every round ejected
  }
}

TEST(PassiveHealth, PickSkipsEjectedAndTerminatingEndpoints) {
  auto c = cluster(3, passive(1));
  c.endpoints[2].terminating = true;
  ASSERT_TRUE(fail(c, 0, 1, kT0));
  BalancerState st;
  st.reset(c);
  PickInput in;
  in.now = kT0;
  for (int k = 0; k < 6; ++k) EXPECT_EQ(pick(c, st, in).index, 1u);
  c.endpoints[1].terminating = true;
  EXPECT_EQ(pick(c, st, in).index, kNoEndpoint);
}

TEST(ProbeSchedule, FirstProbesAreSpreadEvenlyOverTheInterval) {
  const std::size_t n = 5000;
  std::vector<std::size_t> per_bucket(10, 0);
  std::set<std::int64_t> distinct;
  for (std::size_t i = 0; i < n; ++i) {
    const auto o = first_probe_offset(i, n, 10s);
    ASSERT_GE(o, 0ms);
    ASSERT_LT(o, 10s);
    ++per_bucket[static_cast<std::size_t>(o.count() / 1000)];
    distinct.insert(o.count());
  }
  for (const auto b : per_bucket) EXPECT_EQ(b, 500u);  // each second of the interval gets 1/10th
  EXPECT_EQ(distinct.size(), n);                       // 2 ms apart: no two in the same millisecond
  EXPECT_EQ(first_probe_offset(0, 1, 10s), 0ms);
  EXPECT_EQ(first_probe_offset(0, 0, 10s), 0ms);
}

TEST(ProbeSchedule, NextProbeIsTheIntervalWithTenPercentJitter) {
  EXPECT_EQ(next_probe_delay(10s, 0.0), 9s);
  EXPECT_EQ(next_probe_delay(10s, 0.5), 10s);
  EXPECT_EQ(next_probe_delay(10s, 0.999999), 10999ms);
  EXPECT_EQ(next_probe_delay(10s, 7.0), 11s);  // clamped
  EXPECT_GE(next_probe_delay(0ms, 0.0), 1ms);  // never a busy loop
}

TEST(HealthRegistry, StateSurvivesARebuildThatKeepsTheEndpoint) {
  HealthRegistry r;
  auto c1 = cluster(3, passive(1), &r);
  r.commit();
  ASSERT_TRUE(fail(c1, 1, 1, kT0));
  // The next build (a reload, an EndpointSlice change) keeps endpoints 0 and 1, adds 3.
  auto c2 = cluster(4, passive(1), &r);
  r.commit();
  EXPECT_EQ(c2.health, c1.health);
  EXPECT_EQ(c2.endpoints[1].health, c1.endpoints[1].health);
  EXPECT_FALSE(endpoint_usable(c2, 1, kT0));  // still ejected
  EXPECT_EQ(c2.health->ejected_count(), 1u);
  EXPECT_NE(c2.endpoints[3].health, nullptr);
  // Changed passive settings: a new group, new endpoint state.
  auto c3 = cluster(4, passive(2), &r);
  r.commit();
  EXPECT_NE(c3.health, c1.health);
  EXPECT_TRUE(endpoint_usable(c3, 1, kT0));
}

TEST(HealthRegistry, AnAbandonedBuildDoesNotDropTheRunningState) {
  HealthRegistry r;
  auto c1 = cluster(2, passive(1), &r);
  r.commit();
  auto unused = cluster(1, passive(7), &r);  // a build that failed
  r.abandon();
  auto c2 = cluster(2, passive(1), &r);
  r.commit();
  EXPECT_EQ(c2.endpoints[0].health, c1.endpoints[0].health);
}

TEST(HealthRegistry, OneProbePerEndpointAndSettingsWhateverTheClusters) {
  HealthRegistry r;
  for (const char* name : {"a /", "b /", "c /x"}) {
    auto g = r.group(name, passive());
    Endpoint e;
    e.key = "127.0.0.1:9";
    auto h = r.endpoint(name, e, active(2, 3), nullptr, g);
    EXPECT_NE(h->active(), nullptr);
  }
  Endpoint e;
  e.key = "127.0.0.1:9";
  auto other = active(2, 3);
  other.path = "/ready";
  r.endpoint("d /", e, other, nullptr, r.group("d /", passive()));
  r.commit();
  EXPECT_EQ(r.probes().size(), 2u);  // "/healthz" once for three clusters, "/ready" once
  r.abandon();
  // Endpoints dropped from the configuration: their probes stop.
  r.commit();
  EXPECT_TRUE(r.probes().empty());
}

TEST(HealthRegistry, TheBackendTlsIdentityIsPartOfTheProbes) {
  const auto tls = [](const std::string& name) {
    BackendTlsSpec s;
    s.verify = false;  // no CA needed to build; the name still counts in the identity
    s.verify_name = name;
    auto r = BackendTls::build(s);
    EXPECT_TRUE(r) << r.error().context;
    return std::move(r.value());
  };
  const auto a = tls("a.internal");
  const auto a_again = tls("a.internal");  // equal settings, another object: the same probe
  const auto b = tls("b.internal");
  HealthRegistry r;
  Endpoint e;
  e.key = "127.0.0.1:9";
  const auto add = [&](const char* cluster, const std::shared_ptr<const BackendTls>& t) {
    return r.endpoint(cluster, e, active(2, 3), t, r.group(cluster, passive()));
  };
  const auto plain = add("p /", nullptr);
  const auto h1 = add("a /", a);
  const auto h2 = add("a2 /", a_again);
  const auto h3 = add("b /", b);
  r.commit();
  EXPECT_EQ(h1->active(), h2->active());
  EXPECT_NE(h1->active(), h3->active()) << "a verdict under other TLS settings is not this route's";
  EXPECT_NE(h1->active(), plain->active());
  const auto probes = r.probes();
  ASSERT_EQ(probes.size(), 3u);  // plain, a.internal, b.internal
  std::size_t with_tls = 0;
  for (const auto& p : probes) {
    with_tls += p.tls != nullptr ? 1 : 0;
    EXPECT_FALSE(p.tcp_only) << "a path is set: HTTP over the connection";
  }
  EXPECT_EQ(with_tls, 2u);
  // A rebuild that changes only the TLS settings starts the endpoint's checks afresh.
  add("a /", b);
  r.commit();
  ASSERT_EQ(r.probes().size(), 1u);
  EXPECT_EQ(r.probes()[0].tls->identity(), b->identity());
}

TEST(HealthRegistry, AnEndpointDroppedWhileEjectedGivesItsSlotBack) {
  HealthRegistry r;
  auto g = r.group("x", passive(1));
  {
    auto c = cluster(0, passive(1), &r);
    Endpoint e;
    e.key = "127.0.0.1:1";
    e.health = r.endpoint(c.name, e, ActiveCheckSettings{}, nullptr, c.health);
    c.endpoints.push_back(e);
    e.health.reset();
    Endpoint f;
    f.key = "127.0.0.1:2";
    f.health = r.endpoint(c.name, f, ActiveCheckSettings{}, nullptr, c.health);
    c.endpoints.push_back(f);
    r.commit();
    ASSERT_TRUE(fail(c, 0, 1, kT0));
    g = c.health;
    EXPECT_EQ(g->ejected_count(), 1u);
    r.commit();  // the next build has neither endpoint; the old snapshot (c) still holds them
  }
  EXPECT_EQ(g->ejected_count(), 0u);
}

}  // namespace
}  // namespace phigate::upstream
