// HTTP/2 to clients end to end (docs/http2.md): ALPN h2 over TLS (http2.enabled,
// http2.disabled_hosts, a reload flipping them), never cleartext HTTP/2, and the HTTP/1.1
// behaviour re-run over h2 with real clients (curl --http2, nghttp) in front of real backends
// (phigate-test-upstream, nginx): routing, access lists, body size, mTLS per request, 421,
// HSTS, forwarding headers, one audit record per request, metrics. Every suite test runs twice,
// over HTTP/1.1 and over h2, and asserts which protocol it really spoke.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ingress_fixture.hpp"
#include "support/hash.hpp"
#include "support/nginx.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

int count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

/// The value of a labelled sample in a Prometheus text page ("" when absent).
std::string metric(const std::string& page, const std::string& sample) {
  const auto at = page.find("\n" + sample + " ");
  if (at == std::string::npos) return {};
  const auto v = at + sample.size() + 2;
  return page.substr(v, page.find('\n', v) - v);
}

/// An Ingress with one Prefix path (ingress_yaml's is always "/").
std::string path_ingress_yaml(const std::string& name, const std::string& host, const std::string& path,
                              const std::string& service) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\nspec:\n  ingressClassName: "
         "phigate\n  rules:\n  - host: " +
         host + "\n    http:\n      paths:\n      - { path: " + path +
         ", pathType: Prefix, backend: { service: { name: " + service + ", port: { number: 80 } } } }\n";
}

enum class Proto { Http1, H2 };

std::string proto_name(const ::testing::TestParamInfo<Proto>& p) {
  return p.param == Proto::H2 ? "h2" : "http1";
}

/// One curl answer: status, the protocol curl spoke ("2", "1.1"), head + body as received.
struct Reply {
  std::string code;
  std::string version;
  std::string out;  // -i: the head, then the body
  std::string err;
};

