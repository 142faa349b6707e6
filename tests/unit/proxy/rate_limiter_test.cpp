// The process-wide rate-limit table (phigate/proxy/rate_limiter.hpp): nginx's leaky bucket event
// by event with an injected clock, the memory bound under a flood of addresses, limit-connections
// slots, and two threads on one key.
#include "phigate/proxy/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace phigate::proxy {
namespace {

RateLimiter::Key key(std::uint32_t n, std::uint64_t zone = 1) {
  RateLimiter::Key k;
  k.zone = zone;
  k.addr[10] = 0xff;
  k.addr[11] = 0xff;
  k.addr[12] = static_cast<std::uint8_t>(n >> 24);
  k.addr[13] = static_cast<std::uint8_t>(n >> 16);
  k.addr[14] = static_cast<std::uint8_t>(n >> 8);
  k.addr[15] = static_cast<std::uint8_t>(n);
  return k;
}

std::shared_ptr<RateLimiter> table(std::size_t capacity = 100000) {
  return std::make_shared<RateLimiter>(capacity);
}

TEST(RateLimiter, BurstThenOneRequestPerIntervalAtTheRate) {
  auto t = table();
  const auto k = key(1);
  // limit-rps 10, burst 5 (multiplier 0.5 here, to keep the numbers small): a new address gets
  // burst + 1 at once (nginx: excess starts at 0 and may reach burst), then one per 100 ms.
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(t->take(k, 10000, 5, 0).allowed) << i;
  const auto refused = t->take(k, 10000, 5, 0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 100);
  EXPECT_FALSE(t->take(k, 10000, 5, 99).allowed);
  EXPECT_TRUE(t->take(k, 10000, 5, 100).allowed);
  EXPECT_FALSE(t->take(k, 10000, 5, 100).allowed);
  // An idle second refills the whole burst, no more.
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(t->take(k, 10000, 5, 5000).allowed) << i;
  EXPECT_FALSE(t->take(k, 10000, 5, 5000).allowed);
}

TEST(RateLimiter, RefusedRequestsDoNotCount) {
  auto t = table();
  const auto k = key(2);
  // 2 r/s, no burst: one per 500 ms however many are refused in between.
  EXPECT_TRUE(t->take(k, 2000, 0, 0).allowed);
  for (int ms = 0; ms < 500; ms += 10) EXPECT_FALSE(t->take(k, 2000, 0, ms).allowed) << ms;
  EXPECT_TRUE(t->take(k, 2000, 0, 500).allowed);
  EXPECT_FALSE(t->take(k, 2000, 0, 501).allowed);
}

TEST(RateLimiter, PerMinuteRateAsNginxRoundsIt) {
  auto t = table();
  const auto k = key(3);
  // limit-rpm 30, multiplier 0: 30 * 1000 / 60 = 500 milli-requests per second, one per 2 s.
  EXPECT_TRUE(t->take(k, 500, 0, 0).allowed);
  const auto v = t->take(k, 500, 0, 1000);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after_ms, 1000);
  EXPECT_TRUE(t->take(k, 500, 0, 2000).allowed);
}

TEST(RateLimiter, AddressesAndZonesAreSeparate) {
  auto t = table();
  EXPECT_TRUE(t->take(key(1), 1000, 0, 0).allowed);
  EXPECT_FALSE(t->take(key(1), 1000, 0, 0).allowed);
  EXPECT_TRUE(t->take(key(2), 1000, 0, 0).allowed);     // another client
  EXPECT_TRUE(t->take(key(1, 2), 1000, 0, 0).allowed);  // another Ingress
  EXPECT_NE(RateLimiter::zone_id("Ingress a/b", "rps", 10, 5),
            RateLimiter::zone_id("Ingress a/b", "rpm", 10, 5));
  EXPECT_NE(RateLimiter::zone_id("Ingress a/b", "rps", 10, 5),
            RateLimiter::zone_id("Ingress a/c", "rps", 10, 5));
  EXPECT_NE(RateLimiter::zone_id("Ingress a/b", "rps", 10, 5),
            RateLimiter::zone_id("Ingress a/b", "rps", 20, 5));
  EXPECT_EQ(RateLimiter::zone_id("Ingress a/b", "rps", 10, 5),
            RateLimiter::zone_id("Ingress a/b", "rps", 10, 5));
}

TEST(RateLimiter, AClockThatRunsBackLeaksNothing) {
  auto t = table();
  const auto k = key(4);
  EXPECT_TRUE(t->take(k, 1000, 0, 10000).allowed);
  EXPECT_FALSE(t->take(k, 1000, 0, 0).allowed);
}

