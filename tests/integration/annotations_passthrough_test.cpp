// ssl-passthrough under listeners.tls_passthrough: a TLS backend (phigate-test-upstream with a
// certificate from its own CA) behind phigate; clients verify against the backend's CA, so a
// handshake that succeeds proves the bytes were not terminated by phigate (whose certificates
// come from another CA). Attackers: a ClientHello in 1-byte segments, garbage, an oversized hello,
// a stalled hello, SNI and Host that disagree, SNI spelled in upper case with a trailing dot.
#include <filesystem>
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

  Phigate start(bool passthrough, const std::string& extra = "", const std::string& audit_extra = "") {
    auto yaml = config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" +
                                     audit_yaml("k1", audit_extra) + extra);
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

// A trusted proxy (an L7 load balancer in front) stands for many clients, and an undecrypted
// connection has no X-Forwarded-For: with source ranges in force and no PROXY header naming the
// client, its connections are refused even when its own address is in the range.
TEST_F(PassthroughTest, ATrustedProxyPeerWithoutAProxyHeaderIsNotTheClient) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up,
                  "    nginx.ingress.kubernetes.io/whitelist-source-range: \"127.0.0.0/8\"\n");
  {
    auto pg = start(true);  // not trusted: the peer is the client, and it is in the range
    EXPECT_EQ(curl_backend(pg).exit_code, 0) << pg.process.output();
  }
  ASSERT_EQ(tls_up.records().size(), 1u);
  auto pg = start(true, "trusted_proxies: [127.0.0.1/32]\n");
  EXPECT_NE(curl_backend(pg).exit_code, 0);
  EXPECT_EQ(tls_up.records().size(), 1u);
  const auto page = wait_metric(pg, "phigate_passthrough_connections_total{result=\"denied\"}", "1");
  EXPECT_EQ(metric(page, "phigate_passthrough_connections_total{result=\"denied\"}"), "1") << page;
}

// Active health checks of a passthrough backend are TCP connects: an HTTP GET to a port that speaks
// TLS would fail on every healthy endpoint and take the host down.
TEST_F(PassthroughTest, ActiveHealthChecksOfAPassthroughBackendAreConnects) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up,
                  "    phigate.io/health-check-path: /healthz\n"
                  "    phigate.io/health-check-interval: 100ms\n");
  auto pg = start(true);
  std::string page;
  for (int i = 0; i < 100; ++i) {
    page = metrics(pg);
    const auto probes = metric(page, "phigate_health_probes_total");
    if (!probes.empty() && std::stod(probes) >= 5) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(std::stod(metric(page, "phigate_health_probes_total")), 5) << page;
  EXPECT_EQ(metric(page, "phigate_health_probe_failures_total"), "0") << page;
  EXPECT_EQ(metric(page, "phigate_health_endpoints{state=\"unhealthy\"}"), "0") << page;
  EXPECT_EQ(curl_backend(pg).exit_code, 0) << pg.process.output();
}

// The decision is taken on the configuration current when the ClientHello is whole: a client that
// connects, waits while a reload narrows the host's source ranges, then sends its hello is refused.
TEST_F(PassthroughTest, AReloadBetweenAcceptAndHelloApplies) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true);
  const auto go = dir_.path("go");
  auto c = Process::start({"/usr/bin/python3", PHIGATE_PASSTHROUGH_CLIENT_SCRIPT, std::to_string(pg.https),
                           "pass.example", backend_ca_.cert, "wait:" + go, "pass.example"});
  ASSERT_TRUE(c.wait_for_line("connected", 10s)) << c.output();
  const auto mark = pg.process.output().size();
  write_manifests(tls_up, plain_up,
                  "    nginx.ingress.kubernetes.io/whitelist-source-range: \"192.0.2.0/24\"\n");
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  dir_.write("go", "");
  EXPECT_NE(c.wait_exit(15s).value_or(-1), 0) << c.output();
  EXPECT_TRUE(tls_up.records().empty());
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

