// custom-headers and phigate.io/proxy-set-headers: ConfigMaps resolved by translate (same
// namespace only, names allowlisted and deny-listed, literal values), and the references the kube
// provider follows.
#include <gtest/gtest.h>

#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"

namespace phigate::ingress {
namespace {

using config::PathType;

const std::string kN = "nginx.ingress.kubernetes.io/";
const std::string kP = "phigate.io/";

Ingress ingress(std::string name, std::string host, std::map<std::string, std::string> annotations,
                std::string ns = "default") {
  Ingress i;
  i.origin = {"cluster/" + name + ".yaml", 0, -1, 1};
  i.meta.name = std::move(name);
  i.meta.ns = std::move(ns);
  i.meta.created = 1;
  i.meta.annotations = std::move(annotations);
  i.class_name = "phigate";
  IngressPath p;
  p.path = "/";
  p.type = PathType::Prefix;
  p.backend.service = ServiceBackend{"web", 80, ""};
  i.rules = {{std::move(host), {p}, 1}};
  return i;
}

ConfigMap config_map(std::string name, std::map<std::string, std::string> data, std::string ns = "default") {
  ConfigMap m;
  m.origin = {"cluster/maps.yaml", 0, -1, 1};
  m.meta.name = std::move(name);
  m.meta.ns = std::move(ns);
  m.data = std::move(data);
  return m;
}

class TranslateHeaders : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string ns : {"default", "team-a"}) {
      Service s;
      s.origin = {"cluster/svc.yaml", 0, -1, 1};
      s.meta.name = "web";
      s.meta.ns = ns;
      s.ports = {{"http", 80, "8080"}};
      res_.services.push_back(s);
      EndpointSlice e;
      e.origin = {"cluster/slices.yaml", 0, -1, 1};
      e.meta.name = "web-1";
      e.meta.ns = ns;
      e.service_name = "web";
      e.address_type = "IPv4";
      e.ports = {{"http", 8080}};
      e.endpoints = {{{"10.0.0.1"}, true}};
      res_.endpoint_slices.push_back(e);
    }
    spec_.allowed_response_headers = {
        "x-frame-options", "x-team", "set-cookie", "strict-transport-security", "access-control-allow-origin",
        "content-length"};
  }
  /// The policy of the route for `host` (the only Ingress serving it).
  const config::RoutePolicy& policy(const std::string& host) {
    for (const auto& r : t_.routes) {
      if (r.host == host) return *r.paths.at(0).policy;
    }
    ADD_FAILURE() << "no route for " << host;
    static const config::RoutePolicy none;
    return none;
  }
  void run() {
    diag_ = {};
    t_ = translate(res_, spec_, diag_);
  }
  const config::Diagnostic* find(std::string_view text) const {
    for (const auto& d : diag_.entries()) {
      if (d.message.find(text) != std::string::npos) return &d;
    }
    return nullptr;
  }
  /// One Ingress (host h.example) with `annotations`, translated; its fail_closed reason.
  std::string fail_of(std::map<std::string, std::string> annotations, const std::string& ns = "default") {
    res_.ingresses = {ingress("ing", "h.example", std::move(annotations), ns)};
    run();
    return policy("h.example").fail_closed;
  }

  Resources res_;
  config::IngressSpec spec_;
  config::Diagnostics diag_;
  Translation t_;
};

TEST_F(TranslateHeaders, CustomHeadersRenderedWhenAllowed) {
  res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", "DENY"}, {"X-Team", "web shop"}})};
  res_.ingresses = {ingress("ing", "h.example", {{kN + "custom-headers", "default/hdrs"}})};
  run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  const auto& p = policy("h.example");
  EXPECT_TRUE(p.fail_closed.empty()) << p.fail_closed;
  EXPECT_EQ(p.headers.custom_headers_ref, "default/hdrs");
  EXPECT_EQ(p.headers.response_fields, "X-Frame-Options: DENY\r\nX-Team: web shop\r\n");
  EXPECT_TRUE(p.headers.request_fields.empty());
}

TEST_F(TranslateHeaders, CustomHeadersNameWithoutNamespaceIsTheIngresss) {
  res_.config_maps = {config_map("hdrs", {{"X-Team", "a"}}, "team-a")};
  EXPECT_EQ(fail_of({{kP + "custom-headers", "hdrs"}}, "team-a"), "");
  EXPECT_EQ(policy("h.example").headers.response_fields, "X-Team: a\r\n");
}