/// phigate fed by Ingress manifests, with the audit log on, in front of two test upstreams:
///   app.example/ -> a, app.example/only-b -> b, other.example -> b,
///   secure.app.example (client certificate required) -> a, allow.app.example (10.0.0.0/8 only)
///   -> a, small.app.example (proxy-body-size 1k) -> a; none.app.example has no Ingress.
class H2Suite : public IngressTest, public ::testing::WithParamInterface<Proto> {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    client_ca_ = make_ca(dir_.path(), "Client CA");
    good_ = make_leaf(dir_.path(), client_ca_, "good-client", {}, KeyType::EcdsaP256, true);
    a_.emplace(start_upstream("a"));
    b_.emplace(start_upstream("b"));
    dir_.write("manifests/services.yaml", service_yaml("svc-a", *a_) + "---\n" + service_yaml("svc-b", *b_));
    dir_.write("manifests/ca.yaml",
               "apiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\ndata:\n"
               "  ca.crt: " +
                   b64(read_file(client_ca_.cert)) + "\n");
    const std::string a = "    nginx.ingress.kubernetes.io/";
    dir_.write("manifests/ingress.yaml",
               ingress_yaml("open", "app.example", "svc-a") + "---\n" +
                   path_ingress_yaml("only-b", "app.example", "/only-b", "svc-b") + "---\n" +
                   ingress_yaml("other", "other.example", "svc-b") + "---\n" +
                   ingress_yaml("secure", "secure.app.example", "svc-a",
                                a + "auth-tls-secret: default/client-ca\n") +
                   "---\n" +
                   ingress_yaml("allow", "allow.app.example", "svc-a",
                                a + "whitelist-source-range: \"10.0.0.0/8\"\n") +
                   "---\n" +
                   ingress_yaml("small", "small.app.example", "svc-a", a + "proxy-body-size: \"1k\"\n"));
    std::filesystem::create_directories(dir_.path("keys"));
    ASSERT_EQ(run({"openssl", "rand", "-base64", "-out", dir_.path("keys/k.key"), "32"}).exit_code, 0);
    pg_.emplace(start("audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") +
                      ", active_key: k }\n"));
  }

  bool h2() const { return GetParam() == Proto::H2; }
  std::string want_version() const { return h2() ? "2" : "1.1"; }

  /// curl over this test's protocol to https://<host>:<port><path>; `extra` before the URL. More
  /// URLs in `more_paths` go on the same connection (HTTP/2: concurrent streams of it).
  Reply fetch(const std::string& host, const std::string& path, std::vector<std::string> extra = {},
              const std::vector<std::string>& more_paths = {}) {
    std::vector<std::string> args{h2() ? "--http2" : "--http1.1",
                                  "-i",
                                  "--resolve",
                                  host + ":" + std::to_string(pg_->https) + ":127.0.0.1",
                                  "-w",
                                  "\n@@%{http_code} %{http_version}"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(https_url(*pg_, path, host));
    for (const auto& p : more_paths) args.push_back(https_url(*pg_, p, host));
    auto r = curl(*pg_, args);
    Reply out{.code = "", .version = "", .out = r.out, .err = r.err};
    const auto at = r.out.rfind("\n@@");
    if (at != std::string::npos) {
      const auto tail = r.out.substr(at + 3);
      out.code = tail.substr(0, tail.find(' '));
      out.version = tail.substr(tail.find(' ') + 1);
      out.out = r.out.substr(0, at);
    }
    return out;
  }

  /// Decrypted audit records after phigate stopped (its drain flushes them), one JSON line each.
  std::vector<std::string> audit_records_after_stop() {
    pg_->process.terminate();
    auto r = run({bin("phigate"), "audit", "decrypt", "--keys", dir_.path("keys"), dir_.path("audit")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }

  CertPaths client_ca_, good_;
  std::optional<Upstream> a_, b_;
  std::optional<Phigate> pg_;
};

INSTANTIATE_TEST_SUITE_P(Protocols, H2Suite, ::testing::Values(Proto::Http1, Proto::H2), proto_name);

TEST_P(H2Suite, RoutingLocalAnswersAndHsts) {
  const auto root = fetch("app.example", "/");
  ASSERT_EQ(root.code, "200") << root.out << root.err;
  EXPECT_EQ(root.version, want_version()) << "curl spoke another protocol";
  EXPECT_NE(lower(root.out).find("x-upstream-name: a"), std::string::npos) << root.out;
  // RFC 6797 on every HTTPS response, local ones too; exactly one field.
  const std::string hsts = "strict-transport-security: max-age=31536000; includesubdomains";
  EXPECT_EQ(count(lower(root.out), hsts), 1) << root.out;

  const auto only_b = fetch("app.example", "/only-b/x");  // by path
  EXPECT_EQ(only_b.code, "200");
  EXPECT_NE(lower(only_b.out).find("x-upstream-name: b"), std::string::npos) << only_b.out;
  const auto other = fetch("other.example", "/");  // by host
  EXPECT_EQ(other.code, "200");
  EXPECT_NE(lower(other.out).find("x-upstream-name: b"), std::string::npos) << other.out;

  const auto none = fetch("none.app.example", "/");
  EXPECT_EQ(none.code, "404") << none.out;
  EXPECT_EQ(none.version, want_version());
  EXPECT_EQ(count(lower(none.out), hsts), 1) << none.out;
  EXPECT_EQ(fetch("allow.app.example", "/").code, "403");  // whitelist-source-range
  const auto big = fetch("small.app.example", "/upload", {"--data-binary", std::string(2048, 'x')});
  EXPECT_EQ(big.code, "413") << big.out;
  EXPECT_EQ(fetch("small.app.example", "/upload", {"--data-binary", std::string(512, 'x')}).code, "200");

  // Only the admitted requests reached a backend: /, /upload (512 bytes) on a; two on b.
  const auto a = a_->records();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(json_field(a[1], "body_bytes"), "512");
  EXPECT_EQ(b_->records().size(), 2u);
}

TEST_P(H2Suite, ForwardingHeadersBodyAndForgedClientFactsStripped) {
  const auto get = fetch("app.example", "/hello?x=1",
                         {"-H", "X-Forwarded-For: 6.6.6.6", "-H", "ssl-client-verify: SUCCESS", "-H",
                          "SSL-Client-Subject-DN: CN=admin", "-H", "X-Request-Id: h2-test-1"});
  ASSERT_EQ(get.code, "200") << get.out << get.err;
  EXPECT_EQ(get.version, want_version());
  const auto post = fetch("app.example", "/submit?echo=1", {"--data-binary", "patient=42"});
  ASSERT_EQ(post.code, "200");
  EXPECT_NE(post.out.find("\r\n\r\npatient=42"), std::string::npos) << post.out;

  const auto recs = a_->records();
  ASSERT_EQ(recs.size(), 2u);
  const auto& g = recs[0];
  EXPECT_EQ(json_field(g, "method"), "GET");
  EXPECT_EQ(json_field(g, "target"), "/hello?x=1");
  EXPECT_EQ(json_field(g, "version"), "1.1");  // HTTP/1.1 to the backend whatever the client spoke
  EXPECT_EQ(record_header_count(g, "x-forwarded-for"), 1);
  EXPECT_EQ(record_header(g, "x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(record_header(g, "x-forwarded-proto"), "https");
  EXPECT_EQ(record_header(g, "x-forwarded-host"), "app.example:" + std::to_string(pg_->https));
  EXPECT_EQ(record_header(g, "x-real-ip"), "127.0.0.1");
  EXPECT_EQ(record_header_count(g, "host"), 1);
  EXPECT_EQ(record_header(g, "host"), "app.example:" + std::to_string(pg_->https));
  // The client's own ssl-client-* are never passed on (this host asks for no certificate).
  EXPECT_NE(record_header(g, "ssl-client-verify"), "SUCCESS") << g;
  EXPECT_EQ(record_header_count(g, "ssl-client-subject-dn"), 0) << g;
  EXPECT_EQ(record_header_count(g, ":authority"), 0) << g;  // no pseudo-header leaks upstream
  EXPECT_EQ(json_field(recs[1], "method"), "POST");
  EXPECT_EQ(json_field(recs[1], "body_bytes"), "10");
  EXPECT_EQ(json_field(recs[1], "body_sha256"), sha256_hex("patient=42"));
}

TEST_P(H2Suite, ClientCertificatePerRequestAndMisdirected421) {
  const auto none = fetch("secure.app.example", "/");
  EXPECT_EQ(none.code, "400") << none.out;
  EXPECT_EQ(none.version, want_version());
  EXPECT_NE(none.out.find("no required SSL certificate was sent"), std::string::npos) << none.out;
  EXPECT_TRUE(a_->records().empty()) << "a refused client reached the backend";

  const auto ok = fetch("secure.app.example", "/",
                        {"--cert", good_.cert, "--key", good_.key, "-H", "ssl-client-verify: FORGED"});
  ASSERT_EQ(ok.code, "200") << ok.out << ok.err;
  EXPECT_EQ(ok.version, want_version());
  auto recs = a_->records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header_count(recs[0], "ssl-client-verify"), 1);
  EXPECT_EQ(record_header(recs[0], "ssl-client-verify"), "SUCCESS");

  // SNI app.example (no client certificate asked), :authority / Host of the mTLS host: the TLS
  // policy differs, so the request is misdirected (RFC 9110 §15.5.20), never served.
  const auto mis = fetch("app.example", "/", {"-H", "Host: secure.app.example"});
  EXPECT_EQ(mis.code, "421") << mis.out;
  EXPECT_EQ(mis.version, want_version());
  EXPECT_EQ(a_->records().size(), 1u);
}

TEST_P(H2Suite, OneAuditRecordPerRequestAndRequestMetrics) {
  // Three requests on one connection (HTTP/2: streams 1, 3 and 5), one refused locally (404).
  const auto r = fetch("app.example", "/one", {"-o", "/dev/null", "-o", "/dev/null"}, {"/two", "/three"});
  ASSERT_EQ(r.code, "200") << r.out << r.err;
  EXPECT_EQ(r.version, want_version());
  EXPECT_EQ(fetch("none.app.example", "/").code, "404");
  const auto page = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg_->admin) + "/metrics"}).out;
  if (h2()) {
    EXPECT_EQ(metric(page, "phigate_requests_total{protocol=\"h2\"}"), "4") << page;
    EXPECT_EQ(metric(page, "phigate_requests_total{protocol=\"http/1.1\"}"), "0") << page;
    EXPECT_EQ(metric(page, "phigate_h2_connections_total"), "2") << page;
  } else {
    EXPECT_EQ(metric(page, "phigate_requests_total{protocol=\"h2\"}"), "0") << page;
    EXPECT_EQ(metric(page, "phigate_requests_total{protocol=\"http/1.1\"}"), "4") << page;
  }

  const auto recs = audit_records_after_stop();
  ASSERT_EQ(recs.size(), 4u);
  std::vector<std::string> streams;
  for (const auto& rec : recs) {
    EXPECT_NE(rec.find("\"version\":\"" + want_version() + "\""), std::string::npos) << rec;
    const auto s = json_field(rec, "h2_stream");
    if (h2()) {
      EXPECT_FALSE(s.empty()) << rec;
    } else {
      EXPECT_TRUE(s.empty()) << rec;
    }
    streams.push_back(s);
  }
  if (h2()) {
    std::sort(streams.begin(), streams.end());
    // The connection with three requests had streams 1, 3, 5; the 404's own connection stream 1.
    EXPECT_EQ(streams, (std::vector<std::string>{"1", "1", "3", "5"}));
  }
  EXPECT_EQ(count(recs[0] + recs[1] + recs[2] + recs[3], "\"status_code\":404"), 1);
}

