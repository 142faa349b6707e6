// The compile step: the same manifests give the same diagnostics and the same fail-closed
// decisions whichever entry point compiles them (validate --ingress-dir, validate --config / run).
#include "phigate/compile/policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace phigate::compile {
namespace {

using config::Severity;

const std::string kManifests = std::string(PHIGATE_COMPILE_FIXTURES_DIR) + "/manifests";
const std::string kNginx = "nginx.ingress.kubernetes.io/";

/// What `validate --ingress-dir` compiles: defaults, the folder, nothing else.
config::Config bare() {
  config::Config c;
  c.ingress.dir = kManifests;
  return c;
}

/// What `run` and `validate --config` compile: a config file with listeners, a static route and
/// the same folder.
config::Config from_file() {
  config::Config c;
  c.file = "/etc/phigate/phigate.yaml";
  c.listeners.https = {"127.0.0.1:0"};
  config::RouteSpec r;
  r.host = "static.example";
  r.where = {c.file, 12};
  config::PathSpec p;
  p.path = "/";
  p.backends = {"127.0.0.1:8080"};
  p.where = {c.file, 13};
  r.paths.push_back(p);
  c.routes.push_back(r);
  c.ingress.dir = kManifests;
  return c;
}

/// Diagnostics about one Kubernetes resource, as `validate` prints them.
std::vector<std::string> resource_lines(const config::Diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& e : d.entries()) {
    if (!e.resource.empty()) out.push_back(e.to_string());
  }
  return out;
}

const config::Diagnostic* find(const config::Diagnostics& d, const std::string& resource,
                               const std::string& needle) {
  for (const auto& e : d.entries()) {
    if (e.resource == resource && e.message.find(needle) != std::string::npos) return &e;
  }
  return nullptr;
}

/// The policy of the first path of `host` (+ `path`).
const config::RoutePolicy* policy_of(const CompiledPolicy& c, const std::string& host,
                                     const std::string& path = "/") {
  for (const auto& r : c.config.routes) {
    if (r.host != host) continue;
    for (const auto& p : r.paths) {
      if (p.path == path) return p.policy.get();
    }
  }
  return nullptr;
}

bool has_host_policy(const CompiledPolicy& c, const std::string& host) {
  return std::any_of(c.host_policies.begin(), c.host_policies.end(),
                     [&](const auto& hp) { return hp.first == host; });
}

TEST(CompilePolicy, SameManifests_SameDiagnosticsWhicheverEntryPoint) {
  config::Diagnostics a, b, c;
  const auto ra = load_and_compile(bare(), a);
  const auto rb = load_and_compile(from_file(), b);
  ingress::DirectoryLoader loader;  // run's reload path: cached parsing
  const auto rc = load_and_compile(from_file(), c, &loader);
  ASSERT_TRUE(ra && rb && rc);
  const auto la = resource_lines(a);
  ASSERT_FALSE(la.empty());
  EXPECT_EQ(la, resource_lines(b));
  EXPECT_EQ(la, resource_lines(c));
  EXPECT_EQ(a.error_count(), b.error_count());
  // The same decisions, not only the same words.
  for (const auto* host : {"ca.example", "shared.example", "weak.example", "lb.example", "plain.example"}) {
    ASSERT_NE(policy_of(*ra, host), nullptr) << host;
    ASSERT_NE(policy_of(*rb, host), nullptr) << host;
    EXPECT_EQ(policy_of(*ra, host)->fail_closed, policy_of(*rb, host)->fail_closed) << host;
  }
  EXPECT_EQ(ra->host_policies.size(), rb->host_policies.size());
  EXPECT_EQ(ra->ingress.used, 6u);
  EXPECT_EQ(rb->ingress.used, 6u);
  // The static route stays first and unchanged.
  ASSERT_FALSE(rb->config.routes.empty());
  EXPECT_EQ(rb->config.routes.front().host, "static.example");
}

