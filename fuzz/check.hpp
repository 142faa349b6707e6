#pragma once
// Shared by the fuzz targets: an invariant check that stops the run (libFuzzer saves the input as
// a crash reproducer), so that targets assert properties and not only "does not crash".
#include <cstdio>
#include <cstdlib>

namespace phigate::fuzz {

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, what);
  std::abort();
}

}  // namespace phigate::fuzz

#define FUZZ_CHECK(cond, what)                                        \
  do {                                                                \
    if (!(cond)) ::phigate::fuzz::violated(what, __FILE__, __LINE__); \
  } while (0)