TEST(RateLimiter, AFloodOfAddressesStaysWithinTheBound) {
  auto t = table(10000);
  EXPECT_EQ(t->capacity(), 10048u);  // whole shards
  const auto total_before = RateLimiter::evictions_total();
  const auto empty = t->bytes();
  for (std::uint32_t i = 0; i < 20000; ++i) t->take(key(i), 1000, 5, i);
  const auto after_twice = t->bytes();
  for (std::uint32_t i = 20000; i < 100000; ++i) t->take(key(i), 1000, 5, i);
  EXPECT_LE(t->entries(), t->capacity());
  EXPECT_GE(t->entries(), t->capacity() * 9 / 10);  // shards fill about evenly
  EXPECT_EQ(t->evictions(), 100000u - t->entries());
  // phigate_rate_limit_evictions_total's source counts them too (no other table runs meanwhile).
  EXPECT_EQ(RateLimiter::evictions_total() - total_before, t->evictions());
  // 56-byte entries, 48-byte index nodes and the buckets: under 200 bytes a key, plus the shards.
  EXPECT_LE(t->bytes(), t->capacity() * 200 + 64 * 1024);
  EXPECT_LE(t->bytes(), after_twice + 64 * 1024);  // no growth once full
  EXPECT_LT(empty, 64 * 1024u);                    // nothing allocated before it is used
}

TEST(RateLimiter, TheMostRecentlySeenKeyIsKept) {
  auto t = table(256);  // 4 keys a shard
  const auto victim = key(7);
  EXPECT_TRUE(t->take(victim, 1000, 0, 0).allowed);
  for (std::uint32_t i = 1000; i < 11000; ++i) {
    t->take(key(i), 1000, 0, 0);
    // Refused each time (and so still known): a flood of other addresses does not reset it.
    ASSERT_FALSE(t->take(victim, 1000, 0, 0).allowed) << i;
  }
  EXPECT_GT(t->evictions(), 0u);
}

TEST(RateLimiter, ConnectionSlots) {
  auto t = table();
  const auto k = key(9);
  auto a = t->acquire(k, 2, 0);
  auto b = t->acquire(k, 2, 0);
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(t->acquire(k, 2, 0));
  EXPECT_TRUE(t->acquire(key(10), 2, 0));  // another address
  {
    auto moved = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from slot is empty
    EXPECT_FALSE(t->acquire(k, 2, 0));
  }  // given back here, once
  auto c = t->acquire(k, 2, 0);
  EXPECT_TRUE(c);
  EXPECT_FALSE(t->acquire(k, 2, 0));
  b.release();
  c = RateLimiter::Slot{};
  EXPECT_TRUE(t->acquire(k, 2, 0));
}

TEST(RateLimiter, KeysWithRequestsInFlightAreNeverEvicted) {
  auto t = table(64);  // one key a shard
  const auto k = key(11);
  auto held = t->acquire(k, 1, 0);
  ASSERT_TRUE(held);
  for (std::uint32_t i = 0; i < 5000; ++i) t->take(key(100000 + i), 1000, 0, i);
  EXPECT_GT(t->full_refusals(), 0u);     // the flood's keys in k's shard found no free slot
  EXPECT_FALSE(t->acquire(k, 1, 6000));  // still counted: the limit is not escaped by a flood
  held.release();
  EXPECT_TRUE(t->acquire(k, 1, 6000));
}

// Review: held requests (entries in flight) must not gather at the least-recently-seen end and make
// every later eviction scan fail. With more held entries in a shard than one scan looks at, a new
// address still finds a free entry, as long as the shard is not wholly in flight.
TEST(RateLimiter, HeldEntriesAtTheTailDoNotRefuseNewAddresses) {
  auto t = table(64 * 100);  // 100 keys a shard
  std::vector<RateLimiter::Slot> held;
  std::uint32_t n = 0;
  // Fill every shard: first 60 held addresses per shard (on average), then 40 idle ones.
  for (; n < 64 * 60; ++n) {
    auto s = t->acquire(key(n), 1, n);
    if (s) held.push_back(std::move(s));
  }
  for (; n < 64 * 100 + 2000; ++n) t->take(key(n), 1000, 5, n);
  // The idle ones were evicted by newer idle ones, the held ones moved out of the way: new
  // addresses keep being admitted.
  const auto refusals_before = t->full_refusals();
  int admitted = 0;
  for (std::uint32_t i = 0; i < 2000; ++i) admitted += t->take(key(1000000 + i), 1000, 5, 100000 + i).allowed;
  EXPECT_EQ(admitted, 2000);
  EXPECT_EQ(t->full_refusals(), refusals_before);
}

TEST(RateLimiter, TwoThreadsOnOneKeyGetExactlyTheBurst) {
  auto t = table();
  const auto k = key(12);
  std::atomic<int> allowed{0};
  const auto run = [&] {
    for (int i = 0; i < 20000; ++i) {
      if (t->take(k, 1000, 100, 0).allowed) allowed.fetch_add(1);
      auto s = t->acquire(key(13), 1000, 0);  // and connection slots taken and given back
    }
  };
  std::thread a(run), b(run);
  a.join();
  b.join();
  EXPECT_EQ(allowed.load(), 101);
  // Every slot was given back: the limit of 1 admits one again.
  auto one = t->acquire(key(13), 1, 0);
  EXPECT_TRUE(one);
  EXPECT_FALSE(t->acquire(key(13), 1, 0));
}

}  // namespace
}  // namespace phigate::proxy
