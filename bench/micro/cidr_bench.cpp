// access::CidrSet::contains over 10 and 10,000 random ranges (IPv4, one in sixteen IPv6).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "phigate/access/cidr.hpp"

namespace phigate::bench {
namespace {

constexpr std::size_t kProbes = 1024;  // probes cycled through, a power of two

struct CidrFixture {
  access::CidrSet set;
  std::vector<access::Address> hits;    // each inside some range
  std::vector<access::Address> misses;  // in none (100.0.0.0/8 and 2001:db9::/32 are never used)
  bool ok = true;
};

std::string v4(std::uint32_t a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
  return buf;
}

std::string v6(unsigned block, std::uint32_t net, std::uint32_t host_hi, std::uint32_t host_lo) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "2001:%x:%x:%x:%x:%x:%x:%x", block, net >> 16, net & 0xffffu, host_hi >> 16,
                host_hi & 0xffffu, host_lo >> 16, host_lo & 0xffffu);
  return buf;
}

// IPv4 ranges: a random first octet in 1..223 except 100, a random prefix /16../32; IPv6 ranges:
// 2001:db8:<random 32 bits>::/64. Hits are random addresses inside randomly chosen members.
CidrFixture make_fixture(std::size_t ranges) {
  CidrFixture f;
  std::mt19937_64 rng(20261127 + ranges);
  std::uniform_int_distribution<std::uint32_t> octet(1, 222);
  std::uniform_int_distribution<unsigned> prefix(16, 32);
  std::uniform_int_distribution<std::uint32_t> any;
  struct V4 {
    std::uint32_t net;
    unsigned bits;
  };
  std::vector<V4> v4s;
  std::vector<std::uint32_t> v6s;
  for (std::size_t i = 0; i < ranges; ++i) {
    if (i % 16 == 15) {
      const std::uint32_t net = any(rng);
      const auto c = access::parse_cidr(v6(0xdb8, net, 0, 0) + "/64");
      if (!c) f.ok = false;
      if (c) f.set.add(*c);
      v6s.push_back(net);
      continue;
    }
    std::uint32_t first = octet(rng);
    if (first >= 100) ++first;  // 1..99, 101..223
    const unsigned bits = prefix(rng);
    const std::uint32_t mask = bits == 32 ? ~0u : ~(~0u >> bits);
    const std::uint32_t net = ((first << 24) | (any(rng) & 0x00ffffffu)) & mask;
    const auto c = access::parse_cidr(v4(net) + "/" + std::to_string(bits));
    if (!c) f.ok = false;
    if (c) f.set.add(*c);
    v4s.push_back({net, bits});
  }
  for (std::size_t i = 0; i < kProbes; ++i) {
    const bool six = i % 16 == 15 && !v6s.empty();
    std::string hit;
    if (six) {
      hit = v6(0xdb8, v6s[any(rng) % v6s.size()], any(rng), any(rng));
    } else {
      const V4& r = v4s[any(rng) % v4s.size()];
      const std::uint32_t host = r.bits == 32 ? 0u : any(rng) & (~0u >> r.bits);
      hit = v4(r.net | host);
    }
    const std::string miss =
        six ? v6(0xdb9, any(rng), any(rng), any(rng)) : v4((100u << 24) | (any(rng) >> 8));
    const auto h = access::parse_address(hit);
    const auto m = access::parse_address(miss);
    if (!h || !m) {
      f.ok = false;
      continue;
    }
    f.hits.push_back(*h);
    f.misses.push_back(*m);
  }
  // Every probe must answer as designed before anything is timed.
  for (const auto& a : f.hits) f.ok = f.ok && f.set.contains(a);
  for (const auto& a : f.misses) f.ok = f.ok && !f.set.contains(a);
  return f;
}

const CidrFixture& fixture(std::size_t ranges) {
  static std::map<std::size_t, CidrFixture> cache;
  auto it = cache.find(ranges);
  if (it == cache.end()) it = cache.emplace(ranges, make_fixture(ranges)).first;
  return it->second;
}

void run_contains(benchmark::State& state, bool hit) {
  const CidrFixture& f = fixture(static_cast<std::size_t>(state.range(0)));
  if (!f.ok || f.hits.size() != kProbes) {
    state.SkipWithError("CIDR fixture is not as designed");
    return;
  }
  const auto& probes = hit ? f.hits : f.misses;
  std::size_t i = 0;
  std::int64_t found = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    const bool in = f.set.contains(probes[i++ & (kProbes - 1)]);
    benchmark::DoNotOptimize(in);
    found += in;
  }
  report_allocations(state, allocs);
  if (found != (hit ? state.iterations() : 0)) state.SkipWithError("contains() gave a wrong answer");
  state.counters["merged_ranges"] = static_cast<double>(f.set.size());
}

void BM_CidrContainsHit(benchmark::State& state) {
  run_contains(state, true);
}
void BM_CidrContainsMiss(benchmark::State& state) {
  run_contains(state, false);
}

BENCHMARK(BM_CidrContainsHit)->ArgName("ranges")->Arg(10)->Arg(10000);
BENCHMARK(BM_CidrContainsMiss)->ArgName("ranges")->Arg(10)->Arg(10000);

}  // namespace
}  // namespace phigate::bench
