// use-regex, rewrite-target, app-root, x-forwarded-prefix: accepted values set the policy,
// refused ones fail the Ingress closed with a reason that never quotes the value.
#include <gtest/gtest.h>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

TEST(RewriteAnnotations, ValidValuesSetThePolicy) {
  const auto r = parse({{kN + "use-regex", "true"},
                        {kN + "rewrite-target", "/$2"},
                        {kN + "app-root", "/app1"},
                        {kN + "x-forwarded-prefix", "/$1"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.fail_closed.empty());
  EXPECT_TRUE(r.policy.regex.use_regex);
  EXPECT_EQ(r.policy.regex.rewrite_target, "/$2");
  EXPECT_EQ(r.policy.regex.app_root, "/app1");
  EXPECT_EQ(r.policy.regex.x_forwarded_prefix, "/$1");
  EXPECT_FALSE(parse({{kN + "use-regex", "false"}}).policy.regex.use_regex);
  EXPECT_EQ(parse({{kN + "rewrite-target", "/a-b_c.d~e/$1:x"}}).policy.regex.rewrite_target,
            "/a-b_c.d~e/$1:x");
  EXPECT_EQ(parse({{kN + "app-root", "/app?a=1&b=2"}}).policy.regex.app_root, "/app?a=1&b=2");
}

TEST(RewriteAnnotations, RefusedValuesFailClosed) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"use-regex", "yes"},
      {"use-regex", "True"},
      {"rewrite-target", ""},
      {"rewrite-target", "/a?b=1"},         // no query in the target
      {"rewrite-target", "/a%2Fb"},         // no escapes
      {"rewrite-target", "/a b"},           // no spaces
      {"rewrite-target", "/$host"},         // no nginx variables
      {"rewrite-target", "/$0"},            // only $1..$9
      {"rewrite-target", "/x$"},            // a lone '$'
      {"rewrite-target", "https://evil/"},  // ingress-nginx would redirect
      {"rewrite-target", "/a\r\nX-Evil: 1"},
      {"rewrite-target", std::string("/a\0b", 4)},
      {"rewrite-target", "/\"x"},
      {"x-forwarded-prefix", "/a\nb"},
      {"x-forwarded-prefix", "/$uri"},
      {"app-root", "app1"},               // not a path
      {"app-root", "//evil.example/x"},   // another host
      {"app-root", "http://evil/"},       // a scheme
      {"app-root", "/a\r\nLocation: x"},  // header injection
      {"app-root", "/a b"},
      {"app-root", "/a#b"},
      {"app-root", ""},
  };
  for (const auto& [name, value] : bad) {
    const auto r = parse({{kN + name, value}});
    ASSERT_EQ(r.problems.size(), 1u) << name << "=" << value;
    EXPECT_EQ(r.problems[0].severity, config::Severity::Error) << name << "=" << value;
    EXPECT_FALSE(r.fail_closed.empty()) << name;
    EXPECT_EQ(r.fail_closed.find('\n'), std::string::npos) << name;
    EXPECT_EQ(r.fail_closed.find('\r'), std::string::npos) << name;
    EXPECT_TRUE(r.policy.regex.rewrite_target.empty() && r.policy.regex.app_root.empty() &&
                r.policy.regex.x_forwarded_prefix.empty() && !r.policy.regex.use_regex)
        << name << "=" << value;
  }
}

TEST(RewriteAnnotations, SchemeMessageNamesTheRedirectAlternative) {
  const auto r = parse({{kN + "rewrite-target", "http://x/"}});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].message.find("temporal-redirect"), std::string::npos) << r.problems[0].message;
}

TEST(RewriteAnnotations, RegexPolicyHelpers) {
  config::RegexPolicy p;
  EXPECT_FALSE(p.regex_path("/a"));
  p.rewrite_target = "/";
  EXPECT_FALSE(p.rewrites("/"));  // target equal to the path: no rewrite (ingress-nginx)
  EXPECT_FALSE(p.regex_path("/"));
  EXPECT_TRUE(p.rewrites("/a(.*)"));
  EXPECT_TRUE(p.regex_path("/a(.*)"));
  p.rewrite_target.clear();
  p.use_regex = true;
  EXPECT_TRUE(p.regex_path("/a"));
  EXPECT_FALSE(p.rewrites("/a"));
}

}  // namespace
}  // namespace phigate::ingress
