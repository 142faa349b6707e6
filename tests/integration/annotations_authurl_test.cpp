// auth-url (external authentication, docs/auth-external.md) through the real binary: an
// oauth2-proxy-style auth Service played by phigate-test-upstream (its records show what the
// subrequest carried; its query and control modes make it allow, refuse, stall or answer
// nonsense), a recording backend, the encrypted audit log read back. HTTP/1.1 and HTTP/2.
// Attackers: a client spoofing the identity fields, a client body that must never reach the auth
// service (nor the backend on a refusal), a malicious auth service (slow, garbage, huge head or
// body), and Ingress authors pointing auth-url at an arbitrary address (SSRF).
#include <gtest/gtest.h>

#include <thread>

#include <string>
#include <utility>
#include <vector>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "support/certs.hpp"
#include "support/net.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

/// An Ingress for app.example `path` (Prefix) → Service svc.
std::string path_ingress(const std::string& name, const std::string& path, const std::string& annotations) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n  annotations:\n" +
         annotations +
         "spec:\n  ingressClassName: phigate\n  rules:\n  - host: app.example\n    http:\n      paths:\n"
         "      - { path: " +
         path + ", pathType: Prefix, backend: { service: { name: svc, port: { number: 80 } } } }\n";
}

class AuthUrlTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    up_ = start_upstream("up");
    auth_ = start_upstream("auth");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_) + "---\n" + service_yaml("auth", *auth_));
  }
  Phigate start(const std::string& extra = "", const std::string& ingress_extra = "",
                bool one_worker = false) {
    auto yaml = config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms" +
                                     ingress_extra + " }\n" + extra + audit_yaml());
    // The auth-cache-key cache is per worker: one worker sees every request.
    if (one_worker) yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");
    return start_phigate(yaml);
  }
  /// auth-url to the auth Service with `query` (the test upstream's behaviour), plus `more`.
  static std::string auth(const std::string& query, const std::string& more = "") {
    return std::string(kN) + "auth-url: \"http://auth.default.svc.cluster.local/oauth2/auth" +
           (query.empty() ? "" : "?" + query) + "\"\n" + more;
  }
  void ingress(const std::string& name, const std::string& path, const std::string& annotations) {
    dir_.write("manifests/" + name + ".yaml", path_ingress(name, path, annotations));
  }
  /// "<status> <Location>" of one request (`args`: -H, --data-binary, ...).
  std::string call(const Phigate& pg, const std::string& path, std::vector<std::string> args = {},
                   const std::string& proto = "--http1.1") {
    std::vector<std::string> a = {proto,       "--path-as-is", "-o",
                                  "/dev/null", "-w",           "%{http_code} %{redirect_url}"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(https_url(pg, path));
    auto out = curl(pg, a).out;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }
  void auth_control(const std::string& query) {
    const auto r = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://" + auth_->address() + "/__control?" + query});
    ASSERT_EQ(r.out, "200") << r.err;
  }
  static std::size_t count_in(const std::vector<std::string>& recs, const std::string& fragment) {
    std::size_t n = 0;
    for (const auto& r : recs) n += has(r, fragment) ? 1 : 0;
    return n;
  }
  std::optional<Upstream> up_, auth_;
};