TEST(CompilePolicy, BadClientCa_FailsTheHostClosedWithErrorNamingManifestResourceAndField) {
  config::Diagnostics d;
  const auto r = load_and_compile(bare(), d);
  ASSERT_TRUE(r);
  const auto* e = find(d, "Ingress default/bad-ca", "host ca.example");
  ASSERT_NE(e, nullptr) << d.to_string();
  EXPECT_EQ(e->severity, Severity::Error);
  EXPECT_NE(e->file.find("ingresses.yaml#"), std::string::npos) << e->file;
  EXPECT_GT(e->line, 0);
  EXPECT_EQ(e->field, "metadata.annotations");
  EXPECT_NE(e->message.find("failing closed (503)"), std::string::npos);
  const auto* pol = policy_of(*r, "ca.example");
  ASSERT_NE(pol, nullptr);
  EXPECT_EQ(pol->fail_closed, "invalid TLS settings for host ca.example");
  EXPECT_FALSE(has_host_policy(*r, "ca.example"));
}

TEST(CompilePolicy, ConflictingHostTlsSettings_LaterIngressFailsClosed_FirstKeepsHost) {
  config::Diagnostics d;
  const auto r = load_and_compile(bare(), d);
  ASSERT_TRUE(r);
  const auto* e = find(d, "Ingress default/second", "already has client-certificate/cipher settings");
  ASSERT_NE(e, nullptr) << d.to_string();
  EXPECT_EQ(e->severity, Severity::Error);
  EXPECT_NE(e->message.find("Ingress default/first"), std::string::npos);
  EXPECT_NE(e->file.find("ingresses.yaml#"), std::string::npos);
  EXPECT_EQ(e->field, "metadata.annotations");
  const auto* second = policy_of(*r, "shared.example", "/second");
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->fail_closed, "conflicting TLS settings for host shared.example");
  const auto* first = policy_of(*r, "shared.example", "/");
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->fail_closed.empty());
  EXPECT_TRUE(has_host_policy(*r, "shared.example"));
}

TEST(CompilePolicy, InsecureCipherList_FailsTheHostClosed) {
  config::Diagnostics d;
  const auto r = load_and_compile(bare(), d);
  ASSERT_TRUE(r);
  const auto* e = find(d, "Ingress default/weak", "host weak.example");
  ASSERT_NE(e, nullptr) << d.to_string();
  EXPECT_EQ(e->severity, Severity::Error);
  EXPECT_NE(e->file.find("ingresses.yaml#"), std::string::npos);
  const auto* pol = policy_of(*r, "weak.example");
  ASSERT_NE(pol, nullptr);
  EXPECT_EQ(pol->fail_closed, "invalid TLS settings for host weak.example");
  EXPECT_FALSE(has_host_policy(*r, "weak.example"));
}

TEST(CompilePolicy, InsecureCipherList_CompilesWhenTheConfigAllowsInsecureTls) {
  auto cfg = bare();
  cfg.tls.allow_insecure_tls = true;
  config::Diagnostics d;
  const auto r = load_and_compile(std::move(cfg), d);
  ASSERT_TRUE(r);
  EXPECT_EQ(find(d, "Ingress default/weak", "host weak.example"), nullptr) << d.to_string();
  EXPECT_TRUE(has_host_policy(*r, "weak.example"));
}

TEST(CompilePolicy, ParsedButUnenforcedAnnotation_WarnsNamingAnnotationResourceAndFile) {
  config::Diagnostics d;
  const auto r = load_and_compile(bare(), d);
  ASSERT_TRUE(r);
  std::vector<std::string> fields;
  for (const auto& e : d.entries()) {
    if (e.resource != "Ingress default/balanced") continue;
    EXPECT_EQ(e.severity, Severity::Warning) << e.to_string();
    EXPECT_NE(e.file.find("ingresses.yaml#"), std::string::npos);
    EXPECT_NE(e.message.find("has no effect"), std::string::npos);
    fields.push_back(e.field);
  }
  // load-balance and upstream-hash-by are enforced (no warning); proxy-ssl-name on a plain-HTTP backend does
  // nothing.
  EXPECT_EQ(fields, (std::vector<std::string>{"metadata.annotations." + kNginx + "proxy-ssl-name"}));
  // A warning, not a failure: the Ingress is served.
  const auto* pol = policy_of(*r, "lb.example");
  ASSERT_NE(pol, nullptr);
  EXPECT_TRUE(pol->fail_closed.empty());
  // round_robin is what phigate does: nothing to warn about.
  for (const auto& e : d.entries()) EXPECT_NE(e.resource, "Ingress default/plain") << e.to_string();
}

