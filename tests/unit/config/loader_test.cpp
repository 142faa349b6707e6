#include "phigate/config/loader.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace phigate::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// A temp folder with empty cert/key files, so that path checks pass.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phigate-loader-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "certs");
    for (const char* f : {"certs/server.crt", "certs/server.key", "certs/other.crt", "certs/other.key"}) {
      std::ofstream(dir_ / f) << "x";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::optional<Config> load(const std::string& text) {
    diag_ = {};
    return load_config_text(text, (dir_ / "phigate.yaml").string(), diag_);
  }
  /// The first diagnostic that mentions `field`, or nullptr.
  const Diagnostic* find(std::string_view field) const {
    for (const auto& d : diag_.entries()) {
      if (d.field == field) return &d;
    }
    return nullptr;
  }
  fs::path dir_;
  Diagnostics diag_;
};

constexpr const char* kIssueExample = R"(listeners:
  https: ["127.0.0.1:8443"]
  http: ["127.0.0.1:8080"]
  admin: "127.0.0.1:9901"
workers: 2
tls:
  default_certificate: { cert: certs/server.crt, key: certs/server.key }
  certificates:
    - { cert: certs/other.crt, key: certs/other.key }
routes:
  - host: app.example
    paths:
      - { path: /, type: Prefix, backends: ["127.0.0.1:18080"] }
)";

TEST_F(LoaderTest, IngressCanaryCrossNamespace_OffByDefaultBooleanOnly) {
  fs::create_directories(dir_ / "manifests");
  const std::string base = std::string(kIssueExample) + "ingress:\n  dir: manifests\n";
  auto cfg = load(base);
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_FALSE(cfg->ingress.canary_cross_namespace);
  cfg = load(base + "  canary_cross_namespace: true\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_TRUE(cfg->ingress.canary_cross_namespace);
  EXPECT_FALSE(load(base + "  canary_cross_namespace: sometimes\n"));
  EXPECT_TRUE(diag_.has_errors());
}

TEST_F(LoaderTest, IngressAllowedResponseHeaders_EmptyByDefaultLowerCasedTokensOnly) {
  fs::create_directories(dir_ / "manifests");
  const std::string base = std::string(kIssueExample) + "ingress:\n  dir: manifests\n";
  auto cfg = load(base);
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_TRUE(cfg->ingress.allowed_response_headers.empty());
  cfg = load(base + "  allowed_response_headers: [X-Frame-Options, x-team]\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->ingress.allowed_response_headers, (std::vector<std::string>{"x-frame-options", "x-team"}));
  for (const char* bad : {"[\"X Frame\"]", "[\"X-A:\"]", "[\"\"]", "x-team"}) {
    EXPECT_FALSE(load(base + "  allowed_response_headers: " + bad + "\n")) << bad;
    EXPECT_NE(diag_.to_string().find("ingress.allowed_response_headers"), std::string::npos) << bad;
  }
}

TEST_F(LoaderTest, IssueExample_LoadsExactlyAsWritten) {
  const auto cfg = load(kIssueExample);
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->listeners.https, std::vector<std::string>{"127.0.0.1:8443"});
  EXPECT_EQ(cfg->listeners.http, std::vector<std::string>{"127.0.0.1:8080"});
  EXPECT_EQ(cfg->listeners.admin, "127.0.0.1:9901");
  EXPECT_EQ(cfg->workers, 2u);
  ASSERT_TRUE(cfg->tls.default_certificate);
  // Relative paths resolve against the config file's folder.
  EXPECT_EQ(cfg->tls.default_certificate->cert, (dir_ / "certs/server.crt").string());
  ASSERT_EQ(cfg->tls.certificates.size(), 1u);
  EXPECT_EQ(cfg->tls.certificates[0].key, (dir_ / "certs/other.key").string());
  ASSERT_EQ(cfg->routes.size(), 1u);
  EXPECT_EQ(cfg->routes[0].host, "app.example");
  ASSERT_EQ(cfg->routes[0].paths.size(), 1u);
  EXPECT_EQ(cfg->routes[0].paths[0].type, PathType::Prefix);
  EXPECT_EQ(cfg->routes[0].paths[0].backends, std::vector<std::string>{"127.0.0.1:18080"});
}

TEST_F(LoaderTest, Defaults_AreTheDocumentedOnes) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] })");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_GE(cfg->workers, 1u);
  EXPECT_EQ(cfg->listeners.admin, "127.0.0.1:9901");
  EXPECT_EQ(cfg->tls.min_version, "TLSv1.2");
  EXPECT_EQ(cfg->timeouts.tls_handshake, 10s);
  EXPECT_EQ(cfg->timeouts.upstream_connect, 5s);
  EXPECT_EQ(cfg->timeouts.upstream_read, 60s);
  EXPECT_EQ(cfg->timeouts.keepalive_idle, 60s);
  EXPECT_EQ(cfg->upstream.keepalive_connections, 64u);
}