// The oauth2-proxy flow, allowed: the subrequest carries the original URL, method, client cookie
// and request id, never the client's body (nor its framing); the identity the auth service
// answers reaches the backend (the client's forged one never does) and the audit record.
TEST_F(AuthUrlTest, AllowedIdentityReachesBackendAndAuditNeverTheBodyH1AndH2) {
  ingress("web", "/",
          auth("header=X-Auth-Request-User:alice&header=X-Auth-Request-Email:alice@example.org&"
               "header=Set-Cookie:_oauth2_proxy%3Drefreshed",
               std::string(kN) + "auth-response-headers: X-Auth-Request-User, X-Auth-Request-Email\n"));
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto r = curl(
        pg, {proto, "-sS", "-D", "-", "-o", "/dev/null", "-H", "X-Auth-Request-User: mallory", "-H",
             "Cookie: _oauth2_proxy=tok", "--data-binary", "secret-body", https_url(pg, "/api/items?id=7")});
    EXPECT_NE(r.out.find(" 200"), std::string::npos) << proto << r.out;
    // The auth answer's cookie reaches the client with the backend's answer (as add_header).
    EXPECT_NE(r.out.find("_oauth2_proxy=refreshed"), std::string::npos) << proto << r.out;
  }
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& line : seen) {
    EXPECT_EQ(record_header_count(line, "x-auth-request-user"), 1) << line;
    EXPECT_EQ(record_header(line, "x-auth-request-user"), "alice") << line;
    EXPECT_EQ(record_header(line, "x-auth-request-email"), "alice@example.org") << line;
    EXPECT_EQ(json_field(line, "body_bytes"), "11") << line;
  }
  const auto asked = proxied_requests(*auth_);
  ASSERT_EQ(asked.size(), 2u);
  for (const auto& line : asked) {
    EXPECT_EQ(json_field(line, "method"), "GET") << line;
    EXPECT_EQ(json_field(line, "target").rfind("/oauth2/auth?header=", 0), 0u) << line;
    EXPECT_EQ(json_field(line, "body_bytes"), "0") << line;
    EXPECT_EQ(record_header(line, "content-length"), "") << line;
    EXPECT_EQ(record_header(line, "transfer-encoding"), "") << line;
    EXPECT_EQ(record_header(line, "host"), "auth.default.svc.cluster.local") << line;
    EXPECT_EQ(record_header(line, "x-original-url"),
              "https://app.example:" + std::to_string(pg.https) + "/api/items?id=7")
        << line;
    EXPECT_EQ(record_header(line, "x-original-method"), "POST") << line;
    EXPECT_EQ(record_header(line, "x-auth-request-redirect"), "/api/items?id=7") << line;
    EXPECT_EQ(record_header(line, "x-sent-from"), "phigate") << line;
    EXPECT_EQ(record_header(line, "x-real-ip"), "127.0.0.1") << line;
    EXPECT_EQ(record_header(line, "cookie"), "_oauth2_proxy=tok") << line;
    EXPECT_NE(record_header(line, "x-request-id"), "") << line;
  }
  const auto audit = stop_and_read_audit(pg);
  EXPECT_EQ(count_in(audit, "\"/api/items\""), 2u);
  for (const auto& rec : audit) {
    if (!has(rec, "\"/api/items\"")) continue;
    EXPECT_TRUE(has(rec, "\"user\":{\"name\":\"alice\",\"email\":\"alice@example.org\"}")) << rec;
    EXPECT_FALSE(has(rec, "tok")) << rec;
  }
}

// 401 without auth-signin is 401; with it, 302 to the sign-in page with rd = the original URL,
// percent-encoded; 403 is 403. The backend sees none of them (nor their bodies); one audit record
// each, ruled by auth-external.
TEST_F(AuthUrlTest, DeniedUnauthorizedAndSigninRedirectNeverReachTheBackend) {
  ingress("plain", "/plain", auth(""));
  ingress("signin", "/signin",
          auth("", std::string(kN) + "auth-signin: \"https://login.example/oauth2/start\"\n"));
  ingress("custom", "/custom",
          auth("", std::string(kN) + "auth-signin: \"https://$host/start?x=1\"\n" + kN +
                       "auth-signin-redirect-param: back\n"));
  auto pg = start();
  auth_control("status=401");
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(call(pg, "/plain/a", {}, proto), "401") << proto;
    EXPECT_EQ(call(pg, "/signin/a?b=c%20d&e", {}, proto),
              "302 https://login.example/oauth2/start?rd=https%3A%2F%2Fapp.example%3A" +
                  std::to_string(pg.https) + "%2Fsignin%2Fa%3Fb%3Dc%2520d%26e")
        << proto;
    EXPECT_EQ(call(pg, "/custom/z", {}, proto), "302 https://app.example:" + std::to_string(pg.https) +
                                                    "/start?x=1&back=https%3A%2F%2Fapp.example%3A" +
                                                    std::to_string(pg.https) + "%2Fcustom%2Fz")
        << proto;
  }
  // A refusal of a request with a body (HTTP/1.1: curl 7.88 may drop an early HTTP/2 answer).
  EXPECT_EQ(call(pg, "/plain/upload", {"--data-binary", "secret-body"}), "401");
  auth_control("status=403");
  for (const char* proto : {"--http1.1", "--http2"})
    EXPECT_EQ(call(pg, "/plain/a", {}, proto), "403") << proto;
  EXPECT_EQ(call(pg, "/signin/a", {"--data-binary", "secret-body"}), "403");
  EXPECT_TRUE(proxied_requests(*up_).empty());
  for (const auto& line : proxied_requests(*auth_)) EXPECT_EQ(json_field(line, "body_bytes"), "0") << line;
  const auto audit = stop_and_read_audit(pg);
  // One record each: 3 x 401, 4 x 302 to the sign-in page, 3 x 403, all ruled by auth-external.
  EXPECT_EQ(count_in(audit, "\"rule\":\"auth-external\""), 10u);
  std::size_t unauthorized = 0, signin = 0, forbidden = 0;
  for (const auto& rec : audit) {
    if (!has(rec, "\"/plain/") && !has(rec, "\"/signin/") && !has(rec, "\"/custom/")) continue;
    EXPECT_TRUE(has(rec, "\"rule\":\"auth-external\"")) << rec;
    unauthorized += has(rec, "\"status_code\":401") && has(rec, "\"decision\":\"denied\"") ? 1 : 0;
    signin += has(rec, "\"status_code\":302") && has(rec, "\"decision\":\"redirected\"") ? 1 : 0;
    forbidden += has(rec, "\"status_code\":403") && has(rec, "\"decision\":\"denied\"") ? 1 : 0;
  }
  EXPECT_EQ(unauthorized, 3u);
  EXPECT_EQ(signin, 4u);
  EXPECT_EQ(forbidden, 3u);
}

