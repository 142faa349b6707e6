#pragma once
// Cheap per-thread random ids (request ids). Not for secrets.
#include <array>
#include <cstdint>
#include <string>

namespace phigate::core {

/// xoshiro256** seeded from the OS. One per thread; not thread-safe.
class FastRandom {
 public:
  FastRandom();
  std::uint64_t next() noexcept;

 private:
  std::array<std::uint64_t, 4> s_{};
};

/// Writes a 32-hex-digit request id into `out` (replacing its contents).
void make_request_id(FastRandom& rng, std::string& out);

}  // namespace phigate::core
