// ssl-passthrough under listeners.tls_passthrough: a TLS backend (phigate-test-upstream with a
// certificate from its own CA) behind phigate; clients verify against the backend's CA, so a
// handshake that succeeds proves the bytes were not terminated by phigate (whose certificates
// come from another CA). Attackers: a ClientHello in 1-byte segments, garbage, an oversized hello,
// a stalled hello, SNI and Host that disagree, SNI spelled in upper case with a trailing dot.
#include <string>
#include <thread>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "support/net.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

class PassthroughTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    backend_ca_ = make_ca(dir_.path(), "backend CA");
    backend_cert_ = make_leaf(dir_.path(), backend_ca_, "pass.example", {"pass.example"});
  }

  /// A TLS test upstream serving pass.example's certificate.
  Upstream start_tls_upstream(const std::string& name) {
    const std::string record = dir_.path(name + ".jsonl");
    auto p =
        Process::start({bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--record", record, "--name",
                        name, "--tls-cert", backend_cert_.cert, "--tls-key", backend_cert_.key});
    const auto line = p.wait_for_line("ready ", 10s);
    if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
    const auto hp = parse_host_port(line->substr(line->find("ready ") + 6));
    if (!hp) throw std::runtime_error("bad ready line: " + *line);
    return Upstream{std::move(p), hp->port, record};
  }

  /// pass.example (ssl-passthrough, `annotations` more) → `tls_up`; app.example → `plain_up`.
  void write_manifests(const Upstream& tls_up, const Upstream& plain_up,
                       const std::string& annotations = "") {
    dir_.write("manifests/pass.yaml",
               service_yaml("pass", tls_up) + "---\n" +
                   ingress_yaml("pass", "pass.example", "pass",
                                "    nginx.ingress.kubernetes.io/ssl-passthrough: \"true\"\n" + annotations));
    dir_.write("manifests/app.yaml",
               service_yaml("app", plain_up) + "---\n" + ingress_yaml("app", "app.example", "app"));
  }

  Phigate start(bool passthrough, const std::string& extra = "") {
    auto yaml = config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" +
                                     audit_yaml() + extra);
    if (passthrough) yaml.replace(yaml.find("listeners:\n"), 11, "listeners:\n  tls_passthrough: true\n");
    return start_phigate(yaml);
  }

  /// passthrough_client.py: the handshake verified against the backend's CA, then GET /.
  RunResult client(const Phigate& pg, const std::string& sni, const std::string& mode,
                   const std::string& host = "pass.example") {
    RunOptions o;
    o.timeout = 20s;
    return run({"/usr/bin/python3", PHIGATE_PASSTHROUGH_CLIENT_SCRIPT, std::to_string(pg.https), sni,
                backend_ca_.cert, mode, host},
               o);
  }

  /// curl to pass.example verifying against the backend's CA.
  RunResult curl_backend(const Phigate& pg) {
    return run({"curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", backend_ca_.cert, "--resolve",
                "pass.example:" + std::to_string(pg.https) + ":127.0.0.1", "-D", "-",
                "https://pass.example:" + std::to_string(pg.https) + "/hello"});
  }

  std::string code(const Phigate& pg, const std::string& host) {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/", host)}).out;
  }

  CertPaths backend_ca_;
  CertPaths backend_cert_;
};