// A client's own identity fields never reach the backend, even when the auth answer lacks them.
TEST_F(AuthUrlTest, SpoofedIdentityFieldsAreStrippedEvenWhenTheAnswerLacksThem) {
  ingress("web", "/",
          auth("", std::string(kN) + "auth-response-headers: X-Auth-Request-User,X-Auth-Request-Groups\n"));
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(
        call(pg, "/a", {"-H", "X-Auth-Request-User: admin", "-H", "x-auth-request-groups: admins"}, proto),
        "200")
        << proto;
  }
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& line : seen) {
    EXPECT_EQ(record_header_count(line, "x-auth-request-user"), 0) << line;
    EXPECT_EQ(record_header_count(line, "x-auth-request-groups"), 0) << line;
  }
}

// A malicious or broken auth service fails closed with 500: down, too slow (limits.auth_timeout),
// not HTTP, an oversized head, an endless body, an unexpected status. One audit record each; the
// backend never sees any of these requests.
TEST_F(AuthUrlTest, BrokenAuthServiceFailsClosedWith500AndOneAuditRecordEach) {
  ingress("slow", "/slow", auth("delay_ms=6000"));
  ingress("garbage", "/garbage", auth("garbage=1"));
  ingress("bighead", "/bighead", auth("big_header=64k"));
  ingress("bigbody", "/bigbody", auth("bytes=10m"));
  ingress("status", "/status", auth("status=302"));
  ingress("ok", "/ok", auth(""));
  // 2 s: the answers that must arrive (/ok) have room on a loaded ASan machine; /slow's never does.
  auto pg = start("limits: { auth_timeout: 2s }\n");
  const std::vector<std::string> paths = {"/slow", "/garbage", "/bighead", "/bigbody", "/status"};
  for (const char* proto : {"--http1.1", "--http2"}) {
    for (const auto& p : paths) EXPECT_EQ(call(pg, p + "/x", {}, proto), "500") << p << " " << proto;
    EXPECT_EQ(call(pg, "/ok/x", {}, proto), "200") << proto;
  }
  // Down: the auth Service's only endpoint is gone.
  auth_->process.terminate();
  for (const char* proto : {"--http1.1", "--http2"}) EXPECT_EQ(call(pg, "/ok/y", {}, proto), "500") << proto;
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& line : seen) EXPECT_EQ(json_field(line, "target"), "/ok/x") << line;
  const auto page = metrics(pg);
  EXPECT_EQ(metric(page, "phigate_auth_external_checks_total{result=\"error\"}"), "12");
  const auto audit = stop_and_read_audit(pg);
  EXPECT_EQ(count_in(audit, "\"rule\":\"auth-external\""), 12u);
  for (const auto& rec : audit) {
    if (has(rec, "\"rule\":\"auth-external\"")) {
      EXPECT_TRUE(has(rec, "\"decision\":\"error\"")) << rec;
    }
  }
  for (const auto& p : paths) EXPECT_EQ(count_in(audit, "\"" + p + "/x\""), 2u) << p;
  EXPECT_EQ(count_in(audit, "\"/ok/y\""), 2u);
  EXPECT_TRUE(has(find(audit, "\"/slow/x\""), "auth_external_timeout")) << find(audit, "\"/slow/x\"");
  EXPECT_TRUE(has(find(audit, "\"/ok/y\""), "auth_external_unreachable")) << find(audit, "\"/ok/y\"");
}

