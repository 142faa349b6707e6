// server-alias in translate: copies of every route of the host, from every Ingress, with the same
// policies (so client certificates and source ranges hold for the alias), the host's certificate,
// and real hosts win over aliases.
#include <gtest/gtest.h>

#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"

namespace phigate::ingress {
namespace {

using config::PathType;

const std::string kN = "nginx.ingress.kubernetes.io/";
const std::string kPem = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n";
const std::string kKeyPem = "-----BEGIN PRIVATE KEY-----\nZmFrZQ==\n-----END PRIVATE KEY-----\n";

IngressRule rule(std::string host, std::string p = "/") {
  IngressPath out;
  out.path = std::move(p);
  out.type = PathType::Prefix;
  out.backend.service = ServiceBackend{"web", 80, ""};
  return {std::move(host), {std::move(out)}, 1};
}

Ingress ingress(std::string name, std::int64_t created, std::vector<IngressRule> rules,
                std::map<std::string, std::string> annotations = {}) {
  Ingress i;
  i.origin = {"cluster/" + name + ".yaml", 0, -1, 1};
  i.meta.name = std::move(name);
  i.meta.ns = "default";
  i.meta.created = created;
  i.meta.annotations = std::move(annotations);
  i.meta.annotations_line = 4;
  i.class_name = "phigate";
  i.rules = std::move(rules);
  return i;
}

class TranslateHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    Service s;
    s.origin = {"cluster/svc.yaml", 0, -1, 1};
    s.meta.name = "web";
    s.meta.ns = "default";
    s.ports = {{"http", 80, "8080"}};
    res_.services.push_back(s);
    EndpointSlice e;
    e.origin = {"cluster/slices.yaml", 0, -1, 1};
    e.meta.name = "web-1";
    e.meta.ns = "default";
    e.service_name = "web";
    e.address_type = "IPv4";
    e.ports = {{"http", 8080}};
    e.endpoints = {{{"10.0.0.1"}, true}};
    res_.endpoint_slices.push_back(e);
    Secret ca;
    ca.origin = {"cluster/secrets.yaml", 0, -1, 1};
    ca.meta.name = "ca";
    ca.meta.ns = "default";
    ca.type = "Opaque";
    ca.data = {{"ca.crt", kPem}};
    res_.secrets.push_back(ca);
    Secret tls = ca;
    tls.meta.name = "site-tls";
    tls.type = "kubernetes.io/tls";
    tls.data = {{"tls.crt", kPem}, {"tls.key", kKeyPem}};
    res_.secrets.push_back(tls);
  }
  Translation run() {
    diag_ = {};
    return translate(res_, spec_, diag_);
  }
  const config::Diagnostic* find(std::string_view text) const {
    for (const auto& d : diag_.entries()) {
      if (d.message.find(text) != std::string::npos) return &d;
    }
    return nullptr;
  }
  static std::vector<std::pair<std::string, const config::PathSpec*>> paths_of(const Translation& t,
                                                                               const std::string& host) {
    std::vector<std::pair<std::string, const config::PathSpec*>> out;
    for (const auto& r : t.routes) {
      if (r.host != host) continue;
      for (const auto& p : r.paths) out.emplace_back(p.path, &p);
    }
    return out;
  }

  Resources res_;
  config::IngressSpec spec_;
  config::Diagnostics diag_;
};

TEST_F(TranslateHosts, AliasServesEveryPathOfTheHostFromEveryIngressWithTheSamePolicies) {
  auto first = ingress("first", 1, {rule("shop.example", "/a")},
                       {{kN + "server-alias", "Alias.Example, *.alias.example"},
                        {kN + "auth-tls-secret", "default/ca"},
                        {kN + "auth-tls-verify-client", "on"}});
  first.tls = {{{"shop.example"}, "site-tls", 3}};
  // A later Ingress on the same host: its paths are served under the alias too, and its own
  // server-alias is ignored (the first Ingress defining the host sets them).
  auto second =
      ingress("second", 2, {rule("shop.example", "/b")},
              {{kN + "whitelist-source-range", "10.0.0.0/8"}, {kN + "server-alias", "ignored.example"}});
  res_.ingresses = {second, first};
  const auto t = run();
  const auto host = paths_of(t, "shop.example");
  const auto alias = paths_of(t, "alias.example");
  const auto wild = paths_of(t, "*.alias.example");
  ASSERT_EQ(host.size(), 2u);
  ASSERT_EQ(alias.size(), 2u);
  ASSERT_EQ(wild.size(), 2u);
  EXPECT_TRUE(paths_of(t, "ignored.example").empty());
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(alias[i].first, host[i].first);
    // The same policy object: client certificate, source ranges, TLS host flag and all.
    EXPECT_EQ(alias[i].second->policy, host[i].second->policy);
    EXPECT_EQ(wild[i].second->policy, host[i].second->policy);
    EXPECT_EQ(alias[i].second->backends, host[i].second->backends);
  }
  EXPECT_EQ(alias[0].second->policy->verify_client, config::VerifyClient::On);
  // The host's certificate serves the aliases.
  ASSERT_EQ(t.certificates.size(), 1u);
  EXPECT_EQ(t.certificates[0].hosts,
            (std::vector<std::string>{"shop.example", "*.alias.example", "alias.example"}));
}

