// Regex host buckets (use-regex, rewrite-target) and rewrite templates: ingress-nginx's order and
// case-insensitivity, with other Ingresses' literal paths quoted.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "phigate/router/regex.hpp"
#include "phigate/router/route_table.hpp"

namespace phigate::router {
namespace {

using config::PathType;

config::RoutePolicyPtr regex_policy(std::string rewrite = {}, bool use_regex = true) {
  auto p = std::make_shared<config::RoutePolicy>();
  p->resource = "Ingress ns/regex";
  p->regex.use_regex = use_regex;
  p->regex.rewrite_target = std::move(rewrite);
  return p;
}

config::PathSpec path(std::string p, config::RoutePolicyPtr policy = nullptr, PathType t = PathType::Prefix) {
  config::PathSpec s;
  s.path = std::move(p);
  s.type = t;
  s.backends = {"127.0.0.1:1"};
  s.policy = std::move(policy);
  return s;
}

std::string match(const RouteTable& t, std::string_view host, std::string_view p) {
  const auto* r = t.match(host, p);
  return r ? r->path : "none";
}

RouteTable table(std::vector<config::RouteSpec> routes) {
  config::Diagnostics diag;
  return RouteTable::build(routes, diag);
}

// docs/user-guide/ingress-path-matching.md: three paths on test.com, one of them a regex.
TEST(RouteTableRegex, IngressNginxDocsExample) {
  const auto rx = regex_policy();
  // (Prefix "/foo/bar" and "/foo/bar/" are one route in Kubernetes, and in phigate: Exact here.)
  const auto t = table({{"test.com", {path("/foo/bar", nullptr, PathType::Exact), path("/foo/bar/")}, {}},
                        {"test.com", {path("/foo/bar/(.+)", rx, PathType::ImplementationSpecific)}, {}}});
  EXPECT_EQ(match(t, "test.com", "/foo/bar/1"), "/foo/bar/(.+)");
  EXPECT_EQ(match(t, "test.com", "/foo/bar/"), "/foo/bar/");
  EXPECT_EQ(match(t, "test.com", "/foo/bar"), "/foo/bar");
}

// The docs' "Warning": the longest pattern text wins, not the longest literal match.
TEST(RouteTableRegex, LongestPatternTextWinsNotLongestMatch) {
  const auto t = table({{"test.com", {path("/foo/bar/bar")}, {}},
                        {"test.com", {path("/foo/bar/[A-Z0-9]{3}", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "test.com", "/foo/bar/bar"), "/foo/bar/[A-Z0-9]{3}");
  EXPECT_EQ(match(t, "test.com", "/foo/bar/barx"), "/foo/bar/[A-Z0-9]{3}");
  EXPECT_EQ(match(t, "test.com", "/foo/bar/b"), "none");
}

// Literal paths in a regex host keep their bounds (ingress-nginx would widen them: Exact "/" to
// every path, Prefix "/foo" to "/foobar"): only the case of the match is relaxed.
TEST(RouteTableRegex, RegexModeIsCaseInsensitiveAndKeepsLiteralBounds) {
  const auto t = table({{"a",
                         {path("/foo"), path("/login", nullptr, PathType::Exact),
                          path("/", nullptr, PathType::Exact), path("/pub/")},
                         {}},
                        {"a", {path("/api/.*", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "a", "/FOO"), "/foo");
  EXPECT_EQ(match(t, "a", "/foo/bar"), "/foo");
  EXPECT_EQ(match(t, "a", "/foobar"), "none");  // Prefix: by segment, as outside regex mode
  EXPECT_EQ(match(t, "a", "/login"), "/login");
  EXPECT_EQ(match(t, "a", "/LOGIN"), "/login");
  EXPECT_EQ(match(t, "a", "/login/x"), "none");  // Exact stays exact
  EXPECT_EQ(match(t, "a", "/"), "/");
  EXPECT_EQ(match(t, "a", "/internal/patients/7"), "none");  // Exact "/" is not every path
  EXPECT_EQ(match(t, "a", "/pub"), "none");  // "/pub/" as ingress-nginx reads it: below "/pub/"
  EXPECT_EQ(match(t, "a", "/pub/x"), "/pub/");
  EXPECT_EQ(match(t, "a", "/public"), "none");
  EXPECT_EQ(match(t, "a", "/API/x"), "/api/.*");
  EXPECT_EQ(match(t, "a", "/other"), "none");
  EXPECT_EQ(match(t, "a", "/xfoo"), "none");  // anchored at the start
}

// Another tenant's literal path is quoted: '.' stays a dot, and a path that is no valid regex
// ("/a(") still matches as itself.
TEST(RouteTableRegex, OtherRoutesAreQuotedNotReadAsRegex) {
  const auto t = table({{"a", {path("/file.txt"), path("/a("), path("/x+", nullptr, PathType::Exact)}, {}},
                        {"a", {path("/re/.*", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "a", "/file.txt"), "/file.txt");
  EXPECT_EQ(match(t, "a", "/FILE.TXT"), "/file.txt");
  EXPECT_EQ(match(t, "a", "/fileXtxt"), "none");
  EXPECT_EQ(match(t, "a", "/a("), "/a(");
  EXPECT_EQ(match(t, "a", "/x+"), "/x+");
  EXPECT_EQ(match(t, "a", "/xx"), "none");
}

TEST(RouteTableRegex, SameLengthTieBreaksByTextDescending) {
  const auto t =
      table({{"a", {path("/a.ix", regex_policy())}, {}}, {"a", {path("/api.", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "a", "/apix"), "/api.");
}

TEST(RouteTableRegex, NonRegexHostIsUnaffected) {
  const auto t =
      table({{"plain", {path("/foo"), path("/file.txt")}, {}}, {"rx", {path("/r.*", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "plain", "/FOO"), "none");
  EXPECT_EQ(match(t, "plain", "/foobar"), "none");
  EXPECT_EQ(match(t, "plain", "/foo/x"), "/foo");
  EXPECT_EQ(match(t, "rx", "/Rx"), "/r.*");
}

TEST(RouteTableRegex, DefaultHostBucketInRegexMode) {
  const auto t = table({{"", {path("/"), path("/v[0-9]+/", regex_policy())}, {}}});
  EXPECT_EQ(match(t, "any.example", "/v12/x"), "/v[0-9]+/");
  EXPECT_EQ(match(t, "any.example", "/vx/"), "/");
}

// A rewrite-target different from the path makes the path a regex, without use-regex.
TEST(RouteTableRegex, RewriteImpliesRegex) {
  const auto t = table({{"a", {path("/something(/|$)(.*)", regex_policy("/$2", false)), path("/")}, {}}});
  const auto* r = t.match("a", "/something/new");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->path, "/something(/|$)(.*)");
  ASSERT_NE(r->rewrite, nullptr);
  // "(/|$)" needs a '/' or the end: "/somethingelse" is not this route's.
  EXPECT_EQ(match(t, "a", "/somethingelse"), "/");
  EXPECT_EQ(match(t, "a", "/SomeThing"), "/something(/|$)(.*)");
}

// An invalid regex (its Ingress fails closed) still claims its literal prefix: requests there get
// the failed route (503), never a broader one.
TEST(RouteTableRegex, InvalidRegexClaimsItsLiteralPrefix) {
  auto bad = regex_policy();
  std::const_pointer_cast<config::RoutePolicy>(bad)->fail_closed = "invalid regex";
  const auto t = table({{"a", {path("/")}, {}}, {"a", {path("/api/(?=x)y", bad)}, {}}});
  EXPECT_EQ(match(t, "a", "/api/anything"), "/api/(?=x)y");
  EXPECT_EQ(match(t, "a", "/API/"), "/api/(?=x)y");
  EXPECT_EQ(match(t, "a", "/other"), "/");
}

TEST(RouteTableRegex, LiteralPrefix) {
  EXPECT_EQ(config::regex_literal_prefix("/api/(?=x)"), "/api/");
  EXPECT_EQ(config::regex_literal_prefix("/ab?c"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/ab*"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/ab{2}"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/ab+"), "/ab");
  EXPECT_EQ(config::regex_literal_prefix("/a.b"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/a|/b"), "/");
  EXPECT_EQ(config::regex_literal_prefix("/a(x)|/b"), "/");
  EXPECT_EQ(config::regex_literal_prefix("/a)|/b"), "/");  // unbalanced: top level again
  // An alternation inside a group, escaped or in a class leaves the prefix before it.
  EXPECT_EQ(config::regex_literal_prefix("/api(/|$)(.*)"), "/api");
  EXPECT_EQ(config::regex_literal_prefix("/a\\|b"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/a[|]b"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/a[]|]b"), "/a");
  EXPECT_EQ(config::regex_literal_prefix("/a\\Q(\\E|/admin"), "/");  // a quoted "(" is no group
  EXPECT_EQ(config::regex_literal_prefix("/plain"), "/plain");
}

// RE2 is linear: a pattern that backtracks catastrophically in PCRE answers at once.
TEST(RouteTableRegex, CatastrophicBacktrackingPatternIsLinear) {
  const auto t =
      table({{"a", {path("/(a+)+$", regex_policy()), path("/(a|aa)+$", regex_policy()), path("/")}, {}}});
  const std::string evil = "/" + std::string(100000, 'a') + "!";
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(match(t, "a", evil), "/");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(match(t, "a", "/aaaa"), "/(a|aa)+$");
}

TEST(RouteTableRegex, DuplicateRegexPathKeepsTheFirst) {
  const auto first = regex_policy();
  const auto second = regex_policy();
  config::Diagnostics diag;
  const auto t =
      RouteTable::build({{"a", {path("/x.*", first)}, {}}, {"a", {path("/x.*", second)}, {}}}, diag);
  EXPECT_EQ(t.match("a", "/xy")->policy, first);
  EXPECT_EQ(t.size(), 1u);
}

// An Ingress defaultBackend with rewrite-target rewrites like any "/" regex location: every target
// becomes the template (before: the route had no compiled rewrite, and every request got a 500).
TEST(RouteTableRegex, DefaultBackendWithRewriteTargetRewrites) {
  config::Diagnostics diag;
  const auto t = RouteTable::build({{"a", {path("/x")}, {}}}, diag, path("/", regex_policy("/app", false)));
  const auto* r = t.match("other", "/some/where");
  ASSERT_NE(r, nullptr);
  ASSERT_NE(r->rewrite, nullptr);
  std::string target, prefix;
  ASSERT_TRUE(r->rewrite->apply("/some/where", target, prefix));
  EXPECT_EQ(target, "/app");
  EXPECT_EQ(t.match("a", "/x")->rewrite, nullptr);
}

// A cookie Path is literal: a regex route's affinity cookie is scoped to the pattern's literal
// prefix, a plain route's to its path.
TEST(RouteTableRegex, AffinityCookiePathOfARegexRouteIsItsLiteralPrefix) {
  const auto t =
      table({{"a",
              {path("/api(/|$)(.*)", regex_policy("/$2"), PathType::ImplementationSpecific), path("/static")},
              {}},
             {"b", {path("/(.*)", regex_policy(), PathType::ImplementationSpecific)}, {}}});
  EXPECT_EQ(t.match("a", "/api/x")->affinity_cookie_path(), "/api");
  EXPECT_EQ(t.match("a", "/static/x")->affinity_cookie_path(), "/static");
  EXPECT_EQ(t.match("b", "/z")->affinity_cookie_path(), "/");
}

std::string rewrite(std::string_view pattern, std::string_view target, std::string_view p,
                    std::string_view prefix_template = {}, std::string* prefix_out = nullptr) {
  const auto r = Rewrite::compile(pattern, target, prefix_template);
  if (!r) return "invalid";
  std::string out, prefix;
  if (!r->apply(p, out, prefix)) return "no match";
  if (prefix_out != nullptr) *prefix_out = prefix;
  return out;
}

// docs/examples/rewrite/README.md
TEST(Rewrite, DocsExample) {
  EXPECT_EQ(rewrite("/something(/|$)(.*)", "/$2", "/something"), "/");
  EXPECT_EQ(rewrite("/something(/|$)(.*)", "/$2", "/something/"), "/");
  EXPECT_EQ(rewrite("/something(/|$)(.*)", "/$2", "/something/new"), "/new");
  EXPECT_EQ(rewrite("/something(/|$)(.*)", "/$2", "/SOMETHING/New"), "/New");  // (?i), captures as sent
}

TEST(Rewrite, MissingAndUnsetGroupsExpandToNothing) {
  EXPECT_EQ(rewrite("/a/(.*)", "/x/$3/$1", "/a/b"), "/x//b");
  EXPECT_EQ(rewrite("/a(/b)?(.*)", "/$1|$2", "/ac"), "/|c");
  EXPECT_EQ(rewrite("/a", "/b", "/c"), "no match");
  EXPECT_EQ(rewrite("/a(", "/b", "/a("), "invalid");
}

// `/api(.*)` with `/$1` would send `/api//evil.example/x` as `//evil.example/x`, a network-path
// reference to some backends: leading slashes collapse to one; inner ones stay.
TEST(Rewrite, LeadingSlashesCollapse) {
  EXPECT_EQ(rewrite("/api(.*)", "/$1", "/api/evil.example/x"), "/evil.example/x");
  EXPECT_EQ(rewrite("/api(.*)", "/$1", "/api///x"), "/x");
  EXPECT_EQ(rewrite("/api(.*)", "/$1", "/api"), "/");
  EXPECT_EQ(rewrite("/api(.*)", "/$1", "/api/"), "/");
  EXPECT_EQ(rewrite("/a/(.*)", "/x/$1", "/a//b"), "/x//b");
}

TEST(Rewrite, UnanchoredAsInNginx) {
  EXPECT_EQ(rewrite("/b/(.*)", "/$1", "/a/b/c"), "/c");
}

TEST(Rewrite, ForwardedPrefixUsesTheSameCaptures) {
  std::string prefix;
  EXPECT_EQ(rewrite("/(app)(/|$)(.*)", "/$3", "/app/x", "/$1", &prefix), "/x");
  EXPECT_EQ(prefix, "/app");
}

TEST(Rewrite, SplitTemplate) {
  const auto p = split_template("/a$1b$$2");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].text, "/a");
  EXPECT_EQ(p[1].group, 1);
  EXPECT_EQ(p[2].text, "b$");
  EXPECT_EQ(p[3].group, 2);
}

}  // namespace
}  // namespace phigate::router
