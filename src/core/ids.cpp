#include "phigate/core/ids.hpp"

#include <array>
#include <cstring>
#include <random>

namespace phigate::core {

FastRandom::FastRandom() {
  std::random_device rd;
  for (auto& s : s_) s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::uint64_t FastRandom::next() noexcept {
  auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void make_request_id(FastRandom& rng, std::string& out) {
  // Two hex digits per table entry, low nibble first (the order of one digit per nibble), built
  // in a local array: a store through std::string reloads its pointer every time.
  static constexpr auto kPairs = [] {
    constexpr char kHex[] = "0123456789abcdef";
    std::array<std::array<char, 2>, 256> t{};
    for (std::size_t b = 0; b < 256; ++b) t[b] = {kHex[b & 0xf], kHex[b >> 4]};
    return t;
  }();
  char id[32];
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = rng.next();
    for (int i = 0; i < 8; ++i, v >>= 8) std::memcpy(id + half * 16 + i * 2, kPairs[v & 0xff].data(), 2);
  }
  out.assign(id, sizeof id);
}

}  // namespace phigate::core
