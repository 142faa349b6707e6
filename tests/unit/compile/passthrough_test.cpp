// The compile step's TLS passthrough rules (ssl-passthrough under listeners.tls_passthrough).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "phigate/compile/policy.hpp"

namespace phigate::compile {
namespace {

config::RouteSpec ingress_route(const std::string& host, const std::string& name,
                                std::shared_ptr<config::RoutePolicy> pol,
                                std::initializer_list<std::string> paths = {"/"}) {
  pol->resource = "Ingress default/" + name;
  config::RouteSpec r;
  r.host = host;
  r.where = {"manifests/" + name + ".yaml", 1};
  for (const auto& path : paths) {
    config::PathSpec p;
    p.path = path;
    p.backends = {"10.0.0.1:8443"};
    p.policy = pol;
    p.where = r.where;
    r.paths.push_back(p);
  }
  return r;
}

std::shared_ptr<config::RoutePolicy> passthrough_policy() {
  auto p = std::make_shared<config::RoutePolicy>();
  p->ssl_passthrough = true;
  return p;
}

config::Config with(bool on) {
  config::Config c;
  c.file = "phigate.yaml";
  c.listeners.tls_passthrough = on;
  return c;
}

const config::Diagnostic* error_of(const config::Diagnostics& d, const std::string& resource) {
  for (const auto& e : d.entries()) {
    if (e.severity == config::Severity::Error && e.resource == resource) return &e;
  }
  return nullptr;
}

TEST(CompilePassthrough, SwitchOffFailsTheIngressClosedNamingTheSwitch) {
  auto c = with(false);
  c.routes.push_back(ingress_route("pass.example", "pass", passthrough_policy()));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  const auto* e = error_of(diag, "Ingress default/pass");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("listeners.tls_passthrough"), std::string::npos) << e->message;
  EXPECT_EQ(e->field, "metadata.annotations.ssl-passthrough");
  EXPECT_FALSE(out.config.routes[0].paths[0].policy->fail_closed.empty());
}

TEST(CompilePassthrough, SwitchOnMakesTheHostATableEntryAndItsPathsClosedToTermination) {
  auto c = with(true);
  c.routes.push_back(ingress_route("web.example", "web", std::make_shared<config::RoutePolicy>()));
  c.routes.push_back(ingress_route("pass.example", "pass", passthrough_policy(), {"/api", "/"}));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_FALSE(diag.has_errors()) << diag.to_string();
  ASSERT_EQ(out.passthrough.size(), 1u);
  EXPECT_EQ(out.passthrough[0].host, "pass.example");
  EXPECT_EQ(out.passthrough[0].path, 2u);  // web's "/" is 0, pass's "/api" 1, its "/" 2
  EXPECT_EQ(out.passthrough[0].resource, "Ingress default/pass");
  // A request terminated here naming that Host (another SNI) never reaches the TLS backend as HTTP.
  EXPECT_FALSE(out.config.routes[1].paths[0].policy->fail_closed.empty());
  EXPECT_TRUE(out.config.routes[0].paths[0].policy->fail_closed.empty());
  // Other annotations have no effect on its connections: said once.
  bool warned = false;
  for (const auto& e : diag.entries())
    warned = warned || e.message.find("have no effect") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(CompilePassthrough, ClientCertificatesContradictPassthrough) {
  auto c = with(true);
  auto pol = passthrough_policy();
  pol->auth_tls_secret = "default/ca";
  pol->verify_client = config::VerifyClient::On;
  c.routes.push_back(ingress_route("pass.example", "pass", pol));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  const auto* e = error_of(diag, "Ingress default/pass");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("auth-tls"), std::string::npos);
}

TEST(CompilePassthrough, WildcardOrMissingHostIsRefused) {
  for (const std::string host : {"", "*.example.com"}) {
    auto c = with(true);
    c.routes.push_back(ingress_route(host, "pass", passthrough_policy()));
    config::Diagnostics diag;
    const auto out = compile::compile(std::move(c), diag);
    EXPECT_TRUE(out.passthrough.empty()) << host;
    EXPECT_NE(error_of(diag, "Ingress default/pass"), nullptr) << host;
  }
}

TEST(CompilePassthrough, TwoIngressesPassingOneHostThroughAreBothRefused) {
  auto c = with(true);
  c.routes.push_back(ingress_route("pass.example", "old", passthrough_policy()));
  c.routes.push_back(ingress_route("pass.example", "new", passthrough_policy()));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  EXPECT_NE(error_of(diag, "Ingress default/old"), nullptr);
  EXPECT_NE(error_of(diag, "Ingress default/new"), nullptr);
}

// Attacker: an Ingress author takes a host another resource serves (with its client-certificate
// rule, its source ranges, its backends) by passing it through. Refused whichever is older; the
// other resource's routes keep serving, terminated, with their policies.
TEST(CompilePassthrough, AHostAnotherResourceServesIsNeverTakenOver) {
  for (const bool victim_first : {true, false}) {
    auto c = with(true);
    auto victim = std::make_shared<config::RoutePolicy>();
    victim->verify_client = config::VerifyClient::On;
    victim->auth_tls_secret = "phi/ca";
    auto v = ingress_route("portal.example", "portal", victim, {"/records"});
    auto a = ingress_route("portal.example", "evil", passthrough_policy());
    if (victim_first) {
      c.routes.push_back(v);
      c.routes.push_back(a);
    } else {
      c.routes.push_back(a);
      c.routes.push_back(v);
    }
    config::Diagnostics diag;
    const auto out = compile::compile(std::move(c), diag);
    EXPECT_TRUE(out.passthrough.empty()) << victim_first;
    const auto* e = error_of(diag, "Ingress default/evil");
    ASSERT_NE(e, nullptr) << victim_first;
    EXPECT_NE(e->message.find("also served by Ingress default/portal"), std::string::npos) << e->message;
    EXPECT_EQ(error_of(diag, "Ingress default/portal"), nullptr) << diag.to_string();
    ASSERT_EQ(out.host_policies.size(), 1u);  // the victim's client-certificate rule still applies
  }
  // A route of the configuration file counts as another resource too.
  auto c = with(true);
  config::RouteSpec st;
  st.host = "portal.example";
  config::PathSpec p;
  p.path = "/";
  p.backends = {"10.0.0.2:80"};
  st.paths.push_back(p);
  c.routes.push_back(st);
  c.routes.push_back(ingress_route("portal.example", "evil", passthrough_policy()));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  const auto* e = error_of(diag, "Ingress default/evil");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("the configuration file"), std::string::npos) << e->message;
}

