// The canary annotations' grammars (annotations_canary.cpp) as parse_annotations applies them.
#include <gtest/gtest.h>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);
const std::string kP(kPhigatePrefix);

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

const AnnotationProblem* problem_for(const ParsedAnnotations& p, const std::string& key) {
  for (const auto& pr : p.problems) {
    if (pr.key == key) return &pr;
  }
  return nullptr;
}

TEST(IngressAnnotationsCanary, EveryValueParsedIntoTheCanaryPolicy) {
  const auto r = parse({{kN + "canary", "true"},
                        {kN + "canary-by-header", "X-Canary"},
                        {kN + "canary-by-header-value", "v2:blue/x"},
                        {kN + "canary-by-header-pattern", "^(eu|us)-"},
                        {kN + "canary-by-cookie", "canary_user"},
                        {kN + "canary-weight", "25"},
                        {kN + "canary-weight-total", "1000"},
                        {kN + "affinity-canary-behavior", "legacy"}});
  EXPECT_TRUE(r.problems.empty()) << r.problems.at(0).message;
  EXPECT_TRUE(r.fail_closed.empty());
  const auto& c = r.policy.canary;
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.header, "X-Canary");
  EXPECT_EQ(c.header_value, "v2:blue/x");
  EXPECT_EQ(c.header_pattern, "^(eu|us)-");
  EXPECT_EQ(c.cookie, "canary_user");
  EXPECT_EQ(c.weight, 25u);
  EXPECT_EQ(c.weight_total, 1000u);
  EXPECT_TRUE(c.legacy_affinity);
  EXPECT_FALSE(parse({{kN + "canary", "true"}, {kN + "affinity-canary-behavior", "sticky"}})
                   .policy.canary.legacy_affinity);
}

TEST(IngressAnnotationsCanary, BadValuesAreErrorsNamingTheKeyNeverEchoingTheValue) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"canary-by-header", "X Canary"},
      {"canary-by-header", "X-Canary\r\nX-Evil: 1"},
      {"canary-by-header", "x:y"},
      {"canary-by-header", ""},
      {"canary-by-header", std::string(129, 'a')},
      {"canary-by-header-value", "a b"},
      {"canary-by-header-value", "v\"1"},
      {"canary-by-header-value", "$host"},
      {"canary-by-header-value", "x\n"},
      {"canary-by-header-pattern", "(a)\\1"},
      {"canary-by-header-pattern", "(?=x)"},
      {"canary-by-header-pattern", "a++"},
      {"canary-by-header-pattern", "(((a{100}){100}){100})"},
      {"canary-by-header-pattern", "a\nb"},
      {"canary-by-cookie", "a;b"},
      {"canary-by-cookie", "a=b"},
      {"canary-weight", "-1"},
      {"canary-weight", "1.5"},
      {"canary-weight", "ten"},
      {"canary-weight", "1000001"},
      {"canary-weight", " 5"},
      {"canary-weight-total", "0"},
      {"canary-weight-total", "99999999999"},
      {"affinity-canary-behavior", "Sticky"},
  };
  for (const auto& [name, value] : bad) {
    const auto key = kN + name;
    const auto r = parse({{kN + "canary", "true"}, {key, value}});
    const auto* pr = problem_for(r, key);
    ASSERT_NE(pr, nullptr) << name << "=" << value;
    EXPECT_EQ(pr->severity, config::Severity::Error) << name << "=" << value;
    EXPECT_FALSE(r.fail_closed.empty()) << name;  // the canary Ingress is invalid: never attached
    EXPECT_EQ(r.fail_closed.find('\n'), std::string::npos);
    EXPECT_EQ(r.fail_closed.find('\r'), std::string::npos);
    if (value.size() > 2) {
      EXPECT_EQ(pr->message.find(value), std::string::npos) << pr->message;
    }
  }
  // RE2 is named when it refuses a pattern.
  const auto r = parse({{kN + "canary", "true"}, {kN + "canary-by-header-pattern", "(?=x)"}});
  EXPECT_NE(problem_for(r, kN + "canary-by-header-pattern")->message.find("RE2"), std::string::npos);
}

TEST(IngressAnnotationsCanary, WithoutCanaryTrueTheyOnlyWarnWhateverTheirValue) {
  // ingress-nginx drops canary-* of a non-canary Ingress: never a reason to fail it closed.
  for (const auto& canary : {std::string("false"), std::string()}) {
    std::map<std::string, std::string> a = {{kN + "canary-weight", "not-a-number"},
                                            {kN + "canary-by-header-pattern", "(?=x)"},
                                            {kN + "affinity-canary-behavior", "legacy"}};
    if (!canary.empty()) a[kN + "canary"] = canary;
    const auto r = parse(a);
    EXPECT_FALSE(r.canary);
    EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
    for (const auto& name : {"canary-weight", "canary-by-header-pattern", "affinity-canary-behavior"}) {
      const auto* pr = problem_for(r, kN + name);
      ASSERT_NE(pr, nullptr) << name;
      EXPECT_EQ(pr->severity, config::Severity::Warning) << name;
      EXPECT_NE(pr->message.find("not a canary"), std::string::npos) << pr->message;
    }
  }
}

TEST(IngressAnnotationsCanary, PrefixesMustAgreeOnWhetherItIsACanary) {
  // phigate.io/ wins, but may not turn a canary ingress-nginx would serve into an ordinary Ingress
  // (it would claim the main's paths) nor the reverse.
  for (const auto& [p, n] : {std::pair<std::string, std::string>{"false", "true"}, {"true", "false"}}) {
    const auto r = parse({{kP + "canary", p}, {kN + "canary", n}});
    EXPECT_FALSE(r.fail_closed.empty()) << p << "/" << n;
    // Not a canary (which would claim nothing): an ordinary Ingress failed closed, so its paths
    // stay claimed and answer 503 instead of falling through to a broader route.
    EXPECT_FALSE(r.canary) << p << "/" << n;
    const auto* pr = problem_for(r, kP + "canary");
    ASSERT_NE(pr, nullptr);
    EXPECT_EQ(pr->severity, config::Severity::Error);
    EXPECT_NE(pr->message.find("disagrees"), std::string::npos) << pr->message;
  }
  EXPECT_TRUE(parse({{kP + "canary", "True"}, {kN + "canary", "true"}}).fail_closed.empty());
}

TEST(IngressAnnotationsCanary, UnknownCanaryNameIsAWarning) {
  const auto r = parse({{kN + "canary", "true"}, {kN + "canary-by-query", "x"}});
  const auto* pr = problem_for(r, kN + "canary-by-query");
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->severity, config::Severity::Warning);
}

}  // namespace
}  // namespace phigate::ingress
