// The check engine inside compile(): findings for every build, check.enforce failing offending
// Ingresses closed (their paths 503, their canaries detached, their passthrough no longer
// spliced) while the rest compiles as before, and the admission webhook refusing them.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "phigate/compile/policy.hpp"
#include "phigate/compile/review.hpp"

namespace phigate::compile {
namespace {

std::shared_ptr<config::RoutePolicy> policy(const std::string& name,
                                            const std::string& allow = "10.0.0.0/8") {
  auto p = std::make_shared<config::RoutePolicy>();
  p->resource = "Ingress default/" + name;
  p->allow_source_ranges = {allow};
  return p;
}

config::PathSpec path(std::shared_ptr<config::RoutePolicy> pol, const std::string& p = "/") {
  config::PathSpec s;
  s.path = p;
  s.backends = {"10.0.0.1:80"};
  s.where = {"manifests/x.yaml#0", 7};
  s.policy = std::move(pol);
  return s;
}

config::RouteSpec route(const std::string& host, config::PathSpec p) {
  config::RouteSpec r;
  r.host = host;
  r.paths.push_back(std::move(p));
  return r;
}

config::Config base(bool enforce) {
  config::Config c;
  c.file = "phigate.yaml";
  c.check.enforce = enforce;
  c.routes.push_back(route("open.example", path(policy("open", "0.0.0.0/0"))));
  c.routes.push_back(route("fine.example", path(policy("fine"))));
  return c;
}

std::size_t errors_about(const config::Diagnostics& d, const std::string& resource, const std::string& text) {
  return static_cast<std::size_t>(std::count_if(d.entries().begin(), d.entries().end(), [&](const auto& e) {
    return e.severity == config::Severity::Error && e.resource == resource &&
           e.message.find(text) != std::string::npos;
  }));
}

bool has_finding(const CompiledPolicy& out, std::string_view rule, const std::string& resource) {
  return std::any_of(out.findings.begin(), out.findings.end(), [&](const check::Finding& f) {
    return f.rule->id == rule && f.where.resource == resource;
  });
}

TEST(CheckHook, FindingsAreComputedAtEveryBuildAndEnforceIsOffByDefault) {
  config::Diagnostics diag;
  const auto out = compile(base(false), diag);
  EXPECT_TRUE(has_finding(out, "AC002", "Ingress default/open"));
  EXPECT_FALSE(diag.has_errors()) << diag.to_string();  // findings never enter the diagnostics
  EXPECT_TRUE(out.config.routes[0].paths[0].policy->fail_closed.empty());
  EXPECT_EQ(out.enforced_ingresses, 0u);
  // The CLI runs the engine itself: compile's own run can be turned off.
  config::Diagnostics d2;
  EXPECT_TRUE(compile(base(false), d2, {}, {.resources = nullptr, .run = false}).findings.empty());
}

TEST(CheckHook, EnforceFailsTheOffendingIngressClosedOnceAndLeavesItsNeighbour) {
  config::Diagnostics diag;
  ingress::TranslationStats stats;
  stats.failed_closed = 2;
  const auto out = compile(base(true), diag, stats);
  EXPECT_EQ(errors_about(diag, "Ingress default/open", "[AC002 45 CFR 164.312(a)(1)]"), 1u)
      << diag.to_string();
  EXPECT_EQ(errors_about(diag, "Ingress default/open", "failing closed (check.enforce)"), 1u);
  EXPECT_EQ(errors_about(diag, "Ingress default/fine", ""), 0u);
  const auto& open = *out.config.routes[0].paths[0].policy;
  EXPECT_NE(open.fail_closed.find("check.enforce: AC002"), std::string::npos) << open.fail_closed;
  EXPECT_TRUE(out.config.routes[1].paths[0].policy->fail_closed.empty());
  EXPECT_EQ(out.enforced_ingresses, 1u);
  EXPECT_EQ(out.ingress.failed_closed, 3u);
  // The findings describe the configuration as written (before enforcement).
  EXPECT_TRUE(has_finding(out, "AC002", "Ingress default/open"));
  // Placed at the path's file, document and line.
  for (const auto& e : diag.entries()) {
    if (e.resource == "Ingress default/open") {
      EXPECT_EQ(e.file, "manifests/x.yaml#0");
    }
  }
}

TEST(CheckHook, EnforceDetachesTheCanaryOfAnOffendingMainAndNeverBlamesACanaryForItsMain) {
  auto c = base(true);
  // open.example (offending) has a canary: it goes with its main. The canary serves with a copy
  // of its main's policy (translate_canary.cpp), so the main's finding is not the canary's.
  auto copy = std::make_shared<config::RoutePolicy>(*c.routes[0].paths[0].policy);
  copy->resource = "Ingress default/open-canary";
  c.routes[0].paths[0].canary = std::make_shared<const config::PathSpec>(path(copy));
  // fine.example's canary stays.
  c.routes[1].paths[0].canary = std::make_shared<const config::PathSpec>(path(policy("fine-canary")));
  config::Diagnostics diag;
  const auto out = compile(std::move(c), diag);
  EXPECT_FALSE(out.config.routes[0].paths[0].canary);
  EXPECT_FALSE(out.config.routes[0].paths[0].policy->fail_closed.empty());
  EXPECT_TRUE(out.config.routes[1].paths[0].canary);
  EXPECT_EQ(out.enforced_ingresses, 1u);
  EXPECT_EQ(errors_about(diag, "Ingress default/open-canary", ""), 0u) << diag.to_string();
  EXPECT_FALSE(has_finding(out, "AC002", "Ingress default/open-canary"));
}

TEST(CheckHook, EnforceStopsSplicingAPhiPassthroughHost) {
  auto c = base(true);
  c.routes.clear();
  c.listeners.tls_passthrough = true;
  auto pol = std::make_shared<config::RoutePolicy>();
  pol->resource = "Ingress default/pass";
  pol->ssl_passthrough = true;
  pol->phi = true;
  c.routes.push_back(route("pass.example", path(pol)));
  config::Diagnostics diag;
  auto plain = c;
  plain.check.enforce = false;
  config::Diagnostics d0;
  EXPECT_EQ(compile(std::move(plain), d0).passthrough.size(), 1u);  // served without enforce
  const auto out = compile(std::move(c), diag);
  EXPECT_TRUE(out.passthrough.empty());
  EXPECT_EQ(errors_about(diag, "Ingress default/pass", "[TX006"), 1u) << diag.to_string();
}

TEST(CheckHook, TheAdmissionWebhookRefusesAnIngressEnforceWouldFail) {
  ingress::LoadResult current;
  const std::string candidate =
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"wide","namespace":"default",)"
      R"("annotations":{"nginx.ingress.kubernetes.io/allowlist-source-range":"0.0.0.0/0"}},"spec":{)"
      R"("ingressClassName":"phigate","rules":[{"host":"wide.example","http":{"paths":[{"path":"/",)"
      R"("pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}})";
  config::Config cfg;
  const auto allowed = review_ingress(cfg, current, candidate);
  EXPECT_TRUE(allowed.allowed) << (allowed.errors.empty() ? "" : allowed.errors.front());
  cfg.check.enforce = true;
  const auto refused = review_ingress(cfg, current, candidate);
  EXPECT_FALSE(refused.allowed);
  EXPECT_TRUE(std::any_of(refused.errors.begin(), refused.errors.end(),
                          [](const std::string& e) { return e.find("AC002") != std::string::npos; }));
}

}  // namespace
}  // namespace phigate::compile
