#include "phigate/router/route_table.hpp"

#include <gtest/gtest.h>

namespace phigate::router {
namespace {

using config::PathType;

config::PathSpec path(std::string p, PathType t = PathType::Prefix) {
  return {std::move(p), t, {"127.0.0.1:1"}, {}, {}};
}

/// Returns the matched route's "host path" name, or "none".
std::string match(const RouteTable& t, std::string_view host, std::string_view p) {
  const auto* r = t.match(host, p);
  return r ? r->name : "none";
}

RouteTable table(std::vector<config::RouteSpec> routes) {
  config::Diagnostics diag;
  return RouteTable::build(routes, diag);
}

TEST(RouteTable, PrefixStopsAtSegmentBoundary) {
  const auto t = table({{"app.example", {path("/foo")}, {}}});
  EXPECT_EQ(match(t, "app.example", "/foo"), "app.example /foo");
  EXPECT_EQ(match(t, "app.example", "/foo/"), "app.example /foo");
  EXPECT_EQ(match(t, "app.example", "/foo/bar"), "app.example /foo");
  EXPECT_EQ(match(t, "app.example", "/foobar"), "none");
  EXPECT_EQ(match(t, "app.example", "/"), "none");
}

TEST(RouteTable, PrefixTrailingSlashIgnored) {
  const auto t = table({{"a", {path("/foo/")}, {}}});
  EXPECT_EQ(match(t, "a", "/foo"), "a /foo/");
  EXPECT_EQ(match(t, "a", "/foo/x"), "a /foo/");
  EXPECT_EQ(match(t, "a", "/foox"), "none");
}

TEST(RouteTable, ExactBeatsPrefixAndLongestPrefixWins) {
  const auto t = table({{"a",
                         {path("/", PathType::Prefix), path("/api", PathType::Prefix),
                          path("/api/v1", PathType::Prefix), path("/api/v1/login", PathType::Exact)},
                         {}}});
  EXPECT_EQ(match(t, "a", "/api/v1/login"), "a /api/v1/login");
  EXPECT_EQ(match(t, "a", "/api/v1/login/x"), "a /api/v1");
  EXPECT_EQ(match(t, "a", "/api/v1/users"), "a /api/v1");
  EXPECT_EQ(match(t, "a", "/api/v2"), "a /api");
  EXPECT_EQ(match(t, "a", "/other"), "a /");
  EXPECT_EQ(match(t, "a", "/"), "a /");
}

TEST(RouteTable, ExactDoesNotMatchSubpathsOrTrailingSlash) {
  const auto t = table({{"a", {path("/login", PathType::Exact)}, {}}});
  EXPECT_EQ(match(t, "a", "/login"), "a /login");
  EXPECT_EQ(match(t, "a", "/login/"), "none");
  EXPECT_EQ(match(t, "a", "/login/x"), "none");
}

TEST(RouteTable, ImplementationSpecificActsAsPrefix) {
  const auto t = table({{"a", {path("/docs", PathType::ImplementationSpecific)}, {}}});
  EXPECT_EQ(match(t, "a", "/docs/intro"), "a /docs");
}

TEST(RouteTable, HostPrecedence_ExactThenWildcardThenDefault) {
  const auto t = table(
      {{"", {path("/")}, {}}, {"*.example.com", {path("/")}, {}}, {"api.example.com", {path("/")}, {}}});
  EXPECT_EQ(match(t, "api.example.com", "/x"), "api.example.com /");
  EXPECT_EQ(match(t, "www.example.com", "/x"), "*.example.com /");
  // One label deep only.
  EXPECT_EQ(match(t, "a.b.example.com", "/x"), "* /");
  EXPECT_EQ(match(t, "example.com", "/x"), "* /");
  EXPECT_EQ(match(t, "other.org", "/x"), "* /");
}

TEST(RouteTable, RoutesOfOneHostShareItsBucket) {
  // Two route entries for the same wildcard (two Ingresses) fill one host bucket; an exact host
  // under the wildcard has its own bucket and does not borrow the wildcard's paths.
  const auto t = table({{"*.example.com", {path("/a")}, {}},
                        {"*.example.com", {path("/b")}, {}},
                        {"api.example.com", {path("/c")}, {}}});
  EXPECT_EQ(match(t, "www.example.com", "/a"), "*.example.com /a");
  EXPECT_EQ(match(t, "www.example.com", "/b/x"), "*.example.com /b");
  EXPECT_EQ(match(t, "api.example.com", "/c"), "api.example.com /c");
  EXPECT_EQ(match(t, "api.example.com", "/a"), "none");
}

TEST(RouteTable, HostIsCaseInsensitiveAndPortIgnored) {
  const auto t = table({{"app.example", {path("/")}, {}}});
  EXPECT_EQ(match(t, "APP.Example:8443", "/"), "app.example /");
  EXPECT_EQ(match(t, "app.example.", "/"), "app.example /");
  EXPECT_EQ(match(t, "other", "/"), "none");
}

TEST(RouteTable, MatchedHostDoesNotFallThroughToDefault) {
  // As in nginx server blocks: a known host with no matching path is a 404, not the default.
  const auto t = table({{"", {path("/")}, {}}, {"a", {path("/only")}, {}}});
  EXPECT_EQ(match(t, "a", "/elsewhere"), "none");
  EXPECT_EQ(match(t, "b", "/elsewhere"), "* /");
}

TEST(RouteTable, TargetsIndexFlattenedPaths) {
  const auto t = table({{"a", {path("/x"), path("/y")}, {}}, {"b", {path("/z")}, {}}});
  EXPECT_EQ(t.match("a", "/x")->target, 0u);
  EXPECT_EQ(t.match("a", "/y")->target, 1u);
  EXPECT_EQ(t.match("b", "/z")->target, 2u);
}

TEST(RouteTable, DuplicateRoute_FirstWinsWithWarning) {
  config::Diagnostics diag;
  const auto t = RouteTable::build({{"a", {path("/x"), path("/x/")}, {}}}, diag);
  EXPECT_EQ(t.match("a", "/x")->target, 0u);
  ASSERT_EQ(diag.entries().size(), 1u);
  EXPECT_EQ(diag.entries()[0].severity, config::Severity::Warning);
}

TEST(RouteTable, NormalizeHost) {
  EXPECT_EQ(RouteTable::normalize_host("Example.COM:443"), "example.com");
  EXPECT_EQ(RouteTable::normalize_host("[::1]:8443"), "[::1]");
  EXPECT_EQ(RouteTable::normalize_host(""), "");
}

}  // namespace
}  // namespace phigate::router

namespace phigate::router {
namespace {

TEST(RouteTable, FallbackCatchesWhatNothingMatches) {
  config::Diagnostics diag;
  config::PathSpec fb{"/", config::PathType::Prefix, {"127.0.0.1:9"}, {}, {}};
  const auto t =
      RouteTable::build({{"a", {{"/x", config::PathType::Prefix, {"127.0.0.1:1"}, {}, {}}}, {}}}, diag, fb);
  EXPECT_EQ(t.match("a", "/x")->target, 0u);
  EXPECT_EQ(t.match("a", "/other")->name, "default backend");  // host known, path not
  EXPECT_EQ(t.match("zzz", "/x")->target, 1u);                 // host unknown
}

}  // namespace
}  // namespace phigate::router