TEST(CompilePolicy, BrokenManifestFile_NothingCompiled) {
  config::Config cfg;
  cfg.ingress.dir = std::string(PHIGATE_INGRESS_FIXTURES_DIR) + "/broken";
  config::Diagnostics d;
  EXPECT_FALSE(load_and_compile(std::move(cfg), d));
  EXPECT_TRUE(d.has_errors());
}

// compile() on its own: specs built in memory.

config::PathSpec path(const std::string& p, config::RoutePolicyPtr policy) {
  config::PathSpec s;
  s.path = p;
  s.backends = {"10.0.0.1:80"};
  s.policy = std::move(policy);
  s.where = {"m.yaml#1", 7};
  return s;
}

std::shared_ptr<config::RoutePolicy> https_policy(const std::string& resource) {
  auto pol = std::make_shared<config::RoutePolicy>();
  pol->resource = resource;
  pol->backend_protocol = config::BackendProtocol::Https;
  return pol;
}

TEST(CompilePolicy, HttpsBackend_OneContextPerDistinctSettingNamedAfterTheService) {
  config::Config cfg;
  auto a = path("/a", https_policy("Ingress default/a"));
  a.service_host = "web.default.svc";
  auto b = path("/b", https_policy("Ingress default/b"));
  b.service_host = "web.default.svc";
  auto plain = path("/plain", nullptr);
  cfg.routes.push_back({"a.example", {a, b, plain}, {"m.yaml#1", 5}});
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  EXPECT_FALSE(d.has_errors()) << d.to_string();
  ASSERT_EQ(r.backend_tls.size(), 3u);
  ASSERT_NE(r.backend_tls[0], nullptr);
  EXPECT_EQ(r.backend_tls[0], r.backend_tls[1]);  // equal settings: one SSL_CTX
  EXPECT_EQ(r.backend_tls[2], nullptr);           // plain HTTP
  EXPECT_EQ(r.backend_tls[0]->verify_name(), "web.default.svc");
  EXPECT_TRUE(r.backend_tls[0]->verify());
}

// client-body-buffer-size over limits.request_buffer_bytes: capped (the proxy takes the smaller),
// with one warning per Ingress naming the annotation; at or under the limit, or without
// buffering, nothing is said.
TEST(CompilePolicy, ClientBodyBufferSizeOverTheLimit_WarnsOncePerIngress) {
  config::Config cfg;
  cfg.limits.request_buffer_bytes = 1000;
  const auto buffered = [](const std::string& resource, std::uint64_t n, bool on) {
    auto p = std::make_shared<config::RoutePolicy>();
    p->resource = resource;
    p->request_buffering = on;
    p->body_buffer_bytes = n;
    return p;
  };
  const auto big = buffered("Ingress default/big", 5000, true);
  cfg.routes.push_back(
      {"a.example",
       {path("/a", big), path("/b", big), path("/c", buffered("Ingress default/at", 1000, true)),
        path("/d", buffered("Ingress default/off", 5000, false))},
       {"m.yaml#1", 5}});
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  EXPECT_FALSE(d.has_errors()) << d.to_string();
  std::size_t warnings = 0;
  for (const auto& e : d.entries()) {
    if (e.field != "metadata.annotations.client-body-buffer-size") continue;
    ++warnings;
    EXPECT_EQ(e.resource, "Ingress default/big");
    EXPECT_NE(e.message.find("capped to 1000"), std::string::npos) << e.message;
  }
  EXPECT_EQ(warnings, 1u) << d.to_string();
}