// A host under a wildcard that verifies client certificates inherits that rule (ServerContexts
// falls back to the wildcard): an alias outside that wildcard would serve the host's paths without
// a certificate, so it is dropped; an alias under the same wildcard inherits the rule too and stays.
TEST_F(TranslateHosts, AliasOutsideTheWildcardTheHostInheritsClientCertificatesFromIsDropped) {
  auto wild = ingress("wild", 1, {rule("*.corp.example", "/")},
                      {{kN + "auth-tls-secret", "default/ca"}, {kN + "auth-tls-verify-client", "on"}});
  auto host = ingress("host", 2, {rule("app.corp.example", "/records")},
                      {{kN + "server-alias", "app.other.example, app2.corp.example"}});
  res_.ingresses = {host, wild};
  const auto t = run();
  EXPECT_TRUE(paths_of(t, "app.other.example").empty());
  ASSERT_NE(find("alias app.other.example of host app.corp.example would not be covered by *.corp.example"),
            nullptr)
      << diag_.to_string();
  const auto same = paths_of(t, "app2.corp.example");
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].first, "/records");
}

TEST_F(TranslateHosts, AliasThatIsARealHostOrAnotherAliasIsDroppedWithAWarning) {
  res_.ingresses = {
      ingress("a", 1, {rule("a.example", "/a")},
              {{kN + "server-alias", "b.example, a.example, shared.example"}}),
      ingress("b", 2, {rule("b.example", "/b")}, {{kN + "server-alias", "shared.example"}}),
  };
  const auto t = run();
  // b.example is served as itself, never as a copy of a.example.
  const auto b = paths_of(t, "b.example");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].first, "/b");
  EXPECT_EQ(paths_of(t, "a.example").size(), 1u);
  const auto shared = paths_of(t, "shared.example");
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].first, "/a");  // the first host to name it
  const auto* real = find("alias b.example of host a.example is a host of its own");
  ASSERT_NE(real, nullptr) << diag_.to_string();
  EXPECT_EQ(real->severity, config::Severity::Warning);
  EXPECT_EQ(real->field, "metadata.annotations." + kN + "server-alias");
  EXPECT_EQ(real->resource, "Ingress default/a");
  EXPECT_NE(find("alias a.example of host a.example is the host itself"), nullptr) << diag_.to_string();
  EXPECT_NE(find("alias shared.example of host b.example is already an alias of host a.example"), nullptr)
      << diag_.to_string();
}

TEST_F(TranslateHosts, RegexServerNameIsAnErrorAndTheIngressFailsClosed) {
  res_.ingresses = {ingress("a", 1, {rule("a.example")}, {{kN + "server-alias", "~^www\\d+\\.example$"}})};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_FALSE(t.routes[0].paths.at(0).policy->fail_closed.empty());
  const auto* d = find("regex server names");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Error);
}

TEST_F(TranslateHosts, FromToWwwAndUpstreamVhostAreCarriedInThePolicy) {
  res_.ingresses = {
      ingress("a", 1, {rule("a.example")},
              {{kN + "from-to-www-redirect", "true"}, {kN + "upstream-vhost", "backend.internal"}})};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  const auto& p = *t.routes[0].paths.at(0).policy;
  EXPECT_TRUE(p.fail_closed.empty());
  EXPECT_TRUE(p.redirect.from_to_www);
  EXPECT_EQ(p.hosts.upstream_vhost, "backend.internal");
}

}  // namespace
}  // namespace phigate::ingress
