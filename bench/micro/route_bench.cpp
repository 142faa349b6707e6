// RouteTable: build time and match() cost at 10 and 10,000 hosts; 100 regex vs 100 Prefix routes
// on one host.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_counter.hpp"
#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/router/route_table.hpp"

namespace phigate::bench {
namespace {

// Host i: every tenth one (i % 10 == 9) is a wildcard "*.tenant-<i>.example.net", host 0 is the
// short "api.local" (fits std::string's inline buffer), the rest are "svc-<i>.apps.example.com".
std::string wildcard_suffix(std::size_t i) {
  return "tenant-" + std::to_string(i) + ".example.net";
}
std::string host_name(std::size_t i) {
  if (i == 0) return "api.local";
  if (i % 10 == 9) return "*." + wildcard_suffix(i);
  return "svc-" + std::to_string(i) + ".apps.example.com";
}

std::vector<config::RouteSpec> make_specs(std::size_t hosts) {
  std::vector<config::RouteSpec> specs;
  specs.reserve(hosts);
  for (std::size_t i = 0; i < hosts; ++i) {
    config::RouteSpec r;
    r.host = host_name(i);
    const std::string backend = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":8080";
    for (const auto* p : {"/", "/api", "/api/v1/items"}) {
      r.paths.push_back({p, config::PathType::Prefix, {backend}, nullptr, {}});
    }
    r.paths.push_back({"/healthz", config::PathType::Exact, {backend}, nullptr, {}});
    specs.push_back(std::move(r));
  }
  return specs;
}

// One table per size, built once for all match benchmarks.
const router::RouteTable& table_for(std::size_t hosts) {
  static std::map<std::size_t, std::unique_ptr<router::RouteTable>> tables;
  auto& t = tables[hosts];
  if (!t) {
    config::Diagnostics diag;
    t = std::make_unique<router::RouteTable>(router::RouteTable::build(make_specs(hosts), diag));
  }
  return *t;
}

// Matches (host, path) in a loop; the route must be the one configured as (want_host, want_path),
// or none when want_host is null.
void run_match(benchmark::State& state, std::string_view host, std::string_view path, const char* want_host,
               const char* want_path) {
  const auto hosts = static_cast<std::size_t>(state.range(0));
  const router::RouteTable& table = table_for(hosts);
  if (table.size() != hosts * 4) {
    state.SkipWithError("route table has the wrong number of routes");
    return;
  }
  const router::Route* expected = table.match(host, path);
  const bool right = want_host == nullptr
                         ? expected == nullptr
                         : expected != nullptr && expected->host == want_host && expected->path == want_path;
  if (!right) {
    state.SkipWithError("match() returned the wrong route");
    return;
  }
  std::int64_t correct = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    benchmark::DoNotOptimize(host);
    benchmark::DoNotOptimize(path);
    const router::Route* r = table.match(host, path);
    benchmark::DoNotOptimize(r);
    correct += r == expected;
  }
  report_allocations(state, allocs);
  if (correct != state.iterations()) state.SkipWithError("match() result changed during the run");
}

// Exact host "svc-<n/2>.apps.example.com", longest Prefix "/api/v1/items".
void BM_RouteMatchExactHost(benchmark::State& state) {
  const auto i = static_cast<std::size_t>(state.range(0)) / 2;  // never a wildcard: i % 10 != 9
  const std::string host = host_name(i);
  run_match(state, host, "/api/v1/items/12345", host.c_str(), "/api/v1/items");
}

// Same exact host, Exact path "/healthz" (one hash lookup, no segment walk).
void BM_RouteMatchExactPath(benchmark::State& state) {
  const auto i = static_cast<std::size_t>(state.range(0)) / 2;
  const std::string host = host_name(i);
  run_match(state, host, "/healthz", host.c_str(), "/healthz");
}

// Exact host with a short name (no heap allocation for the normalised copy), Prefix "/api".
void BM_RouteMatchShortHost(benchmark::State& state) {
  run_match(state, "api.local", "/api/orders", "api.local", "/api");
}

// Host with a port and capitals, matched by the wildcard "*.tenant-<n-1>.example.net", Prefix "/api".
void BM_RouteMatchWildcardHost(benchmark::State& state) {
  const auto i = static_cast<std::size_t>(state.range(0)) - 1;  // n is a multiple of 10: a wildcard
  const std::string wildcard = host_name(i);
  const std::string host = "Web." + wildcard_suffix(i) + ":443";
  run_match(state, host, "/api/orders/7", wildcard.c_str(), "/api");
}

// Unknown host, no default route: exact lookup, wildcard lookup, nothing.
void BM_RouteMatchMiss(benchmark::State& state) {
  run_match(state, "www.unknown-example.org", "/", nullptr, nullptr);
}

// RouteTable::build over n hosts (4 routes each).
void BM_RouteBuild(benchmark::State& state) {
  const auto hosts = static_cast<std::size_t>(state.range(0));
  const auto specs = make_specs(hosts);
  std::size_t routes = 0;
  for (auto _ : state) {
    config::Diagnostics diag;
    const auto table = router::RouteTable::build(specs, diag);
    routes = table.size();
    benchmark::DoNotOptimize(routes);
    if (diag.error_count() != 0 || !diag.entries().empty()) {
      state.SkipWithError("build reported diagnostics");
      break;
    }
  }
  if (routes != hosts * 4) state.SkipWithError("build produced the wrong number of routes");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(hosts * 4));
}

