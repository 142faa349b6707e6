#include "phigate/core/time.hpp"

namespace phigate::core {

namespace {

bool fixed_digits(std::string_view s, std::size_t pos, std::size_t count, unsigned& out) {
  if (pos > s.size() || count > s.size() - pos) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

bool valid_date(unsigned year, unsigned month, unsigned day) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month >= 1 && month <= 12 && day >= 1 && day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<UnixTime> parse_rfc3339(std::string_view s, Rfc3339Forms forms) {
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!fixed_digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !fixed_digits(s, 5, 2, month) ||
      s[7] != '-' || !fixed_digits(s, 8, 2, day) || !valid_date(year, month, day)) {
    return std::nullopt;
  }
  const std::int64_t midnight = days_from_civil(year, month, day) * 86400;
  if (s.size() == 10) {
    if (!forms.date_only) return std::nullopt;
    return UnixTime{midnight, 0};
  }
  const char sep = s[10];
  if (sep != 'T' && sep != 't' && !(forms.space_separator && sep == ' ')) return std::nullopt;
  if (!fixed_digits(s, 11, 2, hour) || s.size() < 16 || s[13] != ':' || !fixed_digits(s, 14, 2, minute)) {
    return std::nullopt;
  }
  std::size_t pos = 16;
  std::uint32_t nanos = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!fixed_digits(s, 17, 2, second)) return std::nullopt;
    pos = 19;
    if (pos < s.size() && s[pos] == '.') {
      const auto start = ++pos;
      std::uint32_t scale = 100'000'000;
      for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
        nanos += static_cast<std::uint32_t>(s[pos] - '0') * scale;
        scale /= 10;  // 0 after nine digits: the rest are dropped
      }
      if (pos == start) return std::nullopt;
    }
  } else if (!forms.optional_seconds) {
    return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  std::int64_t offset = 0;
  const auto zone = s.substr(pos);
  if (zone == "Z" || zone == "z") {
    offset = 0;
  } else if (zone.empty()) {
    if (!forms.optional_zone) return std::nullopt;
  } else {
    unsigned oh = 0, om = 0;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || !fixed_digits(zone, 1, 2, oh) ||
        zone[3] != ':' || !fixed_digits(zone, 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (zone[0] == '+' ? 1 : -1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
  }
  return UnixTime{midnight + hour * 3600 + minute * 60 + second - offset, nanos};
}

}  // namespace phigate::core