TEST_F(LoaderTest, UpstreamBalance_GlobalDefaultAndBadValueNamed) {
  EXPECT_EQ(load(R"(listeners: { http: ["127.0.0.1:8080"] })")->upstream.load_balance,
            LoadBalance::RoundRobin);
  const auto lr = load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { balance: { load_balance: least_request } })");
  ASSERT_TRUE(lr) << diag_.to_string();
  EXPECT_EQ(lr->upstream.load_balance, LoadBalance::LeastRequest);
  EXPECT_EQ(load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { balance: { load_balance: ewma } })")
                ->upstream.load_balance,
            LoadBalance::Ewma);
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { balance: { load_balance: random } })"));
  const auto* d = find("upstream.balance.load_balance");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->line, 2);
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { balance: { algorithm: ewma } })"));
  EXPECT_NE(find("upstream.balance.algorithm"), nullptr) << diag_.to_string();
}

TEST_F(LoaderTest, UnknownKey_NamesFileLineAndKey) {
  const auto cfg = load("listeners:\n  http: [\"127.0.0.1:8080\"]\n  htps: []\n");
  EXPECT_FALSE(cfg);
  const auto* d = find("listeners.htps");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->line, 3);
  EXPECT_EQ(d->message, "unknown key");
  EXPECT_NE(d->to_string().find("phigate.yaml:3: error: listeners.htps: unknown key"), std::string::npos)
      << d->to_string();
}

// A key is copied into the diagnostic: its control bytes must not forge extra log lines (log
// injection). Found by fuzz/config_loader.cpp.
TEST_F(LoaderTest, UnknownKeyWithNewline_DiagnosticStaysOneLine) {
  const auto cfg = load("listeners:\n  \"x\\nphigate.yaml:1: error: forged\\r\\x1b[2J\": []\n");
  EXPECT_FALSE(cfg);
  ASSERT_FALSE(diag_.entries().empty());
  const std::string line = diag_.entries().front().to_string();
  EXPECT_EQ(line.find_first_of("\r\n\x1b"), std::string::npos) << line;
  EXPECT_NE(line.find("listeners.x\\x0aphigate.yaml:1: error: forged\\x0d\\x1b[2J: unknown key"),
            std::string::npos)
      << line;
}

TEST_F(LoaderTest, WrongTypes_AreReportedAllAtOnce) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
workers: many
timeouts: { upstream_read: soon }
tls: { session_tickets: maybe }
limits: { request_header_bytes: lots }
)");
  EXPECT_FALSE(cfg);
  ASSERT_NE(find("workers"), nullptr) << diag_.to_string();
  EXPECT_EQ(find("workers")->line, 2);
  ASSERT_NE(find("timeouts.upstream_read"), nullptr);
  ASSERT_NE(find("tls.session_tickets"), nullptr);
  ASSERT_NE(find("limits.request_header_bytes"), nullptr);
  EXPECT_EQ(diag_.error_count(), 4u);
}