TEST(CompilePassthrough, AWildcardAskingForClientCertificatesOrCiphersKeepsItsNamesTerminated) {
  for (const bool certs : {true, false}) {
    auto c = with(true);
    auto wild = std::make_shared<config::RoutePolicy>();
    if (certs) {
      wild->verify_client = config::VerifyClient::On;
      wild->auth_tls_secret = "platform/ca";
    } else {
      wild->ssl_ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    }
    c.routes.push_back(ingress_route("*.corp.example", "platform", wild));
    c.routes.push_back(ingress_route("app.corp.example", "evil", passthrough_policy()));
    config::Diagnostics diag;
    const auto out = compile::compile(std::move(c), diag);
    EXPECT_TRUE(out.passthrough.empty()) << certs;
    const auto* e = error_of(diag, "Ingress default/evil");
    ASSERT_NE(e, nullptr) << certs;
    EXPECT_NE(e->message.find("*.corp.example"), std::string::npos) << e->message;
  }
  // A wildcard without such settings does not stop it.
  auto c = with(true);
  c.routes.push_back(ingress_route("*.corp.example", "platform", std::make_shared<config::RoutePolicy>()));
  c.routes.push_back(ingress_route("app.corp.example", "pass", passthrough_policy()));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_EQ(out.passthrough.size(), 1u) << diag.to_string();
}

TEST(CompilePassthrough, SslCiphersContradictPassthrough) {
  auto c = with(true);
  auto pol = passthrough_policy();
  pol->ssl_ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
  c.routes.push_back(ingress_route("pass.example", "pass", pol));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  const auto* e = error_of(diag, "Ingress default/pass");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("ssl-ciphers"), std::string::npos) << e->message;
}

TEST(CompilePassthrough, AnIngressAlreadyFailedClosedIsNotPassedThrough) {
  auto c = with(true);
  auto pol = passthrough_policy();
  pol->fail_closed = "invalid annotation";
  c.routes.push_back(ingress_route("pass.example", "pass", pol));
  config::Diagnostics diag;
  const auto out = compile::compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
}

}  // namespace
}  // namespace phigate::compile