// One host with n routes "/svc-<i>/v1/...": as Prefix paths (hash lookups per segment), or as
// regex paths "/svc-<i>/v[0-9]+/(.*)" of a use-regex Ingress (the bucket in regex mode: one
// RE2::Set match). The request hits route n/2.
const router::RouteTable& many_routes(std::size_t n, bool regex) {
  static std::map<std::pair<std::size_t, bool>, std::unique_ptr<router::RouteTable>> tables;
  auto& t = tables[{n, regex}];
  if (!t) {
    auto policy = std::make_shared<config::RoutePolicy>();
    policy->regex.use_regex = regex;
    config::RouteSpec r;
    r.host = "regex.example";
    for (std::size_t i = 0; i < n; ++i) {
      config::PathSpec p;
      p.path = "/svc-" + std::to_string(i) + (regex ? "/v[0-9]+/(.*)" : "/v1");
      p.backends = {"10.0.0.1:8080"};
      p.policy = policy;
      r.paths.push_back(std::move(p));
    }
    config::Diagnostics diag;
    t = std::make_unique<router::RouteTable>(router::RouteTable::build({r}, diag));
  }
  return *t;
}

void run_many(benchmark::State& state, bool regex) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& table = many_routes(n, regex);
  const std::string path = "/svc-" + std::to_string(n / 2) + "/v1/items/12345";
  const std::string want = "/svc-" + std::to_string(n / 2) + (regex ? "/v[0-9]+/(.*)" : "/v1");
  const router::Route* expected = table.match("regex.example", path);
  if (expected == nullptr || expected->path != want) {
    state.SkipWithError("match() returned the wrong route");
    return;
  }
  std::int64_t correct = 0;
  const std::uint64_t allocs = thread_allocations();
  for (auto _ : state) {
    const router::Route* r = table.match_normalized("regex.example", path);
    benchmark::DoNotOptimize(r);
    correct += r == expected;
  }
  report_allocations(state, allocs);
  if (correct != state.iterations()) state.SkipWithError("match() result changed during the run");
}

void BM_RouteMatchManyPrefix(benchmark::State& state) {
  run_many(state, false);
}
void BM_RouteMatchManyRegex(benchmark::State& state) {
  run_many(state, true);
}

BENCHMARK(BM_RouteMatchManyPrefix)->ArgName("routes")->Arg(100);
BENCHMARK(BM_RouteMatchManyRegex)->ArgName("routes")->Arg(100);
BENCHMARK(BM_RouteMatchExactHost)->ArgName("hosts")->Arg(10)->Arg(10000);
BENCHMARK(BM_RouteMatchExactPath)->ArgName("hosts")->Arg(10)->Arg(10000);
BENCHMARK(BM_RouteMatchShortHost)->ArgName("hosts")->Arg(10)->Arg(10000);
BENCHMARK(BM_RouteMatchWildcardHost)->ArgName("hosts")->Arg(10)->Arg(10000);
BENCHMARK(BM_RouteMatchMiss)->ArgName("hosts")->Arg(10)->Arg(10000);
BENCHMARK(BM_RouteBuild)->ArgName("hosts")->Arg(10)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace phigate::bench
