#include "phigate/ingress/translate.hpp"

#include <gtest/gtest.h>

#include "phigate/ingress/loader.hpp"

namespace phigate::ingress {
namespace {

using config::PathType;

const std::string kPem = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n";
const std::string kKeyPem = "-----BEGIN PRIVATE KEY-----\nZmFrZQ==\n-----END PRIVATE KEY-----\n";
const std::string kN = "nginx.ingress.kubernetes.io/";

IngressPath path(std::string p, PathType type, std::string service, std::int32_t port) {
  IngressPath out;
  out.path = std::move(p);
  out.type = type;
  out.backend.service = ServiceBackend{std::move(service), port, ""};
  return out;
}

IngressPath named_port_path(std::string p, std::string service, std::string port) {
  IngressPath out;
  out.path = std::move(p);
  out.type = PathType::Prefix;
  out.backend.service = ServiceBackend{std::move(service), 0, std::move(port)};
  return out;
}

Ingress ingress(std::string name, std::int64_t created, std::vector<IngressRule> rules = {},
                std::string ns = "default") {
  Ingress i;
  i.origin = {"cluster/" + name + ".yaml", 0, -1, 1};
  i.meta.name = std::move(name);
  i.meta.ns = std::move(ns);
  i.meta.created = created;
  i.class_name = "phigate";
  i.rules = std::move(rules);
  return i;
}

Service service(std::string name, std::vector<ServicePort> ports, std::string ns = "default") {
  Service s;
  s.origin = {"cluster/svc.yaml", 0, -1, 1};
  s.meta.name = std::move(name);
  s.meta.ns = std::move(ns);
  s.ports = std::move(ports);
  return s;
}

EndpointSlice slice(std::string name, std::string svc, std::string type, std::vector<EndpointPort> ports,
                    std::vector<Endpoint> endpoints, std::string ns = "default") {
  EndpointSlice s;
  s.origin = {"cluster/slices.yaml", 0, -1, 1};
  s.meta.name = std::move(name);
  s.meta.ns = std::move(ns);
  s.service_name = std::move(svc);
  s.address_type = std::move(type);
  s.ports = std::move(ports);
  s.endpoints = std::move(endpoints);
  return s;
}

Secret secret(std::string name, std::string type, std::map<std::string, std::string> data,
              std::string ns = "default") {
  Secret s;
  s.origin = {"cluster/secrets.yaml", 0, -1, 1};
  s.meta.name = std::move(name);
  s.meta.ns = std::move(ns);
  s.type = std::move(type);
  s.data = std::move(data);
  return s;
}

Secret tls_secret(std::string name, std::string ns = "default") {
  return secret(std::move(name), "kubernetes.io/tls", {{"tls.crt", kPem}, {"tls.key", kKeyPem}},
                std::move(ns));
}

class Translate : public ::testing::Test {
 protected:
  Translation run() {
    diag_ = {};
    return translate(res_, spec_, diag_);
  }
  /// The first diagnostic whose message contains `text`, or nullptr.
  const config::Diagnostic* find(std::string_view text) const {
    for (const auto& d : diag_.entries()) {
      if (d.message.find(text) != std::string::npos) return &d;
    }
    return nullptr;
  }
  /// A web Service on port 80 (named http, targetPort 8080) with one ready endpoint.
  void add_web_service(const std::string& ns = "default") {
    res_.services.push_back(service("web", {{"http", 80, "8080"}}, ns));
    res_.endpoint_slices.push_back(
        slice("web-1", "web", "IPv4", {{"http", 8080}}, {{{"10.0.0.1"}, true}}, ns));
  }

  Resources res_;
  config::IngressSpec spec_;
  config::Diagnostics diag_;
};

TEST_F(Translate, Hosts_LowerCasedWildcardKeptNoHostIsAnyHost) {
  add_web_service();
  res_.ingresses.push_back(ingress("a", 1,
                                   {{"App.Example.COM", {path("/", PathType::Prefix, "web", 80)}, 1},
                                    {"*.Example.com", {path("/w", PathType::Prefix, "web", 80)}, 2},
                                    {"", {path("/any", PathType::Prefix, "web", 80)}, 3}}));
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_EQ(t.routes.size(), 3u);
  EXPECT_EQ(t.routes[0].host, "app.example.com");
  EXPECT_EQ(t.routes[1].host, "*.example.com");
  EXPECT_EQ(t.routes[2].host, "");
  EXPECT_EQ(t.routes[0].paths.at(0).backends, std::vector<std::string>{"10.0.0.1:8080"});
  EXPECT_EQ(t.routes[0].where.file, "cluster/a.yaml#0");
}

TEST_F(Translate, Paths_TypesKeptSameHostRulesMergedEmptyPathIsRoot) {
  add_web_service();
  res_.ingresses.push_back(ingress("a", 1,
                                   {{"a.example", {path("/exact", PathType::Exact, "web", 80)}, 1},
                                    {"b.example", {path("", PathType::ImplementationSpecific, "web", 80)}, 2},
                                    {"A.example", {path("/p", PathType::Prefix, "web", 80)}, 3}}));
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 2u);  // one RouteSpec per (Ingress, host)
  EXPECT_EQ(t.routes[0].host, "a.example");
  ASSERT_EQ(t.routes[0].paths.size(), 2u);
  EXPECT_EQ(t.routes[0].paths[0].type, PathType::Exact);
  EXPECT_EQ(t.routes[0].paths[1].path, "/p");
  EXPECT_EQ(t.routes[0].paths[1].type, PathType::Prefix);
  EXPECT_EQ(t.routes[1].paths.at(0).path, "/");
  EXPECT_EQ(t.routes[1].paths.at(0).type, PathType::ImplementationSpecific);
  EXPECT_EQ(t.stats.paths, 3u);
  EXPECT_EQ(t.stats.routes, 2u);
}

TEST_F(Translate, BadPath_FailsClosedAndKeepsEveryHostClaimed) {
  add_web_service();
  res_.ingresses.push_back(ingress("a", 1,
                                   {{"a.example", {path("/ok", PathType::Prefix, "web", 80)}, 1},
                                    {"b.example", {path("relative", PathType::Prefix, "web", 80)}, 2}}));
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 2u);
  for (const auto& r : t.routes) {
    ASSERT_TRUE(r.paths.at(0).policy);
    EXPECT_EQ(r.paths.at(0).policy->fail_closed, "invalid path at spec.rules[1].http.paths[0].path");
  }
  EXPECT_EQ(t.stats.failed_closed, 1u);
  const auto* d = find("invalid path");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->resource, "Ingress default/a");
  EXPECT_EQ(d->field, "spec.rules[1].http.paths[0].path");
}

TEST_F(Translate, InvalidHost_ErrorNotEmittedIngressFailsClosed) {
  add_web_service();
  res_.ingresses.push_back(ingress("a", 1,
                                   {{"*", {path("/", PathType::Prefix, "web", 80)}, 1},
                                    {"ok.example", {path("/", PathType::Prefix, "web", 80)}, 2}}));
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].host, "ok.example");
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed, "invalid host at spec.rules[0].host");
}

TEST_F(Translate, LoadProblems_FailClosed) {
  add_web_service();
  auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.problems = {"spec.rules[0].http.paths[1].pathType"};
  res_.ingresses.push_back(ing);
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed,
            "invalid field spec.rules[0].http.paths[1].pathType");
}

struct ClassCase {
  const char* what;
  std::optional<std::string> class_name;
  std::optional<std::string> annotation;
  std::vector<IngressClass> classes;
  bool ours;
};

IngressClass ingress_class(std::string name, std::string controller, bool is_default = false) {
  IngressClass c;
  c.meta.name = std::move(name);
  c.meta.ns = "";
  c.controller = std::move(controller);
  c.is_default = is_default;
  return c;
}

TEST_F(Translate, ClassSelection_AllFourWaysAndNotOurs) {
  const std::string ours = "phigate.io/ingress-controller";
  const std::string nginx = "k8s.io/ingress-nginx";
  const std::vector<ClassCase> cases = {
      {"class names an IngressClass of ours", "custom", {}, {ingress_class("custom", ours)}, true},
      {"class equals our class name, no IngressClass", "phigate", {}, {}, true},
      {"legacy annotation equals our class name", {}, "phigate", {}, true},
      {"no class, default IngressClass of ours", {}, {}, {ingress_class("x", ours, true)}, true},
      {"class names another controller's IngressClass", "nginx", {}, {ingress_class("nginx", nginx)}, false},
      {"our class name handed to another controller",
       "phigate",
       {},
       {ingress_class("phigate", nginx)},
       false},
      {"unknown class", "nginx", {}, {}, false},
      {"legacy annotation of another class", {}, "nginx", {}, false},
      {"no class, default IngressClass of another controller",
       {},
       {},
       {ingress_class("n", nginx, true)},
       false},
      {"no class, IngressClass of ours not default", {}, {}, {ingress_class("x", ours)}, false},
      {"class wins over annotation", "nginx", "phigate", {}, false},
  };
  for (const auto& c : cases) {
    res_ = {};
    add_web_service();
    auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
    ing.class_name = c.class_name;
    if (c.annotation) ing.meta.annotations["kubernetes.io/ingress.class"] = *c.annotation;
    res_.ingresses.push_back(ing);
    res_.ingress_classes = c.classes;
    const auto t = run();
    EXPECT_EQ(t.routes.size(), c.ours ? 1u : 0u) << c.what;
    EXPECT_EQ(t.stats.used, c.ours ? 1u : 0u) << c.what;
    EXPECT_EQ(t.stats.ignored, c.ours ? 0u : 1u) << c.what;
    EXPECT_EQ(t.ignored.size(), c.ours ? 0u : 1u) << c.what;
    EXPECT_FALSE(diag_.has_errors()) << c.what << ": " << diag_.to_string();
  }
}