// proxy-request-buffering: "on": the request is decided again once its body is whole; the auth
// service is asked once per request, and the identity still reaches the backend.
TEST_F(AuthUrlTest, BufferedUploadsAskTheAuthServiceOnce) {
  ingress("web", "/",
          auth("header=X-Auth-Request-User:alice", std::string(kN) +
                                                       "auth-response-headers: X-Auth-Request-User\n" + kN +
                                                       "proxy-request-buffering: \"on\"\n"));
  auto pg = start();
  const auto file = dir_.write("upload.bin", std::string(30000, 'u'));
  for (const char* proto : {"--http1.1", "--http2"})
    EXPECT_EQ(call(pg, "/upload", {"--data-binary", "@" + file}, proto), "200") << proto;
  EXPECT_EQ(proxied_requests(*auth_).size(), 2u);
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& line : seen) {
    EXPECT_EQ(json_field(line, "body_bytes"), "30000") << line;
    EXPECT_EQ(record_header_count(line, "x-auth-request-user"), 1) << line;
  }
}

// An Ingress author cannot make phigate send client cookies to an arbitrary address: auth-url
// must be a Service of the Ingress's namespace (or ingress.auth_url_namespaces). Anything else
// fails the Ingress closed (503) with an error naming the Ingress and the annotation.
TEST_F(AuthUrlTest, SsrfExternalHostIpOtherNamespaceOrVariableFailsClosed) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"external", "https://auth.example.com/oauth2/auth"},
      {"ip", "http://127.0.0.1:" + std::to_string(auth_->port) + "/oauth2/auth"},
      {"variable", "http://$host/oauth2/auth"},
      {"otherns", "http://auth.kube-system.svc/oauth2/auth"},
      {"noservice", "http://nosuch.default.svc/oauth2/auth"},
      {"userinfo", "http://evil.com@auth.default.svc/oauth2/auth"},
  };
  for (const auto& [name, url] : bad)
    ingress(name, "/" + name, std::string(kN) + "auth-url: \"" + url + "\"\n");
  auto pg = start();
  for (const auto& [name, url] : bad) {
    for (const char* proto : {"--http1.1", "--http2"})
      EXPECT_EQ(call(pg, "/" + name + "/a", {}, proto), "503") << name;
    EXPECT_NE(pg.process.output().find("Ingress default/" + name), std::string::npos) << name;
  }
  const auto out = pg.process.output();
  EXPECT_NE(out.find("auth-url"), std::string::npos) << out;
  EXPECT_NE(out.find("<service>.<namespace>.svc"), std::string::npos) << out;
  EXPECT_NE(out.find("neither the Ingress's own nor listed in ingress.auth_url_namespaces"),
            std::string::npos)
      << out;
  EXPECT_TRUE(proxied_requests(*up_).empty());
  EXPECT_TRUE(proxied_requests(*auth_).empty());
}

// ingress.auth_url_namespaces lets an operator name a shared namespace (a shared oauth2-proxy).
TEST_F(AuthUrlTest, AuthUrlNamespacesAdmitsASharedNamespace) {
  auto svc = service_yaml("oauth", *auth_);
  for (std::size_t at = 0; (at = svc.find("namespace: default", at)) != std::string::npos;)
    svc.replace(at, 18, "namespace: shared");
  dir_.write("manifests/shared.yaml", svc);
  ingress("web", "/", std::string(kN) + "auth-url: \"http://oauth.shared.svc/oauth2/auth\"\n");
  {
    auto pg = start();
    EXPECT_EQ(call(pg, "/a"), "503");
    EXPECT_TRUE(pg.process.send_signal(SIGTERM));
    EXPECT_EQ(pg.process.wait_exit(20s), 0);
  }
  EXPECT_TRUE(proxied_requests(*auth_).empty());
  auto pg = start("", ", auth_url_namespaces: [shared]");
  for (const char* proto : {"--http1.1", "--http2"}) EXPECT_EQ(call(pg, "/a", {}, proto), "200") << proto;
  EXPECT_EQ(proxied_requests(*auth_).size(), 2u);
  EXPECT_EQ(proxied_requests(*up_).size(), 2u);
}

