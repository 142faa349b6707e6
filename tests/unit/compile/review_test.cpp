// Admission review of one Ingress: refused with the same text the compile step (and so `phigate
// validate`) gives, allowed when valid or another controller's, conflicts warned.
#include "phigate/compile/review.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "phigate/compile/policy.hpp"

namespace phigate::compile {
namespace {

const std::string kNginx = "nginx.ingress.kubernetes.io/";

/// What the cluster holds already: a Service for the backends and one Ingress of ours.
ingress::LoadResult cluster() {
  ingress::LoadResult r;
  ingress::load_text(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: old
  namespace: default
  creationTimestamp: "2024-01-01T00:00:00Z"
spec:
  ingressClassName: phigate
  rules:
  - host: taken.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
)",
                     "cluster.yaml", r);
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  return r;
}

/// An Ingress as the API server puts it in request.object (JSON), ours unless `cls` says otherwise.
std::string ingress_json(const std::string& name, const std::string& host,
                         const std::string& annotations = "", const std::string& cls = "phigate",
                         const std::string& created = "2025-01-01T00:00:00Z") {
  return R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":")" + name +
         R"(","namespace":"default","creationTimestamp":")" + created + R"(","annotations":{)" + annotations +
         R"(}},"spec":{"ingressClassName":")" + cls + R"(","rules":[{"host":")" + host +
         R"(","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}})";
}

/// "resource: field: message" of a diagnostic line: what stays the same whichever file named it.
std::string after_severity(const std::string& line) {
  for (const std::string_view tag : {": error: ", ": warning: "}) {
    if (const auto pos = line.find(tag); pos != std::string::npos) return line.substr(pos + tag.size());
  }
  return line;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

TEST(Review, BadAccessAnnotation_RefusedWithTheCompileStepsText) {
  const config::Config cfg;
  const auto current = cluster();
  const std::string annotation = "\"" + kNginx + "whitelist-source-range\":\"10.0.0.0/8, not-a-cidr\"";
  const auto r = review_ingress(cfg, current, ingress_json("bad", "bad.example", annotation));
  EXPECT_TRUE(r.ours);
  EXPECT_FALSE(r.allowed);
  ASSERT_FALSE(r.errors.empty());

  // The same Ingress as a manifest in the folder `validate --ingress-dir` reads.
  auto folder = current;
  ingress::load_text(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad
  namespace: default
  creationTimestamp: "2025-01-01T00:00:00Z"
  annotations:
    nginx.ingress.kubernetes.io/whitelist-source-range: "10.0.0.0/8, not-a-cidr"
spec:
  ingressClassName: phigate
  rules:
  - host: bad.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
)",
                     "bad.yaml", folder);
  config::Diagnostics diag;
  auto cfg2 = cfg;
  auto t = ingress::translate(folder.resources, cfg2.ingress, diag);
  const auto stats = t.stats;
  merge(cfg2, std::move(t));
  (void)compile(std::move(cfg2), diag, stats);
  std::vector<std::string> expected, got;
  for (const auto& d : diag.entries()) {
    if (d.severity == config::Severity::Error && d.resource == "Ingress default/bad") {
      expected.push_back(after_severity(d.to_string()));
    }
  }
  for (const auto& e : r.errors) got.push_back(after_severity(e));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(any_contains(r.errors, "metadata.annotations." + kNginx + "whitelist-source-range"));
  // Named as a manifest of its own, so an operator sees where it came from.
  EXPECT_EQ(r.errors.front().rfind("admission:Ingress default/bad", 0), 0u) << r.errors.front();
}

TEST(Review, ValidIngress_Allowed) {
  const auto r = review_ingress({}, cluster(), ingress_json("good", "good.example"));
  EXPECT_TRUE(r.ours);
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
}

TEST(Review, AnotherControllersIngress_AllowedWhateverItHolds) {
  const std::string annotation = "\"" + kNginx + "whitelist-source-range\":\"not-a-cidr\"";
  const auto r = review_ingress({}, cluster(), ingress_json("theirs", "x.example", annotation, "nginx"));
  EXPECT_FALSE(r.ours);
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.errors.empty());
}

TEST(Review, ClassNameFromConfig_DecidesOurs) {
  config::Config cfg;
  cfg.ingress.class_name = "internal";
  const auto theirs = review_ingress(cfg, cluster(), ingress_json("a", "a.example", "", "phigate"));
  EXPECT_FALSE(theirs.ours);
  const auto ours = review_ingress(cfg, cluster(), ingress_json("a", "a.example", "", "internal"));
  EXPECT_TRUE(ours.ours);
  EXPECT_TRUE(ours.allowed);
}

