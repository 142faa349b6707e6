#include "phigate/core/host_map.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::core {
namespace {

TEST(HostMap, ExactNameWinsOverWildcard) {
  HostMap<int> m;
  m.emplace("*.example.com", 1);
  m.emplace("a.example.com", 2);
  ASSERT_NE(m.find("a.example.com"), nullptr);
  EXPECT_EQ(*m.find("a.example.com"), 2);
  ASSERT_NE(m.find("b.example.com"), nullptr);
  EXPECT_EQ(*m.find("b.example.com"), 1);
  EXPECT_EQ(m.size(), 2u);
}

TEST(HostMap, WildcardCoversExactlyOneLabel) {
  HostMap<int> m;
  m.emplace("*.example.com", 1);
  EXPECT_NE(m.find("a.example.com"), nullptr);
  EXPECT_EQ(m.find("a.b.example.com"), nullptr);  // RFC 6125 §6.4.3: one label only
  EXPECT_EQ(m.find("example.com"), nullptr);      // the bare suffix is not covered
  EXPECT_EQ(m.find(".example.com"), nullptr);     // an empty label is not a label
  EXPECT_EQ(m.find("aexample.com"), nullptr);
  EXPECT_EQ(m.find("com"), nullptr);
  EXPECT_EQ(m.find(""), nullptr);
}

TEST(HostMap, LookupIsByNormalisedNameOnly) {
  HostMap<int> m;
  m.emplace("app.example.com", 1);
  m.emplace("*.example.org", 2);
  // Callers normalise (lower-case, no port, no trailing dot): the map does not guess.
  EXPECT_EQ(m.find("App.example.com"), nullptr);
  EXPECT_EQ(m.find("app.example.com:443"), nullptr);
  EXPECT_EQ(m.find("app.example.com."), nullptr);
  EXPECT_EQ(m.find("a.example.org."), nullptr);
  EXPECT_NE(m.find("app.example.com"), nullptr);
}

TEST(HostMap, FirstDefinitionWinsAndBracketFillsInPlace) {
  HostMap<std::string> m;
  EXPECT_TRUE(m.emplace("*.x.test", "first").second);
  const auto [value, inserted] = m.emplace("*.x.test", "second");
  EXPECT_FALSE(inserted);
  EXPECT_EQ(value, "first");
  m["a.x.test"] += "exact";
  m["a.x.test"] += "+more";
  m["*.x.test"] += "+suffix";
  EXPECT_EQ(*m.find("a.x.test"), "exact+more");
  EXPECT_EQ(*m.find("b.x.test"), "first+suffix");
  EXPECT_FALSE(m.empty());
  EXPECT_TRUE(HostMap<int>{}.empty());
}

TEST(HostMap, ALiteralStarLabelIsOnlyAWildcardAtTheFront) {
  HostMap<int> m;
  m.emplace("a.*.test", 1);  // not a wildcard pattern: an exact (if odd) name
  EXPECT_EQ(m.find("a.b.test"), nullptr);
  EXPECT_NE(m.find("a.*.test"), nullptr);
}

TEST(HostMatches, SinglePatternFollowsTheSameRule) {
  EXPECT_TRUE(host_matches("a.example.com", "a.example.com"));
  EXPECT_TRUE(host_matches("*.example.com", "a.example.com"));
  EXPECT_FALSE(host_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(host_matches("*.example.com", "example.com"));
  EXPECT_FALSE(host_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(host_matches("a.example.com", "b.example.com"));
  EXPECT_EQ(wildcard_suffix("*.example.com"), "example.com");
  EXPECT_FALSE(wildcard_suffix("example.com"));
  EXPECT_FALSE(wildcard_suffix("*example.com"));
  EXPECT_EQ(parent_domain("a.b.c"), "b.c");
  EXPECT_FALSE(parent_domain("localhost"));
  EXPECT_FALSE(parent_domain(".b.c"));
}

}  // namespace
}  // namespace phigate::core