TEST_F(TranslateHeaders, MissingConfigMapFailsClosed) {
  EXPECT_EQ(fail_of({{kN + "custom-headers", "default/absent"}}),
            "custom-headers default/absent: ConfigMap not found");
  const auto* d = find("ConfigMap default/absent not found");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->field, "metadata.annotations.nginx.ingress.kubernetes.io/custom-headers");
  EXPECT_EQ(d->resource, "Ingress default/ing");
  EXPECT_TRUE(policy("h.example").headers.response_fields.empty());
}

TEST_F(TranslateHeaders, AttackerReferencesAnotherNamespacesConfigMap) {
  // An Ingress author in namespace default names team-a's ConfigMap: refused (fail closed) even
  // though the ConfigMap exists and its headers are allowed; neither side is followed.
  res_.config_maps = {config_map("hdrs", {{"X-Team", "a"}}, "team-a")};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "team-a/hdrs"}}),
            "invalid annotation nginx.ingress.kubernetes.io/custom-headers=\"team-a/hdrs\"");
  const auto* d = find("must name a ConfigMap in the Ingress's own namespace");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->field, "metadata.annotations.nginx.ingress.kubernetes.io/custom-headers");
  EXPECT_EQ(d->resource, "Ingress default/ing");
  EXPECT_TRUE(policy("h.example").headers.response_fields.empty());
  EXPECT_EQ(fail_of({{kP + "proxy-set-headers", "team-a/hdrs"}}),
            "invalid annotation phigate.io/proxy-set-headers=\"team-a/hdrs\"");
  EXPECT_TRUE(referenced_config_maps(res_.ingresses[0]).empty());
}

TEST_F(TranslateHeaders, UnlistedHeaderFailsClosed) {
  res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", "DENY"}, {"X-Other", "1"}})};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
            "custom-headers default/hdrs: ConfigMap data.X-Other is not listed in "
            "ingress.allowed_response_headers");
  EXPECT_TRUE(policy("h.example").headers.response_fields.empty());
  // The allowlist is empty by default: custom-headers then sets nothing, and fails closed.
  spec_.allowed_response_headers.clear();
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
            "custom-headers default/hdrs: ConfigMap data.X-Frame-Options is not listed in "
            "ingress.allowed_response_headers");
}

TEST_F(TranslateHeaders, AttackerOverwritesOwnedResponseHeaders) {
  // Allowed by the operator, still refused: phigate owns cookies, HSTS, CORS and framing.
  for (const auto& [name, owner] : std::vector<std::pair<std::string, std::string>>{
           {"Set-Cookie", "set-cookie"},
           {"strict-transport-security", "strict-transport-security"},
           {"Access-Control-Allow-Origin", "access-control-*"},
           {"Content-Length", "content-length"}}) {
    res_.config_maps = {config_map("hdrs", {{name, "x"}})};
    EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}), "custom-headers default/hdrs: ConfigMap data." +
                                                              name + " is a field phigate owns (" + owner +
                                                              "): never set from a ConfigMap");
  }
}

TEST_F(TranslateHeaders, AttackerInjectsLinesThroughValues) {
  for (const auto& v :
       std::vector<std::string>{"DENY\r\nSet-Cookie: session=evil", "a\nb", std::string("a\0b", 3)}) {
    res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", v}})};
    EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
              "custom-headers default/hdrs: ConfigMap data.X-Frame-Options has a value with CR, LF or NUL");
    EXPECT_TRUE(policy("h.example").headers.response_fields.empty());
  }
  res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", "DENY\n"}})};  // a YAML "|" block
  EXPECT_NE(fail_of({{kN + "custom-headers", "hdrs"}}), "");
  res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", ""}})};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
            "custom-headers default/hdrs: ConfigMap data.X-Frame-Options has an empty value");
  res_.config_maps = {config_map("hdrs", {{"Bad Name", "1"}})};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
            "custom-headers default/hdrs: ConfigMap data.Bad Name is not a header name (an RFC 9110 token of "
            "at most 256 characters)");
  res_.config_maps = {config_map("hdrs", {{"X-Frame-Options", std::string(4097, 'a')}})};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}),
            "custom-headers default/hdrs: ConfigMap data.X-Frame-Options has a value over 4096 bytes");
}

TEST_F(TranslateHeaders, InvalidConfigMapFailsClosed) {
  auto m = config_map("hdrs", {{"X-Team", "a"}});
  m.problems = {"data"};
  res_.config_maps = {m};
  EXPECT_EQ(fail_of({{kN + "custom-headers", "hdrs"}}), "custom-headers default/hdrs: ConfigMap is invalid");
}

