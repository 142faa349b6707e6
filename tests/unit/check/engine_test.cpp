// The rule table's invariants (they hold for every rule as rules are added) and the engine's
// options, fingerprints and ordering.
#include <gtest/gtest.h>

#include <set>

#include "phigate/check/check.hpp"

namespace phigate::check {
namespace {

TEST(CheckEngine, EveryRuleHasAUniqueIdItsSafeguardsCitationARemedyAndATitle) {
  std::set<std::string_view> ids, names;
  for (const auto& r : all_rules()) {
    SCOPED_TRACE(std::string(r.info.id));
    EXPECT_TRUE(ids.insert(r.info.id).second) << "duplicate id";
    EXPECT_TRUE(names.insert(r.info.name).second) << "duplicate name";
    EXPECT_EQ(r.info.hipaa, citation(r.info.safeguard));
    EXPECT_FALSE(r.info.title.empty());
    EXPECT_FALSE(r.info.remedy.empty());
    EXPECT_FALSE(r.info.name.empty());
    // A built-in control has evidence and no function; every other rule has a function.
    EXPECT_EQ(r.fn == nullptr, !r.info.built_in.empty() || r.info.id == "CFG000" || r.info.id == "CFG001");
    // Only Ingress-scoped (or TLS Secret) errors can be enforced.
    if (r.info.enforceable) {
      EXPECT_EQ(r.info.severity, Severity::Error);
      EXPECT_TRUE(r.info.runtime);
    }
    // "E/W" (an error where PHI is served, a warning elsewhere) lowers an error.
    if (r.info.warning_off_phi) {
      EXPECT_EQ(r.info.severity, Severity::Error);
      EXPECT_TRUE(r.info.built_in.empty());
    }
  }
}

TEST(CheckEngine, RulesAreGroupedBySafeguardInReportOrder) {
  Safeguard last = Safeguard::AccessControl;
  for (const auto& r : all_rules()) {
    EXPECT_GE(r.info.safeguard, last) << r.info.id;
    last = r.info.safeguard;
  }
  ASSERT_NE(find_rule("CFG000"), nullptr);
  EXPECT_EQ(&config_error_rule(), find_rule("CFG000"));
  EXPECT_EQ(find_rule("NOPE"), nullptr);
}

TEST(CheckEngine, FingerprintIsStableAndSeparatesItsParts) {
  Finding a =
      make_finding(config_error_rule(), "m1", Location{.file = "f", .resource = "Ingress a/b", .field = "x"});
  Finding b = make_finding(config_error_rule(), "other message", a.where);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());  // the message may change wording, not identity
  EXPECT_EQ(a.fingerprint().size(), 64u);
  Finding c = a;
  c.where.resource = "Ingress a/bx";
  c.where.field = "";
  Finding d = a;
  d.where.resource = "Ingress a/b";
  d.where.field = "xx";
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  EXPECT_NE(a.fingerprint(), d.fingerprint());
}

TEST(CheckEngine, DescribeLogsTheFindingsOwnSeverityOnce) {
  const RuleInfo* tx007 = find_rule("TX007");
  ASSERT_NE(tx007, nullptr);
  Finding f =
      make_finding(*tx007, "www.example: Ingress web/www sends requests to its backend in clear (HTTP)",
                   Location{.file = "k8s/www.yaml",
                            .doc = 1,
                            .line = 9,
                            .resource = "Ingress web/www",
                            .field = "metadata.annotations.nginx.ingress.kubernetes.io/backend-protocol"},
                   "www.example");
  f.severity = Severity::Warning;  // TX007 off a PHI host
  const std::string tail =
      "Ingress web/www: metadata.annotations.nginx.ingress.kubernetes.io/backend-protocol: "
      "TX007 164.312(e)(1): www.example: Ingress web/www sends requests to its backend in "
      "clear (HTTP) (" +
      std::string(tx007->remedy) + ")";
  const auto line = describe(f);
  EXPECT_EQ(line, "k8s/www.yaml#1:9: warning: " + tail);
  EXPECT_EQ(line.find("error"), std::string::npos) << line;
  f.severity = Severity::Error;
  EXPECT_EQ(describe(f), "k8s/www.yaml#1:9: error: " + tail);
  f.severity = Severity::Info;
  EXPECT_EQ(describe(f), "k8s/www.yaml#1:9: info: " + tail);
  // A control byte from a manifest cannot start a second log line.
  f.where.resource = "Ingress web/w\nww";
  EXPECT_EQ(describe(f).find('\n'), std::string::npos);
}

TEST(CheckEngine, OptionsComeFromTheCheckSection) {
  config::CheckSpec spec;
  spec.phi_hosts_all = true;
  spec.min_cert_days = 7;
  spec.public_ca_count = 3;
  const auto o = Options::from(spec);
  EXPECT_TRUE(o.phi_hosts_all);
  EXPECT_EQ(o.min_cert_days, 7);
  EXPECT_EQ(o.public_ca_count, 3u);
  EXPECT_EQ(o.scope, Scope::Cli);
}

TEST(CheckEngine, PhiHostsAreThoseWithAPhiPathOrAllOfThem) {
  config::Config cfg;
  auto phi = std::make_shared<config::RoutePolicy>();
  phi->phi = true;
  config::PathSpec p;
  p.path = "/";
  config::RouteSpec www;
  www.host = "www.example";
  www.paths.push_back(p);
  p.policy = phi;
  config::RouteSpec records;
  records.host = "records.example";
  records.paths.push_back(p);
  cfg.routes = {records, www};
  Options opt;
  const View v{.config = cfg, .passthrough = {}, .options = opt};
  const Context ctx(v);
  EXPECT_TRUE(ctx.is_phi_host("records.example"));
  EXPECT_FALSE(ctx.is_phi_host("www.example"));
  EXPECT_FALSE(ctx.is_phi_host(""));
  EXPECT_EQ(ctx.phi_hosts(), std::vector<std::string>{"records.example"});
  Options all;
  all.phi_hosts_all = true;
  const View va{.config = cfg, .passthrough = {}, .options = all};
  const Context ca(va);
  EXPECT_TRUE(ca.is_phi_host("www.example"));
  EXPECT_TRUE(ca.is_phi_host("*"));
}

}  // namespace
}  // namespace phigate::check
