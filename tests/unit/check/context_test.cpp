// Context: where a config key or an annotation is written (its own line, from the loaders), and
// which hosts carry PHI (one PHI path taints its host, whatever the Ingress or the case).
#include <gtest/gtest.h>

#include "fixture_view.hpp"
#include "phigate/ingress/loader.hpp"

namespace phigate::check {
namespace {

using test::Scene;

TEST(CheckContext, ConfigKeyIsPlacedOnItsLineAbsentKeyOnLineZero) {
  config::Config cfg;
  cfg.file = "conf/phigate.yaml";
  cfg.key_lines = std::make_shared<const std::map<std::string, int>>(
      std::map<std::string, int>{{"tls.hsts.max_age", 12}, {"trusted_proxies[1]", 30}});
  const Options opt;
  const View v{.config = cfg, .options = opt};
  const Context ctx(v);
  auto loc = ctx.config_key("tls.hsts.max_age");
  EXPECT_EQ(loc.file, "conf/phigate.yaml");
  EXPECT_EQ(loc.line, 12);
  EXPECT_EQ(loc.field, "tls.hsts.max_age");
  EXPECT_EQ(loc.resource, "");
  EXPECT_EQ(ctx.config_key("trusted_proxies[1]").line, 30);
  loc = ctx.config_key("tls.hsts.enabled");  // the default applies: no line
  EXPECT_EQ(loc.line, 0);
  EXPECT_EQ(loc.field, "tls.hsts.enabled");
  EXPECT_EQ(loc.file, "conf/phigate.yaml");
}

TEST(CheckContext, ConfigKeyLinesComeFromTheLoader) {
  config::Diagnostics diag;
  const auto cfg = config::load_config_text(
      "listeners:\n"                               // 1
      "  http: [\"127.0.0.1:8080\"]\n"             // 2
      "trusted_proxies:\n"                         // 3
      "  - 10.0.0.0/8\n"                           // 4
      "  - 0.0.0.0/0\n"                            // 5
      "tls:\n"                                     // 6
      "  hsts: { enabled: true, max_age: 60 }\n",  // 7
      "/nowhere/phigate.yaml", diag);
  ASSERT_TRUE(cfg) << diag.to_string();
  const Options opt;
  const View v{.config = *cfg, .options = opt};
  const Context ctx(v);
  EXPECT_EQ(ctx.config_key("trusted_proxies[1]").line, 5);
  EXPECT_EQ(ctx.config_key("tls.hsts.max_age").line, 7);
  EXPECT_EQ(ctx.config_key("listeners.http[0]").line, 2);
  EXPECT_EQ(ctx.config_key("audit").line, 0);
}

constexpr const char* kIngress =
    "apiVersion: networking.k8s.io/v1\n"                         // 1
    "kind: Ingress\n"                                            // 2
    "metadata:\n"                                                // 3
    "  name: records\n"                                          // 4
    "  namespace: clinic\n"                                      // 5
    "  annotations:\n"                                           // 6
    "    phigate.io/phi: \"true\"\n"                             // 7
    "    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"\n"  // 8
    "    phigate.io/hsts: \"false\"\n"                           // 9
    "    nginx.ingress.kubernetes.io/hsts: \"true\"\n"           // 10
    "spec:\n"                                                    // 11
    "  rules:\n"                                                 // 12
    "  - host: records.example\n"                                // 13
    "    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } } "
    "} }] }\n";

TEST(CheckContext, AnnotationIsPlacedOnItsOwnLine) {
  ingress::LoadResult loaded;
  ingress::load_text(std::string("---\n") + kIngress, "m/app.yaml", loaded);  // the Ingress starts at line 2
  ASSERT_FALSE(loaded.diagnostics.has_errors()) << loaded.diagnostics.to_string();
  config::Config cfg;
  const Options opt;
  const View v{.config = cfg, .resources = &loaded.resources, .options = opt};
  const Context ctx(v);
  auto loc = ctx.annotation("Ingress clinic/records", "ssl-redirect");
  EXPECT_EQ(loc.file, "m/app.yaml");
  EXPECT_EQ(loc.line, 9);
  EXPECT_EQ(loc.resource, "Ingress clinic/records");
  EXPECT_EQ(loc.field, "metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect");
  // The phigate.io/ form first, with its own line (not the block's, not the other form's).
  loc = ctx.annotation("Ingress clinic/records", "hsts");
  EXPECT_EQ(loc.line, 10);
  EXPECT_EQ(loc.field, "metadata.annotations.phigate.io/hsts");
  // Absent: the annotations block.
  loc = ctx.annotation("Ingress clinic/records", "allowlist-source-range");
  EXPECT_EQ(loc.line, 8);
  EXPECT_EQ(loc.field, "metadata.annotations");
  // Unknown Ingress: named, no file.
  loc = ctx.annotation("Ingress clinic/other", "hsts");
  EXPECT_EQ(loc.file, "");
  EXPECT_EQ(loc.line, 0);
  EXPECT_EQ(loc.resource, "Ingress clinic/other");
}

TEST(CheckContext, AnnotationFromTheApiHasNoLine) {
  ingress::LoadResult loaded;
  ingress::load_json(R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"records",)"
                     R"("namespace":"clinic","annotations":{"phigate.io/hsts":"false"}},"spec":{}})",
                     "kubernetes:Ingress clinic/records", loaded);
  ASSERT_EQ(loaded.resources.ingresses.size(), 1u) << loaded.diagnostics.to_string();
  config::Config cfg;
  const Options opt;
  const View v{.config = cfg, .resources = &loaded.resources, .options = opt};
  const Context ctx(v);
  const auto loc = ctx.annotation("Ingress clinic/records", "hsts");
  EXPECT_EQ(loc.line, 0);
  EXPECT_EQ(loc.resource, "Ingress clinic/records");
  EXPECT_EQ(loc.field, "metadata.annotations.phigate.io/hsts");
}

TEST(CheckContext, OnePhiPathTaintsItsHostAcrossIngressesAndCase) {
  Scene s;
  s.add("records.example", Scene::policy("records", true), "/api");
  s.add("RECORDS.example", Scene::policy("static", false), "/static");
  s.add("www.example", Scene::policy("www", false));
  // A canary carrying PHI marks its host too.
  auto& canaried = s.add("lab.example", Scene::policy("lab", false));
  auto canary = std::make_shared<config::PathSpec>(canaried);
  canary->policy = std::make_shared<const config::RoutePolicy>(Scene::policy("lab-canary", true));
  canaried.canary = canary;
  // A failed-closed PHI path still marks its host (a neighbour keeps serving it).
  auto closed = Scene::policy("old", true);
  closed.fail_closed = "broken";
  s.add("old.example", closed);
  s.add("old.example", Scene::policy("new", false), "/new");
  const auto v = s.view();
  const Context ctx(v);
  EXPECT_TRUE(ctx.is_phi_host("records.example"));
  EXPECT_TRUE(ctx.is_phi_host("Records.Example"));
  EXPECT_TRUE(ctx.is_phi(s.cfg.routes[1]));  // the other Ingress's path on the same host
  EXPECT_FALSE(ctx.is_phi_host("www.example"));
  EXPECT_TRUE(ctx.is_phi_host("lab.example"));
  EXPECT_TRUE(ctx.is_phi_host("old.example"));
  EXPECT_FALSE(ctx.is_phi_host(""));
  EXPECT_FALSE(ctx.is_phi_host("*"));
  EXPECT_EQ(ctx.phi_hosts(), (std::vector<std::string>{"lab.example", "old.example", "records.example"}));
}

TEST(CheckContext, TheDefaultBackendCarriesPhiWhenAPhiHostCanFallThroughToIt) {
  // records.example serves /api only: /other on it goes to the default backend (RouteTable), so
  // the catch-all receives that PHI host's requests, cookies and query strings.
  Scene s;
  s.add("records.example", Scene::policy("records", true), "/api");
  config::PathSpec fallback;
  fallback.path = "/";
  fallback.policy = std::make_shared<const config::RoutePolicy>(Scene::policy("catchall", false));
  s.cfg.default_backend = fallback;
  {
    const auto v = s.view();
    const Context ctx(v);
    EXPECT_TRUE(ctx.is_phi_host(""));
    EXPECT_TRUE(ctx.is_phi_host("*"));
  }
  // With a root path on every PHI host, nothing of theirs falls through.
  s.add("records.example", Scene::policy("records-root", false), "/");
  {
    const auto v = s.view();
    const Context ctx(v);
    EXPECT_FALSE(ctx.is_phi_host(""));
  }
  // An Exact "/" is no catch-all for the host.
  Scene e;
  e.add("records.example", Scene::policy("records", true), "/api");
  e.cfg.routes.back().paths.back().type = config::PathType::Prefix;
  e.add("records.example", Scene::policy("exact", false), "/").type = config::PathType::Exact;
  e.cfg.default_backend = fallback;
  const auto v = e.view();
  const Context ctx(v);
  EXPECT_TRUE(ctx.is_phi_host(""));
}

}  // namespace
}  // namespace phigate::check
