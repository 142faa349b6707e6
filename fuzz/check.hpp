#pragma once
// Shared by the fuzz targets: an invariant check that stops the run (libFuzzer saves the input as
// a crash reproducer), so that targets assert properties and not only "does not crash".
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace phigate::fuzz {

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, what);
  std::abort();
}

/// True when `id` is listed in PHIGATE_FUZZ_TOLERATE (comma-separated): for exploring past a
/// known, reported finding by hand (fuzz/README.md). scripts/fuzz.sh and CI never set it.
inline bool tolerated(const char* id) {
  static const char* list = std::getenv("PHIGATE_FUZZ_TOLERATE");
  if (list == nullptr) return false;
  const std::size_t n = std::strlen(id);
  for (const char* p = std::strstr(list, id); p != nullptr; p = std::strstr(p + 1, id)) {
    if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return true;
  }
  return false;
}

}  // namespace phigate::fuzz

#define FUZZ_CHECK(cond, what)                                        \
  do {                                                                \
    if (!(cond)) ::phigate::fuzz::violated(what, __FILE__, __LINE__); \
  } while (0)

/// FUZZ_CHECK that PHIGATE_FUZZ_TOLERATE=<id> turns off (a known finding awaiting its fix).
#define FUZZ_CHECK_KNOWN(id, cond, what) FUZZ_CHECK((cond) || ::phigate::fuzz::tolerated(id), what)