// https auth-url: TLS to the auth Service's endpoints, verified against the auth-url host with the
// Ingress's proxy-ssl-secret CA. An endpoint whose certificate names another host never gets the
// request (nor the client's cookies): 500.
TEST_F(AuthUrlTest, HttpsAuthServiceIsVerifiedAgainstTheServiceName) {
  const auto tls_upstream = [&](const CertPaths& cert, const std::string& name) {
    const std::string record = dir_.path(name + ".jsonl");
    auto p = Process::start({bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--record", record,
                             "--name", name, "--tls-cert", cert.cert, "--tls-key", cert.key});
    const auto line = p.wait_for_line("ready ", 10s);
    if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
    const auto hp = parse_host_port(line->substr(line->find("ready ") + 6));
    return Upstream{std::move(p), hp->port, record};
  };
  auto good = tls_upstream(make_leaf(dir_.path(), ca_, "tlsauth", {"tlsauth.default.svc"}), "tlsauth");
  auto bad = tls_upstream(make_leaf(dir_.path(), ca_, "elsewhere", {"elsewhere.example"}), "badauth");
  const auto client =
      make_leaf(dir_.path(), ca_, "phigate-client", {"phigate-client"}, KeyType::EcdsaP256, true);
  dir_.write("manifests/tls-services.yaml",
             service_yaml("tlsauth", good) + "---\n" + service_yaml("badauth", bad));
  dir_.write("manifests/ca.yaml",
             "apiVersion: v1\nkind: Secret\nmetadata: { name: backend-ca, namespace: default }\n"
             "data:\n  ca.crt: " +
                 b64(read_file(ca_.cert)) + "\n  tls.crt: " + b64(read_file(client.cert)) +
                 "\n  tls.key: " + b64(read_file(client.key)) + "\n");
  const std::string secret = std::string(kN) + "proxy-ssl-secret: default/backend-ca\n";
  ingress("good", "/good",
          std::string(kN) + "auth-url: \"https://tlsauth.default.svc:80/oauth2/auth\"\n" + secret);
  ingress("bad", "/bad",
          std::string(kN) + "auth-url: \"https://badauth.default.svc:80/oauth2/auth\"\n" + secret);
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(call(pg, "/good/a", {"-H", "Cookie: s=1"}, proto), "200") << proto;
    EXPECT_EQ(call(pg, "/bad/a", {"-H", "Cookie: s=1"}, proto), "500") << proto;
  }
  EXPECT_EQ(proxied_requests(good).size(), 2u);
  EXPECT_TRUE(proxied_requests(bad).empty());
  ASSERT_EQ(proxied_requests(*up_).size(), 2u);
  for (const auto& line : proxied_requests(*up_)) EXPECT_EQ(json_field(line, "target"), "/good/a") << line;
}