TEST(CompilePolicy, HttpsBackend_SettingsThatDoNotCompileFailClosedNeverPlain) {
  config::Config cfg;
  auto pol = https_policy("Ingress default/tls-backend");
  pol->proxy_ssl_ciphers = "NO-SUCH-CIPHER";
  pol->proxy_ssl_name = "web.internal";
  cfg.routes.push_back({"a.example", {path("/", pol)}, {"m.yaml#1", 5}});
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  ASSERT_EQ(d.entries().size(), 1u) << d.to_string();
  EXPECT_EQ(d.entries()[0].severity, Severity::Error);
  EXPECT_EQ(d.entries()[0].resource, "Ingress default/tls-backend");
  EXPECT_EQ(d.entries()[0].file, "m.yaml#1");
  EXPECT_EQ(d.entries()[0].field, "metadata.annotations.proxy-ssl-secret");
  EXPECT_NE(d.entries()[0].message.find("invalid cipher list"), std::string::npos);
  EXPECT_EQ(r.config.routes[0].paths[0].policy->fail_closed, "invalid TLS to the backend");
  EXPECT_EQ(r.backend_tls[0], nullptr);
}

TEST(CompilePolicy, HttpsBackend_StaticRouteChecksTheBackendsHostAndUnverifiedWarns) {
  config::Config cfg;
  auto verified = path("/v", https_policy(""));
  verified.backends = {"backend.internal:443"};
  auto mixed = path("/m", https_policy(""));
  mixed.backends = {"a.internal:443", "b.internal:443"};
  auto off = std::make_shared<config::RoutePolicy>(*https_policy(""));
  off->proxy_ssl_verify = false;
  cfg.routes.push_back({"a.example", {verified, mixed, path("/off", off)}, {"phigate.yaml", 5}});
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  ASSERT_NE(r.backend_tls[0], nullptr);
  EXPECT_EQ(r.backend_tls[0]->verify_name(), "backend.internal");
  // Two hosts and no name: nothing to check the certificate against.
  EXPECT_EQ(r.backend_tls[1], nullptr);
  EXPECT_EQ(r.config.routes[0].paths[1].policy->fail_closed, "invalid TLS to the backend");
  EXPECT_NE(find(d, "", "no name to check"), nullptr) << d.to_string();
  ASSERT_NE(r.backend_tls[2], nullptr);
  EXPECT_FALSE(r.backend_tls[2]->verify());
  const auto* w = find(d, "", "is not verified");
  ASSERT_NE(w, nullptr) << d.to_string();
  EXPECT_EQ(w->severity, Severity::Warning);
  EXPECT_EQ(w->field, "backend_tls.verify");
}

TEST(CompilePolicy, RequireTls_PlainOrUnverifiedBackendsOfRequiredPathsFailClosed) {
  for (const auto require : {config::UpstreamSpec::RequireTls::Phi, config::UpstreamSpec::RequireTls::All}) {
    config::Config cfg;
    cfg.upstream.require_tls = require;
    auto phi_plain = std::make_shared<config::RoutePolicy>();
    phi_plain->resource = "Ingress default/phi";
    phi_plain->phi = true;
    auto other_plain = std::make_shared<config::RoutePolicy>();
    other_plain->resource = "Ingress default/other";
    auto phi_unverified = https_policy("Ingress default/phi-off");
    phi_unverified->phi = true;
    phi_unverified->proxy_ssl_verify = false;
    auto phi_tls = https_policy("Ingress default/phi-tls");
    phi_tls->phi = true;
    phi_tls->proxy_ssl_name = "web.internal";
    cfg.routes.push_back({"a.example",
                          {path("/phi", phi_plain), path("/other", other_plain), path("/off", phi_unverified),
                           path("/tls", phi_tls)},
                          {"m.yaml#1", 5}});
    config::Diagnostics d;
    const auto r = compile(std::move(cfg), d);
    const auto& paths = r.config.routes[0].paths;
    EXPECT_EQ(paths[0].policy->fail_closed, "plain HTTP backend where upstream.tls.require demands TLS");
    const auto* e = find(d, "Ingress default/phi", "plain HTTP to the backend");
    ASSERT_NE(e, nullptr) << d.to_string();
    EXPECT_EQ(e->field, "metadata.annotations.backend-protocol");
    EXPECT_EQ(paths[1].policy->fail_closed.empty(), require == config::UpstreamSpec::RequireTls::Phi);
    EXPECT_EQ(paths[2].policy->fail_closed, "invalid TLS to the backend");
    EXPECT_NE(find(d, "Ingress default/phi-off", "proxy-ssl-verify is off"), nullptr) << d.to_string();
    EXPECT_TRUE(paths[3].policy->fail_closed.empty()) << d.to_string();
    EXPECT_NE(r.backend_tls[3], nullptr);
  }
}