TEST_F(PassthroughTest, TheClientSeesTheBackendsCertificateOtherHostsAreStillTerminated) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true);
  // curl verifies pass.example against the backend's CA: only the backend's certificate passes.
  const auto r = curl_backend(pg);
  ASSERT_EQ(r.exit_code, 0) << r.err << pg.process.output();
  EXPECT_NE(r.out.find("X-Upstream-Name: tls-backend"), std::string::npos) << r.out;
  const auto recs = tls_up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_NE(recs[0].find("\"sni\":\"pass.example\""), std::string::npos) << recs[0];
  // No X-Forwarded-For: phigate never saw the request.
  EXPECT_EQ(record_header(recs[0], "x-forwarded-for"), "");
  // openssl s_client sees the backend's certificate, not phigate's.
  RunOptions o;
  o.stdin_data = "";
  o.timeout = 15s;
  const auto s =
      run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(pg.https), "-servername",
           "pass.example", "-CAfile", backend_ca_.cert, "-verify_return_error", "-brief"},
          o);
  EXPECT_NE((s.out + s.err).find("pass.example"), std::string::npos) << s.out << s.err;
  EXPECT_EQ((s.out + s.err).find("app.example"), std::string::npos) << s.out << s.err;
  // app.example on the same listener is terminated by phigate (its own CA) and proxied.
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(plain_up.records().size(), 1u);

  // One start and one end record for the passthrough connection (audit), and the metric.
  const auto page = wait_metric(pg, "phigate_passthrough_connections_total{result=\"spliced\"}", "2");
  EXPECT_EQ(metric(page, "phigate_passthrough_connections_total{result=\"spliced\"}"), "2") << page;
  EXPECT_EQ(pg.process.terminate(), 0);  // SIGTERM flushes and seals
  const auto audit = records();
  const auto start_rec = find(audit, "\"action\":\"passthrough-start\"");
  ASSERT_FALSE(start_rec.empty());
  EXPECT_TRUE(has(start_rec, "\"server_name\":\"pass.example\""));
  EXPECT_TRUE(has(start_rec, "\"uninspected\":true"));
  EXPECT_TRUE(has(start_rec, "\"address\":\"" + tls_up.address() + "\""));
  const auto end_rec = find(audit, "\"action\":\"passthrough\"");
  ASSERT_FALSE(end_rec.empty());
  EXPECT_TRUE(has(end_rec, "\"bytes_to_upstream\":")) << end_rec;
  EXPECT_FALSE(has(end_rec, "\"bytes_to_client\":0")) << end_rec;
  EXPECT_TRUE(has(end_rec, "\"ingress\":\"default/pass\"")) << end_rec;
}

TEST_F(PassthroughTest, SwitchOffFailsTheIngressClosedNamingTheSwitch) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(false);
  EXPECT_TRUE(pg.process.wait_for_line("listeners.tls_passthrough", 5s)) << pg.process.output();
  // Terminated by phigate (the backend's CA does not verify it), and the host answers 503.
  EXPECT_NE(curl_backend(pg).exit_code, 0);
  const auto r = run({"curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                      "pass.example:" + std::to_string(pg.https) + ":127.0.0.1",
                      "https://pass.example:" + std::to_string(pg.https) + "/"});
  EXPECT_EQ(r.out, "503");
  EXPECT_TRUE(tls_up.records().empty());
  EXPECT_EQ(code(pg, "app.example"), "200");
}

TEST_F(PassthroughTest, AttackerClientHelloInOneByteSegments) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true);
  const auto r = client(pg, "pass.example", "tiny");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("X-Upstream-Name: tls-backend"), std::string::npos) << r.out;
  // The same 1-byte hello for a terminated host still reaches OpenSSL whole.
  RunOptions o;
  o.timeout = 20s;
  const auto t = run({"/usr/bin/python3", PHIGATE_TLS_SEGMENTS_SCRIPT, std::to_string(pg.https), "tiny"}, o);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out.rfind("HTTP/1.1 200", 0), 0u) << t.out;
}

TEST_F(PassthroughTest, AttackerSniOfThePassthroughHostHostHeaderOfAnother) {
  // The bytes are opaque: the Host field names app.example, but only the passthrough host's
  // backend ever sees the request.
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true);
  const auto r = client(pg, "pass.example", "whole", "app.example");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("X-Upstream-Name: tls-backend"), std::string::npos) << r.out;
  EXPECT_EQ(tls_up.records().size(), 1u);
  EXPECT_TRUE(plain_up.records().empty());
  // The other way round: SNI app.example (terminated), Host pass.example: the passthrough host's
  // paths are closed to terminated requests (its backend expects TLS from its clients).
  const auto other = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: pass.example",
                               https_url(pg, "/", "app.example")});
  EXPECT_NE(other.out, "200") << other.out;
  EXPECT_EQ(tls_up.records().size(), 1u);
  EXPECT_TRUE(plain_up.records().empty());
}

