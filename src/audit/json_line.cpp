#include "phigate/audit/json_line.hpp"

#include "phigate/core/assert.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace phigate::audit {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at s[i], or 0 if the byte there starts no valid sequence
// (RFC 3629 §4: no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

namespace {

/// Bytes JSON needs escaped or checked: control characters, '"', '\\' and non-ASCII (UTF-8
/// validation). Eight bytes at a time (SWAR): zero when none of them does.
inline std::uint64_t attention(std::uint64_t x) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const auto zero_byte = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
  return below_space | zero_byte(x ^ (kOnes * '"')) | zero_byte(x ^ (kOnes * '\\')) | (x & kHigh);
}

constexpr auto kSpecial = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  return t;
}();

/// Writes `s` escaped to `out`, which has room for 6 bytes per input byte; returns bytes written.
std::size_t escape_into(char* out, std::string_view s) noexcept {
  char* const begin = out;
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    // Longest run needing nothing, 8 bytes at a time, then byte by byte.
    const char* run = p;
    while (end - p >= 8) {
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      if (attention(x) != 0) break;
      p += 8;
    }
    while (p < end && !kSpecial[static_cast<unsigned char>(*p)]) ++p;
    std::memcpy(out, run, static_cast<std::size_t>(p - run));
    out += p - run;
    if (p == end) break;
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = static_cast<char>(c);
      ++p;
    } else if (c < 0x20) {
      *out++ = '\\';
      switch (c) {
        case '\n':
          *out++ = 'n';
          break;
        case '\r':
          *out++ = 'r';
          break;
        case '\t':
          *out++ = 't';
          break;
        default:
          *out++ = 'u';
          *out++ = '0';
          *out++ = '0';
          *out++ = kHex[c >> 4];
          *out++ = kHex[c & 0xF];
      }
      ++p;
    } else if (const std::size_t n = utf8_sequence(s, static_cast<std::size_t>(p - s.data()))) {
      std::memcpy(out, p, n);
      out += n;
      p += n;
    } else {
      std::memcpy(out, "\\ufffd", 6);
      out += 6;
      ++p;
    }
  }
  return static_cast<std::size_t>(out - begin);
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  const auto old = out.size();
  out.resize(old + 6 * s.size());
  out.resize(old + escape_into(out.data() + old, s));
}

void JsonLine::grow(std::size_t n) {
  const std::size_t cap = std::max<std::size_t>({cap_ * 2, size_ + n, 1024});
  auto next = std::make_unique_for_overwrite<char[]>(cap);
  if (size_ != 0) std::memcpy(next.get(), data_.get(), size_);
  data_ = std::move(next);
  cap_ = cap;
}

void JsonLine::put(std::string_view s) {
  if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
  size_ += s.size();
}

void JsonLine::put_escaped(std::string_view s) {
  size_ += escape_into(room(6 * s.size()), s);
}

void JsonLine::clear() {
  size_ = 0;
  put('{');
  depth_ = 1;
  need_comma_ = false;
}

namespace {
[[maybe_unused]] bool plain(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return kSpecial[static_cast<unsigned char>(c)]; });
}
}  // namespace

void JsonLine::key(std::string_view k) {
  // Keys are names chosen by code or validated as HTTP tokens: nothing in them needs escaping
  // (checked in debug builds), and copying them is most of a record's fields.
  PHI_ASSERT(plain(k));
  char* p = room(k.size() + 4);
  if (need_comma_) *p++ = ',';
  *p++ = '"';
  std::memcpy(p, k.data(), k.size());
  p += k.size();
  *p++ = '"';
  *p++ = ':';
  size_ = static_cast<std::size_t>(p - data_.get());
  need_comma_ = true;
}

void JsonLine::field(std::string_view k, std::string_view value) {
  key(k);
  char* p = room(value.size() * 6 + 2);
  *p++ = '"';
  p += escape_into(p, value);
  *p++ = '"';
  size_ = static_cast<std::size_t>(p - data_.get());
}

void JsonLine::plain_field(std::string_view k, std::string_view value) {
  PHI_ASSERT(plain(value));
  key(k);
  char* p = room(value.size() + 2);
  *p++ = '"';
  // An empty view may have a null data(): memcpy must not see it (UBSan nonnull).
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '"';
  size_ = static_cast<std::size_t>(p - data_.get());
}

void JsonLine::field(std::string_view k, bool value) {
  key(k);
  put(value ? std::string_view("true") : std::string_view("false"));
}

void JsonLine::signed_field(std::string_view k, std::int64_t v) {
  key(k);
  char* p = room(24);
  size_ = static_cast<std::size_t>(std::to_chars(p, p + 24, v).ptr - data_.get());
}

void JsonLine::unsigned_field(std::string_view k, std::uint64_t v) {
  key(k);
  char* p = room(24);
  size_ = static_cast<std::size_t>(std::to_chars(p, p + 24, v).ptr - data_.get());
}

void JsonLine::null(std::string_view k) {
  key(k);
  put("null");
}

void JsonLine::begin_object(std::string_view k) {
  key(k);
  put('{');
  ++depth_;
  need_comma_ = false;
}

void JsonLine::end_object() {
  if (depth_ <= 1) return;  // the outer object is closed by finish()
  put('}');
  --depth_;
  need_comma_ = true;
}

void JsonLine::begin_array(std::string_view k) {
  key(k);
  put('[');
  need_comma_ = false;
}

void JsonLine::begin_element() {
  if (need_comma_) put(',');
  put('{');
  ++depth_;
  need_comma_ = false;
}

void JsonLine::end_array() {
  put(']');
  need_comma_ = true;
}

std::string_view JsonLine::finish() {
  while (depth_ > 0) {
    put('}');
    --depth_;
  }
  return {data_.get(), size_};
}

namespace {

void put_digits(char* p, std::uint64_t v, int n) noexcept {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

std::string_view format_timestamp(std::chrono::system_clock::time_point t, char (&out)[kTimestampLength]) {
  using namespace std::chrono;
  const auto ns = time_point_cast<nanoseconds>(t);
  // system_clock counts int64 nanoseconds (libstdc++): years 1677..2262 always have four digits.
  const auto day = floor<days>(ns);
  const year_month_day ymd{day};
  const auto y = static_cast<int>(ymd.year());
  const auto rest = (ns - day).count();  // [0, 86400e9): floor<days> rounds toward the past
  const auto secs = static_cast<std::uint64_t>(rest / 1000000000);
  char* p = out;
  put_digits(p, static_cast<std::uint64_t>(y), 4);
  p[4] = '-';
  put_digits(p + 5, static_cast<unsigned>(ymd.month()), 2);
  p[7] = '-';
  put_digits(p + 8, static_cast<unsigned>(ymd.day()), 2);
  p[10] = 'T';
  put_digits(p + 11, secs / 3600, 2);
  p[13] = ':';
  put_digits(p + 14, secs / 60 % 60, 2);
  p[16] = ':';
  put_digits(p + 17, secs % 60, 2);
  p[19] = '.';
  put_digits(p + 20, static_cast<std::uint64_t>(rest % 1000000000), 9);
  p[29] = 'Z';
  return {out, kTimestampLength};
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  char buf[kTimestampLength];
  return std::string(format_timestamp(t, buf));
}

}  // namespace phigate::audit