// proxy-request-buffering's limits: 1 MiB per request and 64 MiB per worker unless set; nginx
// size syntax; junk is an error naming the field.
TEST_F(LoaderTest, RequestBufferLimits_DefaultsSizesAndJunk) {
  auto cfg = load("listeners: { http: [\"127.0.0.1:8080\"] }\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->limits.request_buffer_bytes, 1u << 20);
  EXPECT_EQ(cfg->limits.request_buffer_worker_bytes, 64u << 20);
  cfg = load(
      "listeners: { http: [\"127.0.0.1:8080\"] }\n"
      "limits: { request_buffer_bytes: 8k, request_buffer_worker_bytes: 2m }\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->limits.request_buffer_bytes, 8u << 10);
  EXPECT_EQ(cfg->limits.request_buffer_worker_bytes, 2u << 20);
  cfg = load("listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { request_buffer_worker_bytes: -1 }\n");
  EXPECT_FALSE(cfg);
  EXPECT_NE(find("limits.request_buffer_worker_bytes"), nullptr) << diag_.to_string();
  // 0 (every buffered body refused), more than 1 TiB (the signed gauge) and one body's bound over
  // the worker's whole budget (and one HTTP/2 connection's share with it) are errors too.
  for (const char* bad :
       {"request_buffer_bytes: 0", "request_buffer_worker_bytes: 0", "request_buffer_worker_bytes: 1025g",
        "request_buffer_bytes: 2m, request_buffer_worker_bytes: 1m", "request_buffer_worker_bytes: 512k"}) {
    cfg = load(std::string("listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { ") + bad + " }\n");
    EXPECT_FALSE(cfg) << bad;
    const std::string field = std::string("limits.") + std::string(bad).substr(0, std::string(bad).find(':'));
    EXPECT_NE(find(field), nullptr) << bad << ": " << diag_.to_string();
  }
}

TEST_F(LoaderTest, RateLimitStatusAndKeys) {
  const auto def = load("listeners: { http: [\"127.0.0.1:8080\"] }\n");
  ASSERT_TRUE(def) << diag_.to_string();
  EXPECT_EQ(def->limits.rate_limit_status, 503);  // ingress-nginx's limit-req-status-code
  EXPECT_EQ(def->limits.rate_limit_keys, 100000u);
  const auto set = load(
      "listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { rate_limit_status: 429, rate_limit_keys: 5000 "
      "}\n");
  ASSERT_TRUE(set) << diag_.to_string();
  EXPECT_EQ(set->limits.rate_limit_status, 429);
  EXPECT_EQ(set->limits.rate_limit_keys, 5000u);
  for (const char* bad : {"rate_limit_status: 404", "rate_limit_status: [429]", "rate_limit_keys: 10"}) {
    EXPECT_FALSE(load(std::string("listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { ") + bad + " }\n"))
        << bad;
    EXPECT_TRUE(find("limits.rate_limit_status") != nullptr || find("limits.rate_limit_keys") != nullptr)
        << bad;
  }
}

TEST_F(LoaderTest, ResponseRate) {
  const auto def = load("listeners: { http: [\"127.0.0.1:8080\"] }\n");
  ASSERT_TRUE(def) << diag_.to_string();
  EXPECT_EQ(def->limits.response_rate, 0u);  // no limit, as ingress-nginx's ConfigMap limit-rate: 0
  EXPECT_EQ(def->limits.response_rate_after, 0u);
  const auto set = load(
      "listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { response_rate: 256k, response_rate_after: 1m "
      "}\n");
  ASSERT_TRUE(set) << diag_.to_string();
  EXPECT_EQ(set->limits.response_rate, 256u * 1024);
  EXPECT_EQ(set->limits.response_rate_after, 1u << 20);
  for (const char* bad : {"response_rate: 11g", "response_rate: -1", "response_rate: 100",
                          "response_rate: fast", "response_rate_after: 2048g", "response_rate_after: [1]"}) {
    EXPECT_FALSE(load(std::string("listeners: { http: [\"127.0.0.1:8080\"] }\nlimits: { ") + bad + " }\n"))
        << bad;
    const std::string field = std::string("limits.") + std::string(bad).substr(0, std::string(bad).find(':'));
    EXPECT_NE(find(field), nullptr) << bad << ": " << diag_.to_string();
  }
}

TEST_F(LoaderTest, MissingCertificateFile_IsAnErrorNamingThePath) {
  const auto cfg = load(R"(listeners: { https: ["127.0.0.1:8443"] }
tls:
  default_certificate: { cert: certs/missing.crt, key: certs/server.key }
)");
  EXPECT_FALSE(cfg);
  const auto* d = find("tls.default_certificate.cert");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_NE(d->message.find("missing.crt"), std::string::npos);
}

TEST_F(LoaderTest, HttpsWithoutCertificate_IsAnError) {
  EXPECT_FALSE(load(R"(listeners: { https: ["127.0.0.1:8443"] })"));
  EXPECT_NE(find("tls.default_certificate"), nullptr) << diag_.to_string();
}

TEST_F(LoaderTest, BadRoutes_AreReportedWithTheirIndex) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
routes:
  - host: App_Example
    paths:
      - { path: nope, type: Regex, backends: ["127.0.0.1"] }
)");
  EXPECT_FALSE(cfg);
  EXPECT_NE(find("routes[0].host"), nullptr) << diag_.to_string();
  EXPECT_NE(find("routes[0].paths[0].path"), nullptr);
  EXPECT_NE(find("routes[0].paths[0].type"), nullptr);
  EXPECT_NE(find("routes[0].paths[0].backends[0]"), nullptr);
}

