// TLS to the backend (backend-protocol HTTPS / backend_tls:) against real HTTPS backends on
// loopback: nginx requiring a client certificate, nginx with an expired certificate, and
// `openssl s_server` refusing a handshake without a client certificate. A malicious tenant's
// unverified route to the same pod must never get the verified route's pooled connection.
#include <filesystem>
#include <string>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "support/net.hpp"
#include "support/nginx.hpp"

namespace phigate::test {
namespace {

class BackendTlsTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    backend_ca_ = make_ca(dir_.path(), "backend-ca");
    other_ca_ = make_ca(dir_.path(), "other-ca");
    client_ca_ = make_ca(dir_.path(), "client-ca");
    server_ = make_leaf(dir_.path(), backend_ca_, "backend.internal", {"backend.internal"});
    expired_ = make_leaf(dir_.path(), backend_ca_, "backend.internal", {"backend.internal"},
                         KeyType::EcdsaP256, false, -1);
    client_ = make_leaf(dir_.path(), client_ca_, "phigate-client", {}, KeyType::EcdsaP256, true);
  }

  /// One nginx: a plain port (unused), the mTLS backend, the same with one request per connection
  /// (every request reconnects: resumption), and a backend with an expired certificate.
  void start_nginx() {
    tls_port_ = free_port();
    resume_port_ = free_port();
    expired_port_ = free_port();
    const auto server = [&](std::uint16_t port, const CertPaths& cert, const std::string& extra) {
      return "  server {\n    listen 127.0.0.1:" + std::to_string(port) + " ssl;\n    ssl_certificate " +
             cert.cert + ";\n    ssl_certificate_key " + cert.key + ";\n    ssl_client_certificate " +
             client_ca_.cert + ";\n    ssl_verify_client on;\n    ssl_session_cache shared:S" +
             std::to_string(port) + ":1m;\n" + extra +
             "    location / { return 200 \"verify=$ssl_client_verify conn=$connection "
             "reused=$ssl_session_reused\\n\"; }\n  }\n";
    };
    NginxOptions o;
    o.extra_http_config = server(tls_port_, server_, "") +
                          server(resume_port_, server_, "    keepalive_requests 1;\n") +
                          server(expired_port_, expired_, "");
    nginx_.emplace(Nginx::start(dir_, o));
    for (auto p : {tls_port_, resume_port_, expired_port_}) ASSERT_TRUE(wait_for_port("127.0.0.1", p, 10s));
  }

  std::string tls_path(const std::string& path, std::uint16_t port, const std::string& settings) const {
    return "      - { path: " + path + ", backends: [\"127.0.0.1:" + std::to_string(port) +
           "\"], backend_tls: { " + settings + " } }\n";
  }
  std::string mtls(const std::string& ca) const {
    return "ca: " + ca + ", cert: " + client_.cert + ", key: " + client_.key;
  }

  std::string get(const Phigate& pg, const std::string& path, std::string* body = nullptr) {
    auto r = curl(pg, {"-sS", "-w", "\n%{http_code}", https_url(pg, path)});
    const auto nl = r.out.rfind('\n');
    if (body != nullptr) *body = r.out.substr(0, nl == std::string::npos ? 0 : nl);
    return nl == std::string::npos ? r.out : r.out.substr(nl + 1);
  }
  /// GETs `paths` in order on ONE client connection (one curl), so that they run on one worker
  /// and share its upstream pool and session cache. Status and body of each.
  std::vector<std::pair<std::string, std::string>> get_all(const Phigate& pg,
                                                           const std::vector<std::string>& paths) {
    std::vector<std::string> args{"-sS", "-w", "##%{http_code}##"};
    for (const auto& p : paths) args.push_back(https_url(pg, p));
    const auto res = curl(pg, args);
    const auto& out = res.out;
    EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
    std::vector<std::pair<std::string, std::string>> r;
    std::size_t pos = 0;
    while (true) {
      const auto open = out.find("##", pos);
      if (open == std::string::npos) break;
      const auto close = out.find("##", open + 2);
      if (close == std::string::npos) break;
      r.emplace_back(out.substr(open + 2, close - open - 2), out.substr(pos, open - pos));
      pos = close + 2;
    }
    return r;
  }
  static double metric(const std::string& text, const std::string& name) {
    const auto pos = text.find("\n" + name + " ");
    return pos == std::string::npos ? -1 : std::stod(text.substr(pos + name.size() + 2));
  }

