// check.enforce at run and reload: an Ingress an edit makes non-compliant (an error finding of an
// enforceable rule) fails closed at the next reload while its neighbours keep serving; the
// finding is logged and counted in phigate_check_findings; fixing it serves again. Without
// enforce the same edit is only reported.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

class CheckEnforceTest : public IngressTest {
 protected:
  std::string metrics(const Phigate& pg) {
    return run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
  }
  /// Two Ingresses on the test upstream: `a` with the allowlist `a_range`, `b` untouched.
  void write(const std::string& a_range) {
    dir_.write("manifests/svc.yaml", service_yaml("web", *up_));
    dir_.write("manifests/b.yaml", ingress_yaml("b", "other.example", "web"));
    write_a(a_range);
  }
  std::string a_yaml(const std::string& a_range) {
    return ingress_yaml("a", "app.example", "web",
                        "    nginx.ingress.kubernetes.io/allowlist-source-range: \"" + a_range + "\"\n");
  }
  void write_a(const std::string& a_range) { dir_.write("manifests/a.yaml", a_yaml(a_range)); }

  void SetUp() override {
    IngressTest::SetUp();
    up_.emplace(start_upstream());
  }
  std::optional<Upstream> up_;
};

TEST_F(CheckEnforceTest, AnIngressEditedIntoAnErrorFailsClosedAndItsNeighbourKeepsServing) {
  write("127.0.0.0/8");
  auto pg = start("check: { enforce: true }\n");
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(code(pg, "other.example"), "200");
  EXPECT_NE(metrics(pg).find("phigate_check_enforced_ingresses 0"), std::string::npos);

  // An allowlist of every address (AC002, an error everywhere): a's paths answer 503 after the reload.
  const auto mark = pg.process.output().size();
  rewrite(pg, "a.yaml", a_yaml("0.0.0.0/0"));
  EXPECT_EQ(code(pg, "app.example"), "503");
  EXPECT_EQ(code(pg, "other.example"), "200");
  const auto log = pg.process.output().substr(mark);
  EXPECT_NE(log.find("AC002"), std::string::npos) << log;
  EXPECT_NE(log.find("failing closed (check.enforce)"), std::string::npos) << log;
  EXPECT_NE(log.find("Ingress default/a"), std::string::npos) << log;
  const auto m = metrics(pg);
  EXPECT_NE(m.find("phigate_check_findings{rule=\"AC002\",severity=\"error\",safeguard=\"164.312(a)(1)\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("phigate_check_enforced_ingresses 1"), std::string::npos) << m;

  // Fixed: served again, nothing enforced.
  rewrite(pg, "a.yaml", a_yaml("127.0.0.0/8"));
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_NE(metrics(pg).find("phigate_check_enforced_ingresses 0"), std::string::npos);
}

TEST_F(CheckEnforceTest, WithoutEnforceTheFindingIsReportedAndTheIngressServes) {
  write("127.0.0.0/8");
  auto pg = start();
  const auto mark = pg.process.output().size();
  rewrite(pg, "a.yaml", a_yaml("0.0.0.0/0"));
  EXPECT_EQ(code(pg, "app.example"), "200");
  const auto log = pg.process.output().substr(mark);
  EXPECT_NE(log.find("check: "), std::string::npos) << log;
  EXPECT_NE(log.find("AC002"), std::string::npos) << log;
  EXPECT_EQ(log.find("failing closed"), std::string::npos) << log;
  const auto m = metrics(pg);
  EXPECT_NE(m.find("phigate_check_findings{rule=\"AC002\""), std::string::npos) << m;
  EXPECT_NE(m.find("phigate_check_enforced_ingresses 0"), std::string::npos) << m;
  // A finding is logged once, not at every reload.
  const auto mark2 = pg.process.output().size();
  rewrite(pg, "b.yaml", ingress_yaml("b", "x.app.example", "web"));
  EXPECT_EQ(pg.process.output().substr(mark2).find("AC002"), std::string::npos);
}

TEST_F(CheckEnforceTest, AWarningFindingIsLoggedAsAWarning) {
  // Neither Ingress carries PHI: a backend in clear (TX007) is a warning there, and its log line
  // says so in the diagnostic's own place, never "error".
  write("127.0.0.0/8");
  auto pg = start();
  const auto line = pg.process.wait_for_line("TX007 164.312(e)(1): app.example", 10s);
  ASSERT_TRUE(line) << pg.process.output();
  EXPECT_NE(line->find(" warning check: "), std::string::npos) << *line;
  EXPECT_NE(line->find(": warning: Ingress default/a: "), std::string::npos) << *line;
  EXPECT_EQ(line->find("error"), std::string::npos) << *line;
}

}  // namespace
}  // namespace phigate::test