TEST_F(TranslateHeaders, ProxySetHeadersRendered) {
  res_.config_maps = {config_map("up", {{"X-Env", "prod"}, {"X-Tenant", "shop"}})};
  res_.ingresses = {ingress("ing", "h.example", {{kP + "proxy-set-headers", "up"}})};
  run();
  EXPECT_FALSE(diag_.has_errors()) << diag_.to_string();
  const auto& p = policy("h.example");
  EXPECT_TRUE(p.fail_closed.empty()) << p.fail_closed;
  EXPECT_EQ(p.headers.request_fields, "X-Env: prod\r\nX-Tenant: shop\r\n");
  // No allowlist on the request side.
  EXPECT_TRUE(p.headers.response_fields.empty());
}

TEST_F(TranslateHeaders, ProxySetHeadersRefusesVariables) {
  res_.config_maps = {config_map("up", {{"X-Client", "$remote_addr"}})};
  EXPECT_EQ(
      fail_of({{kP + "proxy-set-headers", "up"}}),
      "proxy-set-headers default/up: ConfigMap data.X-Client has a value with '$' (nginx variables are not "
      "supported: values are static)");
  const auto* d = find("ConfigMap default/up data.X-Client has a value with '$'");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->field, "metadata.annotations.phigate.io/proxy-set-headers");
}

TEST_F(TranslateHeaders, AttackerSetsTrustedRequestHeaders) {
  // What the backend trusts to come from phigate: forwarding, client certificate, request id,
  // Host and framing; and the client's credentials.
  for (const auto& [name, owner] :
       std::vector<std::pair<std::string, std::string>>{{"X-Forwarded-For", "x-forwarded-*"},
                                                        {"x-forwarded-proto", "x-forwarded-*"},
                                                        {"Forwarded", "forwarded"},
                                                        {"X-Real-IP", "x-real-ip"},
                                                        {"X-Request-Id", "x-request-id"},
                                                        {"ssl-client-verify", "ssl-client-*"},
                                                        {"SSL-Client-Subject-DN", "ssl-client-*"},
                                                        {"Host", "host"},
                                                        {"Transfer-Encoding", "transfer-encoding"},
                                                        {"Content-Length", "content-length"},
                                                        {"Connection", "connection"},
                                                        {"Upgrade", "upgrade"},
                                                        {"TE", "te"},
                                                        {"X-Original-URL", "x-original-*"},
                                                        {"Authorization", "authorization"},
                                                        {"Cookie", "cookie"}}) {
    res_.config_maps = {config_map("up", {{name, "x"}})};
    EXPECT_EQ(fail_of({{kP + "proxy-set-headers", "up"}}), "proxy-set-headers default/up: ConfigMap data." +
                                                               name + " is a field phigate owns (" + owner +
                                                               "): never set from a ConfigMap");
    EXPECT_TRUE(policy("h.example").headers.request_fields.empty());
  }
}

TEST_F(TranslateHeaders, TooManyEntries) {
  std::map<std::string, std::string> data;
  for (int i = 0; i < 65; ++i) data["X-H" + std::to_string(i)] = "v";
  res_.config_maps = {config_map("up", data)};
  EXPECT_EQ(fail_of({{kP + "proxy-set-headers", "up"}}),
            "proxy-set-headers default/up: ConfigMap has more than 64 entries");
}

TEST(ReferencedConfigMaps, SameNamespaceOnlySortedUnique) {
  auto i = ingress("ing", "h.example",
                   {{kN + "custom-headers", "shop/hdrs"}, {kP + "proxy-set-headers", "hdrs"}}, "shop");
  EXPECT_EQ(referenced_config_maps(i), std::vector<std::string>{"shop/hdrs"});
  i.meta.annotations = {{kN + "custom-headers", "other/hdrs"}, {kP + "proxy-set-headers", "up"}};
  EXPECT_EQ(referenced_config_maps(i), std::vector<std::string>{"shop/up"});
  i.meta.annotations = {};
  EXPECT_TRUE(referenced_config_maps(i).empty());
}

TEST(LoadConfigMap, ReadFromManifests) {
  LoadResult r;
  load_text(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: hdrs, namespace: shop}
data:
  X-Frame-Options: DENY
  X-Team: web
)",
            "maps.yaml", r);
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  ASSERT_EQ(r.resources.config_maps.size(), 1u);
  EXPECT_EQ(r.resources.config_maps[0].meta.key(), "shop/hdrs");
  EXPECT_EQ(r.resources.config_maps[0].data,
            (std::map<std::string, std::string>{{"X-Frame-Options", "DENY"}, {"X-Team", "web"}}));
  EXPECT_TRUE(r.ignored.empty());
}

}  // namespace
}  // namespace phigate::ingress