TEST_F(LoaderTest, BadListenerAddress_IsAnError) {
  EXPECT_FALSE(load(R"(listeners: { http: ["localhost"] })"));
  EXPECT_NE(find("listeners.http[0]"), nullptr) << diag_.to_string();
}

TEST_F(LoaderTest, InvalidYaml_ReportsTheLine) {
  EXPECT_FALSE(load("listeners:\n  http: [\"127.0.0.1:8080\"\nworkers: 1\n"));
  ASSERT_EQ(diag_.entries().size(), 1u);
  EXPECT_GT(diag_.entries()[0].line, 0);
  EXPECT_NE(diag_.entries()[0].message.find("invalid YAML"), std::string::npos);
}

TEST_F(LoaderTest, StarHostMeansDefault) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
routes:
  - host: "*"
    paths: [{ path: /, backends: ["127.0.0.1:1"] }]
  - paths: [{ path: /x, type: Exact, backends: ["[::1]:2"] }]
)");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->routes[0].host, "");
  EXPECT_EQ(cfg->routes[1].host, "");
  EXPECT_EQ(cfg->routes[1].paths[0].type, PathType::Exact);
}

TEST_F(LoaderTest, StaticBackendProtocol_AsTheAnnotationAndContradictionsNamed) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
routes:
  - host: app.example
    paths:
      - { path: /plain, backends: ["127.0.0.1:1"] }
      - { path: /grpc, backends: ["127.0.0.1:2"], backend_protocol: GRPC }
      - { path: /grpcs, backends: ["127.0.0.1:3"], backend_protocol: grpcs }
      - { path: /https, backends: ["127.0.0.1:4"], backend_protocol: HTTPS }
      - { path: /tls, backends: ["127.0.0.1:5"], backend_tls: { verify: false } }
      - { path: /grpcs-tls, backends: ["127.0.0.1:6"], backend_protocol: GRPCS, backend_tls: { name: g.internal } }
)");
  ASSERT_TRUE(cfg) << diag_.to_string();
  const auto& p = cfg->routes[0].paths;
  EXPECT_EQ(p[0].policy, nullptr);
  EXPECT_EQ(p[1].policy->backend_protocol, BackendProtocol::Grpc);
  EXPECT_EQ(p[2].policy->backend_protocol, BackendProtocol::Grpcs);  // case as ingress-nginx ignores it
  EXPECT_EQ(p[3].policy->backend_protocol, BackendProtocol::Https);
  EXPECT_EQ(p[4].policy->backend_protocol, BackendProtocol::Https);  // backend_tls alone: HTTPS
  EXPECT_FALSE(p[4].policy->proxy_ssl_verify);
  EXPECT_EQ(p[5].policy->backend_protocol, BackendProtocol::Grpcs);
  EXPECT_EQ(p[5].policy->proxy_ssl_name, "g.internal");

  // Plain text with TLS settings, or an unknown protocol: errors naming the path's field.
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
routes:
  - paths:
      - { path: /a, backends: ["127.0.0.1:1"], backend_protocol: GRPC, backend_tls: {} }
      - { path: /b, backends: ["127.0.0.1:1"], backend_protocol: AJP }
)"));
  const auto* plain = find("routes[0].paths[0].backend_protocol");
  ASSERT_NE(plain, nullptr) << diag_.to_string();
  EXPECT_NE(plain->message.find("use GRPCS"), std::string::npos) << plain->message;
  const auto* ajp = find("routes[0].paths[1].backend_protocol");
  ASSERT_NE(ajp, nullptr) << diag_.to_string();
  EXPECT_NE(ajp->message.find("'AJP'"), std::string::npos) << ajp->message;
}

TEST_F(LoaderTest, TlsProfiles_SetPolicyAndExplicitKeysOverride) {
  auto nist = load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { profile: nist-800-52r2 }\n");
  ASSERT_TRUE(nist) << diag_.to_string();
  EXPECT_EQ(nist->tls.ciphers.find("CHACHA20"), std::string::npos);
  EXPECT_EQ(nist->tls.ciphersuites.find("CHACHA20"), std::string::npos);
  EXPECT_EQ(nist->tls.groups, "P-256:P-384");
  auto modern = load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { profile: modern }\n");
  ASSERT_TRUE(modern);
  EXPECT_EQ(modern->tls.min_version, "TLSv1.3");
  auto mixed =
      load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { profile: nist-800-52r2, groups: P-384 }\n");
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->tls.groups, "P-384");
  EXPECT_FALSE(load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { profile: fast }\n"));
  EXPECT_NE(find("tls.profile"), nullptr);
}

