// Mutual TLS per host (Ingress auth-tls-*), with real clients: curl and openssl s_client for the
// certificate cases, a raw TLS client for SNI/Host mismatches and session resumption.
#include <algorithm>
#include <filesystem>

#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

class MtlsTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    client_ca_ = make_ca(dir_.path(), "Client CA");
    good_ = make_leaf(dir_.path(), client_ca_, "good-client", {}, KeyType::EcdsaP256, true);
    revoked_ = make_leaf(dir_.path(), client_ca_, "revoked-client", {}, KeyType::EcdsaP256, true);
    const auto stranger_ca = make_ca(dir_.path(), "Stranger CA");
    stranger_ = make_leaf(dir_.path(), stranger_ca, "stranger", {}, KeyType::EcdsaP256, true);
    const auto crl = make_crl(dir_.path(), client_ca_, {revoked_});
    up_.emplace(start_upstream("a"));
    dir_.write("manifests/services.yaml", service_yaml("svc-a", *up_));
    dir_.write("manifests/ca.yaml",
               "apiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\ndata:\n"
               "  ca.crt: " +
                   b64(read_file(client_ca_.cert)) + "\n  ca.crl: " + b64(read_file(crl)) + "\n");
    const std::string a = "    nginx.ingress.kubernetes.io/";
    dir_.write("manifests/ingress.yaml",
               ingress_yaml("secure", "secure.app.example", "svc-a",
                            a + "auth-tls-secret: default/client-ca\n" + a +
                                "auth-tls-pass-certificate-to-upstream: \"true\"\n") +
                   "---\n" +
                   ingress_yaml("opt", "opt.app.example", "svc-a",
                                a + "auth-tls-secret: default/client-ca\n" + a +
                                    "auth-tls-verify-client: optional\n") +
                   "---\n" +
                   ingress_yaml("noca", "noca.app.example", "svc-a",
                                a + "auth-tls-verify-client: optional_no_ca\n") +
                   "---\n" + ingress_yaml("open", "app.example", "svc-a"));
    // With the audit log on: client-certificate facts and refusals must reach it.
    std::filesystem::create_directories(dir_.path("keys"));
    ASSERT_EQ(run({"openssl", "rand", "-base64", "-out", dir_.path("keys/k.key"), "32"}).exit_code, 0);
    pg_.emplace(start("audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") +
                      ", active_key: k }\n"));
  }

  /// curl to `host` (resolved to 127.0.0.1) with an optional client certificate; returns
  /// "<status> <body>".
  std::string get(const std::string& host, const CertPaths* cert = nullptr,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--resolve", host + ":" + std::to_string(pg_->https) + ":127.0.0.1", "-w",
                                  " %{http_code}"};
    if (cert != nullptr) {
      args.insert(args.end(), {"--cert", cert->cert, "--key", cert->key});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(https_url(*pg_, "/", host));
    auto r = curl(*pg_, args);
    auto out = r.out;
    const auto sp = out.rfind(' ');
    return sp == std::string::npos ? out : out.substr(sp + 1) + " " + out.substr(0, sp);
  }

  /// A raw TLS connection with `sni`, one request with `host`; the response status (0: none).
  int status_over(const std::string& sni, const std::string& host, const CertPaths* cert = nullptr) {
    TlsClientOptions o{.sni = sni, .ca_file = ca_.cert};
    if (cert != nullptr) {
      o.cert_file = cert->cert;
      o.key_file = cert->key;
    }
    auto c = TlsClient::connect("127.0.0.1", pg_->https, o);
    if (!c) return 0;
    if (!c->write("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n")) return 0;
    auto r = c->read_http_response(5s);
    return r ? r->status : 0;
  }

  CertPaths client_ca_, good_, revoked_, stranger_;
  std::optional<Upstream> up_;
  std::optional<Phigate> pg_;
};