TEST(CompilePolicy, WildcardWithBrokenTlsSettings_FailsHostsUnderItClosed) {
  config::Config cfg;
  auto wild = std::make_shared<config::RoutePolicy>();
  wild->resource = "Ingress default/wild";
  wild->ssl_ciphers = "NO-SUCH-CIPHER";
  auto open = std::make_shared<config::RoutePolicy>();
  open->resource = "Ingress default/open";
  cfg.routes.push_back({"*.shop.example", {path("/", wild)}, {"m.yaml#1", 5}});
  cfg.routes.push_back({"cart.shop.example", {path("/", open)}, {"m.yaml#2", 5}});
  cfg.routes.push_back({"other.example", {path("/", open)}, {"m.yaml#2", 9}});
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  EXPECT_EQ(r.config.routes[0].paths[0].policy->fail_closed, "invalid TLS settings for host *.shop.example");
  EXPECT_EQ(r.config.routes[1].paths[0].policy->fail_closed, "invalid TLS settings for host *.shop.example");
  EXPECT_TRUE(r.config.routes[2].paths[0].policy->fail_closed.empty());
  EXPECT_NE(find(d, "Ingress default/open", "relies on the TLS settings of *.shop.example"), nullptr)
      << d.to_string();
  EXPECT_TRUE(r.host_policies.empty());
}

TEST(CompilePolicy, AccessLists_OnePerPathInRouteOrderThenDefaultBackend_SharedPerPolicy) {
  config::Config cfg;
  auto limited = std::make_shared<config::RoutePolicy>();
  limited->resource = "Ingress default/limited";
  limited->allow_source_ranges = {"10.0.0.0/8"};
  cfg.routes.push_back({"a.example", {path("/", limited), path("/x", nullptr)}, {}});
  cfg.routes.push_back({"b.example", {path("/", limited)}, {}});
  cfg.default_backend = path("/", limited);
  cfg.trusted_proxies = {"192.0.2.0/24"};
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  EXPECT_FALSE(d.has_errors()) << d.to_string();
  ASSERT_EQ(r.route_access.size(), 4u);
  ASSERT_NE(r.route_access[0], nullptr);
  EXPECT_EQ(r.route_access[1], nullptr);
  EXPECT_EQ(r.route_access[0], r.route_access[2]);  // compiled once per policy
  EXPECT_EQ(r.route_access[0], r.route_access[3]);
  const auto inside = access::parse_address("10.1.2.3");
  const auto outside = access::parse_address("192.0.2.1");
  ASSERT_TRUE(inside && outside);
  EXPECT_TRUE(r.route_access[0]->allow.contains(*inside));
  EXPECT_FALSE(r.route_access[0]->allow.contains(*outside));
  EXPECT_TRUE(r.trusted_proxies.contains(*outside));
}

TEST(CompilePolicy, Canaries_SlotsAfterTheDefaultBackendBrokenBackendTlsDetachesOnlyTheCanary) {
  config::Config cfg;
  auto main = std::make_shared<config::RoutePolicy>();
  main->resource = "Ingress default/main";
  auto good = path("/", main);
  good.canary = std::make_shared<const config::PathSpec>(path("/", main));
  auto broken_policy = https_policy("Ingress default/broken-canary");
  broken_policy->proxy_ssl_ciphers = "NO-SUCH-CIPHER";
  broken_policy->proxy_ssl_name = "web.internal";
  auto with_broken = path("/", main);
  with_broken.canary = std::make_shared<const config::PathSpec>(path("/", broken_policy));
  cfg.routes.push_back({"a.example", {good, path("/x", nullptr)}, {}});
  cfg.routes.push_back({"b.example", {with_broken}, {}});
  cfg.default_backend = path("/", nullptr);
  config::Diagnostics d;
  const auto r = compile(std::move(cfg), d);
  // Three paths, the default backend, then the one canary left attached.
  EXPECT_EQ(r.backend_tls.size(), 5u);
  EXPECT_EQ(r.route_access.size(), 5u);
  ASSERT_TRUE(r.config.routes[0].paths[0].canary);
  EXPECT_FALSE(r.config.routes[1].paths[0].canary);                      // detached: gets no traffic
  EXPECT_TRUE(r.config.routes[1].paths[0].policy->fail_closed.empty());  // its main is untouched
  ASSERT_NE(find(d, "Ingress default/broken-canary", "invalid cipher list"), nullptr) << d.to_string();
  ASSERT_NE(find(d, "Ingress default/broken-canary", "the canary is detached"), nullptr) << d.to_string();
}

