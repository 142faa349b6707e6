#pragma once
// Invariant checks. Never use these on network input or config values.
//  PHI_ASSERT: debug builds only.  PHI_CHECK: always, fatal.
//  PHI_BUG: release logs and counts; debug aborts.
#include <atomic>
#include <cstdint>

namespace phigate::core {
[[noreturn]] void check_failed(const char* expr, const char* file, int line);
void report_bug(const char* what, const char* file, int line);
/// Number of PHI_BUG reports since start (exported as a metric).
std::uint64_t bug_count() noexcept;
}  // namespace phigate::core

#define PHI_CHECK(expr) ((expr) ? (void)0 : ::phigate::core::check_failed(#expr, __FILE__, __LINE__))
#ifdef NDEBUG
#define PHI_ASSERT(expr) ((void)0)
#else
#define PHI_ASSERT(expr) PHI_CHECK(expr)
#endif
#define PHI_BUG(what) ::phigate::core::report_bug((what), __FILE__, __LINE__)