std::string fingerprint(const std::string& cert) {
  auto r = run({"openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"});
  std::string hex = r.out.substr(r.out.find('=') + 1);
  hex.erase(std::remove_if(hex.begin(), hex.end(), [](char c) { return c == ':' || c == '\n'; }), hex.end());
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](char c) { return static_cast<char>(std::tolower(c)); });
  return hex;
}

TEST_F(MtlsTest, RequiredCertificate_NoneWrongCaRevokedAndGood) {
  const auto none = get("secure.app.example");
  EXPECT_EQ(none.substr(0, 4), "400 ");
  EXPECT_NE(none.find("no required SSL certificate was sent"), std::string::npos) << none;
  EXPECT_EQ(get("secure.app.example", &stranger_).substr(0, 4), "400 ");
  const auto revoked = get("secure.app.example", &revoked_);
  EXPECT_EQ(revoked.substr(0, 4), "400 ");
  EXPECT_NE(revoked.find("the SSL certificate error"), std::string::npos) << revoked;
  EXPECT_TRUE(up_->records().empty()) << "a refused client reached the backend";

  // The good certificate, and headers forged by the client under our names.
  const auto ok = get("secure.app.example", &good_,
                      {"-H", "ssl-client-verify: FORGED", "-H", "SSL-Client-Subject-DN: CN=admin"});
  EXPECT_EQ(ok.substr(0, 4), "200 ") << ok;
  const auto recs = up_->records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header_count(recs[0], "ssl-client-verify"), 1);
  EXPECT_EQ(record_header(recs[0], "ssl-client-verify"), "SUCCESS");
  EXPECT_EQ(record_header_count(recs[0], "ssl-client-subject-dn"), 1);
  EXPECT_EQ(record_header(recs[0], "ssl-client-subject-dn"), "CN=good-client");
  EXPECT_EQ(record_header(recs[0], "ssl-client-issuer-dn"), "CN=Client CA");
  EXPECT_EQ(record_header(recs[0], "ssl-client-fingerprint"), fingerprint(good_.cert));
  EXPECT_FALSE(record_header(recs[0], "ssl-client-serial").empty());
  const auto pem = record_header(recs[0], "ssl-client-cert");
  EXPECT_EQ(pem.rfind("-----BEGIN%20CERTIFICATE-----%0A", 0), 0u) << pem;

  // The same with openssl s_client, the other real client: good certificate, then none.
  auto s_client = [&](bool with_cert) {
    std::vector<std::string> argv{"openssl",     "s_client",
                                  "-quiet",      "-ign_eof",
                                  "-connect",    "127.0.0.1:" + std::to_string(pg_->https),
                                  "-servername", "secure.app.example",
                                  "-CAfile",     ca_.cert};
    if (with_cert) argv.insert(argv.end(), {"-cert", good_.cert, "-key", good_.key});
    auto r =
        run(argv, {.timeout = 20s,
                   .stdin_data = "GET / HTTP/1.1\r\nHost: secure.app.example\r\nConnection: close\r\n\r\n"});
    return r.out.substr(0, r.out.find("\r\n"));
  };
  EXPECT_EQ(s_client(true), "HTTP/1.1 200 OK");
  EXPECT_EQ(s_client(false), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(up_->records().size(), 2u);

  // The audit log has the certificate of the admitted request and the reason of each refusal.
  EXPECT_EQ(pg_->process.terminate(), 0);
  auto d = run({bin("phigate"), "audit", "decrypt", "--keys", dir_.path("keys"), dir_.path("audit")});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  int admitted = 0, refused = 0;
  std::size_t pos = 0;
  for (auto nl = d.out.find('\n'); nl != std::string::npos; pos = nl + 1, nl = d.out.find('\n', pos)) {
    const auto rec = d.out.substr(pos, nl - pos);
    if (rec.find("\"status_code\":200") != std::string::npos) {
      ++admitted;
      EXPECT_NE(rec.find("\"subject\":{\"distinguished_name\":\"CN=good-client\"}"), std::string::npos)
          << rec;
      EXPECT_NE(rec.find("\"sha256\":\"" + fingerprint(good_.cert) + "\""), std::string::npos) << rec;
      EXPECT_NE(rec.find("\"verify\":\"SUCCESS\""), std::string::npos) << rec;
    } else if (rec.find("\"status_code\":400") != std::string::npos) {
      ++refused;
      EXPECT_NE(rec.find("\"rule\":\"client-certificate\""), std::string::npos) << rec;
      EXPECT_NE(rec.find("\"decision\":\"denied\""), std::string::npos) << rec;
    }
  }
  EXPECT_EQ(admitted, 2);
  EXPECT_EQ(refused, 4);
}

