#pragma once
// Counts calls of the global operator new on the calling thread (alloc_counter.cpp replaces it), so
// a benchmark can report heap allocations per operation next to its time.
#include <benchmark/benchmark.h>

#include <cstdint>

namespace phigate::bench {

/// Allocations made by this thread since it started.
std::uint64_t thread_allocations() noexcept;

/// Sets the "allocs/op" counter from the allocations made since `before` (call after the loop).
inline void report_allocations(benchmark::State& state, std::uint64_t before) {
  state.counters["allocs/op"] = benchmark::Counter(static_cast<double>(thread_allocations() - before),
                                                   benchmark::Counter::kAvgIterations);
}

}  // namespace phigate::bench