  CertPaths backend_ca_, other_ca_, client_ca_, server_, expired_, client_;
  std::optional<Nginx> nginx_;
  std::uint16_t tls_port_ = 0, resume_port_ = 0, expired_port_ = 0;
};

TEST_F(BackendTlsTest, VerifiedMtlsWorks_AndEachFailedCheckIsA502WhoseAuditReasonNamesIt) {
  start_nginx();
  // openssl s_server asks for a client certificate and refuses the handshake without one.
  const auto nocert_port = free_port();
  auto s_server = Process::start({"openssl", "s_server", "-accept",
                                  "127.0.0.1:" + std::to_string(nocert_port), "-cert", server_.cert, "-key",
                                  server_.key, "-CAfile", client_ca_.cert, "-Verify", "1", "-www", "-quiet"});
  ASSERT_TRUE(wait_for_port("127.0.0.1", nocert_port, 10s));
  const std::string name = ", name: backend.internal, server_name: true";
  const auto routes =
      "  - host: app.example\n    paths:\n" + tls_path("/ok", tls_port_, mtls(backend_ca_.cert) + name) +
      tls_path("/wrongca", tls_port_, mtls(other_ca_.cert) + name) +
      tls_path("/wrongname", tls_port_, mtls(backend_ca_.cert) + ", name: wrong.internal") +
      tls_path("/expired", expired_port_, mtls(backend_ca_.cert) + name) +
      tls_path("/nocert", nocert_port, "ca: " + backend_ca_.cert + name + ", protocols: TLSv1.2");
  auto pg = start_phigate(config(routes, audit_yaml()));
  std::string body;
  EXPECT_EQ(get(pg, "/ok", &body), "200");
  EXPECT_NE(body.find("verify=SUCCESS"), std::string::npos) << body;  // nginx saw our certificate
  for (const char* p : {"/wrongca", "/wrongname", "/expired", "/nocert"}) EXPECT_EQ(get(pg, p), "502") << p;
  const auto m = metrics(pg);
  EXPECT_GE(metric(m, "phigate_backend_tls_failures_total"), 4) << m;
  EXPECT_EQ(metric(m, "phigate_backend_tls_unverified_routes"), 0) << m;
  EXPECT_EQ(pg.process.terminate(), 0);

  const auto recs = records();
  const auto reason_of = [&](const std::string& path) {
    const auto r = find(recs, "\"path\":\"" + path + "\"");
    EXPECT_FALSE(r.empty()) << path;
    EXPECT_TRUE(has(r, "\"outcome\":\"failure\"")) << r;
    const auto pos = r.find("\"reason\":\"");
    return pos == std::string::npos ? std::string() : r.substr(pos + 10, r.find('"', pos + 10) - pos - 10);
  };
  EXPECT_EQ(reason_of("/wrongca"), "upstream_tls_unknown_ca");
  EXPECT_EQ(reason_of("/wrongname"), "upstream_tls_name_mismatch");
  EXPECT_EQ(reason_of("/expired"), "upstream_tls_expired");
  EXPECT_EQ(reason_of("/nocert"), "upstream_tls_client_certificate_refused");
  EXPECT_TRUE(has(find(recs, "\"path\":\"/ok\""), "\"status_code\":200"));
}

TEST_F(BackendTlsTest, VerifyOff_WorksAgainstAnUnknownCaAndIsFlaggedInMetricsAndLogs) {
  start_nginx();
  const auto routes = "  - host: app.example\n    paths:\n" +
                      tls_path("/off", tls_port_, mtls(other_ca_.cert) + ", verify: false");
  auto pg = start_phigate(config(routes, audit_yaml()));
  EXPECT_TRUE(pg.process.wait_for_line("is not verified", 5s)) << pg.process.output();  // warned at load
  std::string body;
  EXPECT_EQ(get(pg, "/off", &body), "200");
  EXPECT_NE(body.find("verify=SUCCESS"), std::string::npos) << body;
  const auto m = metrics(pg);
  EXPECT_EQ(metric(m, "phigate_backend_tls_unverified_routes"), 1) << m;
  EXPECT_EQ(metric(m, "phigate_backend_tls_unverified_requests_total"), 1) << m;
}