TEST_F(LoaderTest, TlsBelow12_RefusedUnlessInsecureAllowed) {
  EXPECT_FALSE(load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { min_version: TLSv1.1 }\n"));
  ASSERT_NE(find("tls.min_version"), nullptr);
  EXPECT_NE(find("tls.min_version")->message.find("allow_insecure_tls"), std::string::npos);
  EXPECT_TRUE(
      load("listeners: { http: [\"127.0.0.1:8080\"] }\ntls: { min_version: TLSv1.1, allow_insecure_tls: true "
           "}\n"));
}

TEST(ParseDuration, AcceptsUnitsAndRejectsJunk) {
  Duration d{};
  ASSERT_TRUE(parse_duration("250ms", d));
  EXPECT_EQ(d, 250ms);
  ASSERT_TRUE(parse_duration("10s", d));
  EXPECT_EQ(d, 10s);
  ASSERT_TRUE(parse_duration("5", d));
  EXPECT_EQ(d, 5s);
  ASSERT_TRUE(parse_duration("2m", d));
  EXPECT_EQ(d, 120s);
  ASSERT_TRUE(parse_duration("1h", d));
  EXPECT_EQ(d, 3600s);
  EXPECT_FALSE(parse_duration("", d));
  EXPECT_FALSE(parse_duration("10 s", d));
  EXPECT_FALSE(parse_duration("-1s", d));
  EXPECT_FALSE(parse_duration("1d", d));
  EXPECT_FALSE(parse_duration("99999999999999h", d));  // would overflow the millisecond count
}

TEST(ParseSize, AcceptsBinaryMultiples) {
  std::uint64_t v = 0;
  ASSERT_TRUE(parse_size("16k", v));
  EXPECT_EQ(v, 16384u);
  ASSERT_TRUE(parse_size("1m", v));
  EXPECT_EQ(v, 1048576u);
  ASSERT_TRUE(parse_size("512", v));
  EXPECT_EQ(v, 512u);
  EXPECT_FALSE(parse_size("1x", v));
  EXPECT_FALSE(parse_size("k", v));
  EXPECT_FALSE(parse_size("100000000000g", v));  // 2^64 overflow
}

TEST_F(LoaderTest, UpstreamUpgrades_DefaultWebSocketListedOrH2cRefused) {
  const auto def = load(R"(listeners: { http: ["127.0.0.1:8080"] })");
  ASSERT_TRUE(def) << diag_.to_string();
  EXPECT_EQ(def->upstream.upgrades, std::vector<std::string>{"websocket"});
  const auto two = load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { upgrades: [websocket, foo] })");
  ASSERT_TRUE(two) << diag_.to_string();
  EXPECT_EQ(two->upstream.upgrades, (std::vector<std::string>{"websocket", "foo"}));
  const auto none = load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream: { upgrades: [] })");
  ASSERT_TRUE(none) << diag_.to_string();
  EXPECT_TRUE(none->upstream.upgrades.empty());
  const auto bad = load(R"(listeners: { http: ["127.0.0.1:8080"] }
upstream:
  upgrades: [websocket, H2C, "web socket"]
)");
  EXPECT_FALSE(bad);
  const auto* h2c = find("upstream.upgrades[1]");
  ASSERT_NE(h2c, nullptr) << diag_.to_string();
  EXPECT_EQ(h2c->line, 3);
  EXPECT_NE(h2c->message.find("h2c"), std::string::npos);
  ASSERT_NE(find("upstream.upgrades[2]"), nullptr) << diag_.to_string();
}

TEST_F(LoaderTest, Http2_DefaultsAreTheDocumentedOnes) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] })");
  ASSERT_TRUE(cfg) << diag_.to_string();
  const auto& h = cfg->http2;
  EXPECT_TRUE(h.enabled);
  EXPECT_TRUE(h.disabled_hosts.empty());
  EXPECT_EQ(h.max_concurrent_streams, 100u);
  EXPECT_EQ(h.max_header_list_bytes, 32768u);
  EXPECT_EQ(h.header_table_bytes, 4096u);
  EXPECT_EQ(h.max_continuation_frames, 8u);
  EXPECT_EQ(h.initial_window_bytes, 65535u);
  EXPECT_EQ(h.connection_window_bytes, 1048576u);
  EXPECT_EQ(h.max_frame_bytes, 16384u);
  EXPECT_EQ(h.reset_budget, 100u);
  EXPECT_EQ(h.reset_refill, 10u);
  EXPECT_EQ(h.control_budget, 1000u);
  EXPECT_EQ(h.control_refill, 100u);
  EXPECT_EQ(h.connection_memory_bytes, 8u << 20);
  EXPECT_TRUE(h.websocket);
  EXPECT_EQ(h.max_websockets_per_connection, 32u);
}

