#include "phigate/core/strings.hpp"

#include <gtest/gtest.h>

namespace phigate::core {
namespace {

TEST(Strings, ToLowerFoldsAsciiLettersOnly) {
  EXPECT_EQ(to_lower("App.EXAMPLE.com:8443"), "app.example.com:8443");
  EXPECT_EQ(to_lower(""), "");
  EXPECT_EQ(to_lower("@[`{"), "@[`{");          // neighbours of 'A'..'Z' and 'a'..'z' stay
  EXPECT_EQ(to_lower("\xC3\x89"), "\xC3\x89");  // bytes above 0x7f are not letters here
  EXPECT_EQ(to_lower('Z'), 'z');
  EXPECT_EQ(to_lower('z'), 'z');
  std::string s = "MiXeD-1";
  to_lower_in_place(s);
  EXPECT_EQ(s, "mixed-1");
}

TEST(Strings, ToLowerInPlaceByWordsMatchesTheByteRuleForEveryByteInEveryLane) {
  // The word-at-a-time fold against to_lower(char): every byte value at every position of 8-byte
  // words and of every tail (bytes, two overlapping 4-byte words), beside neighbours that would
  // show a carry between lanes.
  for (std::size_t len = 1; len <= 20; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int v = 0; v < 256; ++v) {
        for (const char fill : {'\xFF', 'A', 'Z', '\x00', '@', '['}) {
          std::string s(len, fill);
          s[pos] = static_cast<char>(v);
          std::string want = s;
          for (char& c : want) c = to_lower(c);
          to_lower_in_place(s.data(), s.size());
          ASSERT_EQ(s, want) << "len " << len << " pos " << pos << " byte " << v << " fill " << int(fill);
        }
      }
    }
  }
  char buf[3] = {'A', 'B', 'C'};
  to_lower_in_place(buf + 1, 1);  // only the bytes given
  EXPECT_EQ(std::string(buf, 3), "AbC");
}

TEST(Strings, IequalsComparesLettersCaseInsensitively) {
  EXPECT_TRUE(iequals("X-Forwarded-For", "x-forwarded-for"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("ZZ9", "zz9"));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("@", "`"));  // 0x40 / 0x60 differ by the case bit but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  EXPECT_FALSE(iequals("host", "hosu"));
}

TEST(Strings, StringMapIsFoundByStringView) {
  StringMap<int> m;
  m.emplace("alpha", 1);
  m.emplace("beta", 2);
  const std::string_view key = "beta-and-more";
  const auto it = m.find(key.substr(0, 4));  // heterogeneous lookup: no std::string built
  ASSERT_NE(it, m.end());
  EXPECT_EQ(it->second, 2);
  EXPECT_EQ(m.find(std::string_view("gamma")), m.end());
  EXPECT_EQ(StringHash{}(std::string_view("alpha")), StringHash{}(std::string("alpha")));
}

}  // namespace
}  // namespace phigate::core

namespace phigate::core {
namespace {

TEST(Utf8, SequenceLengthOfWellFormedAndRefusedForms) {
  using namespace std::string_view_literals;
  EXPECT_EQ(utf8_sequence_length("a"sv, 0), 1u);
  EXPECT_EQ(utf8_sequence_length("\xC3\xA9"sv, 0), 2u);          // é
  EXPECT_EQ(utf8_sequence_length("\xE2\x80\xAE"sv, 0), 3u);      // U+202E
  EXPECT_EQ(utf8_sequence_length("\xF0\x9F\x98\x80"sv, 0), 4u);  // U+1F600
  EXPECT_EQ(utf8_sequence_length("\xC0\xAF"sv, 0), 0u);          // overlong '/'
  EXPECT_EQ(utf8_sequence_length("\xE0\x80\xAF"sv, 0), 0u);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xED\xA0\x80"sv, 0), 0u);      // surrogate
  EXPECT_EQ(utf8_sequence_length("\xF4\x90\x80\x80"sv, 0), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xE2\x80"sv, 0), 0u);          // cut short
  EXPECT_EQ(utf8_sequence_length("\x80"sv, 0), 0u);              // lone continuation
}

}  // namespace
}  // namespace phigate::core