TEST_F(MtlsTest, OptionalAndOptionalNoCa) {
  EXPECT_EQ(get("opt.app.example").substr(0, 4), "200 ");
  EXPECT_EQ(get("opt.app.example", &good_).substr(0, 4), "200 ");
  EXPECT_EQ(get("opt.app.example", &stranger_).substr(0, 4), "400 ");   // presented, but invalid
  EXPECT_EQ(get("noca.app.example", &stranger_).substr(0, 4), "200 ");  // no CA to check against
  const auto recs = up_->records();
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(record_header(recs[0], "ssl-client-verify"), "NONE");
  EXPECT_EQ(record_header(recs[1], "ssl-client-verify"), "SUCCESS");
  EXPECT_EQ(record_header(recs[2], "ssl-client-verify").rfind("FAILED:", 0), 0u);
  EXPECT_EQ(record_header(recs[2], "ssl-client-subject-dn"), "CN=stranger");
  EXPECT_EQ(record_header(recs[1], "ssl-client-cert"), "");  // not asked for on this Ingress
}

TEST_F(MtlsTest, HostWithAnotherPolicyThanSniIsMisdirected) {
  // SNI of a host without client certificates, then Host of one that requires them.
  EXPECT_EQ(status_over("app.example", "secure.app.example"), 421);
  EXPECT_EQ(status_over("", "secure.app.example"), 421);  // no SNI at all
  // The other way round: authenticated for secure, asking for another policy's host.
  EXPECT_EQ(status_over("secure.app.example", "opt.app.example", &good_), 421);
  // Same policy on both sides is fine (connection reuse across hosts without client certs).
  EXPECT_EQ(status_over("app.example", "app.example"), 200);
  EXPECT_EQ(status_over("secure.app.example", "secure.app.example", &good_), 200);
  EXPECT_EQ(up_->records().size(), 2u);
}

TEST_F(MtlsTest, DefaultCertificateForUnknownSniThenMtlsHost_NeverServed) {
  // An SNI no certificate names gets the default certificate and no client-certificate policy;
  // Host of a host that requires one must then be refused (421), with or without a certificate.
  for (const bool with_cert : {false, true}) {
    TlsClientOptions o{.sni = "unknown.example", .ca_file = ca_.cert, .verify_name = "app.example"};
    if (with_cert) {
      o.cert_file = good_.cert;
      o.key_file = good_.key;
    }
    auto c = TlsClient::connect("127.0.0.1", pg_->https, o);
    ASSERT_TRUE(c) << c.error;
    ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: secure.app.example\r\n\r\n"));
    const auto r = c->read_http_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 421) << (with_cert ? "with" : "without") << " a certificate";
  }
  EXPECT_TRUE(up_->records().empty());
}