TEST_F(LoaderTest, Http2_EveryKeyLoadsAsWritten) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2:
  enabled: false
  disabled_hosts: [Legacy.Example, "*.old.example"]
  max_concurrent_streams: 32
  max_header_list_bytes: 16k
  header_table_bytes: 0
  max_continuation_frames: 0
  initial_window_bytes: 1m
  connection_window_bytes: 2m
  max_frame_bytes: 16777215
  reset_budget: 20
  reset_refill: 2
  control_budget: 50
  control_refill: 5
  connection_memory_bytes: 4m
  websocket: false
  max_websockets_per_connection: 0
)");
  ASSERT_TRUE(cfg) << diag_.to_string();
  const auto& h = cfg->http2;
  EXPECT_FALSE(h.enabled);
  EXPECT_EQ(h.disabled_hosts, (std::vector<std::string>{"legacy.example", "*.old.example"}));
  EXPECT_EQ(h.max_concurrent_streams, 32u);
  EXPECT_EQ(h.max_header_list_bytes, 16384u);
  EXPECT_EQ(h.header_table_bytes, 0u);
  EXPECT_EQ(h.max_continuation_frames, 0u);
  EXPECT_EQ(h.initial_window_bytes, 1u << 20);
  EXPECT_EQ(h.connection_window_bytes, 2u << 20);
  EXPECT_EQ(h.max_frame_bytes, 16777215u);
  EXPECT_EQ(h.reset_budget, 20u);
  EXPECT_EQ(h.reset_refill, 2u);
  EXPECT_EQ(h.control_budget, 50u);
  EXPECT_EQ(h.control_refill, 5u);
  EXPECT_EQ(h.connection_memory_bytes, 4u << 20);
  EXPECT_FALSE(h.websocket);
  EXPECT_EQ(h.max_websockets_per_connection, 0u);
}

// Each out-of-range value is reported on its own line with its dotted key, all in one load.
TEST_F(LoaderTest, Http2_RangesPerRfc9113NameFileLineAndKey) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2:
  max_concurrent_streams: 0
  max_frame_bytes: 16383
  initial_window_bytes: 2g
  connection_window_bytes: 65534
  reset_budget: 0
  control_refill: 0
  max_continuation_frames: 101
  header_table_bytes: 1m
  max_header_list_bytes: lots
  enabled: yes
  disabled_hosts: ["bad host", "*.ok.example"]
  push: true
  max_websockets_per_connection: 1001
)");
  EXPECT_FALSE(cfg);
  const std::pair<const char*, int> want[] = {{"http2.max_concurrent_streams", 3},
                                              {"http2.max_frame_bytes", 4},
                                              {"http2.initial_window_bytes", 5},
                                              {"http2.connection_window_bytes", 6},
                                              {"http2.reset_budget", 7},
                                              {"http2.control_refill", 8},
                                              {"http2.max_continuation_frames", 9},
                                              {"http2.header_table_bytes", 10},
                                              {"http2.max_header_list_bytes", 11},
                                              {"http2.enabled", 12},
                                              {"http2.disabled_hosts[0]", 13},
                                              {"http2.push", 14},
                                              {"http2.max_websockets_per_connection", 15}};
  for (const auto& [field, line] : want) {
    const auto* d = find(field);
    ASSERT_NE(d, nullptr) << field << "\n" << diag_.to_string();
    EXPECT_EQ(d->line, line) << field;
    EXPECT_NE(d->to_string().find("phigate.yaml:" + std::to_string(line) + ": error: " + field),
              std::string::npos)
        << d->to_string();
  }
  EXPECT_EQ(find("http2.disabled_hosts[1]"), nullptr) << diag_.to_string();
  EXPECT_NE(find("http2.max_frame_bytes")->message.find("16384"), std::string::npos);
  EXPECT_NE(find("http2.initial_window_bytes")->message.find("2147483647"), std::string::npos);
}

TEST_F(LoaderTest, Http2_BoundsAreInclusive) {
  const auto cfg = load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2:
  max_concurrent_streams: 1
  max_frame_bytes: 16384
  initial_window_bytes: 2147483647
  connection_window_bytes: 65535
  reset_budget: 1
  reset_refill: 1
  control_budget: 1
  control_refill: 1
)");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->http2.initial_window_bytes, 2147483647u);
  EXPECT_EQ(cfg->http2.connection_window_bytes, 65535u);
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2: { max_concurrent_streams: 1001 })"));
  EXPECT_NE(find("http2.max_concurrent_streams"), nullptr) << diag_.to_string();
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2: { max_frame_bytes: 16777216 })"));
  EXPECT_NE(find("http2.max_frame_bytes"), nullptr) << diag_.to_string();
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2: { initial_window_bytes: 2147483648 })"));
  EXPECT_NE(find("http2.initial_window_bytes"), nullptr) << diag_.to_string();
}