// Real HTTP/2 clients and a real nginx behind phigate: nghttp multiplexes on one connection.
TEST_F(PhigateTest, H2_NghttpAndCurlToNginxBehindPhigate) {
  Nginx nginx = Nginx::start(dir_);
  std::ofstream(nginx.root_dir() + "/index.html") << "from nginx\n";
  auto pg = start_phigate(config("  - host: app.example\n    paths: [{ path: /, backends: [\"127.0.0.1:" +
                                 std::to_string(nginx.port()) + "\"] }]\n"));
  auto c = curl(pg, {"--http2", "-w", "@@%{http_version}", https_url(pg, "/index.html")});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "from nginx\n@@2");
  auto head = curl(pg, {"--http2", "-I", https_url(pg, "/index.html")});
  EXPECT_NE(lower(head.out).find("content-length: 11"), std::string::npos) << head.out;

  // nghttp sends no SNI for an IP address: the default certificate (app.example) answers, and
  // :authority names the host. Five concurrent streams on one connection.
  RunOptions o;
  o.timeout = 30s;
  const std::string url = "https://127.0.0.1:" + std::to_string(pg.https) + "/index.html";
  auto n = run({"nghttp", "-v", "-t", "20", "-m", "5", "-H", ":authority: app.example", url}, o);
  ASSERT_EQ(n.exit_code, 0) << n.out << n.err;
  EXPECT_NE(n.out.find("The negotiated protocol: h2"), std::string::npos) << n.out;
  EXPECT_EQ(count(n.out, ":status: 200"), 5) << n.out;
  EXPECT_EQ(count(n.out, "from nginx"), 5) << n.out;
}

