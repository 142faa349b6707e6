// TLS termination: SNI certificate choice, protocol and cipher policy, session resumption.
#include <openssl/ssl.h>

#include "phigate_fixture.hpp"

namespace phigate::test {
namespace {

class TlsTest : public PhigateTest {
 protected:
  void SetUp() override {
    PhigateTest::SetUp();
    up_.emplace(start_upstream());
    pg_.emplace(start_phigate(
        config("  - host: app.example\n    paths: [{ path: /, backends: [\"" + up_->address() + "\"] }]\n")));
  }
  RunResult s_client(std::vector<std::string> extra) {
    std::vector<std::string> argv = {"openssl",     "s_client",
                                     "-connect",    "127.0.0.1:" + std::to_string(pg_->https),
                                     "-servername", "app.example"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunOptions o;
    o.stdin_data = "Q\n";
    o.timeout = 15s;
    return run(argv, o);
  }
  std::optional<Upstream> up_;
  std::optional<Phigate> pg_;
};

TEST_F(TlsTest, Sni_ChoosesCertificateByName) {
  for (const auto& [sni, want] : std::vector<std::pair<std::string, std::string>>{
           {"app.example", "CN=app.example"},
           {"other.example", "CN=other.example"},
           {"x.app.example", "CN=app.example"},  // wildcard
           {"unknown.test", "CN=app.example"},   // default
       }) {
    auto c = TlsClient::connect("127.0.0.1", pg_->https, {.sni = sni});
    ASSERT_TRUE(c) << c.error;
    EXPECT_EQ(c->peer_certificate_subject(), want) << "SNI " << sni;
  }
  // And curl verifies both against the CA by name.
  auto r = curl(*pg_, {"-o", "/dev/null", "-w", "%{http_code}", https_url(*pg_, "/", "other.example")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "404");  // other.example has a certificate but no route
}

// ALPN prefers h2 when the client offers it (http2.enabled by default; RFC 9113 §9.2 allows it
// over TLS 1.2 with these AEAD/ECDHE suites). More ALPN cases: h2_test.cpp.
TEST_F(TlsTest, Policy_Tls12And13Accepted_AlpnH2) {
  auto v12 = TlsClient::connect(
      "127.0.0.1", pg_->https,
      {.sni = "app.example", .ca_file = ca_.cert, .alpn = {"h2", "http/1.1"}, .max_version = TLS1_2_VERSION});
  ASSERT_TRUE(v12) << v12.error;
  EXPECT_EQ(v12->negotiated_version(), "TLSv1.2");
  EXPECT_EQ(v12->negotiated_protocol(), "h2");
  EXPECT_NE(v12->negotiated_cipher().find("GCM"), std::string::npos) << v12->negotiated_cipher();
  auto v13 = TlsClient::connect("127.0.0.1", pg_->https, {.sni = "app.example", .ca_file = ca_.cert});
  ASSERT_TRUE(v13) << v13.error;
  EXPECT_EQ(v13->negotiated_version(), "TLSv1.3");
}

TEST_F(TlsTest, Policy_Tls11Refused) {
  auto r = s_client({"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE((r.out + r.err).find("alert protocol version"), std::string::npos) << r.out << r.err;
  auto c = TlsClient::connect(
      "127.0.0.1", pg_->https,
      {.sni = "app.example", .max_version = TLS1_1_VERSION, .cipher_list = "DEFAULT@SECLEVEL=0"});
  EXPECT_FALSE(c);
}

TEST_F(TlsTest, Policy_CbcAndNonForwardSecretCiphersRefused) {
  for (const char* cipher : {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256"}) {
    auto r = s_client({"-tls1_2", "-cipher", cipher});
    EXPECT_NE(r.exit_code, 0) << cipher << ": " << r.out;
    EXPECT_NE((r.out + r.err).find("handshake failure"), std::string::npos)
        << cipher << ": " << r.out << r.err;
  }
  auto ok = s_client({"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

TEST_F(TlsTest, Resumption_TicketsWorkAcrossConnections) {
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    auto first = TlsClient::connect("127.0.0.1", pg_->https, {.sni = "app.example", .max_version = max});
    ASSERT_TRUE(first) << first.error;
    auto session = first->get_session();
    ASSERT_NE(session, nullptr);
    // Several resumptions: with two workers, the kernel spreads them, and the shared ticket
    // keys must let every worker resume.
    for (int i = 0; i < 6; ++i) {
      auto again = TlsClient::connect("127.0.0.1", pg_->https,
                                      {.sni = "app.example", .max_version = max, .session = session});
      ASSERT_TRUE(again) << again.error;
      EXPECT_TRUE(again->session_reused()) << "version " << max << " try " << i;
      // OpenSSL clients use a TLS 1.3 ticket once (RFC 8446 §C.4): carry on with the fresh one.
      if (max == TLS1_3_VERSION) session = again->get_session();
      ASSERT_NE(session, nullptr);
      // Without close_notify, the client's OpenSSL marks the shared session not resumable.
      again->send_close_notify();
    }
  }
}

TEST_F(PhigateTest, Profiles_ModernRefusesTls12_NistRefusesChaChaAndX25519) {
  auto up = start_upstream();
  const std::string routes =
      "  - host: app.example\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n";
  auto with_profile = [&](const std::string& profile) {
    auto yaml = config(routes);
    yaml.replace(yaml.find("tls:\n"), 5, "tls:\n  profile: " + profile + "\n");
    return yaml;
  };
  {
    auto pg = start_phigate(with_profile("modern"));
    EXPECT_FALSE(
        TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .max_version = TLS1_2_VERSION}));
    auto v13 = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    ASSERT_TRUE(v13) << v13.error;
    EXPECT_EQ(v13->negotiated_version(), "TLSv1.3");
  }
  {
    auto pg = start_phigate(with_profile("nist-800-52r2"));
    EXPECT_FALSE(TlsClient::connect("127.0.0.1", pg.https,
                                    {.sni = "app.example",
                                     .max_version = TLS1_2_VERSION,
                                     .cipher_list = "ECDHE-ECDSA-CHACHA20-POLY1305"}));
    EXPECT_FALSE(TlsClient::connect("127.0.0.1", pg.https,
                                    {.sni = "app.example", .ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"}));
    EXPECT_FALSE(TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .groups = "X25519"}));
    auto ok = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    ASSERT_TRUE(ok) << ok.error;
    EXPECT_NE(ok->negotiated_cipher().find("AES"), std::string::npos);
  }
}

TEST_F(PhigateTest, Policy_InsecureCipherListRefusedAtLoad) {
  auto yaml = config("  - paths: [{ path: /, backends: [\"127.0.0.1:9\"] }]\n");
  yaml.replace(yaml.find("tls:\n"), 5, "tls:\n  ciphers: \"ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA\"\n");
  auto r = run({bin("phigate"), "validate", "--config", dir_.write("weak.yaml", yaml)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("tls.ciphers admits AES128-SHA"), std::string::npos) << r.out;
  yaml.replace(yaml.find("tls:\n"), 5, "tls:\n  allow_insecure_tls: true\n");
  auto allowed = run({bin("phigate"), "validate", "--config", dir_.write("weak-ok.yaml", yaml)});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out;
  EXPECT_NE(allowed.out.find("warning: tls.ciphers: tls.ciphers admits AES128-SHA"), std::string::npos)
      << allowed.out;
}

// tls::Stream reads the socket through Asio into its own ciphertext buffer (src/tls/README.md):
// the segment boundaries below must not matter. tests/tls/tls_segments.py cuts the bytes.
class TlsSegmentsTest : public TlsTest {
 protected:
  RunResult segments(const std::string& mode) {
    RunOptions o;
    o.timeout = 30s;
    return run({"/usr/bin/python3", PHIGATE_TLS_SEGMENTS_SCRIPT, std::to_string(pg_->https), mode}, o);
  }
};

TEST_F(TlsSegmentsTest, ClientHelloInOneByteSegments) {
  auto r = segments("tiny");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;
}

TEST_F(TlsSegmentsTest, RequestInTheSegmentOfTheFinished) {
  // The request arrives with the handshake's last flight: it is read before the handshake ends
  // and must be served without the socket becoming readable again (wait_readable sees it).
  auto r = segments("pipelined");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;
}

TEST_F(TlsSegmentsTest, RequestAndCloseNotifyInOneSegment) {
  auto r = segments("closenotify");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;  // served, then the connection ends
  EXPECT_NE(r.out.find("eof"), std::string::npos) << r.out;
}

TEST_F(TlsSegmentsTest, OneMebibyteUploadEchoedWhole) {
  auto r = segments("upload");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("body 1048576\necho-ok"), std::string::npos) << r.out;
}

// The PROXY header is peeked and taken off the socket by its exact length before TLS reads
// anything: the ClientHello in the same segment must reach OpenSSL whole.
TEST_F(PhigateTest, TlsSegments_ProxyHeaderAndClientHelloInOneSegment) {
  auto up = start_upstream();
  auto yaml =
      config("  - host: app.example\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n");
  yaml.replace(yaml.find("  admin:"), 0, "  proxy_protocol: true\n");
  auto pg = start_phigate(yaml);
  RunOptions o;
  o.timeout = 30s;
  auto r = run({"/usr/bin/python3", PHIGATE_TLS_SEGMENTS_SCRIPT, std::to_string(pg.https), "proxy"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200", 0), 0u) << r.out;
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header(recs[0], "x-real-ip"), "198.51.100.7");
}

}  // namespace
}  // namespace phigate::test