// A memory budget smaller than one full connection window plus one header list would cut off a
// client that stays within every advertised limit.
TEST_F(LoaderTest, Http2_MemoryBudgetMustHoldTheWindowAndOneHeaderList) {
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2:
  connection_window_bytes: 1m
  connection_memory_bytes: 1m
)"));
  const auto* d = find("http2.connection_memory_bytes");
  ASSERT_NE(d, nullptr) << diag_.to_string();
  EXPECT_EQ(d->line, 4);
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2: { connection_window_bytes: 16m })"));
  EXPECT_NE(find("http2.connection_memory_bytes"), nullptr) << diag_.to_string();
  EXPECT_FALSE(load(R"(listeners: { http: ["127.0.0.1:8080"] }
http2: { connection_memory_bytes: 100k })"));
  EXPECT_NE(find("http2.connection_memory_bytes"), nullptr) << diag_.to_string();
}

TEST_F(LoaderTest, UpstreamHealth_ActivePassiveAndInitial) {
  auto cfg = load(std::string(kIssueExample) + R"(upstream:
  health:
    initial: unhealthy
    active: { path: /healthz, interval: 5s, timeout: 1s, healthy_threshold: 3, unhealthy_threshold: 4,
              expected_status: 200-299, host: app.internal, port: 8081 }
    passive: { consecutive_failures: 7, base_ejection: 10s, max_ejection: 60s, max_ejected_percent: 30 }
)");
  ASSERT_TRUE(cfg) << diag_.to_string();
  const auto& h = cfg->upstream;
  EXPECT_FALSE(h.health_initial_healthy);
  EXPECT_TRUE(h.health_active.enabled);
  EXPECT_EQ(h.health_active.path, "/healthz");
  EXPECT_EQ(h.health_active.interval, 5s);
  EXPECT_EQ(h.health_active.timeout, 1s);
  EXPECT_EQ(h.health_active.healthy_threshold, 3u);
  EXPECT_EQ(h.health_active.unhealthy_threshold, 4u);
  EXPECT_EQ(h.health_active.status_min, 200);
  EXPECT_EQ(h.health_active.status_max, 299);
  EXPECT_EQ(h.health_active.host, "app.internal");
  EXPECT_EQ(h.health_active.port, 8081);
  EXPECT_TRUE(h.health_passive.enabled);
  EXPECT_EQ(h.health_passive.consecutive_failures, 7u);
  EXPECT_EQ(h.health_passive.base_ejection, 10s);
  EXPECT_EQ(h.health_passive.max_ejection, 60s);
  EXPECT_EQ(h.health_passive.max_ejected_percent, 30u);

  auto defaults = load(kIssueExample);
  ASSERT_TRUE(defaults);
  EXPECT_FALSE(defaults->upstream.health_active.enabled);  // no active checks unless asked
  EXPECT_TRUE(defaults->upstream.health_passive.enabled);
  EXPECT_EQ(defaults->upstream.health_passive.consecutive_failures, 5u);
  EXPECT_EQ(defaults->upstream.health_passive.max_ejected_percent, 50u);
  EXPECT_TRUE(defaults->upstream.health_initial_healthy);
}

TEST_F(LoaderTest, UpstreamHealth_InvalidValuesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"active: { path: healthz }", "upstream.health.active.path"},
      {"active: { path: \"/a b\" }", "upstream.health.active.path"},
      {"active: { expected_status: 2xx }", "upstream.health.active.expected_status"},
      {"active: { expected_status: 399-200 }", "upstream.health.active.expected_status"},
      {"active: { interval: 10ms }", "upstream.health.active.interval"},
      {"active: { interval: 1s, timeout: 2s }", "upstream.health.active.timeout"},
      {"active: { healthy_threshold: 0 }", "upstream.health.active.healthy_threshold"},
      {"active: { colour: red }", "upstream.health.active.colour"},
      {"passive: { max_ejected_percent: 101 }", "upstream.health.passive.max_ejected_percent"},
      {"passive: { base_ejection: 10s, max_ejection: 5s }", "upstream.health.passive.max_ejection"},
      {"initial: sick", "upstream.health.initial"},
  };
  for (const auto& [yaml, field] : cases) {
    auto cfg = load(std::string(kIssueExample) + "upstream:\n  health:\n    " + yaml + "\n");
    EXPECT_FALSE(cfg) << yaml;
    EXPECT_NE(find(field), nullptr) << yaml << ": " << diag_.to_string();
  }
}

}  // namespace
}  // namespace phigate::config