class H2AlpnTest : public PhigateTest {
 protected:
  std::string alpn(const Phigate& pg, const std::string& sni, std::vector<std::string> offer) {
    // No certificate check: the names under *.legacy.app.example are deeper than any certificate's.
    auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = sni, .alpn = offer});
    if (!c) return "connect failed: " + c.error;
    return c->negotiated_protocol();
  }
  /// openssl s_client's own report of the ALPN answer.
  std::string s_client(const Phigate& pg, const std::string& sni) {
    RunOptions o;
    o.stdin_data = "Q\n";
    o.timeout = 15s;
    auto r = run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(pg.https), "-servername",
                  sni, "-alpn", "h2,http/1.1"},
                 o);
    for (const char* what : {"ALPN protocol: ", "No ALPN negotiated"}) {
      if (const auto at = r.out.find(what); at != std::string::npos) {
        return r.out.substr(at, r.out.find('\n', at) - at);
      }
    }
    return "no ALPN line: " + r.out + r.err;
  }
  std::string routes(const Upstream& up) const {
    return "  - host: app.example\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n";
  }
  void reload(Phigate& pg, const std::string& yaml, int generation) {
    dir_.write("phigate.yaml", yaml);
    const auto mark = pg.process.output().size();
    ASSERT_TRUE(pg.process.send_signal(SIGHUP));
    ASSERT_TRUE(pg.process.wait_for_line("generation " + std::to_string(generation), 10s, mark))
        << pg.process.output().substr(mark);
  }
};

