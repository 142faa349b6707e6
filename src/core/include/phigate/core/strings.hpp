#pragma once
// ASCII string helpers shared by every layer: case folding for protocol tokens and DNS names, and
// the one transparent hash for string-keyed maps looked up by string_view. ASCII only on purpose:
// HTTP field names, tokens and host names are ASCII (RFC 9110 §5.1, RFC 1123), and locale-aware
// std::tolower would make matching depend on the process locale.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace phigate::core {

/// 'A'..'Z' → 'a'..'z'; every other byte unchanged.
constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// ASCII lower-case copy of `s`.
std::string to_lower(std::string_view s);

/// Lower-cases `s` in place (no allocation: hot paths reuse one string).
void to_lower_in_place(std::string& s) noexcept;
/// Lower-cases the `n` bytes at `p` in place, eight at a time (every header name of a response
/// relayed to HTTP/2 passes here).
void to_lower_in_place(char* p, std::size_t n) noexcept;

/// ASCII case-insensitive equality (header names, tokens, host names). Only letters fold: '@' and
/// '`' differ by the case bit but are not letters. Inline: it runs for every header of every
/// request, usually deciding on a length mismatch or the first byte.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;  // the common case (same case) costs one compare
    const auto lx = static_cast<unsigned char>(x | 0x20);
    if (lx != (y | 0x20) || lx < 'a' || lx > 'z') return false;
  }
  return true;
}

/// Transparent hash: a std::string-keyed map can be searched with a string_view without building a
/// std::string (no allocation on the request path).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// std::string → V, found by string_view.
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

/// Length of the well-formed UTF-8 sequence at `s[i]` (1 for ASCII), or 0 when the bytes there
/// start none (RFC 3629 §4: overlong forms, UTF-16 surrogates and code points above U+10FFFF are
/// not well-formed). `i` < s.size().
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto cont = [&](std::size_t k) { return (b(k) & 0xC0) == 0x80; };
  const unsigned c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace phigate::core
