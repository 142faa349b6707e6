#include "phigate/http/path.hpp"

#include <gtest/gtest.h>

namespace phigate::http {
namespace {

std::string norm(std::string_view t) {
  std::string out;
  const char* why = normalize_target(t, out);
  return why ? std::string("ERR: ") + why : out;
}

TEST(NormalizeTarget, DotSegmentsResolveAndSlashesCollapse) {
  EXPECT_EQ(norm("/public/../admin"), "/admin");
  EXPECT_EQ(norm("/a/./b/../c"), "/a/c");
  EXPECT_EQ(norm("//a///b"), "/a/b");
  EXPECT_EQ(norm("/a/b/.."), "/a/");
  EXPECT_EQ(norm("/a/."), "/a/");
  EXPECT_EQ(norm("/"), "/");
  EXPECT_EQ(norm("/a/b/"), "/a/b/");
}

TEST(NormalizeTarget, UnreservedEscapesDecodedOthersKept) {
  EXPECT_EQ(norm("/%61dmin"), "/admin");
  EXPECT_EQ(norm("/public/%2e%2e/admin"), "/admin");
  EXPECT_EQ(norm("/a%20b"), "/a%20b");
  EXPECT_EQ(norm("/a%3fb"), "/a%3Fb");
}

TEST(NormalizeTarget, QueryIsKeptVerbatim) {
  EXPECT_EQ(norm("/a/../b?x=/../y&z=%2F"), "/b?x=/../y&z=%2F");
  EXPECT_EQ(norm("/?q"), "/?q");
}

TEST(NormalizeTarget, AbsoluteFormBecomesOriginForm) {
  EXPECT_EQ(norm("https://app.example/a/../b?c"), "/b?c");
  EXPECT_EQ(norm("http://app.example"), "/");
  EXPECT_EQ(norm("http://app.example?x"), "/?x");
}

TEST(NormalizeTarget, RefusesEncodedSeparatorsBadEscapesAndEscapingTheRoot) {
  EXPECT_EQ(norm("/a%2Fb"), "ERR: encoded '/' or '\\' in path");
  EXPECT_EQ(norm("/a%5cb"), "ERR: encoded '/' or '\\' in path");
  EXPECT_EQ(norm("/a%zz"), "ERR: malformed percent-escape");
  EXPECT_EQ(norm("/a%4"), "ERR: malformed percent-escape");
  EXPECT_EQ(norm("/../etc/passwd"), "ERR: '..' above the root");
  EXPECT_EQ(norm("*"), "ERR: request target is not a path");
}

TEST(NormalizeTarget, DotSegmentWithParametersRefused) {
  EXPECT_EQ(norm("/public/..;/admin"), "ERR: dot segment with parameters");
  EXPECT_EQ(norm("/public/..;x=1/admin"), "ERR: dot segment with parameters");
  EXPECT_EQ(norm("/public/.;/admin"), "ERR: dot segment with parameters");
  EXPECT_EQ(norm("/public/%2e%2e;/admin"), "ERR: dot segment with parameters");
  EXPECT_EQ(norm("/a;b/c"), "/a;b/c");  // parameters on a name are kept (routing strips them)
  EXPECT_EQ(norm("/a/b;v=1"), "/a/b;v=1");
}

TEST(NormalizeTarget, FragmentRefused) {
  EXPECT_EQ(norm("/admin#x"), "ERR: fragment in request target");
  EXPECT_EQ(norm("/a?q=1#x"), "ERR: fragment in request target");
  EXPECT_EQ(norm("/a%23x"), "/a%23x");  // an encoded # is data
  EXPECT_EQ(norm("http://a.example?q#x"), "ERR: fragment in request target");  // found by fuzz/path
}

TEST(NormalizeTarget, RawBackslashRefused) {
  EXPECT_EQ(norm("/public\\..\\admin"), "ERR: '\\' in path");
  EXPECT_EQ(norm("/a\\b"), "ERR: '\\' in path");
  EXPECT_EQ(norm("/a?q=\\"), "/a?q=\\");  // the query is not a path
}

std::string route_of(std::string_view p) {
  std::string scratch;
  return std::string(routing_path(p, scratch));
}

TEST(RoutingPath, ParametersRemovedPerSegment) {
  EXPECT_EQ(route_of("/admin;x/secret"), "/admin/secret");
  EXPECT_EQ(route_of("/admin;jsessionid=1"), "/admin");
  EXPECT_EQ(route_of("/;x/admin"), "/admin");
  EXPECT_EQ(route_of("/a/;x"), "/a/");
  EXPECT_EQ(route_of("/;x"), "/");
  EXPECT_EQ(route_of("/plain/path/"), "/plain/path/");
}

}  // namespace
}  // namespace phigate::http
