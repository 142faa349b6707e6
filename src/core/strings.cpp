#include "phigate/core/strings.hpp"

#include <cstdint>
#include <cstring>

namespace phigate::core {

std::string to_lower(std::string_view s) {
  std::string out(s);
  to_lower_in_place(out);
  return out;
}

void to_lower_in_place(std::string& s) noexcept {
  to_lower_in_place(s.data(), s.size());
}

void to_lower_in_place(char* p, std::size_t n) noexcept {
  // Per 64-bit word: bit 7 of each byte of `ge_a` says byte >= 'A', of `gt_z` byte > 'Z' (on the
  // low seven bits, where the additions cannot carry into the next byte); bytes >= 0x80 are left.
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x80 * kOnes;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    const std::uint64_t low7 = x & (0x7F * kOnes);
    const std::uint64_t ge_a = low7 + (0x80 - 'A') * kOnes;
    const std::uint64_t gt_z = low7 + (0x80 - 'Z' - 1) * kOnes;
    const std::uint64_t upper = ge_a & ~gt_z & ~x & kHigh;
    x |= upper >> 2;  // 0x80 >> 2 == 0x20, the case bit
    std::memcpy(p, &x, 8);
  }
  for (; n > 0; ++p, --n) *p = to_lower(*p);
}

}  // namespace phigate::core