// Attacker: an Ingress author in another namespace passes through a host another Ingress serves
// (with its own policies). Refused: the host stays terminated and served by the other Ingress.
TEST_F(PassthroughTest, AttackerCannotTakeOverAHostAnotherIngressServes) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  // The attacker's Ingress is younger than the victim's, in another namespace.
  auto evil = read_file(dir_.path("manifests/pass.yaml"));
  for (const std::string from : {"namespace: default", "2026-01-01"}) {
    for (auto at = evil.find(from); at != std::string::npos; at = evil.find(from, at + 1)) {
      evil.replace(at, from.size(), from == "2026-01-01" ? "2026-02-01" : "namespace: evil");
    }
  }
  dir_.write("manifests/pass.yaml", evil);
  dir_.write("manifests/victim.yaml",
             service_yaml("portal", plain_up) + "---\n" + ingress_yaml("portal", "pass.example", "portal"));
  auto pg = start(true);
  EXPECT_TRUE(pg.process.wait_for_line("also served by Ingress default/portal", 5s)) << pg.process.output();
  EXPECT_NE(curl_backend(pg).exit_code, 0);  // phigate's certificate, not the backend's: terminated
  // Served, terminated, by the victim's Ingress (phigate's default certificate: -k).
  const auto r = run({"curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
                      "pass.example:" + std::to_string(pg.https) + ":127.0.0.1",
                      "https://pass.example:" + std::to_string(pg.https) + "/"});
  EXPECT_EQ(r.out, "200") << r.err;
  EXPECT_TRUE(tls_up.records().empty());
  ASSERT_EQ(plain_up.records().size(), 1u);
}

// Nothing is spliced that cannot be audited: while the audit writer fails (the disk refuses writes),
// a passthrough connection is refused before any byte reaches the backend.
TEST_F(PassthroughTest, AuditFailingRefusesPassthroughConnections) {
  auto tls_up = start_tls_upstream("tls-backend");
  auto plain_up = start_upstream("plain-backend");
  write_manifests(tls_up, plain_up);
  auto pg = start(true, "", ", flush_interval: 50ms");
  // As AuditTest.DiskRefusingWrites…: grow the segment past the log's size, then limit file sizes.
  std::string open_segment;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path("audit"))) {
    if (e.path().extension() == ".open") open_segment = e.path();
  }
  ASSERT_FALSE(open_segment.empty());
  const auto log_size = [&] { return std::filesystem::file_size(pg.process.output_path()); };
  for (int i = 0; i < 200 && std::filesystem::file_size(open_segment) < 4 * log_size() + 8192; ++i) {
    ASSERT_EQ(code(pg, "app.example"), "200");
  }
  std::uintmax_t size = 0;
  for (int i = 0; i < 50 && size != std::filesystem::file_size(open_segment); ++i) {
    size = std::filesystem::file_size(open_segment);
    std::this_thread::sleep_for(100ms);
  }
  const auto pid = std::to_string(pg.process.pid());
  auto lim = run({"prlimit", "--pid", pid, "--fsize=" + std::to_string(size) + ":"});
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  const auto mark = pg.process.output().size();
  std::string seen;
  for (int i = 0; i < 100 && seen != "503"; ++i) seen = code(pg, "app.example");
  ASSERT_EQ(seen, "503");
  ASSERT_TRUE(pg.process.wait_for_line("failing closed", 5s, mark)) << pg.process.output();
  EXPECT_NE(curl_backend(pg).exit_code, 0);
  EXPECT_TRUE(tls_up.records().empty());
  const auto page =
      wait_metric(pg, "phigate_passthrough_connections_total{result=\"audit_unavailable\"}", "1");
  EXPECT_EQ(metric(page, "phigate_passthrough_connections_total{result=\"audit_unavailable\"}"), "1") << page;
  EXPECT_EQ(metric(page, "phigate_passthrough_connections_total{result=\"spliced\"}"), "0") << page;
  lim = run({"prlimit", "--pid", pid, "--fsize=unlimited:"});
  ASSERT_EQ(lim.exit_code, 0) << lim.err;
  // Recovered: spliced again.
  std::string back;
  for (int i = 0; i < 100 && back != "200"; ++i) back = code(pg, "app.example");
  EXPECT_EQ(back, "200");
  EXPECT_EQ(curl_backend(pg).exit_code, 0);
  EXPECT_EQ(tls_up.records().size(), 1u);
}

}  // namespace
}  // namespace phigate::test