TEST(CompilePolicy, InvalidTrustedProxy_IsAnErrorOutsideAnyResource) {
  config::Config cfg;
  cfg.file = "phigate.yaml";
  cfg.trusted_proxies = {"10.0.0.0/99"};
  config::Diagnostics d;
  compile(std::move(cfg), d);
  ASSERT_EQ(d.entries().size(), 1u);
  EXPECT_EQ(d.entries()[0].severity, Severity::Error);
  EXPECT_TRUE(d.entries()[0].resource.empty());  // fatal: stops a load
  EXPECT_EQ(d.entries()[0].field, "trusted_proxies[0]");
}

TEST(CompilePolicy, Merge_StaticRoutesAndDefaultBackendWin) {
  config::Config cfg;
  cfg.routes.push_back({"a.example", {path("/", nullptr)}, {}});
  cfg.default_backend = path("/static", nullptr);
  ingress::Translation t;
  t.routes.push_back({"a.example", {path("/", nullptr)}, {}});
  t.default_backend = path("/ingress", nullptr);
  t.certificates.push_back({});
  merge(cfg, std::move(t));
  ASSERT_EQ(cfg.routes.size(), 2u);
  ASSERT_TRUE(cfg.default_backend);
  EXPECT_EQ(cfg.default_backend->path, "/static");
  EXPECT_EQ(cfg.tls.certificates.size(), 1u);
}

TEST(CompilePolicy, GrpcsBackend_IsTlsWithAlpnH2AndGrpcIsPlain) {
  for (const auto require : {config::UpstreamSpec::RequireTls::None, config::UpstreamSpec::RequireTls::All}) {
    config::Config cfg;
    cfg.upstream.require_tls = require;
    auto grpcs = https_policy("Ingress default/grpcs");
    grpcs->backend_protocol = config::BackendProtocol::Grpcs;
    grpcs->proxy_ssl_name = "grpc.internal";
    auto https = https_policy("Ingress default/https");
    https->proxy_ssl_name = "grpc.internal";  // same settings otherwise: never the same context
    auto grpc = std::make_shared<config::RoutePolicy>();
    grpc->resource = "Ingress default/grpc";
    grpc->backend_protocol = config::BackendProtocol::Grpc;
    cfg.routes.push_back(
        {"a.example", {path("/s", grpcs), path("/h", https), path("/p", grpc)}, {"m.yaml#1", 5}});
    config::Diagnostics d;
    const auto r = compile(std::move(cfg), d);
    ASSERT_EQ(r.backend_tls.size(), 3u);
    ASSERT_NE(r.backend_tls[0], nullptr) << d.to_string();
    ASSERT_NE(r.backend_tls[1], nullptr) << d.to_string();
    EXPECT_TRUE(r.backend_tls[0]->alpn_h2());
    EXPECT_FALSE(r.backend_tls[1]->alpn_h2());  // HTTPS backends keep speaking HTTP/1.1
    EXPECT_NE(r.backend_tls[0], r.backend_tls[1]);
    EXPECT_NE(r.backend_tls[0]->identity(), r.backend_tls[1]->identity());
    EXPECT_EQ(r.backend_tls[2], nullptr);  // GRPC: h2 with prior knowledge, plain
    const auto& paths = r.config.routes[0].paths;
    EXPECT_TRUE(paths[0].policy->fail_closed.empty());
    if (require == config::UpstreamSpec::RequireTls::All) {
      // Plain gRPC where TLS is required fails closed like plain HTTP.
      EXPECT_EQ(paths[2].policy->fail_closed, "plain HTTP backend where upstream.tls.require demands TLS");
    } else {
      EXPECT_TRUE(paths[2].policy->fail_closed.empty());
      EXPECT_FALSE(d.has_errors()) << d.to_string();
    }
  }
}
}  // namespace
}  // namespace phigate::compile