TEST(Review, ConflictWithExistingIngress_AllowedWithWarning) {
  const auto r = review_ingress({}, cluster(), ingress_json("new", "taken.example"));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(any_contains(r.warnings,
                           "conflict: taken.example / claimed by Ingress default/old (kept) and "
                           "default/new (ignored)"))
      << (r.warnings.empty() ? "no warnings" : r.warnings.front());
}

TEST(Review, OlderCandidateTakingAHostOver_WarnsAboutTheOtherToo) {
  // The candidate is older (precedence): the warning is about the existing Ingress, but names it.
  const auto r = review_ingress(
      {}, cluster(), ingress_json("older", "taken.example", "", "phigate", "2020-01-01T00:00:00Z"));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(any_contains(r.warnings, "default/older (kept)"));
}

TEST(Review, Update_ReplacesItsOwnPreviousVersion) {
  // Same namespace/name as the Ingress in the cluster: no conflict with itself.
  const auto r = review_ingress({}, cluster(),
                                ingress_json("old", "taken.example", "", "phigate", "2024-01-01T00:00:00Z"));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
}

TEST(Review, RunningConfigWithIngressRoutes_DoesNotConflictWithItself) {
  // The hook hands over the running snapshot's configuration, which already holds the routes
  // translated from the cluster's Ingresses. An update changing the host's cipher list must not
  // meet its own previous version there ("host already has ... cipher settings").
  auto current = cluster();
  current.resources.ingresses.front().meta.annotations[kNginx + "ssl-ciphers"] =
      "ECDHE-ECDSA-AES128-GCM-SHA256";
  config::Config running;
  config::Diagnostics diag;
  auto t = ingress::translate(current.resources, running.ingress, diag);
  merge(running, std::move(t));
  ASSERT_FALSE(running.routes.empty());
  ASSERT_FALSE(diag.has_errors()) << diag.to_string();
  const std::string annotation = "\"" + kNginx + "ssl-ciphers\":\"ECDHE-ECDSA-AES256-GCM-SHA384\"";
  const auto r = review_ingress(
      running, current, ingress_json("old", "taken.example", annotation, "phigate", "2024-01-01T00:00:00Z"));
  EXPECT_TRUE(r.allowed) << r.errors.front();
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  // Another Ingress asking for other settings on that host is still refused.
  const auto other = review_ingress(running, current, ingress_json("other", "taken.example", annotation));
  EXPECT_FALSE(other.allowed);
  EXPECT_TRUE(any_contains(other.errors, "cipher settings from Ingress default/old"))
      << (other.errors.empty() ? "no errors" : other.errors.front());
}

TEST(Review, MissingService_AllowedWithTheErrorAsWarning) {
  // Creation order (Ingress before its Service, or before cert-manager's Secret) is not a reason
  // to refuse: the path answers 503 until the Service exists.
  auto json = ingress_json("early", "early.example");
  json.replace(json.find("\"web\""), 5, "\"later\"");
  const auto r = review_ingress({}, cluster(), json);
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(any_contains(r.warnings, "Service default/later not found"));
}

TEST(Review, HeadersConfigMapNotYetFollowed_AllowedWithTheErrorAsWarning) {
  // phigate follows a ConfigMap only once an Ingress names it: at admission it is unknown even when
  // it exists, so "not found" cannot refuse. A reference to another namespace still does.
  const auto r = review_ingress({}, cluster(),
                                ingress_json("hdr", "hdr.example", R"("phigate.io/proxy-set-headers":"up")"));
  EXPECT_TRUE(r.allowed) << (r.errors.empty() ? "" : r.errors.front());
  EXPECT_TRUE(any_contains(r.warnings, "ConfigMap default/up not found"));
  const auto other = review_ingress(
      {}, cluster(), ingress_json("hdr", "hdr.example", R"(")" + kNginx + R"(custom-headers":"b/h")"));
  EXPECT_FALSE(other.allowed);
  EXPECT_TRUE(any_contains(other.errors, "must name a ConfigMap in the Ingress's own namespace"));
}