TEST_F(Translate, ClassSelection_ConfiguredNamesAreUsed) {
  spec_.class_name = "edge";
  spec_.controller = "example.com/edge";
  add_web_service();
  auto a = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  a.class_name = "edge";
  auto b = ingress("b", 1, {{"b.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  b.class_name = "internal";
  res_.ingresses = {a, b};
  res_.ingress_classes = {ingress_class("internal", "example.com/edge")};
  EXPECT_EQ(run().stats.used, 2u);
}

TEST_F(Translate, Annotations_SharedPolicyWithResourceAndTlsHostFlag) {
  add_web_service();
  auto ing = ingress("a", 1,
                     {{"secure.example",
                       {path("/", PathType::Prefix, "web", 80), path("/x", PathType::Exact, "web", 80)},
                       1},
                      {"w.wild.example", {path("/", PathType::Prefix, "web", 80)}, 2},
                      {"plain.example", {path("/", PathType::Prefix, "web", 80)}, 3}});
  ing.meta.annotations = {{kN + "proxy-body-size", "8m"}, {kN + "load-balance", "ewma"}};
  ing.tls = {{{"Secure.Example", "*.wild.example"}, "", 1}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_EQ(t.routes.size(), 3u);
  const auto& secure = t.routes[0].paths;
  ASSERT_TRUE(secure.at(0).policy);
  EXPECT_EQ(secure[0].policy, secure[1].policy);  // one shared object
  EXPECT_EQ(secure[0].policy->resource, "Ingress default/a");
  EXPECT_EQ(secure[0].policy->body_size, 8u << 20);
  EXPECT_EQ(secure[0].policy->load_balance, config::LoadBalance::Ewma);
  EXPECT_TRUE(secure[0].policy->tls_host);
  EXPECT_TRUE(t.routes[1].paths.at(0).policy->tls_host);  // covered by the wildcard
  EXPECT_FALSE(t.routes[2].paths.at(0).policy->tls_host);
  EXPECT_EQ(t.routes[2].paths.at(0).policy->body_size, 8u << 20);
  EXPECT_TRUE(t.routes[0].paths[0].policy->fail_closed.empty());
  EXPECT_TRUE(t.certificates.empty());  // no secretName: the default certificate
}

TEST_F(Translate, InvalidAnnotation_FailsClosedWithErrorNamingIngressAnnotationAndValue) {
  add_web_service();
  auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}}, "shop");
  ing.meta.annotations = {{kN + "proxy-body-size", "lots"}, {kN + "configuration-snippet", "deny all;"}};
  res_.services.push_back(service("web", {{"http", 80, ""}}, "shop"));
  res_.ingresses.push_back(ing);
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].host, "a.example");
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed,
            "invalid annotation nginx.ingress.kubernetes.io/configuration-snippet=\"deny all;\"");
  const auto* d = find("\"lots\"");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->severity, config::Severity::Error);
  EXPECT_EQ(d->resource, "Ingress shop/a");
  EXPECT_EQ(d->field, "metadata.annotations.nginx.ingress.kubernetes.io/proxy-body-size");
  EXPECT_EQ(diag_.error_count(), 2u);
}

TEST_F(Translate, UnknownAnnotation_WarnsAndServes) {
  add_web_service();
  auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "mirror-target", "http://mirror.example/"}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors());
  const auto* d = find("unsupported annotation, ignored");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_TRUE(t.routes.at(0).paths.at(0).policy->fail_closed.empty());
}

TEST_F(Translate, UnsupportedAnnotationsFailClosed_FailsOnlyThatIngressAndListsUnhonoured) {
  add_web_service();
  auto a = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  a.meta.annotations = {{kN + "mirror-target", "http://mirror.example/"}, {kN + "proxy-buffering", "on"}};
  auto b = ingress("b", 2, {{"b.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  b.meta.annotations = {{kN + "proxy-read-timeout", "30"}};
  res_.ingresses = {a, b};
  // warn (default): served, both listed.
  auto t = run();
  EXPECT_FALSE(diag_.has_errors());
  EXPECT_TRUE(t.routes.at(0).paths.at(0).policy->fail_closed.empty());
  ASSERT_EQ(t.unhonoured.size(), 2u);
  EXPECT_EQ(t.unhonoured[0].resource, "Ingress default/a");
  ASSERT_EQ(t.unhonoured[0].annotations.size(), 2u);
  EXPECT_EQ(t.unhonoured[0].annotations[0].support, Support::Unsupported);
  EXPECT_EQ(t.unhonoured[1].resource, "Ingress default/b");
  EXPECT_EQ(t.unhonoured[1].annotations.at(0).support, Support::SupportedWithDifferences);
  // fail_closed: a answers 503 with an error naming the annotation; b is untouched.
  spec_.unsupported_annotations = config::UnsupportedAnnotations::FailClosed;
  t = run();
  const auto* d = find("ingress.unsupported_annotations is fail_closed");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Error);
  EXPECT_EQ(d->resource, "Ingress default/a");
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "mirror-target");
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed,
            "unsupported annotation " + kN + "mirror-target=\"http://mirror.example/\"");
  EXPECT_TRUE(t.routes[1].paths.at(0).policy->fail_closed.empty());
  EXPECT_EQ(t.unhonoured.at(0).annotations.size(), 1u);  // proxy-buffering: no effect, still listed
}

TEST_F(Translate, Endpoints_NamedNumberedTargetPortReadyAndIpv6) {
  res_.services.push_back(service("api", {{"http", 80, "http-alt"}, {"grpc", 9000, "9001"}, {"", 81, ""}}));
  res_.services.push_back(service("solo", {{"", 8080, ""}}));
  res_.endpoint_slices = {
      slice("api-v4", "api", "IPv4", {{"http", 8080}, {"grpc", 9001}},
            {{{"10.0.0.2", "10.0.0.1"}, true}, {{"10.0.0.3"}, false}}),
      slice("api-v6", "api", "IPv6", {{"http", 8080}}, {{{"fd00::1"}, true}}),
      slice("api-dup", "api", "IPv4", {{"http", 8080}}, {{{"10.0.0.1"}, true}}),
      slice("solo-1", "solo", "IPv4", {{"", 8081}}, {{{"10.1.0.1"}, true}}),
      slice("api-other-ns", "api", "IPv4", {{"http", 8080}}, {{{"10.9.9.9"}, true}}, "elsewhere"),
      slice("other-service", "apix", "IPv4", {{"http", 8080}}, {{{"10.8.8.8"}, true}}),
  };
  res_.ingresses.push_back(
      ingress("a", 1,
              {{"a.example",
                {named_port_path("/named", "api", "http"), path("/numbered", PathType::Prefix, "api", 80),
                 path("/grpc", PathType::Prefix, "api", 9000), path("/unnamed", PathType::Prefix, "api", 81),
                 path("/solo", PathType::Prefix, "solo", 8080)},
                1}}));
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  const auto& p = t.routes.at(0).paths;
  const std::vector<std::string> http = {"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"};
  EXPECT_EQ(p.at(0).backends, http);
  EXPECT_EQ(p.at(1).backends, http);
  EXPECT_EQ(p.at(2).backends, (std::vector<std::string>{"10.0.0.1:9001", "10.0.0.2:9001"}));
  EXPECT_TRUE(p.at(3).backends.empty());  // no slice port for the unnamed Service port: no endpoints
  EXPECT_EQ(p.at(4).backends, std::vector<std::string>{"10.1.0.1:8081"});
}

TEST_F(Translate, Endpoints_MetadataLinkLocalUnspecifiedAndMulticastAreNeverBackends) {
  // Whoever may write an EndpointSlice must not be able to point a route at the cloud metadata
  // service (169.254.169.254, AWS's fd00:ec2::254) or other addresses no Pod has.
  res_.services.push_back(service("web", {{"http", 80, ""}}));
  res_.endpoint_slices = {
      slice("v4", "web", "IPv4", {{"http", 8080}},
            {{{"169.254.169.254", "10.0.0.1", "0.0.0.0", "224.0.0.1", "169.254.0.1"}, true}}),
      slice("v6", "web", "IPv6", {{"http", 8080}},
            {{{"fe80::1", "::", "ff02::1", "::ffff:169.254.169.254", "fd00:ec2::254", "fd00::1"}, true}}),
  };
  res_.ingresses.push_back(ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}}));
  const auto t = run();
  EXPECT_EQ(t.routes.at(0).paths.at(0).backends,
            (std::vector<std::string>{"10.0.0.1:8080", "[fd00::1]:8080"}));
  const auto* d = find("EndpointSlice address(es) refused");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_NE(d->message.find("9 EndpointSlice"), std::string::npos) << d->message;
}

TEST_F(Translate, Endpoints_NoneReadyIsEmptyWithoutDiagnostic) {
  res_.services.push_back(service("web", {{"http", 80, ""}}));
  res_.endpoint_slices.push_back(slice("web-1", "web", "IPv4", {{"http", 8080}}, {{{"10.0.0.1"}, false}}));
  res_.ingresses.push_back(ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}}));
  const auto t = run();
  EXPECT_TRUE(diag_.entries().empty()) << diag_.to_string();
  EXPECT_TRUE(t.routes.at(0).paths.at(0).backends.empty());
}

TEST_F(Translate, Endpoints_SliceWithLoadProblemsIsNotUsed) {
  res_.services.push_back(service("web", {{"http", 80, ""}}));
  auto s = slice("web-1", "web", "IPv4", {{"http", 8080}}, {{{"10.0.0.1"}, true}});
  s.problems = {"endpoints[0].addresses[1]"};
  res_.endpoint_slices.push_back(s);
  res_.ingresses.push_back(ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}}));
  EXPECT_TRUE(run().routes.at(0).paths.at(0).backends.empty());
}

TEST_F(Translate, MissingServiceOrPort_ErrorOnThatPathEmptyBackendsNotFailClosed) {
  add_web_service();
  res_.services.push_back(service("ext", {{"http", 80, ""}}));
  res_.services.back().type = "ExternalName";
  auto resource = path("/bucket", PathType::Prefix, "", 0);
  resource.backend.service.reset();
  res_.ingresses.push_back(ingress(
      "a", 1,
      {{"a.example",
        {path("/ok", PathType::Prefix, "web", 80), path("/gone", PathType::Prefix, "missing", 8080),
         named_port_path("/noport", "web", "metrics"), path("/ext", PathType::Prefix, "ext", 80), resource},
        1}}));
  const auto t = run();
  const auto& p = t.routes.at(0).paths;
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].backends.size(), 1u);
  for (std::size_t i = 1; i < p.size(); ++i) EXPECT_TRUE(p[i].backends.empty()) << p[i].path;
  EXPECT_TRUE(p[0].policy->fail_closed.empty());
  EXPECT_EQ(t.stats.failed_closed, 0u);
  EXPECT_EQ(diag_.error_count(), 4u) << diag_.to_string();
  const auto* d = find("Service default/missing not found");
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("missing:8080"), std::string::npos);
  EXPECT_EQ(d->field, "spec.rules[0].http.paths[1].backend.service");
  EXPECT_EQ(d->resource, "Ingress default/a");
  EXPECT_NE(find("web:metrics: Service default/web has no port named metrics"), nullptr);
  EXPECT_NE(find("ExternalName"), nullptr);
  EXPECT_NE(find("resource backends are not supported"), nullptr);
}