TEST_F(H2AlpnTest, H2PreferredUnlessDisabledForTheHost_ReloadAppliesToNewConnections) {
  auto up = start_upstream();
  const auto with = [&](const std::string& http2) { return config(routes(up), http2); };
  auto pg = start_phigate(with("http2: { disabled_hosts: [\"other.example\", \"*.legacy.app.example\"] }\n"));
  // The server's preference wins whatever the client's order (RFC 7301 §3.2).
  EXPECT_EQ(alpn(pg, "app.example", {"h2", "http/1.1"}), "h2");
  EXPECT_EQ(alpn(pg, "app.example", {"http/1.1", "h2"}), "h2");
  EXPECT_EQ(alpn(pg, "app.example", {"http/1.1"}), "http/1.1");
  EXPECT_EQ(s_client(pg, "app.example"), "ALPN protocol: h2");
  // A host in http2.disabled_hosts (exact, or one label under a wildcard) gets http/1.1 only...
  EXPECT_EQ(alpn(pg, "other.example", {"h2", "http/1.1"}), "http/1.1");
  EXPECT_EQ(alpn(pg, "a.legacy.app.example", {"h2", "http/1.1"}), "http/1.1");
  EXPECT_EQ(alpn(pg, "a.b.legacy.app.example", {"h2", "http/1.1"}), "h2");  // one label only
  EXPECT_EQ(s_client(pg, "other.example"), "ALPN protocol: http/1.1");
  // ...and a client that offers only h2 there gets no ALPN answer, not a failed handshake.
  EXPECT_EQ(alpn(pg, "other.example", {"h2"}), "");
  auto c =
      curl(pg, {"--http2", "-o", "/dev/null", "-w", "%{http_version}", https_url(pg, "/", "other.example")});
  EXPECT_EQ(c.out, "1.1") << c.err;  // other.example has no route: the 404 comes over HTTP/1.1

  // A reload turning HTTP/2 off applies to the next connection; an open one keeps its protocol.
  auto open = TlsClient::connect("127.0.0.1", pg.https,
                                 {.sni = "app.example", .ca_file = ca_.cert, .alpn = {"h2", "http/1.1"}});
  ASSERT_TRUE(open) << open.error;
  EXPECT_EQ(open->negotiated_protocol(), "h2");
  reload(pg, with("http2: { enabled: false }\n"), 2);
  EXPECT_EQ(alpn(pg, "app.example", {"h2", "http/1.1"}), "http/1.1");
  EXPECT_EQ(s_client(pg, "app.example"), "ALPN protocol: http/1.1");
  c = curl(pg, {"--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", https_url(pg, "/")});
  EXPECT_EQ(c.out, "200 1.1") << c.err;
  EXPECT_EQ(open->negotiated_protocol(), "h2");
  // And back on.
  reload(pg, with(""), 3);
  EXPECT_EQ(alpn(pg, "app.example", {"h2", "http/1.1"}), "h2");
  EXPECT_EQ(alpn(pg, "other.example", {"h2", "http/1.1"}), "h2");
}