TEST_F(MtlsTest, ResumedSessionNeverCarriesAnotherHostsPolicy) {
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    TlsClientOptions open{.sni = "app.example", .ca_file = ca_.cert};
    open.min_version = open.max_version = version;
    auto first = TlsClient::connect("127.0.0.1", pg_->https, open);
    ASSERT_TRUE(first) << first.error;
    ASSERT_TRUE(first->write("GET / HTTP/1.1\r\nHost: app.example\r\n\r\n"));
    ASSERT_TRUE(first->read_http_response(5s));
    auto session = first->get_session();
    ASSERT_TRUE(session);
    // Control: the session resumes on its own host, so the check below can fail.
    auto again = open;
    again.session = session;
    auto same = TlsClient::connect("127.0.0.1", pg_->https, again);
    ASSERT_TRUE(same) << same.error;
    EXPECT_TRUE(same->session_reused());
    // Offered to the host that requires a certificate: not resumed, and no certificate → 400.
    auto other = again;
    other.sni = "secure.app.example";
    auto c = TlsClient::connect("127.0.0.1", pg_->https, other);
    ASSERT_TRUE(c) << c.error;
    EXPECT_FALSE(c->session_reused());
    ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: secure.app.example\r\n\r\n"));
    auto r = c->read_http_response(5s);
    ASSERT_TRUE(r) << c->error();
    EXPECT_EQ(r->status, 400);
  }
  // A session made with a good certificate resumes on its host and stays authenticated.
  TlsClientOptions secure{
      .sni = "secure.app.example", .ca_file = ca_.cert, .cert_file = good_.cert, .key_file = good_.key};
  auto first = TlsClient::connect("127.0.0.1", pg_->https, secure);
  ASSERT_TRUE(first) << first.error;
  ASSERT_TRUE(first->write("GET / HTTP/1.1\r\nHost: secure.app.example\r\n\r\n"));
  ASSERT_TRUE(first->read_http_response(5s));
  secure.session = first->get_session();
  ASSERT_TRUE(secure.session);
  secure.cert_file.clear();
  secure.key_file.clear();
  auto resumed = TlsClient::connect("127.0.0.1", pg_->https, secure);
  ASSERT_TRUE(resumed) << resumed.error;
  EXPECT_TRUE(resumed->session_reused());
  ASSERT_TRUE(resumed->write("GET / HTTP/1.1\r\nHost: secure.app.example\r\n\r\n"));
  auto r = resumed->read_http_response(5s);
  ASSERT_TRUE(r) << resumed->error();
  EXPECT_EQ(r->status, 200);
  const auto recs = up_->records();
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(record_header(recs.back(), "ssl-client-subject-dn"), "CN=good-client");
}

TEST_F(MtlsTest, PerIngressCiphersAndHsts) {
  const std::string a = "    nginx.ingress.kubernetes.io/";
  rewrite(
      *pg_, "extra.yaml",
      ingress_yaml("strong", "strong.app.example", "svc-a",
                   a + "ssl-ciphers: \"ECDHE-ECDSA-AES256-GCM-SHA384\"\n    phigate.io/hsts: \"false\"\n") +
          "---\n" +
          ingress_yaml("weak", "weak.app.example", "svc-a", a + "ssl-ciphers: \"ECDHE-ECDSA-AES128-SHA\"\n"));
  TlsClientOptions o{.sni = "strong.app.example", .ca_file = ca_.cert, .max_version = TLS1_2_VERSION};
  o.cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256";  // allowed globally, not on this host
  EXPECT_FALSE(TlsClient::connect("127.0.0.1", pg_->https, o));
  o.cipher_list = "ECDHE-ECDSA-AES256-GCM-SHA384";
  auto c = TlsClient::connect("127.0.0.1", pg_->https, o);
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: strong.app.example\r\n\r\n"));
  auto r = c->read_http_response(5s);
  ASSERT_TRUE(r) << c->error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("strict-transport-security"), "");  // phigate.io/hsts: "false"
  auto open = TlsClient::connect("127.0.0.1", pg_->https, {.sni = "app.example", .ca_file = ca_.cert});
  ASSERT_TRUE(open) << open.error;
  ASSERT_TRUE(open->write("GET / HTTP/1.1\r\nHost: app.example\r\n\r\n"));
  r = open->read_http_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("strict-transport-security"), "max-age=31536000; includeSubDomains");
  // A non-AEAD list is refused for that Ingress only: it fails closed.
  EXPECT_EQ(get("weak.app.example").substr(0, 4), "503 ");
  EXPECT_NE(pg_->process.output().find("ECDHE-ECDSA-AES128-SHA, which is not AEAD"), std::string::npos)
      << pg_->process.output();
}

}  // namespace
}  // namespace phigate::test