TEST_F(Translate, Conflict_OldestIngressFirstThenNamespaceNameWithWarning) {
  add_web_service();
  add_web_service("team");
  const auto rule = [](std::string svc) {
    return std::vector<IngressRule>{{"app.example", {path("/api", PathType::Prefix, std::move(svc), 80)}, 1}};
  };
  // Listed newest first: order must come from creationTimestamp, not load order.
  res_.ingresses.push_back(ingress("new", 200, rule("web")));
  res_.ingresses.push_back(ingress("old", 100, rule("web")));
  res_.ingresses.push_back(ingress("b-tie", 150, rule("web")));
  res_.ingresses.push_back(ingress("a-tie", 150, rule("web"), "team"));
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 4u);
  std::vector<std::string> order;
  for (const auto& r : t.routes) order.push_back(r.paths.at(0).policy->resource);
  EXPECT_EQ(order, (std::vector<std::string>{"Ingress default/old", "Ingress default/b-tie",
                                             "Ingress team/a-tie", "Ingress default/new"}));
  EXPECT_EQ(t.stats.conflicts, 3u);
  const auto* d =
      find("conflict: app.example /api claimed by Ingress default/old (kept) and default/new (ignored)");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_EQ(d->resource, "Ingress default/new");
  EXPECT_NE(find("claimed by Ingress default/old (kept) and team/a-tie (ignored)"), nullptr);
}

TEST_F(Translate, Conflict_MissingTimestampCountsAsOldest) {
  add_web_service();
  auto undated = ingress("z", 0, {{"a", {path("/", PathType::Prefix, "web", 80)}, 1}});
  undated.meta.created.reset();
  res_.ingresses.push_back(ingress("a", 5, {{"a", {path("/", PathType::Prefix, "web", 80)}, 1}}));
  res_.ingresses.push_back(undated);
  const auto t = run();
  EXPECT_EQ(t.routes.at(0).paths.at(0).policy->resource, "Ingress default/z");
}

TEST_F(Translate, Conflict_SameKeyAsTheRouter) {
  add_web_service();
  res_.ingresses.push_back(ingress(
      "a", 1, {{"h", {path("/x", PathType::Prefix, "web", 80), path("/y", PathType::Exact, "web", 80)}, 1}}));
  res_.ingresses.push_back(
      ingress("b", 2,
              {{"h",
                {path("/x/", PathType::ImplementationSpecific, "web", 80),  // same as Prefix /x
                 path("/y", PathType::Prefix, "web", 80),                   // Exact differs
                 path("/y/", PathType::Exact, "web", 80)},                  // different text
                1},
               {"other", {path("/x", PathType::Prefix, "web", 80)}, 2}}));
  const auto t = run();
  EXPECT_EQ(t.stats.conflicts, 1u) << diag_.to_string();
  EXPECT_NE(find("conflict: h /x/ claimed by Ingress default/a (kept) and default/b (ignored)"), nullptr);
}

TEST_F(Translate, Conflict_WithinOneIngressWarnsDuplicate) {
  add_web_service();
  res_.ingresses.push_back(ingress("a", 1,
                                   {{"h", {path("/x", PathType::Prefix, "web", 80)}, 1},
                                    {"h", {path("/x", PathType::Prefix, "web", 80)}, 2}}));
  const auto t = run();
  EXPECT_EQ(t.stats.conflicts, 0u);
  EXPECT_NE(find("duplicate path h /x"), nullptr);
}

TEST_F(Translate, DefaultBackend_FirstRulelessIngressIsTheCatchAllOthersConflict) {
  add_web_service();
  res_.services.push_back(service("fallback", {{"", 8080, ""}}));
  res_.endpoint_slices.push_back(slice("fb", "fallback", "IPv4", {{"", 8080}}, {{{"10.0.0.9"}, true}}));
  auto older = ingress("older", 1);
  older.default_backend = IngressBackend{ServiceBackend{"fallback", 8080, ""}, 7};
  auto newer = ingress("newer", 2);
  newer.default_backend = IngressBackend{ServiceBackend{"web", 80, ""}, 7};
  res_.ingresses = {newer, older};
  const auto t = run();
  ASSERT_TRUE(t.default_backend);
  EXPECT_EQ(t.default_backend->path, "/");
  EXPECT_EQ(t.default_backend->type, PathType::Prefix);
  EXPECT_EQ(t.default_backend->backends, std::vector<std::string>{"10.0.0.9:8080"});
  EXPECT_EQ(t.default_backend->policy->resource, "Ingress default/older");
  EXPECT_TRUE(t.routes.empty());
  EXPECT_NE(
      find("conflict: default backend claimed by Ingress default/older (kept) and default/newer (ignored)"),
      nullptr);
  EXPECT_EQ(t.stats.conflicts, 1u);
}

