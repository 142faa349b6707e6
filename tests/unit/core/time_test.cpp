#include "phigate/core/time.hpp"

#include <gtest/gtest.h>

namespace phigate::core {
namespace {

std::optional<std::int64_t> secs(std::string_view s, Rfc3339Forms f = {}) {
  const auto t = parse_rfc3339(s, f);
  return t ? std::optional<std::int64_t>(t->seconds) : std::nullopt;
}

constexpr Rfc3339Forms kLenient{
    .date_only = true, .space_separator = true, .optional_seconds = true, .optional_zone = true};

TEST(Rfc3339, StrictDateTimeWithZone) {
  EXPECT_EQ(secs("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(secs("2024-03-01T10:00:00Z"), 1709287200);
  EXPECT_EQ(secs("2024-02-29T23:59:59Z"), 1709251199);  // leap day
  EXPECT_EQ(secs("1969-12-31T23:59:59z"), -1);          // lower-case z, before the epoch
  EXPECT_EQ(secs("2024-03-01t10:00:00Z"), 1709287200);
}

TEST(Rfc3339, Offsets) {
  EXPECT_EQ(secs("2024-03-01T12:00:00+02:00"), 1709287200);
  EXPECT_EQ(secs("2000-01-01T00:00:00-05:30"), 946704600);
  EXPECT_EQ(secs("2026-01-01T00:00:00+01:00"), secs("2025-12-31T23:00:00Z"));  // across a year
  EXPECT_EQ(secs("2024-03-01T10:00:00+00:00"), secs("2024-03-01T10:00:00-00:00"));
  for (const char* bad :
       {"2024-03-01T10:00:00+0200", "2024-03-01T10:00:00+24:00", "2024-03-01T10:00:00+02:60",
        "2024-03-01T10:00:00+2:00", "2024-03-01T10:00:00ZZ", "2024-03-01T10:00:00 Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Rfc3339, FractionsToNanosecondsExtraDigitsDropped) {
  EXPECT_EQ(parse_rfc3339("2024-03-01T12:00:00.5+02:00"), (UnixTime{1709287200, 500'000'000}));
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.000000001Z"), (UnixTime{0, 1}));
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.123456789123Z"), (UnixTime{0, 123'456'789}));
  EXPECT_FALSE(parse_rfc3339("2024-03-01T10:00:00.Z"));
  EXPECT_FALSE(parse_rfc3339("2024-03-01T10:00:00,5Z"));
}

TEST(Rfc3339, RangesAndCalendar) {
  for (const char* bad :
       {"", "2024", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-03-00T00:00:00Z", "2024-03-01T24:00:00Z", "2024-03-01T10:60:00Z",
        "2024-03-01T10:00:60Z", "2024-3-01T10:00:00Z", "x024-03-01T10:00:00Z", "2024-03-01T1a:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
    EXPECT_FALSE(parse_rfc3339(bad, kLenient)) << bad;
  }
  EXPECT_TRUE(parse_rfc3339("2000-02-29T00:00:00Z"));   // divisible by 400: leap
  EXPECT_FALSE(parse_rfc3339("1900-02-29T00:00:00Z"));  // divisible by 100: not
}

TEST(Rfc3339, StrictRefusesTheLenientForms) {
  for (const char* s : {"2024-03-01", "2024-03-01 10:00:00Z", "2024-03-01T10:00Z", "2024-03-01T10:00:00"}) {
    EXPECT_FALSE(parse_rfc3339(s)) << s;
    EXPECT_TRUE(parse_rfc3339(s, kLenient)) << s;
  }
}

TEST(Rfc3339, LenientFormsEachByItsOwnFlag) {
  EXPECT_EQ(secs("2024-03-01", {.date_only = true}), 1709251200);
  EXPECT_FALSE(
      secs("2024-03-01", {.space_separator = true, .optional_seconds = true, .optional_zone = true}));
  EXPECT_EQ(secs("2024-03-01 10:00:00Z", {.space_separator = true}), 1709287200);
  EXPECT_EQ(secs("2024-03-01T10:00Z", {.optional_seconds = true}), 1709287200);
  EXPECT_EQ(secs("2024-03-01T10:00+01:00", {.optional_seconds = true}), 1709283600);
  EXPECT_EQ(secs("2024-03-01T10:00:00", {.optional_zone = true}), 1709287200);  // UTC
  EXPECT_FALSE(parse_rfc3339("2024-03-01T10:00.5Z", kLenient));                 // a fraction needs seconds
  EXPECT_FALSE(parse_rfc3339("2024-03-01T", kLenient));
  EXPECT_FALSE(parse_rfc3339("2024-03-01T10", kLenient));
  EXPECT_FALSE(parse_rfc3339("2024-03-01T10:0", kLenient));
  EXPECT_FALSE(parse_rfc3339("2024-03-01x10:00:00Z", kLenient));
}

TEST(Rfc3339, DaysFromCivil) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
}

}  // namespace
}  // namespace phigate::core