TEST(Review, ResourceBackend_Refused) {
  const std::string json =
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"res","namespace":"default"},)"
      R"("spec":{"ingressClassName":"phigate","defaultBackend":{"resource":{"apiGroup":"x","kind":"Bucket","name":"b"}}}})";
  const auto r = review_ingress({}, cluster(), json);
  EXPECT_FALSE(r.allowed);
  EXPECT_TRUE(any_contains(r.errors, "resource backends are not supported"));
}

TEST(Review, NotAnIngress_Refused) {
  for (const std::string& body :
       {std::string(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}})"), std::string("{}"),
        std::string("")}) {
    const auto r = review_ingress({}, cluster(), body);
    EXPECT_FALSE(r.allowed) << body;
    EXPECT_FALSE(r.errors.empty()) << body;
  }
}

TEST(Review, ControlBytesInAnnotation_EscapedInTheMessage) {
  const std::string annotation = "\"" + kNginx + "whitelist-source-range\":\"x\\r\\nforged: line\"";
  const auto r = review_ingress({}, cluster(), ingress_json("esc", "esc.example", annotation));
  EXPECT_FALSE(r.allowed);
  for (const auto& e : r.errors) EXPECT_EQ(e.find_first_of("\r\n"), std::string::npos) << e;
}

TEST(Review, Canary_WithoutMainAdmittedWithAWarningInvalidOrCrossNamespaceRefused) {
  // Older than the Ingress it splits: it still claims nothing (no conflict).
  const std::string annotation = "\"" + kNginx + "canary\":\"true\",\"" + kNginx + "canary-weight\":\"10\"";
  const auto r = review_ingress(
      {}, cluster(), ingress_json("canary", "taken.example", annotation, "phigate", "2020-01-01T00:00:00Z"));
  EXPECT_TRUE(r.ours);
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_FALSE(any_contains(r.warnings, "conflict:"));
  const auto alone = review_ingress({}, cluster(), ingress_json("canary", "nomain.example", annotation));
  EXPECT_TRUE(alone.allowed);
  EXPECT_TRUE(any_contains(alone.warnings, "has no main path"));

  const std::string bad = "\"" + kNginx + "canary\":\"true\",\"" + kNginx + "canary-weight\":\"ten\"";
  EXPECT_FALSE(review_ingress({}, cluster(), ingress_json("canary", "taken.example", bad)).allowed);

  // A canary in another namespace than the main Ingress it would split.
  auto current = cluster();
  ingress::load_json(ingress_json("main", "main.example"), "kubernetes:Ingress default/main", current);
  auto steal = ingress_json("steal", "main.example", annotation);
  steal.replace(steal.find("\"namespace\":\"default\""), 21, "\"namespace\":\"tenant\"");
  const auto x = review_ingress({}, current, steal);
  EXPECT_FALSE(x.allowed);
  EXPECT_TRUE(any_contains(x.errors, "another namespace")) << (x.errors.empty() ? "" : x.errors[0]);
}

TEST(Review, MainIngressNextToACanary_AllowedWithoutConflict) {
  auto current = cluster();
  ingress::load_json(ingress_json("canary", "main.example", "\"" + kNginx + "canary\":\"true\"", "phigate",
                                  "2020-01-01T00:00:00Z"),
                     "kubernetes:Ingress default/canary", current);
  const auto r = review_ingress({}, current, ingress_json("main", "main.example"));
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
}

TEST(Review, RateLimit_AdmittedBandwidthLimitAdmittedBadValueRefused) {
  const auto ok = review_ingress({}, cluster(),
                                 ingress_json("limited", "l.example", "\"" + kNginx + "limit-rps\":\"5\""));
  EXPECT_TRUE(ok.allowed);
  EXPECT_TRUE(ok.errors.empty());
  const auto bad = review_ingress(
      {}, cluster(), ingress_json("limited", "l.example", "\"" + kNginx + "limit-rps\":\"five\""));
  EXPECT_FALSE(bad.allowed);
  const auto r = review_ingress({}, cluster(),
                                ingress_json("limited", "l.example", "\"" + kNginx + "limit-rate\":\"5\""));
  EXPECT_TRUE(r.allowed);
  const auto bad_rate = review_ingress(
      {}, cluster(), ingress_json("limited", "l.example", "\"" + kNginx + "limit-rate\":\"5k\""));
  EXPECT_FALSE(bad_rate.allowed);
  EXPECT_TRUE(any_contains(bad_rate.errors, "metadata.annotations." + kNginx + "limit-rate"));
  EXPECT_TRUE(any_contains(bad_rate.errors, "expected KiB per second"));
}

}  // namespace
}  // namespace phigate::compile