TEST_F(Translate, DefaultBackend_WithRulesServesTheRootOfHostsItDefinesFirst) {
  add_web_service();
  res_.services.push_back(service("fallback", {{"", 8080, ""}}));
  res_.endpoint_slices.push_back(slice("fb", "fallback", "IPv4", {{"", 8080}}, {{{"10.0.0.9"}, true}}));
  auto first = ingress("first", 1,
                       {{"mine.example", {path("/api", PathType::Prefix, "web", 80)}, 1},
                        {"rooted.example", {path("/api", PathType::Prefix, "web", 80)}, 2},
                        {"theirs.example", {path("/api", PathType::Prefix, "web", 80)}, 3}});
  first.default_backend = IngressBackend{ServiceBackend{"fallback", 8080, ""}, 9};
  auto earlier = ingress("earlier", 0, {{"theirs.example", {path("/x", PathType::Prefix, "web", 80)}, 1}});
  auto later = ingress("later", 2, {{"rooted.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  res_.ingresses = {first, earlier, later};
  const auto t = run();
  EXPECT_FALSE(t.default_backend);  // it has rules: not the catch-all
  // earlier(theirs /x), first(mine /api, rooted /api, theirs /api), later(rooted /), then mine's root.
  ASSERT_EQ(t.routes.size(), 6u);
  const auto& root = t.routes.back();
  EXPECT_EQ(root.host, "mine.example");
  ASSERT_EQ(root.paths.size(), 1u);
  EXPECT_EQ(root.paths[0].path, "/");
  EXPECT_EQ(root.paths[0].backends, std::vector<std::string>{"10.0.0.9:8080"});
  EXPECT_EQ(root.paths[0].policy->resource, "Ingress default/first");
  EXPECT_NE(find("not used for host theirs.example: Ingress default/earlier defines that host first"),
            nullptr);
  EXPECT_EQ(t.stats.conflicts, 0u);
}

TEST_F(Translate, Tls_SecretBecomesCertificateWithHostsSharedSecretsMerged) {
  add_web_service();
  res_.secrets.push_back(tls_secret("site-tls"));
  auto a = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  a.tls = {{{"A.Example"}, "site-tls", 3}};
  auto b = ingress("b", 2, {{"b.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  b.tls = {{{"b.example", "a.example"}, "site-tls", 3}};
  res_.ingresses = {a, b};
  const auto t = run();
  EXPECT_TRUE(diag_.entries().empty()) << diag_.to_string();
  ASSERT_EQ(t.certificates.size(), 1u);
  const auto& c = t.certificates[0];
  EXPECT_EQ(c.cert_pem, kPem);
  EXPECT_EQ(c.key_pem, kKeyPem);
  EXPECT_EQ(c.hosts, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(c.resource, "Secret default/site-tls");
  EXPECT_EQ(c.where.file, "cluster/secrets.yaml#0");
  EXPECT_TRUE(c.cert.empty());
  EXPECT_EQ(t.stats.certificates, 1u);
}

TEST_F(Translate, Tls_BadSecretsAreErrorsOtherHostsKeepWorking) {
  add_web_service();
  auto bad_base64 = tls_secret("bad64");
  bad_base64.problems = {"data.tls.crt"};
  res_.secrets = {tls_secret("good"), bad_base64,
                  secret("opaque", "Opaque", {{"tls.crt", kPem}, {"tls.key", kKeyPem}}),
                  secret("nokey", "kubernetes.io/tls", {{"tls.crt", kPem}}),
                  secret("notpem", "kubernetes.io/tls", {{"tls.crt", "garbage"}, {"tls.key", kKeyPem}})};
  auto ing = ingress("a", 1,
                     {{"good.example", {path("/", PathType::Prefix, "web", 80)}, 1},
                      {"missing.example", {path("/", PathType::Prefix, "web", 80)}, 2}});
  ing.tls = {{{"good.example"}, "good", 1}, {{"missing.example"}, "absent", 2}, {{"x.example"}, "bad64", 3},
             {{"y.example"}, "opaque", 4},  {{"z.example"}, "nokey", 5},        {{"w.example"}, "notpem", 6}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  ASSERT_EQ(t.certificates.size(), 1u);
  EXPECT_EQ(t.certificates[0].hosts, std::vector<std::string>{"good.example"});
  EXPECT_EQ(diag_.error_count(), 5u) << diag_.to_string();
  const auto* d = find("Secret default/absent not found: missing.example get the default certificate");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/a");
  EXPECT_EQ(d->field, "spec.tls[1].secretName");
  EXPECT_NE(find("Secret default/bad64 is invalid"), nullptr);
  EXPECT_NE(find("has type Opaque, not kubernetes.io/tls"), nullptr);
  EXPECT_NE(find("Secret default/nokey has no PEM tls.crt and tls.key"), nullptr);
  EXPECT_NE(find("Secret default/notpem has no PEM"), nullptr);
  // Not fail-closed: both hosts route, and both are TLS hosts (served with the default certificate).
  ASSERT_EQ(t.routes.size(), 2u);
  for (const auto& r : t.routes) {
    EXPECT_TRUE(r.paths.at(0).policy->fail_closed.empty());
    EXPECT_TRUE(r.paths.at(0).policy->tls_host);
  }
}

TEST_F(Translate, Tls_HostClaimedByTwoSecretsFirstKeepsIt) {
  res_.secrets = {tls_secret("one"), tls_secret("two")};
  auto a = ingress("a", 1);
  a.tls = {{{"h.example"}, "one", 1}};
  auto b = ingress("b", 2);
  b.tls = {{{"h.example", "only-b.example"}, "two", 1}};
  res_.ingresses = {b, a};
  const auto t = run();
  ASSERT_EQ(t.certificates.size(), 2u);
  EXPECT_EQ(t.certificates[0].hosts, std::vector<std::string>{"h.example"});
  EXPECT_EQ(t.certificates[1].hosts, std::vector<std::string>{"only-b.example"});
  EXPECT_NE(find("conflict: TLS host h.example claimed by Secret default/one (kept) and Secret default/two "
                 "(ignored)"),
            nullptr);
}

TEST_F(Translate, AuthTlsSecret_ResolvedIntoPolicyOrFailsClosed) {
  add_web_service();
  res_.secrets = {secret("ca", "Opaque", {{"ca.crt", kPem}, {"ca.crl", "-----BEGIN X509 CRL-----\n"}}),
                  secret("noca", "Opaque", {{"other", "x"}})};
  auto ok = ingress("ok", 1, {{"ok.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ok.meta.annotations = {{kN + "auth-tls-secret", "default/ca"}, {kN + "auth-tls-verify-depth", "2"}};
  auto missing = ingress("missing", 1, {{"missing.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  missing.meta.annotations = {{"phigate.io/auth-tls-secret", "absent"}};
  auto noca = ingress("noca", 1, {{"noca.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  noca.meta.annotations = {{kN + "auth-tls-secret", "noca"}};
  res_.ingresses = {ok, missing, noca};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 3u);
  const auto& p_missing = *t.routes[0].paths.at(0).policy;
  const auto& p_noca = *t.routes[1].paths.at(0).policy;
  const auto& p_ok = *t.routes[2].paths.at(0).policy;
  EXPECT_TRUE(p_ok.fail_closed.empty());
  EXPECT_EQ(p_ok.verify_client, config::VerifyClient::On);
  EXPECT_EQ(p_ok.auth_tls_ca_pem, kPem);
  EXPECT_EQ(p_ok.auth_tls_crl_pem, "-----BEGIN X509 CRL-----\n");
  EXPECT_EQ(p_ok.auth_tls_verify_depth, 2);
  EXPECT_EQ(p_missing.fail_closed, "auth-tls-secret default/absent: Secret not found");
  EXPECT_EQ(p_noca.fail_closed, "auth-tls-secret default/noca: Secret has no PEM ca.crt");
  const auto* d = find("Secret default/absent not found");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->field, "metadata.annotations.phigate.io/auth-tls-secret");
  EXPECT_EQ(t.stats.failed_closed, 2u);
}

// --- The policy chain: a policy attached to a rule or default backend is never skipped. ---

class TranslateHostTls : public Translate {
 protected:
  void SetUp() override {
    add_web_service();
    res_.secrets = {secret("ca", "Opaque", {{"ca.crt", kPem}}), secret("ca2", "Opaque", {{"ca.crt", kPem}})};
  }
  static Ingress on(Ingress ing, std::map<std::string, std::string> annotations) {
    ing.meta.annotations = std::move(annotations);
    ing.meta.annotations_line = 4;
    return ing;
  }
  static IngressRule rule(std::string host, std::string p = "/") {
    return {std::move(host), {path(std::move(p), PathType::Prefix, "web", 80)}, 1};
  }
  const config::RoutePolicy& policy_of(const Translation& t, const std::string& host, std::size_t i = 0) {
    std::size_t seen = 0;
    for (const auto& r : t.routes) {
      if (r.host == host && seen++ == i) return *r.paths.at(0).policy;
    }
    ADD_FAILURE() << "no route " << i << " for host '" << host << "'";
    static const config::RoutePolicy none;
    return none;
  }
};

TEST_F(TranslateHostTls, HostlessRuleWithAuthTls_FailsClosedNamingFileIngressAndAnnotation) {
  res_.ingresses = {on(ingress("open-all", 1, {rule("")}),
                       {{kN + "auth-tls-secret", "default/ca"}, {kN + "auth-tls-verify-client", "on"}})};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);  // still emitted: the catch-all stays claimed and answers 503
  EXPECT_EQ(t.routes[0].host, "");
  EXPECT_EQ(policy_of(t, "").fail_closed,
            "client-certificate/cipher settings on spec.rules[0], which has no host");
  const auto* d = find("spec.rules[0] has no host");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Error);
  EXPECT_EQ(d->file, "cluster/open-all.yaml#0");
  EXPECT_EQ(d->line, 4);
  EXPECT_EQ(d->resource, "Ingress default/open-all");
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "auth-tls-secret");
  EXPECT_EQ(t.stats.failed_closed, 1u);
}

TEST_F(TranslateHostTls, HostlessRuleNextToHostRule_WholeIngressFailsClosed) {
  // verify-client optional_no_ca needs no Secret; ssl-ciphers alone is a per-host setting too.
  res_.ingresses = {
      on(ingress("mixed", 1, {rule("a.example"), rule("")}),
         {{"phigate.io/auth-tls-verify-client", "optional_no_ca"}}),
      on(ingress("ciphers", 2, {rule("", "/c")}), {{kN + "ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"}})};
  const auto t = run();
  EXPECT_FALSE(policy_of(t, "a.example").fail_closed.empty());
  EXPECT_FALSE(policy_of(t, "").fail_closed.empty());
  EXPECT_FALSE(policy_of(t, "", 1).fail_closed.empty());
  EXPECT_EQ(diag_.error_count(), 2u) << diag_.to_string();
  ASSERT_NE(find("spec.rules[1] has no host"), nullptr);
  EXPECT_EQ(find("spec.rules[1] has no host")->field,
            "metadata.annotations.phigate.io/auth-tls-verify-client");
  ASSERT_NE(find("spec.rules[0] has no host"), nullptr);
  EXPECT_EQ(find("spec.rules[0] has no host")->field, "metadata.annotations." + kN + "ssl-ciphers");
}

TEST_F(TranslateHostTls, CatchAllDefaultBackendWithAuthTls_FailsClosed) {
  auto ing = on(ingress("fallback", 1), {{kN + "auth-tls-secret", "ca"}});
  ing.default_backend = IngressBackend{ServiceBackend{"web", 80, ""}, 7};
  res_.ingresses = {ing};
  const auto t = run();
  ASSERT_TRUE(t.default_backend);  // kept as the catch-all, answering 503
  EXPECT_EQ(t.default_backend->policy->fail_closed,
            "client-certificate/cipher settings on the catch-all spec.defaultBackend");
  const auto* d = find("spec.defaultBackend without rules is the catch-all");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/fallback");
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "auth-tls-secret");
}

TEST_F(TranslateHostTls, DefaultBackendNextToHostRules_ServesThoseHostsRootsUnderTheirPolicy) {
  // Fine: with rules, spec.defaultBackend is the root of this Ingress's own hosts, which carry the
  // per-host policy (the snapshot build compiles it for the host name).
  auto ing = on(ingress("rooted", 1, {rule("a.example", "/api")}), {{kN + "auth-tls-secret", "ca"}});
  ing.default_backend = IngressBackend{ServiceBackend{"web", 80, ""}, 7};
  res_.ingresses = {ing};
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_FALSE(t.default_backend);
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[1].host, "a.example");
  EXPECT_EQ(t.routes[1].paths.at(0).path, "/");
  EXPECT_EQ(t.routes[1].paths[0].policy->verify_client, config::VerifyClient::On);
  EXPECT_TRUE(t.routes[1].paths[0].policy->fail_closed.empty());
}

TEST_F(TranslateHostTls, AuthTlsWithSslRedirectFalse_FailsClosedNamingSslRedirect) {
  res_.ingresses = {on(ingress("plain", 1, {rule("a.example")}),
                       {{kN + "auth-tls-secret", "ca"}, {kN + "ssl-redirect", "false"}}),
                    // force-ssl-redirect still sends plain HTTP to HTTPS: nothing is served in the clear.
                    on(ingress("forced", 2, {rule("b.example")}), {{kN + "auth-tls-secret", "ca"},
                                                                   {kN + "ssl-redirect", "false"},
                                                                   {kN + "force-ssl-redirect", "true"}}),
                    // Plain HTTP without client certificates is the owner's choice.
                    on(ingress("open", 3, {rule("c.example")}), {{kN + "ssl-redirect", "false"}})};
  const auto t = run();
  EXPECT_EQ(policy_of(t, "a.example").fail_closed, "ssl-redirect \"false\" with client certificates");
  EXPECT_TRUE(policy_of(t, "b.example").fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "c.example").fail_closed.empty());
  EXPECT_EQ(diag_.error_count(), 1u) << diag_.to_string();
  const auto* d = find("plain HTTP (ssl-redirect \"false\") on an Ingress that verifies client certificates");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "ssl-redirect");
  EXPECT_EQ(d->resource, "Ingress default/plain");
}

TEST_F(TranslateHostTls, SharedHostPlainHttpFromAnotherIngress_FailsClosedThatPath) {
  // Host a.example requires client certificates (Ingress mtls); Ingress leak adds /public on the
  // same host with ssl-redirect "false": on the plain listener it would be served without one.
  res_.ingresses = {on(ingress("mtls", 1, {rule("a.example")}), {{kN + "auth-tls-secret", "ca"}}),
                    on(ingress("leak", 2, {rule("a.example", "/public")}), {{kN + "ssl-redirect", "false"}}),
                    on(ingress("elsewhere", 3, {rule("b.example")}), {{kN + "ssl-redirect", "false"}})};
  const auto t = run();
  EXPECT_TRUE(policy_of(t, "a.example").fail_closed.empty());
  EXPECT_EQ(policy_of(t, "a.example", 1).fail_closed,
            "plain HTTP on host a.example, which verifies client certificates");
  EXPECT_TRUE(policy_of(t, "b.example").fail_closed.empty());
  const auto* d = find("plain HTTP (ssl-redirect \"false\") on host a.example");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/leak");
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "ssl-redirect");
  EXPECT_NE(d->message.find("Ingress default/mtls"), std::string::npos);
  EXPECT_EQ(t.stats.failed_closed, 1u);
}

TEST_F(TranslateHostTls, SharedHostWithoutOwnSettings_KeepsTheHostsPolicy) {
  // Fine: the other Ingress's paths on a.example are served under the host's TLS policy (it is
  // chosen by host name, not by path), so nothing to fail.
  res_.ingresses = {on(ingress("mtls", 1, {rule("a.example")}), {{kN + "auth-tls-secret", "ca"}}),
                    ingress("more", 2, {rule("a.example", "/more")})};
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_TRUE(policy_of(t, "a.example", 1).fail_closed.empty());
  EXPECT_EQ(policy_of(t, "a.example", 1).verify_client, config::VerifyClient::Off);
}

TEST_F(TranslateHostTls, WildcardWithAuthTls_WeakerExactHostFailsClosedStricterOrSilentOnesStand) {
  res_.ingresses = {on(ingress("wild", 1, {rule("*.corp.example")}), {{kN + "auth-tls-secret", "ca"}}),
                    // No TLS settings: inherits the wildcard's rule (ServerContexts falls back to it).
                    ingress("plain-sub", 2, {rule("a.corp.example")}),
                    // Weaker: optional, or only ssl-ciphers (which would replace the wildcard's host policy).
                    on(ingress("optional-sub", 3, {rule("b.corp.example")}),
                       {{kN + "auth-tls-secret", "ca"}, {kN + "auth-tls-verify-client", "optional"}}),
                    on(ingress("ciphers-sub", 4, {rule("c.corp.example")}),
                       {{kN + "ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"}}),
                    // As strict, with another CA: the owner of that host chose it.
                    on(ingress("own-ca-sub", 5, {rule("d.corp.example")}), {{kN + "auth-tls-secret", "ca2"}}),
                    // Two labels deep: not covered by the wildcard (RFC 6125 §6.4.3, as the router and SNI).
                    on(ingress("deep", 6, {rule("x.y.corp.example")}),
                       {{kN + "ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256"}})};
  const auto t = run();
  EXPECT_TRUE(policy_of(t, "*.corp.example").fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "a.corp.example").fail_closed.empty());
  EXPECT_EQ(policy_of(t, "b.corp.example").fail_closed,
            "weaker client-certificate settings than *.corp.example");
  EXPECT_EQ(policy_of(t, "c.corp.example").fail_closed,
            "weaker client-certificate settings than *.corp.example");
  EXPECT_TRUE(policy_of(t, "d.corp.example").fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "x.y.corp.example").fail_closed.empty());
  EXPECT_EQ(diag_.error_count(), 2u) << diag_.to_string();
  const auto* d = find("host c.corp.example is covered by *.corp.example");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/ciphers-sub");
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "ssl-ciphers");
  EXPECT_EQ(t.stats.failed_closed, 2u);
}

TEST_F(TranslateHostTls, WildcardWithAuthTls_PlainHttpOnACoveredHostFailsClosed) {
  res_.ingresses = {on(ingress("wild", 1, {rule("*.corp.example")}), {{kN + "auth-tls-secret", "ca"}}),
                    on(ingress("plain-sub", 2, {rule("a.corp.example")}), {{kN + "ssl-redirect", "false"}})};
  const auto t = run();
  EXPECT_EQ(policy_of(t, "a.corp.example").fail_closed,
            "plain HTTP on host a.corp.example, which verifies client certificates");
}

TEST_F(TranslateHostTls, TlsOnlyHostWithAuthTls_WarnsThatTheSettingsFollowRules) {
  // Annotations follow rules (ingress-nginx): a spec.tls host without a rule in the Ingress gets the
  // certificate, not the client-certificate rule. Not silent: a warning names the host.
  auto ing =
      on(ingress("a", 1, {rule("a.example"), rule("w.wild.example")}), {{kN + "auth-tls-secret", "ca"}});
  ing.tls = {{{"a.example", "*.wild.example", "only-tls.example"}, "", 3}};
  res_.ingresses = {ing};
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  const auto* d = find("TLS host \"only-tls.example\" has no rule with paths in this Ingress");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_EQ(d->field, "spec.tls[0].hosts[2]");
  EXPECT_EQ(find("TLS host \"a.example\""), nullptr);
  EXPECT_EQ(find("TLS host \"*.wild.example\""), nullptr);  // used by w.wild.example
  EXPECT_TRUE(policy_of(t, "a.example").fail_closed.empty());
}

TEST_F(TranslateHostTls, RuleHostWithoutPaths_WarnsUnlessTheDefaultBackendServesIt) {
  auto bare =
      on(ingress("bare", 1, {rule("a.example"), {"empty.example", {}, 2}}), {{kN + "auth-tls-secret", "ca"}});
  res_.ingresses = {bare};
  run();
  const auto* d = find("rule for host empty.example has no paths");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  // With a defaultBackend the host's root is served, under the host's policy: no warning.
  bare.default_backend = IngressBackend{ServiceBackend{"web", 80, ""}, 7};
  res_.ingresses = {bare};
  const auto t = run();
  EXPECT_EQ(find("has no paths"), nullptr) << diag_.to_string();
  EXPECT_EQ(policy_of(t, "empty.example").verify_client, config::VerifyClient::On);
}

TEST_F(TranslateHostTls, InvalidIngressAskingForClientCertificates_OtherPathsOnItsHostFailClosed) {
  // Ingress "bad" asks for client certificates on a.example and *.w.example but is invalid, so no
  // host policy is compiled from it: the other Ingresses' paths there would be served open.
  const std::map<std::string, std::string> bad_annotations = {{kN + "auth-tls-secret", "ca"},
                                                              {kN + "proxy-body-size", "lots"}};
  res_.ingresses = {
      on(ingress("bad", 1, {rule("a.example"), rule("*.w.example"), rule("c.example")}), bad_annotations),
      ingress("more", 2, {rule("a.example", "/more")}), ingress("sub", 3, {rule("x.w.example")}),
      // Protected by a live rule at least as strict: stands.
      on(ingress("strict-sub", 4, {rule("y.w.example")}), {{kN + "auth-tls-secret", "ca2"}}),
      on(ingress("also-mtls", 5, {rule("c.example", "/c")}), {{kN + "auth-tls-secret", "ca"}}),
      ingress("c-more", 6, {rule("c.example", "/more")}),
      // Unrelated host.
      ingress("other", 7, {rule("b.example")})};
  const auto t = run();
  const std::string why_a = "client certificates asked for host a.example by invalid Ingress default/bad";
  EXPECT_EQ(policy_of(t, "a.example", 1).fail_closed, why_a);
  EXPECT_EQ(policy_of(t, "x.w.example").fail_closed,
            "client certificates asked for host x.w.example by invalid Ingress default/bad");
  EXPECT_TRUE(policy_of(t, "y.w.example").fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "c.example", 1).fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "c.example", 2).fail_closed.empty());
  EXPECT_TRUE(policy_of(t, "b.example").fail_closed.empty());
  const auto* d =
      find("host a.example: Ingress default/bad asks for client certificates there but is invalid");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/more");
  EXPECT_EQ(d->severity, config::Severity::Error);
}

TEST_F(TranslateHostTls, SourceRangesOnHostlessRuleAndCatchAll_KeptOnTheirPaths) {
  // Fine: source ranges are per path (the snapshot build compiles one list per policy and the
  // router's catch-all carries it), so a host-less rule and the default backend keep them.
  auto hostless = on(ingress("hostless", 1, {rule("")}), {{kN + "whitelist-source-range", "10.0.0.0/8"}});
  auto fallback = on(ingress("fallback", 2), {{kN + "denylist-source-range", "127.0.0.1"}});
  fallback.default_backend = IngressBackend{ServiceBackend{"web", 80, ""}, 7};
  res_.ingresses = {hostless, fallback};
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_EQ(policy_of(t, "").allow_source_ranges, std::vector<std::string>{"10.0.0.0/8"});
  ASSERT_TRUE(t.default_backend);
  EXPECT_EQ(t.default_backend->policy->deny_source_ranges, std::vector<std::string>{"127.0.0.1/32"});
}

TEST_F(Translate, ProxySslSecret_ResolvedIntoPolicyWithoutCaTheSystemStoreVerifies) {
  add_web_service();
  res_.secrets = {
      secret("client", "kubernetes.io/tls", {{"tls.crt", kPem}, {"tls.key", kKeyPem}, {"ca.crt", kPem}}),
      tls_secret("client-noca")};
  auto ok = ingress("ok", 1, {{"ok.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ok.meta.annotations = {{kN + "proxy-ssl-secret", "default/client"},
                         {kN + "proxy-ssl-verify", "on"},
                         {kN + "backend-protocol", "HTTPS"}};
  auto noca = ingress("noca", 2, {{"noca.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  noca.meta.annotations = {{kN + "proxy-ssl-secret", "client-noca"}, {kN + "proxy-ssl-verify", "on"}};
  res_.ingresses = {ok, noca};
  const auto t = run();
  const auto& p_ok = *t.routes.at(0).paths.at(0).policy;
  EXPECT_TRUE(p_ok.fail_closed.empty()) << diag_.to_string();
  EXPECT_EQ(p_ok.proxy_ssl_cert_pem, kPem);
  EXPECT_EQ(p_ok.proxy_ssl_key_pem, kKeyPem);
  EXPECT_EQ(p_ok.proxy_ssl_ca_pem, kPem);
  EXPECT_TRUE(p_ok.proxy_ssl_verify);
  // The default proxy-ssl-name: the Service's cluster DNS name.
  EXPECT_EQ(t.routes.at(0).paths.at(0).service_host, "web.default.svc");
  const auto& p_noca = *t.routes.at(1).paths.at(0).policy;
  EXPECT_TRUE(p_noca.fail_closed.empty()) << diag_.to_string();
  EXPECT_EQ(p_noca.proxy_ssl_cert_pem, kPem);
  EXPECT_TRUE(p_noca.proxy_ssl_ca_pem.empty());
}

TEST_F(Translate, DuplicateObjects_FirstWinsWithWarning) {
  res_.services.push_back(service("web", {{"http", 80, ""}}));
  res_.services.push_back(service("web", {{"http", 81, ""}}));
  res_.services.back().origin.file = "cluster/again.yaml";
  res_.ingresses.push_back(ingress("a", 1, {{"h", {path("/", PathType::Prefix, "web", 81)}, 1}}));
  const auto t = run();
  EXPECT_NE(find("duplicate Service (first defined in cluster/svc.yaml#0): this one is ignored"), nullptr);
  EXPECT_NE(find("has no port 81"), nullptr);
}

TEST_F(Translate, DuplicateIngressWithOtherAnnotations_FailsClosedNotFirstWins) {
  // The second definition carries auth-tls: keeping the first would drop it silently.
  add_web_service();
  res_.secrets = {secret("ca", "Opaque", {{"ca.crt", kPem}})};
  auto first = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto second = first;
  second.origin.file = "cluster/again.yaml";
  second.meta.annotations = {{kN + "auth-tls-secret", "ca"}};
  auto same = ingress("b", 1, {{"b.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto same_again = same;
  same_again.origin.file = "cluster/b-again.yaml";
  res_.ingresses = {first, second, same, same_again};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed, "duplicate definitions with other annotations");
  const auto* d = find("duplicate Ingress (first defined in cluster/a.yaml#0) with other annotations");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->file, "cluster/again.yaml#0");
  EXPECT_EQ(d->resource, "Ingress default/a");
  // Identical copies (the same manifest twice) only warn, and serve.
  EXPECT_TRUE(t.routes[1].paths.at(0).policy->fail_closed.empty());
  EXPECT_NE(find("duplicate Ingress (first defined in cluster/b.yaml#0): this one is ignored"), nullptr);
  EXPECT_EQ(diag_.error_count(), 1u) << diag_.to_string();
}

TEST_F(Translate, FixtureTree_LoadsAndTranslatesEndToEnd) {
  const auto loaded = load_directory(std::string(PHIGATE_FIXTURES_DIR) + "/tree");
  ASSERT_FALSE(loaded.diagnostics.has_errors()) << loaded.diagnostics.to_string();
  const auto t = translate(loaded.resources, spec_, diag_);
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_EQ(t.routes.size(), 1u);
  const auto& r = t.routes[0];
  EXPECT_EQ(r.host, "shop.example.com");
  ASSERT_EQ(r.paths.size(), 2u);
  EXPECT_EQ(r.paths[0].backends, (std::vector<std::string>{"10.244.1.7:8080", "[fd00::7]:8080"}));
  EXPECT_EQ(r.paths[1].path, "/api");
  EXPECT_EQ(r.paths[1].backends,
            std::vector<std::string>{"10.244.1.7:9443"});  // Service 8443 → targetPort admin
  EXPECT_TRUE(r.paths[0].policy->tls_host);
  EXPECT_EQ(r.paths[0].policy->body_size, 8u << 20);
  ASSERT_EQ(t.certificates.size(), 1u);
  EXPECT_EQ(t.certificates[0].resource, "Secret shop/shop-tls");
  EXPECT_EQ(t.certificates[0].hosts, std::vector<std::string>{"shop.example.com"});
}

/// 5,000 Ingresses × 2 hosts × 2 paths (10,000 hosts, 20,000 paths), 1,000 Services with slices, TLS.
Resources generate_large() {
  Resources res;
  constexpr int kIngresses = 5000;
  constexpr int kServices = 1000;
  for (int s = 0; s < kServices; ++s) {
    const auto ns = "ns" + std::to_string(s % 50);
    const auto name = "svc" + std::to_string(s);
    res.services.push_back(service(name, {{"http", 80, "8080"}}, ns));
    std::vector<Endpoint> eps;
    for (int e = 0; e < 3; ++e) {
      eps.push_back(
          {{"10." + std::to_string(s / 250) + "." + std::to_string(s % 250) + "." + std::to_string(e + 1)},
           e != 2});
    }
    res.endpoint_slices.push_back(slice(name + "-abc", name, "IPv4", {{"http", 8080}}, std::move(eps), ns));
    res.secrets.push_back(tls_secret(name + "-tls", ns));
  }
  for (int i = 0; i < kIngresses; ++i) {
    const int s = i % kServices;
    const auto ns = "ns" + std::to_string(s % 50);
    const auto svc = "svc" + std::to_string(s);
    std::vector<IngressRule> rules;
    for (int h = 0; h < 2; ++h) {
      rules.push_back({"host" + std::to_string(i) + "-" + std::to_string(h) + ".example.com",
                       {path("/", PathType::Prefix, svc, 80), path("/api", PathType::Exact, svc, 80)},
                       1});
    }
    auto ing = ingress("ing" + std::to_string(i), 1'700'000'000 + (i * 7919) % 100000, std::move(rules), ns);
    ing.meta.annotations = {{kN + "proxy-body-size", "16m"}, {kN + "whitelist-source-range", "10.0.0.0/8"}};
    ing.tls = {{{ing.rules[0].host, ing.rules[1].host}, svc + "-tls", 1}};
    res.ingresses.push_back(std::move(ing));
  }
  return res;
}

TEST_F(Translate, Large_5000Ingresses10000Hosts20000Paths) {
  res_ = generate_large();
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.entries().at(0).to_string();
  EXPECT_EQ(t.stats.used, 5000u);
  EXPECT_EQ(t.stats.routes, 10000u);
  EXPECT_EQ(t.stats.paths, 20000u);
  EXPECT_EQ(t.stats.conflicts, 0u);
  EXPECT_EQ(t.certificates.size(), 1000u);
  std::size_t cert_hosts = 0;
  for (const auto& c : t.certificates) cert_hosts += c.hosts.size();
  EXPECT_EQ(cert_hosts, 10000u);
  for (const auto& r : t.routes) {
    ASSERT_EQ(r.paths.size(), 2u);
    ASSERT_EQ(r.paths[0].backends.size(), 2u) << r.host;  // the third endpoint is not ready
    ASSERT_TRUE(r.paths[0].policy->tls_host);
  }
  // Precedence: creation times are non-decreasing along the route list.
  std::int64_t last = 0;
  for (std::size_t i = 0; i < t.routes.size(); i += 2) {
    const auto& resource = t.routes[i].paths[0].policy->resource;  // "Ingress nsX/ingN"
    const auto n = std::stoi(resource.substr(resource.find("/ing") + 4));
    const std::int64_t created = 1'700'000'000 + (n * 7919) % 100000;
    EXPECT_LE(last, created);
    last = created;
  }
}

TEST_F(Translate, EndpointSlice_TerminatingButServingEndpointsAreListedApart) {
  res_.services.push_back(service("web", {{"http", 80, "8080"}}));
  Endpoint ready{{"10.0.0.1"}, true};
  Endpoint draining{{"10.0.0.2"}, false};
  draining.serving = true;
  draining.terminating = true;
  Endpoint gone{{"10.0.0.3"}, false};
  gone.serving = false;
  gone.terminating = true;
  Endpoint not_ready{{"10.0.0.4"}, false};  // starting up: neither list
  // The same address ready in one slice and terminating in another (slices being replaced): ready.
  Endpoint both{{"10.0.0.5"}, false};
  both.terminating = true;
  res_.endpoint_slices.push_back(
      slice("web-1", "web", "IPv4", {{"http", 8080}}, {ready, draining, gone, not_ready, both}));
  res_.endpoint_slices.push_back(slice("web-2", "web", "IPv4", {{"http", 8080}}, {{{"10.0.0.5"}, true}}));
  res_.ingresses.push_back(ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}}));
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  const auto& p = t.routes[0].paths.at(0);
  EXPECT_EQ(p.backends, (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.5:8080"}));
  EXPECT_EQ(p.terminating_backends, std::vector<std::string>{"10.0.0.2:8080"});
}

// ingress-nginx canary: a second Ingress for the same host and path taking a share of the main
// one's traffic. It emits no route and claims nothing (whichever of the two is older): its paths
// attach to the main's path with the same host, path text and type.
TEST_F(Translate, Canary_AttachesToTheMainPathAndClaimsNothing) {
  add_web_service();
  res_.services.push_back(service("web-v2", {{"http", 80, "8080"}}));
  res_.endpoint_slices.push_back(
      slice("web-v2-1", "web-v2", "IPv4", {{"http", 8080}}, {{{"10.0.0.2"}, true}}));
  res_.secrets.push_back(tls_secret("canary-tls"));
  for (const std::int64_t canary_created : {0, 2}) {  // older than the main Ingress, then newer
    for (const auto& prefix : {kN, std::string("phigate.io/")}) {
      auto main =
          ingress("main", 1,
                  {{"app.example",
                    {path("/", PathType::Prefix, "web", 80), path("/api", PathType::Exact, "web", 80)},
                    1}});
      main.meta.annotations = {{kN + "whitelist-source-range", "10.0.0.0/8"}};
      auto canary =
          ingress("canary", canary_created,
                  {{"app.example",
                    {path("/", PathType::Prefix, "web-v2", 80), path("/api", PathType::Prefix, "web-v2", 80)},
                    1},
                   {"only-canary.example", {path("/", PathType::Prefix, "web-v2", 80)}, 2}});
      canary.meta.annotations = {
          {prefix + "canary", "true"}, {prefix + "canary-weight", "30"}, {prefix + "load-balance", "ewma"}};
      canary.default_backend = IngressBackend{ServiceBackend{"web-v2", 80, ""}, 5};
      canary.tls = {{{"app.example"}, "canary-tls", 6}};
      res_.ingresses = {canary, main};
      const auto t = run();
      const std::string what = prefix + " canary created at " + std::to_string(canary_created);
      EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
      ASSERT_EQ(t.routes.size(), 1u) << what;  // only-canary.example: no route
      EXPECT_EQ(t.routes[0].host, "app.example");
      ASSERT_EQ(t.routes[0].paths.size(), 2u);
      const auto& p = t.routes[0].paths[0];
      EXPECT_EQ(p.backends, std::vector<std::string>{"10.0.0.1:8080"}) << what;  // the main's Service
      ASSERT_TRUE(p.policy);
      EXPECT_EQ(p.policy->resource, "Ingress default/main");
      EXPECT_TRUE(p.policy->fail_closed.empty()) << what;
      ASSERT_TRUE(p.canary) << what;
      EXPECT_EQ(p.canary->backends, std::vector<std::string>{"10.0.0.2:8080"});
      // The main's policy (its source range) with the canary's balancing and rules.
      ASSERT_TRUE(p.canary->policy);
      EXPECT_EQ(p.canary->policy->resource, "Ingress default/canary");
      EXPECT_EQ(p.canary->policy->allow_source_ranges, std::vector<std::string>{"10.0.0.0/8"});
      EXPECT_EQ(p.canary->policy->load_balance, config::LoadBalance::Ewma);
      EXPECT_EQ(p.canary->policy->canary.weight, 30u);
      EXPECT_EQ(p.policy->load_balance, config::LoadBalance::RoundRobin);
      // Exact /api of the main and Prefix /api of the canary: another type, not attached.
      EXPECT_FALSE(t.routes[0].paths[1].canary) << what;
      EXPECT_NE(find("has no main path"), nullptr) << diag_.to_string();
      EXPECT_FALSE(t.default_backend) << what;
      EXPECT_TRUE(t.certificates.empty()) << what;
      EXPECT_EQ(t.stats.conflicts, 0u) << what;
      EXPECT_EQ(t.stats.failed_closed, 0u) << what;
      for (const auto& e : diag_.entries()) EXPECT_NE(e.resource, "Ingress default/main") << e.to_string();
    }
  }
}

TEST_F(Translate, Canary_SplitsOnlyItsPathWarnsWhereIngressNginxWouldSplitToo) {
  add_web_service();
  auto main = ingress("main", 1,
                      {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1},
                       {"admin.example", {path("/", PathType::Prefix, "web", 80)}, 2}});
  auto canary = ingress("canary", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  canary.meta.annotations = {{kN + "canary", "true"}, {kN + "canary-weight", "10"}};
  res_.ingresses = {main, canary};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_TRUE(t.routes[0].paths[0].canary);
  EXPECT_FALSE(t.routes[1].paths[0].canary);  // admin.example is not split
  const auto* d = find("ingress-nginx would also split admin.example /");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_EQ(d->resource, "Ingress default/canary");
}

TEST_F(Translate, Canary_NoMainGetsNoTrafficAndCreatesNoRoute) {
  add_web_service();
  auto canary = ingress("canary", 1, {{"app.example", {path("/admin", PathType::Prefix, "web", 80)}, 1}});
  canary.meta.annotations = {{kN + "canary", "true"}, {kN + "canary-weight", "100"}};
  auto main = ingress("main", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  res_.ingresses = {canary, main};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  ASSERT_EQ(t.routes[0].paths.size(), 1u);  // no /admin route from the canary
  EXPECT_FALSE(t.routes[0].paths[0].canary);
  const auto* d = find("has no main path");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Warning);
  EXPECT_EQ(d->resource, "Ingress default/canary");
  EXPECT_EQ(d->field, "spec.rules[0].http.paths[0]");
}

TEST_F(Translate, Canary_AnotherNamespaceIsRefusedUnlessAllowed) {
  add_web_service();
  add_web_service("evil");
  auto main = ingress("main", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto canary = ingress("steal", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}}, "evil");
  canary.meta.annotations = {{kN + "canary", "true"}, {kN + "canary-weight", "100"}};
  res_.ingresses = {canary, main};
  auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_FALSE(t.routes[0].paths[0].canary);
  EXPECT_TRUE(t.routes[0].paths[0].policy->fail_closed.empty());
  const auto* d = find("in another namespace");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Error);
  EXPECT_EQ(d->resource, "Ingress evil/steal");
  EXPECT_NE(d->message.find("ingress.canary_cross_namespace"), std::string::npos);
  spec_.canary_cross_namespace = true;
  t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_TRUE(t.routes[0].paths[0].canary);
}

TEST_F(Translate, Canary_SecondCanaryOnOnePathWarnsTheFirstKeepsIt) {
  add_web_service();
  auto main = ingress("main", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto c1 = ingress("c1", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto c2 = ingress("c2", 3, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  c1.meta.annotations = {{kN + "canary", "true"}, {kN + "canary-weight", "10"}};
  c2.meta.annotations = {{kN + "canary", "true"}, {kN + "canary-weight", "90"}};
  res_.ingresses = {c2, main, c1};
  const auto t = run();
  ASSERT_TRUE(t.routes.at(0).paths.at(0).canary);
  EXPECT_EQ(t.routes[0].paths[0].canary->policy->resource, "Ingress default/c1");
  const auto* d = find("already has canary");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->resource, "Ingress default/c2");
  EXPECT_EQ(d->severity, config::Severity::Warning);
}

TEST_F(Translate, Canary_InvalidOrAccessControlledCanaryIsDetachedMainUntouched) {
  add_web_service();
  const std::vector<std::map<std::string, std::string>> bad = {
      {{kN + "canary-weight", "lots"}},
      {{kN + "canary-by-header-pattern", "(a)\\1"}},
      {{kN + "whitelist-source-range", "0.0.0.0/0"}},
      {{kN + "auth-url", "https://auth.example/"}},
      {{kN + "denylist-source-range", "10.0.0.0/8"}},
  };
  for (auto a : bad) {
    a[kN + "canary"] = "true";
    a[kN + "canary-weight"] = a.count(kN + "canary-weight") ? a[kN + "canary-weight"] : "100";
    auto main = ingress("main", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
    auto canary = ingress("canary", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
    canary.meta.annotations = a;
    res_.ingresses = {canary, main};
    const auto t = run();
    const auto what = a.begin()->first;
    ASSERT_EQ(t.routes.size(), 1u) << what;
    EXPECT_FALSE(t.routes[0].paths[0].canary) << what;
    EXPECT_TRUE(t.routes[0].paths[0].policy->fail_closed.empty()) << what;
    EXPECT_EQ(t.stats.failed_closed, 1u) << what;
    EXPECT_TRUE(diag_.has_errors()) << what;
    for (const auto& e : diag_.entries()) EXPECT_NE(e.resource, "Ingress default/main") << e.to_string();
  }
}

TEST_F(Translate, Canary_OtherAnnotationsAreIgnoredWithAWarning) {
  add_web_service();
  auto main = ingress("main", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto canary = ingress("canary", 2, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  canary.meta.annotations = {{kN + "canary", "true"},
                             {kN + "canary-weight", "5"},
                             {kN + "canary-weight-total", "50"},
                             {kN + "proxy-read-timeout", "5"},
                             {kN + "ssl-redirect", "false"}};
  res_.ingresses = {main, canary};
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_TRUE(t.routes[0].paths[0].canary);
  const auto& pol = *t.routes[0].paths[0].canary->policy;
  EXPECT_FALSE(pol.read_timeout);  // the main's (none), not the canary's
  EXPECT_TRUE(pol.ssl_redirect);
  std::size_t ignored = 0;
  for (const auto& e : diag_.entries())
    ignored += e.message.find("ignored on a canary Ingress") != std::string::npos;
  EXPECT_EQ(ignored, 2u) << diag_.to_string();
  EXPECT_NE(find("below 100 is read as 100"), nullptr) << diag_.to_string();
}

TEST_F(Translate, CanaryFalse_IsAnOrdinaryIngressItsCanaryAnnotationsWarn) {
  add_web_service();
  auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "canary", "false"}, {kN + "canary-weight", "x"}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_TRUE(t.routes[0].paths.at(0).policy->fail_closed.empty());
  EXPECT_FALSE(t.routes[0].paths.at(0).canary);
  const auto* d = find("no effect");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->field, "metadata.annotations." + kN + "canary-weight");
}

TEST_F(Translate, DuplicateCanaryDefinitions_NotAttachedMainUntouched) {
  add_web_service();
  auto main = ingress("main", 2, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  auto canary = ingress("c", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  canary.meta.annotations = {{kN + "canary", "true"}};
  auto again = canary;
  again.origin.file = "cluster/again.yaml";
  again.meta.annotations[kN + "canary-weight"] = "5";
  res_.ingresses = {canary, again, main};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].paths.at(0).policy->resource, "Ingress default/main");
  EXPECT_TRUE(t.routes[0].paths.at(0).policy->fail_closed.empty());
  EXPECT_FALSE(t.routes[0].paths.at(0).canary);
}

TEST_F(Translate, RateLimit_OnEveryPathAndInvalidFailsClosedNamingTheAnnotation) {
  add_web_service();
  auto ing = ingress(
      "a", 1,
      {{"a.example", {path("/", PathType::Prefix, "web", 80), path("/b", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "limit-rps", "10"}};
  res_.ingresses.push_back(ing);
  const auto limited = run();
  ASSERT_EQ(limited.routes.size(), 1u);
  for (const auto& p : limited.routes[0].paths) {
    EXPECT_EQ(p.policy->rate_limit.rps, 10u);
    EXPECT_TRUE(p.policy->fail_closed.empty());
  }
  res_.ingresses[0].meta.annotations = {{kN + "limit-rps", "10/s"}};
  const auto t = run();
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].paths.at(0).policy->fail_closed,
            "invalid annotation nginx.ingress.kubernetes.io/limit-rps=\"10/s\"");
  EXPECT_EQ(t.stats.failed_closed, 1u);
  ASSERT_EQ(diag_.error_count(), 1u) << diag_.to_string();
  const auto& d = diag_.entries().at(0);
  EXPECT_EQ(d.field, "metadata.annotations.nginx.ingress.kubernetes.io/limit-rps");
  EXPECT_EQ(d.resource, "Ingress default/a");
  // limit-rate (bandwidth) is served; a bad value fails closed.
  res_.ingresses[0].meta.annotations = {{kN + "limit-rate", "100"}};
  const auto bandwidth = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_TRUE(bandwidth.routes.at(0).paths.at(0).policy->fail_closed.empty());
  EXPECT_EQ(bandwidth.routes.at(0).paths.at(0).policy->rate_limit.rate_kib,
            std::optional<std::uint32_t>(100));
  res_.ingresses[0].meta.annotations = {{kN + "limit-rate", "100k"}};
  EXPECT_FALSE(run().routes.at(0).paths.at(0).policy->fail_closed.empty());
}

// --- use-regex / rewrite-target (regex paths) ---

TEST_F(Translate, RegexPath_QuestionMarkAllowedOnlyWithRegex) {
  add_web_service();
  auto ing =
      ingress("a", 1, {{"a.example", {path("/foo/?(.*)", PathType::ImplementationSpecific, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "use-regex", "true"}};
  res_.ingresses.push_back(ing);
  auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_TRUE(t.routes.at(0).paths.at(0).policy->fail_closed.empty());
  // The same path without use-regex: refused, as before.
  res_.ingresses[0].meta.annotations.clear();
  t = run();
  EXPECT_TRUE(diag_.has_errors());
  EXPECT_FALSE(t.routes.at(0).paths.at(0).policy->fail_closed.empty());
  // rewrite-target implies regex.
  res_.ingresses[0].meta.annotations = {{kN + "rewrite-target", "/$1"}};
  t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
}

TEST_F(Translate, RegexPath_InvalidRe2FailsClosedNamingIngressAndField) {
  add_web_service();
  for (const char* bad : {"/(a)\\1", "/(?=x)", "/a++", "/(((a{100}){100}){100})"}) {
    res_.ingresses.clear();
    auto ing = ingress(
        "a", 1,
        {{"a.example",
          {path("/ok", PathType::Prefix, "web", 80), path(bad, PathType::ImplementationSpecific, "web", 80)},
          1}});
    ing.meta.annotations = {{kN + "use-regex", "true"}};
    res_.ingresses.push_back(ing);
    const auto t = run();
    ASSERT_EQ(diag_.error_count(), 1u) << bad << diag_.to_string();
    const auto& d = diag_.entries().at(0);
    EXPECT_EQ(d.resource, "Ingress default/a");
    EXPECT_EQ(d.field, "spec.rules[0].http.paths[1].path") << bad;
    EXPECT_NE(d.message.find("RE2"), std::string::npos) << d.message;
    // The whole Ingress fails closed; its paths are still emitted (and claimed): 503 there.
    EXPECT_FALSE(t.routes.at(0).paths.at(0).policy->fail_closed.empty()) << bad;
    EXPECT_EQ(t.routes.at(0).paths.size(), 2u);
  }
}

TEST_F(Translate, RegexPath_ClaimedByTextNotAsPrefix) {
  add_web_service();
  // "/api" (Prefix) and the regex "/api/" are different claims: no conflict.
  auto a = ingress("a", 1, {{"a.example", {path("/api", PathType::Prefix, "web", 80)}, 1}});
  auto b = ingress("b", 2, {{"a.example", {path("/api/", PathType::ImplementationSpecific, "web", 80)}, 1}});
  b.meta.annotations = {{kN + "use-regex", "true"}};
  auto c = ingress("c", 3, {{"a.example", {path("/api/", PathType::Prefix, "web", 80)}, 1}});
  c.meta.annotations = {{kN + "use-regex", "true"}};
  res_.ingresses = {a, b, c};
  const auto t = run();
  EXPECT_EQ(t.stats.conflicts, 1u) << diag_.to_string();  // b and c: the same regex text
  EXPECT_NE(find("claimed by Ingress default/b (kept) and default/c"), nullptr) << diag_.to_string();
}

// Another namespace's Ingress joins a host with a regex one path longer than the owner's
// ("/records/" sorts before "/records"), to take its requests: refused unless allowed.
TEST_F(Translate, RegexPath_OnAnotherNamespacesHostNotServed) {
  add_web_service();
  auto a = ingress("a", 1, {{"ehr.example", {path("/records", PathType::Prefix, "web", 80)}, 1}});
  a.meta.annotations = {{kN + "whitelist-source-range", "10.0.0.0/8"}};
  auto b = ingress("b", 2,
                   {{"ehr.example", {path("/records/", PathType::ImplementationSpecific, "web", 80)}, 1},
                    {"b.example", {path("/b/.*", PathType::ImplementationSpecific, "web", 80)}, 2}},
                   "other");
  b.meta.annotations = {{kN + "use-regex", "true"}};
  auto c =
      ingress("c", 3, {{"ehr.example", {path("/more/.*", PathType::ImplementationSpecific, "web", 80)}, 1}});
  c.meta.annotations = {{kN + "use-regex", "true"}};  // same namespace as the host's owner: served
  res_.ingresses = {a, b, c};
  const auto hosts_of = [](const Translation& t, const std::string& resource) {
    std::vector<std::string> out;
    for (const auto& r : t.routes) {
      for (const auto& p : r.paths) {
        if (p.policy != nullptr && p.policy->resource == resource) out.push_back(r.host + p.path);
      }
    }
    return out;
  };
  auto t = run();
  const auto* d = find("which an Ingress of namespace default already serves");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->severity, config::Severity::Error);
  EXPECT_EQ(d->resource, "Ingress other/b");
  EXPECT_EQ(hosts_of(t, "Ingress other/b"), std::vector<std::string>{"b.example/b/.*"});
  EXPECT_EQ(hosts_of(t, "Ingress default/c"), std::vector<std::string>{"ehr.example/more/.*"});
  // Allowed explicitly: served.
  diag_ = config::Diagnostics{};
  spec_.regex_cross_namespace = true;
  t = run();
  EXPECT_EQ(find("which an Ingress of namespace default already serves"), nullptr) << diag_.to_string();
  EXPECT_EQ(hosts_of(t, "Ingress other/b"),
            (std::vector<std::string>{"ehr.example/records/", "b.example/b/.*"}));
}

TEST_F(Translate, RewriteReferenceBeyondGroupsWarns) {
  add_web_service();
  auto ing =
      ingress("a", 1, {{"a.example", {path("/a/(.*)", PathType::ImplementationSpecific, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "rewrite-target", "/$3"}};
  res_.ingresses.push_back(ing);
  run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_NE(find("refers to $3"), nullptr) << diag_.to_string();
}

TEST_F(Translate, AppRootConflictOnOneHostWarns) {
  add_web_service();
  auto a = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  a.meta.annotations = {{kN + "app-root", "/one"}};
  auto b = ingress("b", 2, {{"a.example", {path("/b", PathType::Prefix, "web", 80)}, 1}});
  b.meta.annotations = {{kN + "app-root", "/two"}};
  res_.ingresses = {b, a};
  const auto t = run();
  EXPECT_EQ(t.stats.conflicts, 1u) << diag_.to_string();
  EXPECT_NE(find("app-root of host a.example set to \"/one\" by Ingress default/a and \"/two\" by default/b: "
                 "only the Ingress serving \"/\" of the host redirects it"),
            nullptr)
      << diag_.to_string();
}

TEST_F(Translate, ForwardedPrefixWithoutRewriteWarns) {
  add_web_service();
  auto ing = ingress("a", 1, {{"a.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "x-forwarded-prefix", "/x"}};
  res_.ingresses.push_back(ing);
  run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_NE(find("has no effect without rewrite-target"), nullptr) << diag_.to_string();
}

}  // namespace
}  // namespace phigate::ingress

namespace phigate::ingress {
namespace {

// default-backend: a Service of the Ingress's namespace, its first port, becomes every rule path's
// error backend (plain HTTP, one try); each path names its own Service and port for X-Service-*.
TEST_F(Translate, DefaultBackend_ResolvedToFirstPortAsEveryPathsErrorBackend) {
  add_web_service();
  res_.services.push_back(service("errors", {{"http", 8080, "9000"}, {"other", 81, "9001"}}));
  res_.endpoint_slices.push_back(
      slice("errors-1", "errors", "IPv4", {{"http", 9000}, {"other", 9001}}, {{{"10.0.0.9"}, true}}));
  auto ing = ingress(
      "a", 1,
      {{"app.example", {path("/", PathType::Prefix, "web", 80), path("/b", PathType::Exact, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "default-backend", "errors"}, {kN + "custom-http-errors", "404"}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  ASSERT_EQ(t.routes.size(), 1u);
  for (const auto& p : t.routes[0].paths) {
    ASSERT_NE(p.error_backend, nullptr);
    EXPECT_EQ(p.error_backend->backends, std::vector<std::string>{"10.0.0.9:9000"});
    EXPECT_EQ(p.error_backend->service_name, "errors");
    EXPECT_EQ(p.error_backend->service_port, "8080");
    ASSERT_NE(p.error_backend->policy, nullptr);
    EXPECT_EQ(p.error_backend->policy->backend_protocol, config::BackendProtocol::Http);
    EXPECT_TRUE(p.error_backend->policy->custom_http_errors.empty());
    EXPECT_EQ(p.service_name, "web");
    EXPECT_EQ(p.service_port, "80");
  }
}

// A Service of another namespace is never found (the annotation has no namespace part), and a
// missing one is an error on the annotation that leaves the error backend without endpoints: the
// Ingress is still served (an error page is no access control), its pages are phigate's own.
TEST_F(Translate, DefaultBackend_MissingServiceIsAnErrorWithoutEndpoints) {
  add_web_service();
  res_.services.push_back(service("errors", {{"http", 80, "9000"}}, "other"));
  auto ing = ingress("a", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "default-backend", "errors"}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  const auto* d = find("Service default/errors not found");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_NE(d->field.find("default-backend"), std::string::npos);
  ASSERT_EQ(t.routes.size(), 1u);
  ASSERT_NE(t.routes[0].paths[0].error_backend, nullptr);
  EXPECT_TRUE(t.routes[0].paths[0].error_backend->backends.empty());
  EXPECT_TRUE(t.routes[0].paths[0].policy->fail_closed.empty());
}

// The error backend is plain HTTP and may receive the original request: a route reached over TLS
// (backend-protocol HTTPS or GRPCS) never gets one, so no request of it leaves in clear.
TEST_F(Translate, DefaultBackend_NotUsedWhenTheBackendsAreReachedOverTls) {
  add_web_service();
  res_.services.push_back(service("errors", {{"http", 8080, "9000"}}));
  res_.endpoint_slices.push_back(
      slice("errors-1", "errors", "IPv4", {{"http", 9000}}, {{{"10.0.0.9"}, true}}));
  for (const char* proto : {"HTTPS", "GRPCS"}) {
    auto ing = ingress("a", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
    ing.meta.annotations = {{kN + "default-backend", "errors"},
                            {kN + "custom-http-errors", "503"},
                            {kN + "backend-protocol", proto}};
    res_.ingresses = {ing};
    const auto t = run();
    ASSERT_EQ(t.routes.size(), 1u) << proto;
    EXPECT_EQ(t.routes[0].paths[0].error_backend, nullptr) << proto;
    EXPECT_NE(find("the error backend would be plain HTTP"), nullptr) << proto << diag_.to_string();
  }
}

TEST_F(Translate, ConnectionProxyHeaderCloseWarnsAboutWebSockets) {
  add_web_service();
  auto ing = ingress("a", 1, {{"app.example", {path("/", PathType::Prefix, "web", 80)}, 1}});
  ing.meta.annotations = {{kN + "connection-proxy-header", "close"}};
  res_.ingresses.push_back(ing);
  const auto t = run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  EXPECT_NE(find("not applied to WebSocket upgrades"), nullptr) << diag_.to_string();
  EXPECT_TRUE(t.routes.at(0).paths.at(0).policy->connection_close);
}

}  // namespace
}  // namespace phigate::ingress
