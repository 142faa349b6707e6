// The check engine inside compile(): findings for every build, check.enforce failing offending
// Ingresses closed (their paths 503, their canaries detached, their passthrough no longer
// spliced) while the rest compiles as before (certificate findings never fail one), and the
// admission webhook refusing them.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <string>

#include "../check/gen_certs.hpp"
#include "phigate/compile/policy.hpp"
#include "phigate/compile/review.hpp"
#include "phigate/ingress/loader.hpp"

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

// --- certificates (CR*) -------------------------------------------------------------------------

namespace gen = check::gen;

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

/// A leaf for `sans`, valid from a month ago for `days` more days (the run-time check reads the
/// clock: negative `days` is expired).
gen::Made leaf(std::vector<std::string> sans, gen::CertOptions o = {}, std::int64_t days = 365) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  o.sans = std::move(sans);
  o.cn = o.sans.front();
  o.not_before = now - 30 * gen::kDay;
  o.not_after = now + days * gen::kDay;
  return gen::make_cert(o);
}

std::string tls_secret(const std::string& name, const gen::Made& m) {
  return "apiVersion: v1\nkind: Secret\nmetadata: { name: " + name +
         ", namespace: default }\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " + base64(m.cert_pem) +
         "\n  tls.key: " + base64(m.key_pem) + "\n";
}

/// An Ingress serving `host` (no PHI: only the certificate rules give errors) whose spec.tls names
/// `secret` for `tls_hosts`.
std::string tls_ingress(const std::string& name, const std::string& host, const std::string& secret,
                        const std::string& tls_hosts, const std::string& path = "/") {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n  annotations: { nginx.ingress.kubernetes.io/allowlist-source-range: "
         "\"10.0.0.0/8\" }\nspec:\n  ingressClassName: phigate\n  tls:\n  - hosts: [" +
         tls_hosts + "]\n    secretName: " + secret + "\n  rules:\n  - host: " + host +
         "\n    http:\n      paths:\n      - { path: " + path +
         ", pathType: Prefix, backend: { service: { name: web, "
         "port: { number: 80 } } } }\n";
}

constexpr const char* kClassAndService = R"(apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: phigate }
spec: { controller: phigate.io/ingress-controller }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - addresses: ["10.0.0.1"]
    conditions: { ready: true }
)";

/// Compiles `docs` (one manifest file) as a snapshot build does, with or without check.enforce.
CompiledPolicy compile_manifests(const std::vector<std::string>& docs, bool enforce,
                                 config::Diagnostics& diag) {
  std::string text = kClassAndService;
  for (const auto& d : docs) text += "---\n" + d;
  ingress::LoadResult loaded;
  ingress::load_text(text, "manifests/x.yaml", loaded);
  EXPECT_EQ(loaded.broken_files, 0u) << loaded.diagnostics.to_string();
  config::Config c;
  c.file = "phigate.yaml";
  c.check.enforce = enforce;
  auto out = load_and_compile(std::move(c), loaded, diag);
  EXPECT_TRUE(out.has_value());
  return out ? std::move(*out) : CompiledPolicy{};
}

/// The fail-closed reason of `host`'s path `path` ("" serving).
std::string failed(const CompiledPolicy& out, const std::string& host, const std::string& path = "/") {
  for (const auto& r : out.config.routes) {
    if (r.host != host) continue;
    for (const auto& p : r.paths) {
      if (p.path == path && p.policy) return p.policy->fail_closed;
    }
  }
  ADD_FAILURE() << "no path " << host << path;
  return "?";
}

// Certificate findings are about a Secret, which any namespace's Ingress may name for a host
// (a wildcard claim included): enforcing them on the Ingresses of the hosts it claims would let one
// tenant fail another's Ingress closed (review finding). They are reported and counted, never
// enforced; a weak key or a SHA-1 chain is never served anyway (the TLS layer refuses to load it).
TEST(CheckHook, ACertificateFindingNeverFailsAnIngressClosed_NotEvenAnotherTenants) {
  const auto ca = gen::make_cert({.cn = "ca", .sans = {}, .ca = true});
  auto sha1_options = gen::CertOptions{};
  sha1_options.md = EVP_sha1();
  sha1_options.issuer = &ca;
  const auto weak = leaf({"zzz.attacker.net"}, {.key = "RSA", .rsa_bits = 1024});
  const auto sha1 = leaf({"old.example"}, sha1_options);
  const auto good = leaf({"a.example.com"});
  auto in_ns = [](std::string doc, const std::string& ns) {
    const auto at = doc.find("namespace: default");
    return doc.replace(at, 18, "namespace: " + ns);
  };
  const std::vector<std::string> docs = {
      tls_secret("good-tls", good),
      tls_ingress("victim", "a.example.com", "good-tls", "a.example.com"),
      // Another tenant's Secret with an RSA 1024 key that names none of the hosts claimed for it,
      // claimed for every name under example.com.
      in_ns(tls_secret("weak-tls", weak), "attacker"),
      in_ns(tls_ingress("claim", "zzz.attacker.net", "weak-tls", "\"*.example.com\""), "attacker"),
      tls_secret("old-tls", sha1),
      tls_ingress("old", "old.example", "old-tls", "old.example"),
  };
  config::Diagnostics diag;
  const auto out = compile_manifests(docs, true, diag);
  EXPECT_TRUE(has_finding(out, "CR002", "Secret attacker/weak-tls"));
  EXPECT_TRUE(has_finding(out, "CR004", "Secret attacker/weak-tls"));
  EXPECT_TRUE(has_finding(out, "CR003", "Secret default/old-tls"));
  EXPECT_EQ(failed(out, "a.example.com"), "");
  EXPECT_EQ(failed(out, "old.example"), "");
  // (Its own path may fail closed for other reasons, e.g. no Service in its namespace; never for check.)
  EXPECT_EQ(failed(out, "zzz.attacker.net").find("check.enforce"), std::string::npos);
  EXPECT_EQ(out.enforced_ingresses, 0u);
  for (const char* who : {"Ingress default/victim", "Ingress default/old", "Ingress attacker/claim"}) {
    EXPECT_EQ(errors_about(diag, who, "check.enforce"), 0u) << who << "\n" << diag.to_string();
  }
}

TEST(CheckHook, AnExpiredCertificateAloneNeverFailsAnIngressClosed) {
  const auto expired = leaf({"late.example"}, {}, -1);
  config::Diagnostics diag;
  const auto out = compile_manifests(
      {tls_secret("late-tls", expired), tls_ingress("late", "late.example", "late-tls", "late.example")},
      true, diag);
  // CR001 is an error (expired) and is logged and counted, but not enforceable: failing closed on a
  // date would turn a late renewal into a scheduled outage.
  const auto cr001 = std::find_if(out.findings.begin(), out.findings.end(),
                                  [](const check::Finding& f) { return f.rule->id == "CR001"; });
  ASSERT_NE(cr001, out.findings.end());
  EXPECT_EQ(cr001->severity, check::Severity::Error);
  EXPECT_EQ(failed(out, "late.example"), "");
  EXPECT_EQ(out.enforced_ingresses, 0u);
  EXPECT_FALSE(diag.has_errors()) << diag.to_string();
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
