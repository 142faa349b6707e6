#include "phigate/audit/json_line.hpp"

#include <gtest/gtest.h>

namespace phigate::audit {
namespace {

using namespace std::chrono;
using namespace std::literals;

TEST(JsonLine, FieldsOfEveryType) {
  JsonLine j;
  j.field("s", "text");
  j.field("i", -42);
  j.field("u", std::uint64_t{18446744073709551615u});
  j.field("b", true);
  j.null("n");
  j.begin_object("url");
  j.field("domain", std::string("a.example"));
  j.end_object();
  j.field("after", false);
  EXPECT_EQ(
      j.finish(),
      R"({"s":"text","i":-42,"u":18446744073709551615,"b":true,"n":null,"url":{"domain":"a.example"},"after":false})");
}

TEST(JsonLine, EmptyObjectAndUnclosedNesting) {
  JsonLine j;
  EXPECT_EQ(j.finish(), "{}");
  j.clear();
  j.begin_object("a");
  j.begin_object("b");
  EXPECT_EQ(j.finish(), R"({"a":{"b":{}}})");
}

TEST(JsonLine, EscapesQuotesBackslashAndControlCharacters) {
  JsonLine j;
  j.field("key", "a\"b\\c\nd\re\tf\x01g\x1f\x7f"sv);  // keys are never escaped (documented)
  EXPECT_EQ(j.finish(), R"({"key":"a\"b\\c\nd\re\tf\u0001g\u001f)"
                        "\x7f"
                        R"("})");
}

TEST(JsonLine, ValidUtf8PassesInvalidBytesBecomeReplacementCharacters) {
  JsonLine j;
  j.field("v", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");  // é € 😀
  EXPECT_EQ(j.finish(), "{\"v\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}");
  j.clear();
  // Lone continuation, truncated sequence, overlong '/', UTF-16 surrogate, above U+10FFFF, 0xFF.
  j.field("v", "\x80|\xC3|\xC0\xAF|\xED\xA0\x80|\xF4\x90\x80\x80|\xFF"sv);
  EXPECT_EQ(j.finish(),
            R"({"v":"\ufffd|\ufffd|\ufffd\ufffd|\ufffd\ufffd\ufffd|\ufffd\ufffd\ufffd\ufffd|\ufffd"})");
}

TEST(JsonLine, ClearKeepsCapacity) {
  JsonLine j;
  j.field("k", std::string(1000, 'x'));
  (void)j.finish();
  const char* before = j.finish().data();
  j.clear();
  j.field("k", std::string(900, 'y'));
  EXPECT_EQ(j.finish().data(), before);  // same buffer: no reallocation once warmed up
}

TEST(FormatTimestamp, NanosecondsUtc) {
  const auto t = sys_days{year{2026} / 11 / 27} + hours{8} + minutes{1} + seconds{2} + nanoseconds{123456789};
  EXPECT_EQ(format_timestamp(time_point_cast<system_clock::duration>(t)), "2026-11-27T08:01:02.123456789Z");
  char buf[kTimestampLength];
  EXPECT_EQ(format_timestamp(system_clock::time_point{}, buf), "1970-01-01T00:00:00.000000000Z");
}

TEST(FormatTimestamp, BeforeEpochAndLeapDay) {
  const auto t = sys_days{year{1969} / 12 / 31} + hours{23} + minutes{59} + seconds{59} + nanoseconds{1};
  EXPECT_EQ(format_timestamp(time_point_cast<system_clock::duration>(t)), "1969-12-31T23:59:59.000000001Z");
  EXPECT_EQ(format_timestamp(sys_days{year{2028} / 2 / 29}), "2028-02-29T00:00:00.000000000Z");
}

}  // namespace
}  // namespace phigate::audit

namespace phigate::audit {
namespace {
// The escaper checks 8 bytes at a time: a special byte at any offset of a long string, and
// every special kind, must come out escaped exactly there.
TEST(JsonEscape, SpecialByteAtEveryOffsetOfALongString) {
  const std::string specials[] = {"\"",       "\\",  "\n", std::string(1, '\x01'), std::string(1, '\x7f'),
                                  "\xc3\xa9", "\xff"};
  const std::string expected[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\x7f", "\xc3\xa9", "\\ufffd"};
  for (std::size_t k = 0; k < std::size(specials); ++k) {
    for (std::size_t at = 0; at < 40; ++at) {
      const std::string in = std::string(at, 'a') + specials[k] + std::string(40 - at, 'b');
      std::string out;
      append_json_escaped(out, in);
      EXPECT_EQ(out, std::string(at, 'a') + expected[k] + std::string(40 - at, 'b')) << k << " at " << at;
    }
  }
}
TEST(JsonLine, ArrayOfObjects) {
  JsonLine j;
  j.begin_object("upstream");
  j.field("attempts", 3);
  j.begin_array("failed_attempts");
  j.begin_element();
  j.plain_field("address", "10.0.0.1:80");
  j.end_object();
  j.begin_element();
  j.field("status", 503);
  j.end_object();
  j.end_array();
  j.field("after", true);
  EXPECT_EQ(
      j.finish(),
      R"({"upstream":{"attempts":3,"failed_attempts":[{"address":"10.0.0.1:80"},{"status":503}],"after":true}})");
  j.clear();
  j.begin_array("empty");
  j.end_array();
  EXPECT_EQ(j.finish(), R"({"empty":[]})");
}

}  // namespace
}  // namespace phigate::audit