// Never h2c (RFC 9113 §3.1 removed the Upgrade; prior knowledge is not offered in cleartext):
// the plain listener's HTTP/1 parser answers the connection preface with 400 and closes.
TEST_F(PhigateTest, H2_CleartextPriorKnowledgeAndUpgradeRefused) {
  auto up = start_upstream();
  auto pg = start_phigate(
      config("  - host: app.example\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n"));
  auto c = PlainClient::connect("127.0.0.1", pg.http);
  ASSERT_TRUE(c) << c.error;
  // The preface, then an empty SETTINGS frame (length 0, type 4, flags 0, stream 0).
  ASSERT_TRUE(
      c->write(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\x04\0\0\0\0\0", 9)));
  const auto r = c->read_http_response(5s);
  ASSERT_TRUE(r) << c->error();
  EXPECT_EQ(r->status, 400);
  c->read_all(5s);
  EXPECT_TRUE(c->closed());

  // curl --http2 on http:// asks for Upgrade: h2c; it is never granted (no 101).
  auto u = run({"curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "-H",
                "Host: app.example", "http://127.0.0.1:" + std::to_string(pg.http) + "/"});
  EXPECT_EQ(u.out.substr(u.out.find(' ') + 1), "1.1") << u.out << u.err;
  EXPECT_NE(u.out.substr(0, 3), "101") << u.out;
  // Prior knowledge in cleartext fails outright.
  auto p = run({"curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "--max-time", "10",
                "http://127.0.0.1:" + std::to_string(pg.http) + "/"});
  EXPECT_NE(p.exit_code, 0) << p.out;
  for (const auto& rec : up.records()) EXPECT_EQ(rec.find("PRI"), std::string::npos) << rec;
}

// RFC 8441 (WebSocket over HTTP/2) is not offered: a WebSocket client offers http/1.1 in ALPN and
// gets its upgrade over HTTP/1.1, with h2 enabled for the same host.
TEST_F(PhigateTest, H2_WebSocketClientOfferingHttp11GetsItsUpgrade) {
  auto p = Process::start({"/usr/bin/python3", std::string(PHIGATE_WS_DIR) + "/ws_server.py"});
  const auto line = p.wait_for_line("ready ", 20s);
  ASSERT_TRUE(line) << p.output();
  const auto port = std::to_string(std::stoi(line->substr(line->find("ready ") + 6)));
  auto pg = start_phigate(
      config("  - host: app.example\n    paths: [{ path: /, backends: [\"127.0.0.1:" + port + "\"] }]\n"));
  auto c = TlsClient::connect("127.0.0.1", pg.https,
                              {.sni = "app.example", .ca_file = ca_.cert, .alpn = {"http/1.1"}});
  ASSERT_TRUE(c) << c.error;
  ASSERT_EQ(c->negotiated_protocol(), "http/1.1");
  ASSERT_TRUE(
      c->write("GET /echo HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  const auto r = c->read_http_response(10s);
  ASSERT_TRUE(r) << c->error();
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(lower(r->header("upgrade")), "websocket");
  // The same host, the same moment: a client offering h2 gets h2.
  auto h2c = TlsClient::connect("127.0.0.1", pg.https,
                                {.sni = "app.example", .ca_file = ca_.cert, .alpn = {"h2", "http/1.1"}});
  ASSERT_TRUE(h2c) << h2c.error;
  EXPECT_EQ(h2c->negotiated_protocol(), "h2");
}

}  // namespace
}  // namespace phigate::test