// A WebSocket upgrade is authorized like any request: refused before anything reaches the backend,
// and the hop-by-hop upgrade fields never go to the auth service.
TEST_F(AuthUrlTest, WebSocketUpgradesAreAuthorizedWithoutHopByHopFields) {
  ingress("web", "/", auth(""));
  auto pg = start();
  const std::vector<std::string> upgrade = {
      "-H", "Connection: Upgrade",       "-H", "Upgrade: websocket",
      "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="};
  auth_control("status=401");
  EXPECT_EQ(call(pg, "/ws", upgrade), "401");
  EXPECT_TRUE(proxied_requests(*up_).empty());
  auth_control("status=0");
  call(pg, "/ws", upgrade);  // the test upstream does not switch: whatever it answers is relayed
  EXPECT_EQ(proxied_requests(*up_).size(), 1u);
  const auto asked = proxied_requests(*auth_);
  ASSERT_EQ(asked.size(), 2u);
  for (const auto& line : asked) {
    EXPECT_EQ(record_header(line, "upgrade"), "") << line;
    EXPECT_EQ(record_header(line, "connection"), "") << line;
    EXPECT_EQ(record_header(line, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==") << line;
  }
}

// auth-keepalive: "0" closes each auth connection after its answer (ingress-nginx's default); without
// it the connection stays in the worker's pool for the next subrequest.
TEST_F(AuthUrlTest, AuthKeepaliveZeroClosesEachAuthConnection) {
  ingress("pooled", "/pooled", auth(""));
  ingress("closed", "/closed", auth("", std::string(kN) + "auth-keepalive: \"0\"\n"));
  auto pg = start("", "", true);
  const auto open_to_auth = [&] {
    const auto r =
        run({"ss", "-Htn", "state", "established", "( dport = :" + std::to_string(auth_->port) + " )"});
    int n = 0;
    for (const char c : r.out) n += c == '\n';
    return n;
  };
  EXPECT_EQ(call(pg, "/closed/x"), "200");
  int open = -1;
  for (int i = 0; i < 100 && open != 0; ++i) {
    open = open_to_auth();
    if (open != 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(open, 0);
  EXPECT_EQ(call(pg, "/pooled/x"), "200");
  EXPECT_EQ(open_to_auth(), 1);  // kept for the next subrequest
}

// auth-cache-key: an answer is reused for the same key (here the session cookie) within
// auth-cache-duration, per worker; another key asks again; statuses not listed are never cached.
TEST_F(AuthUrlTest, CachedAnswersPerKeyAndStatus) {
  ingress("web", "/",
          auth("header=X-Auth-Request-User:alice",
               std::string(kN) + "auth-response-headers: X-Auth-Request-User\n" + kN +
                   "auth-cache-key: \"$cookie_session\"\n" + kN + "auth-cache-duration: \"200 1m\"\n"));
  auto pg = start("", "", true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call(pg, "/a", {"-H", "Cookie: session=A"}), "200") << i;
  EXPECT_EQ(proxied_requests(*auth_).size(), 1u);
  EXPECT_EQ(call(pg, "/a", {"-H", "Cookie: session=B"}, "--http2"), "200");
  EXPECT_EQ(proxied_requests(*auth_).size(), 2u);
  auth_control("status=403");
  // Cached: A and B still pass (with the cached identity); C is asked and refused, twice (a 403
  // is not listed in auth-cache-duration).
  EXPECT_EQ(call(pg, "/a", {"-H", "Cookie: session=A"}), "200");
  EXPECT_EQ(call(pg, "/a", {"-H", "Cookie: session=C"}), "403");
  EXPECT_EQ(call(pg, "/a", {"-H", "Cookie: session=C"}), "403");
  EXPECT_EQ(proxied_requests(*auth_).size(), 4u);
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 5u);
  for (const auto& line : seen) EXPECT_EQ(record_header(line, "x-auth-request-user"), "alice") << line;
  EXPECT_EQ(metric(metrics(pg), "phigate_auth_external_checks_total{result=\"cached\"}"), "3");
  // Never under one shared entry: without the cookie (the key's only variable empty) each request
  // asks; A's cached GET answer does not answer A's DELETE.
  EXPECT_EQ(call(pg, "/a"), "403");
  EXPECT_EQ(call(pg, "/a"), "403");
  EXPECT_EQ(proxied_requests(*auth_).size(), 6u);
  EXPECT_EQ(call(pg, "/a", {"-X", "DELETE", "-H", "Cookie: session=A"}), "403");
  EXPECT_EQ(proxied_requests(*auth_).size(), 7u);
  EXPECT_EQ(proxied_requests(*up_).size(), 5u);
}

// ingress.global_auth: the operator's auth-url (of any namespace) applies to every Ingress without
// its own, unless the Ingress says enable-global-auth: "false".
TEST_F(AuthUrlTest, GlobalAuthAppliesUnlessTheIngressOptsOut) {
  auto svc = service_yaml("oauth", *auth_);
  for (std::size_t at = 0; (at = svc.find("namespace: default", at)) != std::string::npos;)
    svc.replace(at, 18, "namespace: auth");
  dir_.write("manifests/global.yaml", svc);
  ingress("web", "/web", std::string(kN) + "ssl-redirect: \"true\"\n");
  ingress("open", "/open", std::string(kN) + "enable-global-auth: \"false\"\n");
  auto pg = start(
      "", ", global_auth: { url: \"http://oauth.auth.svc/global\", signin: \"https://login.example/\" }");
  auth_control("status=401");
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(call(pg, "/web/a", {}, proto), "302 https://login.example/?rd=https%3A%2F%2Fapp.example%3A" +
                                                 std::to_string(pg.https) + "%2Fweb%2Fa")
        << proto;
    EXPECT_EQ(call(pg, "/open/a", {}, proto), "200") << proto;
  }
  auth_control("status=0");
  EXPECT_EQ(call(pg, "/web/b"), "200");
  const auto asked = proxied_requests(*auth_);
  ASSERT_EQ(asked.size(), 3u);
  for (const auto& line : asked) EXPECT_EQ(json_field(line, "target"), "/global") << line;
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 3u);
}

}  // namespace
}  // namespace phigate::test