namespace phigate::config {
namespace {

TEST_F(LoaderTest, IngressUnsupportedAnnotations_WarnByDefaultFailClosedOrAnErrorNamingTheField) {
  fs::create_directories(dir_ / "k8s");
  const std::string base = std::string(kIssueExample) + "ingress:\n  dir: k8s\n";
  auto cfg = load(base);
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->ingress.unsupported_annotations, UnsupportedAnnotations::Warn);
  cfg = load(base + "  unsupported_annotations: fail_closed\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->ingress.unsupported_annotations, UnsupportedAnnotations::FailClosed);
  cfg = load(base + "  unsupported_annotations: warn\n");
  ASSERT_TRUE(cfg) << diag_.to_string();
  EXPECT_EQ(cfg->ingress.unsupported_annotations, UnsupportedAnnotations::Warn);
  for (const char* bad : {"fail-closed", "error", "Warn", "\"\""}) {
    load(base + "  unsupported_annotations: " + bad + "\n");
    EXPECT_TRUE(diag_.has_errors()) << bad;
    EXPECT_NE(find("ingress.unsupported_annotations"), nullptr) << bad << "\n" << diag_.to_string();
  }
}

TEST_F(LoaderTest, KeyLines_EveryVisitedKeyAndListItemByItsDiagnosticsField) {
  const auto cfg = load(std::string(kIssueExample) +
                        "trusted_proxies:\n"            // 14
                        "  - 10.0.0.0/8\n"              // 15
                        "  - \"192.168.0.0/16\"\n"      // 16
                        "access:\n"                     // 17
                        "  allow: [\"10.1.0.0/16\"]\n"  // 18
                        "check:\n"                      // 19
                        "  phi_hosts: all\n");          // 20
  ASSERT_TRUE(cfg) << diag_.to_string();
  ASSERT_TRUE(cfg->key_lines);
  const auto& lines = *cfg->key_lines;
  const auto line = [&](const std::string& key) {
    const auto it = lines.find(key);
    return it == lines.end() ? 0 : it->second;
  };
  EXPECT_EQ(line("listeners"), 1);
  EXPECT_EQ(line("listeners.https"), 2);
  EXPECT_EQ(line("listeners.https[0]"), 2);
  EXPECT_EQ(line("listeners.admin"), 4);
  EXPECT_EQ(line("workers"), 5);
  EXPECT_EQ(line("tls.default_certificate"), 7);
  EXPECT_EQ(line("tls.default_certificate.cert"), 7);
  EXPECT_EQ(line("tls.certificates[0].key"), 9);
  EXPECT_EQ(line("routes[0]"), 11);
  EXPECT_EQ(line("routes[0].host"), 11);
  EXPECT_EQ(line("routes[0].paths[0].backends[0]"), 13);
  EXPECT_EQ(line("trusted_proxies"), 14);
  EXPECT_EQ(line("trusted_proxies[0]"), 15);
  EXPECT_EQ(line("trusted_proxies[1]"), 16);
  EXPECT_EQ(line("access.allow[0]"), 18);
  EXPECT_EQ(line("check.phi_hosts"), 20);
  // Keys not written have no line: the default applies (check places such findings at line 0).
  EXPECT_EQ(lines.count("tls.hsts.max_age"), 0u);
  EXPECT_EQ(lines.count("trusted_proxies[2]"), 0u);
}

TEST_F(LoaderTest, KeyLines_NestedMapsAsDiagnosticsNameThem) {
  const auto ok = load(std::string(kIssueExample) +
                       "limits:\n"                   // 14
                       "  request_body_bytes: 8m\n"  // 15
                       "upstream:\n"                 // 16
                       "  health:\n"                 // 17
                       "    active:\n"               // 18
                       "      enabled: true\n");     // 19
  ASSERT_TRUE(ok) << diag_.to_string();
  ASSERT_TRUE(ok->key_lines);
  EXPECT_EQ(ok->key_lines->at("limits.request_body_bytes"), 15);
  EXPECT_EQ(ok->key_lines->at("upstream.health.active.enabled"), 19);
}

}  // namespace
}  // namespace phigate::config
