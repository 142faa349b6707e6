#pragma once
// RFC 3339 timestamps (Kubernetes metadata, audit filters). Pure parsing: no clock, no time zone
// database, no locale (std::get_time and strptime depend on both).
#include <cstdint>
#include <optional>
#include <string_view>

namespace phigate::core {

/// Seconds since the Unix epoch (negative before 1970) plus the fraction, 0..999'999'999 ns.
struct UnixTime {
  std::int64_t seconds = 0;
  std::uint32_t nanoseconds = 0;
  friend bool operator==(const UnixTime&, const UnixTime&) = default;
};

/// Forms accepted beyond RFC 3339 §5.6 date-time ("2024-05-01T10:00:00Z", "...T12:00:00.5+02:00";
/// 'T' and 'Z' in either case). Each caller turns on what its users may type; all off is strict.
struct Rfc3339Forms {
  bool date_only = false;         // "2026-11-27": midnight UTC (RFC 3339 full-date)
  bool space_separator = false;   // "2026-11-27 08:00:00Z" (RFC 3339 §5.6 NOTE)
  bool optional_seconds = false;  // "2026-11-27T08:00Z" (then no fraction either)
  bool optional_zone = false;     // "2026-11-27T08:00:00": UTC
};

/// Parses `text` whole. Fraction digits beyond nanoseconds are dropped; a leap second (:60), a
/// month day that does not exist, hour 24 and offsets beyond ±23:59 are refused.
std::optional<UnixTime> parse_rfc3339(std::string_view text, Rfc3339Forms forms = {});

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) noexcept;

}  // namespace phigate::core