TEST_F(BackendTlsTest, ReconnectsResumeTheSession) {
  start_nginx();
  const auto routes = "  - host: app.example\n    paths:\n" +
                      tls_path("/", resume_port_, mtls(backend_ca_.cert) + ", name: backend.internal");
  auto pg = start_phigate(config(routes));
  // nginx closes each connection after one request (keepalive_requests 1): the second reconnects.
  const auto r = get_all(pg, {"/a", "/b"});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].first, "200");
  EXPECT_EQ(r[1].first, "200");
  const auto& first = r[0].second;
  const auto& second = r[1].second;
  EXPECT_NE(first.find("reused=."), std::string::npos) << first;
  EXPECT_NE(second.find("reused=r"), std::string::npos) << second;
  const auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
  EXPECT_EQ(metric(m, "phigate_backend_tls_handshakes_total"), 2) << m;
  EXPECT_EQ(metric(m, "phigate_backend_tls_resumed_total"), 1) << m;
}

TEST_F(BackendTlsTest, Attacker_AnUnverifiedRouteToTheSamePodNeverGetsTheVerifiedPooledConnection) {
  start_nginx();
  // Same endpoint, same client certificate; the tenant's route does not verify the backend.
  const auto routes = "  - host: app.example\n    paths:\n" +
                      tls_path("/phi", tls_port_, mtls(backend_ca_.cert) + ", name: backend.internal") +
                      tls_path("/tenant", tls_port_, mtls(backend_ca_.cert) + ", verify: false");
  auto pg = start_phigate(config(routes));
  const auto conn = [](const std::string& body) {
    const auto pos = body.find("conn=");
    return pos == std::string::npos ? std::string("?") : body.substr(pos + 5, body.find(' ', pos) - pos - 5);
  };
  // One client connection, so one worker and one upstream pool.
  const auto r = get_all(pg, {"/phi", "/phi", "/tenant", "/phi", "/tenant"});
  ASSERT_EQ(r.size(), 5u);
  for (const auto& [code, body] : r) EXPECT_EQ(code, "200") << body;
  const auto& a = r[0].second;
  const auto& c = r[2].second;
  EXPECT_EQ(conn(a), conn(r[1].second)) << a << r[1].second;  // pooling works for equal settings
  EXPECT_NE(conn(c), conn(a)) << "the unverified route reused the verified connection: " << a << c;
  EXPECT_EQ(conn(r[3].second), conn(a)) << "the verified route lost its own pooled connection";
  EXPECT_EQ(conn(r[4].second), conn(c)) << "the tenant route lost its own pooled connection";
  const auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
  EXPECT_EQ(metric(m, "phigate_upstream_connects_total"), 2) << m;
}

TEST_F(BackendTlsTest, RequireTls_PlainBackendOfAPhiIngressFailsClosedWithADiagnostic) {
  auto up = start_upstream();
  dir_.write("manifests/class.yaml", kIngressClass);
  dir_.write("manifests/svc.yaml", service_yaml("web", up));
  dir_.write("manifests/phi.yaml",
             ingress_yaml("phi", "app.example", "web", "    phigate.io/phi: \"true\"\n"));
  dir_.write("manifests/other.yaml", ingress_yaml("other", "other.example", "web"));
  const auto yaml = config("  []\n", "ingress: { dir: " + dir_.path("manifests") +
                                         ", debounce: 50ms }\nupstream: { tls: { require: phi } }\n");
  auto pg = start_phigate(yaml);
  EXPECT_EQ(get(pg, "/"), "503");
  EXPECT_EQ(
      curl(pg, {"-s", "-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/", "other.example")}).out,
      "200");
  dir_.write("phigate-validate.yaml", yaml);
  const auto v = run({bin("phigate"), "validate", "--config", dir_.path("phigate-validate.yaml")});
  const auto all = v.out + v.err;
  EXPECT_NE(all.find("Ingress default/phi"), std::string::npos) << all;
  EXPECT_NE(all.find("metadata.annotations.backend-protocol"), std::string::npos) << all;
  EXPECT_NE(all.find("upstream.tls.require is phi"), std::string::npos) << all;
}

TEST_F(BackendTlsTest, RequireTlsAll_StaticPlainRouteIsARefusedConfiguration) {
  const auto yaml =
      config("  - host: app.example\n    paths:\n      - { path: /, backends: [\"127.0.0.1:9\"] }\n",
             "upstream: { tls: { require: all } }\n");
  dir_.write("strict.yaml", yaml);
  const auto v = run({bin("phigate"), "validate", "--config", dir_.path("strict.yaml")});
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE((v.out + v.err).find("plain HTTP to the backend, but upstream.tls.require is all"),
            std::string::npos)
      << v.out << v.err;
}

}  // namespace
}  // namespace phigate::test
