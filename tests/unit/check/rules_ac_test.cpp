// AC001-AC003, AC005 (164.312(a)(1) access control): each fires exactly when it should, placed at
// its key or annotation, never on a path that already fails closed; each fixture yields exactly
// its rule. Attacker cases: allowlists and proxy lists whose union admits everyone (split
// halves, IPv4-mapped IPv6), satisfy: any with such an allowlist, PHI taint across Ingresses.
#include <gtest/gtest.h>

#include "fixture_view.hpp"

namespace phigate::check {
namespace {

using test::run_rule;
using test::Scene;

TEST(CheckAc001, PhiHostWithoutAllowlistCertificatesOrAuthentication) {
  Scene s;
  auto open = Scene::policy("records", true);
  open.allow_source_ranges.clear();
  s.add("records.example", open);
  auto f = run_rule(s.view(), "AC001");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].host, "records.example");
  EXPECT_EQ(f[0].where.resource, "Ingress ns/records");
  EXPECT_EQ(f[0].where.field, "metadata.annotations");

  // Each protection alone is enough.
  for (int k = 0; k < 4; ++k) {
    Scene t;
    auto p = open;
    if (k == 0) p.allow_source_ranges = {"10.0.0.0/8"};
    if (k == 1) p.verify_client = config::VerifyClient::On;
    if (k == 2) p.basic_auth.enabled = true;
    if (k == 3) p.external_auth.enabled = true;
    t.add("records.example", p);
    EXPECT_TRUE(run_rule(t.view(), "AC001").empty()) << k;
  }
  Scene g;  // the global access.allow
  g.cfg.allow_source_ranges = {"192.168.0.0/16"};
  g.add("records.example", open);
  EXPECT_TRUE(run_rule(g.view(), "AC001").empty());

  // Optional client certificates protect nothing; an allowlist of everyone is no allowlist.
  for (int k = 0; k < 3; ++k) {
    Scene t;
    auto p = open;
    if (k == 0) p.verify_client = config::VerifyClient::Optional;
    if (k == 1) p.allow_source_ranges = {"0.0.0.0/0", "::/0"};
    if (k == 2) {  // satisfy: any + allowlist of everyone: everyone skips the basic auth
      p.allow_source_ranges = {"0.0.0.0/1", "128.0.0.0/1"};
      p.basic_auth.enabled = true;
      p.satisfy = config::Satisfy::Any;
    }
    t.add("records.example", p);
    EXPECT_EQ(run_rule(t.view(), "AC001").size(), 1u) << k;
  }

  // A PHI path on one Ingress taints another Ingress's open path on the same host (any case).
  Scene taint;
  taint.add("records.example", Scene::policy("records", true));
  auto other = open;
  other.resource = "Ingress other/static";
  other.phi = false;
  taint.add("Records.Example", other, "/static");
  taint.add("www.example", other);  // not PHI: no finding
  f = run_rule(taint.view(), "AC001");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.resource, "Ingress other/static");

  // Failed closed: serves nothing.
  Scene closed;
  open.fail_closed = "broken";
  closed.add("records.example", open);
  EXPECT_TRUE(run_rule(closed.view(), "AC001").empty());
}

TEST(CheckAc002, AllowlistsWhoseUnionAdmitsEveryone) {
  struct Case {
    std::vector<std::string> list;
    bool everyone;
  };
  const Case cases[] = {
      {{"10.0.0.0/8"}, false},
      {{"0.0.0.0/0"}, true},
      {{"::/0"}, true},
      {{"0.0.0.0/1", "128.0.0.0/1"}, true},  // the trivially complete split
      {{"0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"}, true},
      {{"0.0.0.0/1", "128.0.0.0/2"}, false},  // a quarter is left out
      {{"::ffff:0:0/96"}, true},              // every IPv4 client, written as IPv6
      {{"::/1"}, true},                       // contains the IPv4-mapped range
      {{"2000::/3"}, true},                   // every global IPv6 address
      {{"2000::/4", "3000::/4"}, true},
      {{"2001:db8::/32", "10.0.0.0/8"}, false},
      {{" 0.0.0.0/0 "}, true},
  };
  for (const auto& c : cases) {
    Scene s;
    auto p = Scene::policy("records", true);
    p.allow_source_ranges = c.list;
    s.add("records.example", p);
    s.add("records.example", p, "/second");  // one finding per Ingress
    const auto f = run_rule(s.view(), "AC002");
    ASSERT_EQ(f.size(), c.everyone ? 1u : 0u) << c.list.front() << " " << c.list.size();
    if (c.everyone) {
      EXPECT_EQ(f[0].severity, Severity::Error);
      EXPECT_EQ(f[0].where.resource, "Ingress ns/records");
    }
  }
  // The global access.allow, placed at its widest entry.
  Scene g;
  g.cfg.allow_source_ranges = {"10.0.0.0/8", "0.0.0.0/0"};
  g.cfg.key_lines = std::make_shared<const std::map<std::string, int>>(
      std::map<std::string, int>{{"access.allow[0]", 40}, {"access.allow[1]", 41}});
  g.add("records.example", Scene::policy("records", true));
  const auto f = run_rule(g.view(), "AC002");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "access.allow[1]");
  EXPECT_EQ(f[0].where.line, 41);
  // Failed closed: skipped.
  Scene c;
  auto p = Scene::policy("records", true);
  p.allow_source_ranges = {"0.0.0.0/0"};
  p.fail_closed = "broken";
  c.add("records.example", p);
  EXPECT_TRUE(run_rule(c.view(), "AC002").empty());
}

