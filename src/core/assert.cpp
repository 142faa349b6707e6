#include "phigate/core/assert.hpp"

#include <cstdio>
#include <cstdlib>

#include "phigate/core/log.hpp"

namespace phigate::core {

namespace {
std::atomic<std::uint64_t> g_bugs{0};
}

void check_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "phigate: fatal: check failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

void report_bug(const char* what, const char* file, int line) {
  g_bugs.fetch_add(1, std::memory_order_relaxed);
  PHI_LOG_ERROR("bug: {} at {}:{}", what, file, line);
#ifndef NDEBUG
  std::abort();
#endif
}

std::uint64_t bug_count() noexcept {
  return g_bugs.load(std::memory_order_relaxed);
}

}  // namespace phigate::core