TEST_F(PassthroughTest, AttackerSniInUpperCaseWithATrailingDotIsTheSameHost) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true);
  const auto r = client(pg, "PASS.Example.", "whole");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("X-Upstream-Name: tls-backend"), std::string::npos) << r.out;
}

TEST_F(PassthroughTest, AttackerGarbageAndOversizedHellosAreTerminatedAndFail) {
  // Neither is read as naming the passthrough host: both go to OpenSSL, which refuses garbage at
  // once and waits for the rest of an oversized hello until timeouts.tls_handshake.
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true, "timeouts: { tls_handshake: 1s }\n");
  {
    // Plain HTTP naming the passthrough host on the TLS port: OpenSSL refuses it.
    auto c = PlainClient::connect("127.0.0.1", pg.https);
    ASSERT_TRUE(c) << c.error;
    ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: pass.example\r\n\r\n"));
    const auto got = c->read_all(5s);
    EXPECT_EQ(got.find("HTTP/1.1 200"), std::string::npos);
    EXPECT_TRUE(c->closed());
  }
  {
    // A handshake record announcing a ClientHello over 16 KiB, then the bytes: never passed on.
    auto c = PlainClient::connect("127.0.0.1", pg.https);
    ASSERT_TRUE(c) << c.error;
    std::string h("\x16\x03\x01\x40\x00\x01\x00\x50\x00", 9);
    h += std::string(16384 - 4, 'A');
    c->write(h);
    c->read_all(5s);
    EXPECT_TRUE(c->closed());
  }
  EXPECT_TRUE(tls_up.records().empty());
  EXPECT_TRUE(plain_up.records().empty());
  // phigate still serves both.
  EXPECT_EQ(curl_backend(pg).exit_code, 0);
  EXPECT_EQ(code(pg, "app.example"), "200");
}

TEST_F(PassthroughTest, AttackerStalledHelloIsClosedAtTheHandshakeTimeoutAndAudited) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true, "timeouts: { tls_handshake: 1s }\n");
  auto c = PlainClient::connect("127.0.0.1", pg.https);
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write(std::string("\x16\x03\x01\x02\x00\x01", 6)));  // a hello that never ends
  const auto started = std::chrono::steady_clock::now();
  c->read_all(10s);
  EXPECT_TRUE(c->closed());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(pg.process.terminate(), 0);  // SIGTERM flushes and seals
  const auto rec = find(records(), "timeout before a whole ClientHello");
  ASSERT_FALSE(rec.empty());
  EXPECT_TRUE(has(rec, "\"reason\":\"client_timeout\"")) << rec;
  EXPECT_TRUE(tls_up.records().empty());
}

TEST_F(PassthroughTest, SourceRangesAreEnforcedPerConnection) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up,
                  "    nginx.ingress.kubernetes.io/whitelist-source-range: \"192.0.2.0/24\"\n");
  auto pg = start(true);
  EXPECT_NE(curl_backend(pg).exit_code, 0);
  EXPECT_TRUE(tls_up.records().empty());
  EXPECT_EQ(pg.process.terminate(), 0);  // SIGTERM flushes and seals
  const auto rec = find(records(), "\"action\":\"passthrough\"");
  ASSERT_FALSE(rec.empty());
  EXPECT_TRUE(has(rec, "\"decision\":\"denied\"")) << rec;
}

TEST_F(PassthroughTest, AuthTlsWithPassthroughIsRefused) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  dir_.write("manifests/ca.yaml",
             "apiVersion: v1\nkind: Secret\nmetadata: { name: ca, namespace: default }\n"
             "data:\n  ca.crt: " +
                 b64(read_file(backend_ca_.cert)) + "\n");
  write_manifests(tls_up, plain_up, "    nginx.ingress.kubernetes.io/auth-tls-secret: default/ca\n");
  auto pg = start(true);
  EXPECT_TRUE(pg.process.wait_for_line("contradicts auth-tls", 5s)) << pg.process.output();
  EXPECT_NE(curl_backend(pg).exit_code, 0);
  EXPECT_TRUE(tls_up.records().empty());
}

}  // namespace
}  // namespace phigate::test
