// IN* rules (164.312(c)(1) integrity) and the clean fixture against every WP1 rule.
#include <gtest/gtest.h>

#include "fixture_view.hpp"

namespace phigate::check {
namespace {

using test::load_fixture;
using test::rule_ids;
using test::run_rule;
using test::Scene;

TEST(CheckFixtures, CleanYieldsNoTransmissionAccessOrIntegrityFinding) {
  const auto fx = load_fixture("clean");
  ASSERT_TRUE(fx->config) << fx->diag.to_string();
  EXPECT_FALSE(fx->diag.has_errors()) << fx->diag.to_string();
  std::vector<Finding> all;
  EXPECT_EQ(rule_ids(fx->view(), test::wp1_groups(), &all), std::set<std::string>{});
  // Only the information that no WAF exists (the one PHI host is records.example.test).
  ASSERT_EQ(all.size(), 1u) << all[0].rule->id << " " << all[0].message;
  EXPECT_EQ(all[0].rule->id, "IN005");
  EXPECT_EQ(all[0].severity, Severity::Info);
}

TEST(CheckIn, BuiltInControlsHaveEvidenceAndNoFunction) {
  for (const auto& r : integrity_rules()) {
    if (r.info.id == "IN001" || r.info.id == "IN003") {
      EXPECT_EQ(r.fn, nullptr) << r.info.id;
      EXPECT_FALSE(r.info.built_in.empty()) << r.info.id;
    } else {
      EXPECT_NE(r.fn, nullptr) << r.info.id;
      EXPECT_TRUE(r.info.built_in.empty()) << r.info.id;
    }
  }
  EXPECT_NE(find_rule("IN001"), nullptr);
  EXPECT_NE(find_rule("IN003"), nullptr);
}

TEST(CheckIn002, BodyLimitOffOnPhiHostsOrExplicitlyAnywhere) {
  Scene s;
  s.add("records.example", Scene::policy("records", true));
  s.add("www.example", Scene::policy("www", false));
  EXPECT_TRUE(run_rule(s.view(), "IN002").empty());  // the global 8m limit
  s.cfg.limits.request_body_bytes = 0;
  s.cfg.key_lines = std::make_shared<const std::map<std::string, int>>(
      std::map<std::string, int>{{"limits.request_body_bytes", 12}});
  auto f = run_rule(s.view(), "IN002");
  ASSERT_EQ(f.size(), 1u);  // the PHI host only
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(f[0].host, "records.example");
  EXPECT_EQ(f[0].where.field, "limits.request_body_bytes");
  EXPECT_EQ(f[0].where.line, 12);
  // proxy-body-size on the PHI Ingress sets a limit: nothing left.
  auto limited = Scene::policy("records", true);
  limited.body_size = 1 << 20;
  s.cfg.routes.clear();
  s.add("records.example", limited);
  EXPECT_TRUE(run_rule(s.view(), "IN002").empty());
  // proxy-body-size "0" asks for unlimited bodies explicitly: on any host.
  s.cfg.limits.request_body_bytes = 8 << 20;
  auto unlimited = Scene::policy("www", false);
  unlimited.body_size = 0;
  s.add("www.example", unlimited);
  f = run_rule(s.view(), "IN002");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.resource, "Ingress ns/www");
  // Failed closed: skipped.
  unlimited.fail_closed = "broken";
  s.cfg.routes.pop_back();
  s.add("www.example", unlimited);
  EXPECT_TRUE(run_rule(s.view(), "IN002").empty());
}

TEST(CheckIn004, NoActiveHealthCheckOnAPhiBackend) {
  Scene s;
  auto none = Scene::policy("records", true);
  none.health_check_path.reset();
  s.add("records.example", none);
  auto www = Scene::policy("www", false);
  www.health_check_path.reset();
  s.add("www.example", www);
  auto f = run_rule(s.view(), "IN004");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(f[0].host, "records.example");
  // Global active checks cover every backend.
  s.cfg.upstream.health_active.enabled = true;
  EXPECT_TRUE(run_rule(s.view(), "IN004").empty());
  // Failed closed: skipped.
  Scene c;
  none.fail_closed = "broken";
  c.add("records.example", none);
  EXPECT_TRUE(run_rule(c.view(), "IN004").empty());
}

TEST(CheckIn005, OneInfoFindingWhenAnyPhiHost) {
  Scene s;
  s.add("www.example", Scene::policy("www", false));
  EXPECT_TRUE(run_rule(s.view(), "IN005").empty());
  s.add("records.example", Scene::policy("records", true));
  s.add("lab.example", Scene::policy("lab", true));
  const auto f = run_rule(s.view(), "IN005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Info);
}

TEST(CheckInFixtures, EachYieldsExactlyItsRule) {
  for (const char* id : {"IN002", "IN004"}) {
    SCOPED_TRACE(id);
    test::expect_fixture_yields(id);
  }
}

}  // namespace
}  // namespace phigate::check