TEST(CheckAc003, TrustedProxiesEveryoneIsAnErrorWideIsAWarning) {
  const auto run = [](std::vector<std::string> list) {
    Scene s;
    s.cfg.trusted_proxies = std::move(list);
    return run_rule(s.view(), "AC003");
  };
  EXPECT_TRUE(run({"10.0.0.0/8", "2001:db8::/32", "192.168.1.1"}).empty());
  for (const auto& everyone : std::vector<std::vector<std::string>>{
           {"0.0.0.0/0"}, {"::/0"}, {"0.0.0.0/1", "128.0.0.0/1"}, {"::ffff:0.0.0.0/96"}, {"::/8"}}) {
    const auto f = run(everyone);
    ASSERT_EQ(f.size(), 1u) << everyone.front();
    EXPECT_EQ(f[0].severity, Severity::Error);
    EXPECT_EQ(f[0].where.field, "trusted_proxies[0]");
  }
  auto f = run({"10.0.0.0/8", "10.0.0.0/7", "2001::/16", "::ffff:0.0.0.0/100"});
  ASSERT_EQ(f.size(), 3u);
  for (const auto& x : f) EXPECT_EQ(x.severity, Severity::Warning);
  EXPECT_EQ(f[0].where.field, "trusted_proxies[1]");
  EXPECT_EQ(f[1].where.field, "trusted_proxies[2]");
  EXPECT_EQ(f[2].where.field, "trusted_proxies[3]");  // ::ffff:0.0.0.0/100 is IPv4 0.0.0.0/4
}

TEST(CheckAc005, CatchAllServingPhi) {
  Scene s;
  s.add("records.example", Scene::policy("records", true));
  config::PathSpec d;
  d.path = "/";
  d.where = {"/m/app.yaml#3", 44};
  d.policy = std::make_shared<const config::RoutePolicy>(Scene::policy("catch-all", false));
  s.cfg.default_backend = d;
  EXPECT_TRUE(run_rule(s.view(), "AC005").empty());  // a catch-all without PHI
  auto phi = Scene::policy("catch-all", true);
  d.policy = std::make_shared<const config::RoutePolicy>(phi);
  s.cfg.default_backend = d;
  auto f = run_rule(s.view(), "AC005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].where.file, "/m/app.yaml");
  EXPECT_EQ(f[0].where.doc, 3);
  EXPECT_EQ(f[0].where.line, 44);
  EXPECT_EQ(f[0].where.field, "spec.defaultBackend");
  // A rule without host carrying PHI.
  Scene r;
  r.add("", Scene::policy("hostless", true));
  f = run_rule(r.view(), "AC005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.resource, "Ingress ns/hostless");
  // --phi-hosts all: every catch-all carries PHI.
  Scene a;
  a.cfg.default_backend = d;
  a.cfg.default_backend->policy =
      std::make_shared<const config::RoutePolicy>(Scene::policy("catch-all", false));
  a.opt.phi_hosts_all = true;
  EXPECT_EQ(run_rule(a.view(), "AC005").size(), 1u);
  // Failed closed: skipped.
  phi.fail_closed = "broken";
  d.policy = std::make_shared<const config::RoutePolicy>(phi);
  s.cfg.default_backend = d;
  EXPECT_TRUE(run_rule(s.view(), "AC005").empty());
}

TEST(CheckAcFixtures, EachYieldsExactlyItsRule) {
  for (const char* id : {"AC001", "AC002", "AC003", "AC005"}) {
    SCOPED_TRACE(id);
    test::expect_fixture_yields(id);
  }
}

TEST(CheckAcFixtures, Ac003IsPlacedOnTheListItemLine) {
  const auto f = test::expect_fixture_yields("AC003");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "trusted_proxies[0]");
  EXPECT_EQ(f[0].where.line, 8);  // phigate.yaml: trusted_proxies: ["0.0.0.0/0"]
  EXPECT_EQ(f[0].where.resource, "");
}

TEST(CheckAcFixtures, Ac002IsPlacedOnTheAnnotationLine) {
  const auto f = test::expect_fixture_yields("AC002");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "metadata.annotations.nginx.ingress.kubernetes.io/allowlist-source-range");
  EXPECT_EQ(f[0].where.line, 13);
}

}  // namespace
}  // namespace phigate::check
