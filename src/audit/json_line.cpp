#include "phigate/audit/json_line.hpp"

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

void append_json_escaped(std::string& out, std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    // Copy the longest run that needs no escaping in one append.
    std::size_t j = i;
    while (j < s.size()) {
      const auto c = static_cast<unsigned char>(s[j]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++j;
    }
    out.append(s.data() + i, j - i);
    i = j;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default: {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof esc);
        }
      }
      ++i;
    } else if (const std::size_t n = utf8_sequence(s, i)) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

void JsonLine::clear() {
  buf_.clear();
  buf_ += '{';
  depth_ = 1;
  need_comma_ = false;
}

void JsonLine::key(std::string_view k) {
  if (need_comma_) buf_ += ',';
  buf_ += '"';
  append_json_escaped(buf_, k);
  buf_ += "\":";
  need_comma_ = true;
}

void JsonLine::field(std::string_view k, std::string_view value) {
  key(k);
  buf_ += '"';
  append_json_escaped(buf_, value);
  buf_ += '"';
}

void JsonLine::field(std::string_view k, bool value) {
  key(k);
  buf_ += value ? "true" : "false";
}

void JsonLine::signed_field(std::string_view k, std::int64_t v) {
  key(k);
  char num[24];
  const auto r = std::to_chars(num, num + sizeof num, v);
  buf_.append(num, r.ptr);
}

void JsonLine::unsigned_field(std::string_view k, std::uint64_t v) {
  key(k);
  char num[24];
  const auto r = std::to_chars(num, num + sizeof num, v);
  buf_.append(num, r.ptr);
}

void JsonLine::null(std::string_view k) {
  key(k);
  buf_ += "null";
}

void JsonLine::begin_object(std::string_view k) {
  key(k);
  buf_ += '{';
  ++depth_;
  need_comma_ = false;
}

void JsonLine::end_object() {
  if (depth_ <= 1) return;  // the outer object is closed by finish()
  buf_ += '}';
  --depth_;
  need_comma_ = true;
}

std::string_view JsonLine::finish() {
  while (depth_ > 0) {
    buf_ += '}';
    --depth_;
  }
  return buf_;
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
