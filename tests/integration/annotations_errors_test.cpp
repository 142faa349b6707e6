// ingress-nginx upstream-flow annotations through the real binary: custom-http-errors with
// default-backend (and disable-proxy-intercept-errors), default-backend for a path without a ready
// endpoint, connection-proxy-header and proxy-http-version. Manifests in a watched folder,
// recording backends (phigate-test-upstream --record), the encrypted audit log read back.
#include <gtest/gtest.h>

#include <cctype>
#include <csignal>
#include <string>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "ws_server.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";
constexpr std::string_view kMarker = "PHI-of-someone-else";

/// A Service `name` whose EndpointSlice names `port` on 127.0.0.1 (`ready` as given).
std::string service_on(const std::string& name, std::uint16_t port, bool ready = true) {
  return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name +
         ", namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
         name + "-abc\n  namespace: default\n  labels: { kubernetes.io/service-name: " + name +
         " }\naddressType: IPv4\nports: [{ name: http, port: " + std::to_string(port) +
         " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: " +
         (ready ? "true" : "false") + " }\n";
}

class ErrorsTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    main_ = start_upstream("main");
    errors_ = start_upstream("errors");
    dir_.write("manifests/services.yaml",
               service_yaml("svc-main", *main_) + "---\n" + service_yaml("errors", *errors_));
  }
  Phigate start(const std::string& ingress_extra = "") {
    return start_phigate(config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms" +
                                              ingress_extra + " }\n" + audit_yaml()));
  }
  /// Rewrites a manifest and waits for the reload that follows it.
  void rewrite(Phigate& pg, const std::string& file, const std::string& yaml) {
    const auto mark = pg.process.output().size();
    dir_.write("manifests/" + file, yaml);
    ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  }
  void ingress(const std::string& annotations) {
    dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-main", annotations));
  }
  static std::string errors_annotations(const std::string& codes = "404,503", const std::string& more = "") {
    return std::string(kN) + "custom-http-errors: \"" + codes + "\"\n" + kN +
           "default-backend: \"errors\"\n" + more;
  }
  /// `-i` output (status line, fields, body) of one request.
  std::string fetch(const Phigate& pg, const std::string& path, std::vector<std::string> args = {}) {
    args.insert(args.begin(), "-i");
    args.push_back(https_url(pg, path));
    return curl(pg, args).out;
  }
  /// `--next` and the options curl() sets that --next resets (same connection when they match).
  std::vector<std::string> next(const Phigate& pg, const std::string& protocol = "--http1.1") const {
    return {"--next", "-i",        "--cacert",
            ca_.cert, "--resolve", "app.example:" + std::to_string(pg.https) + ":127.0.0.1",
            protocol};
  }
  static std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  static std::string status_of(const std::string& out) { return out.size() >= 12 ? out.substr(9, 3) : out; }
  /// Every upstream answer of the error backend from now on has this status (0: its own default).
  void error_backend_status(int status) {
    const auto r = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://" + errors_->address() + "/__control?status=" + std::to_string(status)});
    ASSERT_EQ(r.out, "200") << r.err;
  }

  std::optional<Upstream> main_, errors_;
};

// The ingress-nginx custom-errors example: custom-http-errors "404,503" with default-backend. A
// listed status from the backend is replaced by the error backend's answer to GET /, which is told
// what happened; other statuses pass unchanged; one audit record per request says error_page.
TEST_F(ErrorsTest, ListedStatusIsReplacedByTheErrorBackendsPage) {
  ingress(errors_annotations());
  auto pg = start();
  error_backend_status(503);
  const auto paged = fetch(pg, "/shop/cart?status=503", {"-H", "Accept: application/json"});
  EXPECT_EQ(status_of(paged), "503") << paged;
  EXPECT_NE(paged.find("X-Upstream-Name: errors"), std::string::npos) << paged;
  auto reqs = proxied_requests(*errors_);
  ASSERT_EQ(reqs.size(), 1u);
  const auto& e = reqs[0];
  EXPECT_EQ(json_field(e, "method"), "GET");
  EXPECT_EQ(json_field(e, "target"), "/");
  EXPECT_EQ(json_field(e, "body_bytes"), "0");
  EXPECT_EQ(record_header(e, "X-Code"), "503");
  EXPECT_EQ(record_header(e, "X-Format"), "application/json");
  EXPECT_EQ(record_header(e, "X-Original-URI"), "/shop/cart?status=503");
  EXPECT_EQ(record_header(e, "X-Namespace"), "default");
  EXPECT_EQ(record_header(e, "X-Ingress-Name"), "web");
  EXPECT_EQ(record_header(e, "X-Service-Name"), "svc-main");
  EXPECT_EQ(record_header(e, "X-Service-Port"), "80");
  EXPECT_FALSE(record_header(e, "X-Request-ID").empty());
  EXPECT_EQ(record_header(e, "Host").rfind("app.example:", 0), 0u);  // the client's Host

  // 404 too; HEAD stays HEAD.
  const auto head = fetch(pg, "/missing?status=404", {"-I"});
  EXPECT_EQ(status_of(head), "503") << head;  // the error backend's own status (control: 503)
  reqs = proxied_requests(*errors_);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(json_field(reqs[1], "method"), "HEAD");
  EXPECT_EQ(record_header(reqs[1], "X-Code"), "404");

  // Not listed: the backend's answer as it is.
  EXPECT_EQ(status_of(fetch(pg, "/x?status=500")), "500");
  EXPECT_EQ(status_of(fetch(pg, "/ok")), "200");
  EXPECT_EQ(proxied_requests(*errors_).size(), 2u);

  const auto audit = stop_and_read_audit(pg);
  int cart = 0;
  for (const auto& rec : audit) cart += has(rec, "/shop/cart") ? 1 : 0;
  EXPECT_EQ(cart, 1) << "exactly one audit record for the request whose page was fetched";
  const auto rec = find(audit, "/shop/cart");
  EXPECT_TRUE(has(rec, "\"error_page\":503")) << rec;
  EXPECT_FALSE(has(find(audit, "/ok"), "error_page"));
}

// The error backend's answer is never intercepted again, even with a listed status.
TEST_F(ErrorsTest, ErrorBackendsListedStatusIsNotInterceptedAgain) {
  ingress(errors_annotations("503"));
  auto pg = start();
  error_backend_status(503);
  EXPECT_EQ(status_of(fetch(pg, "/?status=503")), "503");
  EXPECT_EQ(proxied_requests(*errors_).size(), 1u);
}

// Malicious backend: a listed 500 whose body is someone's PHI, followed by bytes no framing
// explains. The client gets only the page; the unread body never reaches the next request on the
// pool, which gets its own answer from a new backend connection.
TEST_F(ErrorsTest, InterceptedBodyNeverReachesTheClientNorPoisonsThePool) {
  ingress(errors_annotations("500"));
  auto pg = start();
  auto args = cat({"-i", "--data-binary", std::string(kMarker),
                   https_url(pg, "/leak?status=500&echo=1&overlong=1&stray=same")},
                  next(pg));
  args = cat(cat(args, {https_url(pg, "/after?bytes=5")}), next(pg));
  args.push_back(https_url(pg, "/big?status=500&bytes=1m"));
  const auto out = curl(pg, args).out;
  EXPECT_EQ(out.find(kMarker), std::string::npos) << out.substr(0, 2000);
  EXPECT_NE(out.find("abcde"), std::string::npos) << "the next request got its own answer";
  EXPECT_EQ(out.find("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789a"),
            std::string::npos)
      << "the intercepted 1 MiB body never reached the client";
  const auto reqs = proxied_requests(*main_);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_NE(json_field(reqs[0], "conn"), json_field(reqs[1], "conn"))
      << "the intercepted answer's connection was discarded, never pooled";
  EXPECT_EQ(proxied_requests(*errors_).size(), 2u);
}

// A misbehaving error backend (silent past the read timeout): the client gets phigate's own answer
// with the intercepted status, never the intercepted body, and one audit record.
TEST_F(ErrorsTest, SilentErrorBackendFallsBackToPhigatesOwnAnswer) {
  ingress(errors_annotations("500", std::string(kN) + "proxy-read-timeout: \"1\"\n"));
  auto pg = start();
  const auto stall = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://" + errors_->address() + "/__control?stall_ms=3000"});
  ASSERT_EQ(stall.out, "200") << stall.err;
  const auto out = fetch(pg, "/slow?status=500&echo=1", {"--data-binary", std::string(kMarker)});
  EXPECT_EQ(status_of(out), "500") << out;
  EXPECT_EQ(out.find(kMarker), std::string::npos) << out;
  EXPECT_EQ(out.find("X-Upstream-Name"), std::string::npos) << out;
  const auto audit = stop_and_read_audit(pg);
  int n = 0;
  for (const auto& rec : audit) n += has(rec, "/slow") ? 1 : 0;
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(has(find(audit, "/slow"), "error_page_unavailable")) << find(audit, "/slow");
}

// Malicious client: it cannot choose X-Code or any field the error backend trusts, nor the
// error backend itself (an annotation of its Ingress names it; nothing in the request does).
TEST_F(ErrorsTest, ClientCannotForgeTheErrorBackendsFields) {
  ingress(errors_annotations("503"));
  auto pg = start();
  fetch(pg, "/?status=503",
        {"-H", "X-Code: 200", "-H", "X-Namespace: kube-system", "-H", "X-Service-Name: secrets", "-H",
         "X-Original-URI: /admin", "-H", "X-Ingress-Name: other"});
  const auto reqs = proxied_requests(*errors_);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(record_header_count(reqs[0], "X-Code"), 1);
  EXPECT_EQ(record_header(reqs[0], "X-Code"), "503");
  EXPECT_EQ(record_header(reqs[0], "X-Namespace"), "default");
  EXPECT_EQ(record_header(reqs[0], "X-Service-Name"), "svc-main");
  EXPECT_EQ(record_header(reqs[0], "X-Original-URI"), "/?status=503");
  EXPECT_EQ(record_header(reqs[0], "X-Ingress-Name"), "web");
  // A 200 the client asks for with X-Code is just a 200 from the main.
  EXPECT_EQ(status_of(fetch(pg, "/", {"-H", "X-Code: 503"})), "200");
  EXPECT_EQ(proxied_requests(*errors_).size(), 1u);
}

// default-backend without custom-http-errors: a path whose Service has no ready endpoint is
// served by the default-backend, which gets the original request (method, target, body) with
// X-Code: 503; a forged X-Code is replaced.
TEST_F(ErrorsTest, NoReadyEndpointSendsTheOriginalRequestToTheDefaultBackend) {
  dir_.write("manifests/services.yaml",
             service_on("svc-main", main_->port, false) + "---\n" + service_yaml("errors", *errors_));
  ingress(std::string(kN) + "default-backend: \"errors\"\n");
  auto pg = start();
  // HTTP/1.1 and HTTP/2 alike (HTTP/2 answered 503 before), with a body and without.
  const std::vector<std::string> protos = {"--http1.1", "--http2"};
  for (std::size_t i = 0; i < protos.size(); ++i) {
    const auto& proto = protos[i];
    const auto out =
        fetch(pg, "/orders" + std::to_string(i) + "?id=7",
              {proto, "--data-binary", "hello", "-H", "X-Code: 200", "-H", "X-Service-Name: forged"});
    // "HTTP/1.1 200 OK" or "HTTP/2 200"; field names in lower case over HTTP/2.
    const auto status = [](const std::string& o) { return o.substr(o.find(' ') + 1, 3); };
    std::string lower = out;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_EQ(status(out), "200") << proto << out;
    EXPECT_NE(lower.find("x-upstream-name: errors"), std::string::npos) << out;
    EXPECT_EQ(status(fetch(pg, "/get", {proto})), "200") << proto;
    const auto reqs = proxied_requests(*errors_);
    ASSERT_EQ(reqs.size(), 2 * i + 2) << proto;
    const auto& post = reqs[2 * i];
    EXPECT_EQ(json_field(post, "method"), "POST") << proto;
    EXPECT_EQ(json_field(post, "target"), "/orders" + std::to_string(i) + "?id=7") << proto;
    EXPECT_EQ(json_field(post, "body_bytes"), "5") << proto;
    EXPECT_EQ(record_header_count(post, "X-Code"), 1) << proto;
    EXPECT_EQ(record_header(post, "X-Code"), "503") << proto;
    EXPECT_EQ(record_header_count(post, "X-Service-Name"), 1) << proto;
    EXPECT_EQ(record_header(post, "X-Service-Name"), "svc-main") << proto;
    EXPECT_EQ(json_field(reqs[2 * i + 1], "method"), "GET") << proto;
    EXPECT_EQ(json_field(reqs[2 * i + 1], "target"), "/get") << proto;
  }
  EXPECT_TRUE(proxied_requests(*main_).empty());
  const auto audit = stop_and_read_audit(pg);
  for (const char* path : {"\"path\":\"/orders0\"", "\"path\":\"/orders1\""})
    EXPECT_TRUE(has(find(audit, path), "\"error_page\":503")) << find(audit, path);
  EXPECT_TRUE(has(find(audit, "\"path\":\"/orders1\""), "\"version\":\"2\""))
      << find(audit, "\"path\":\"/orders1\"");
}

// Both kinds of error backend request carry phigate's forwarding fields exactly once, over
// HTTP/1.1 and HTTP/2 alike: the page request (custom-http-errors: GET /, told the client's
// X-Forwarded-For and the main request's X-Request-ID) and the original request sent to the
// default-backend (no ready endpoint). A client's forged values never reach either.
TEST_F(ErrorsTest, ErrorBackendRequestsCarryOurForwardingFieldsOnce) {
  ingress(errors_annotations("503"));
  auto pg = start();
  const std::vector<std::string> forged = {"-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Request-ID: forged",
                                           "-H", "X-Real-IP: 6.6.6.6",       "-H", "Forwarded: for=6.6.6.6"};
  const std::vector<std::string> protos = {"--http1.1", "--http2"};
  std::size_t seen = 0;  // requests the error backend got so far
  for (const auto& proto : protos) {
    // The page: the main answers 503, the error backend is asked for its page.
    const auto paged = fetch(pg, "/x?status=503", cat({proto}, forged));
    const auto mains = proxied_requests(*main_);
    const auto reqs = proxied_requests(*errors_);
    ASSERT_EQ(reqs.size(), ++seen) << proto << paged;
    ASSERT_FALSE(mains.empty());
    const auto& main_req = mains.back();
    EXPECT_EQ(json_field(main_req, "target"), "/x?status=503") << proto;
    const auto& page = reqs.back();
    EXPECT_EQ(json_field(page, "target"), "/") << proto;
    EXPECT_EQ(record_header_count(page, "X-Forwarded-For"), 1) << proto << page;
    EXPECT_EQ(record_header(page, "X-Forwarded-For"), "127.0.0.1") << proto << page;
    EXPECT_EQ(record_header_count(page, "X-Request-ID"), 1) << proto << page;
    EXPECT_NE(record_header(page, "X-Request-ID"), "forged") << proto << page;
    EXPECT_EQ(record_header(page, "X-Request-ID"), record_header(main_req, "X-Request-ID"))
        << proto << main_req;
  }
  // The default-backend: svc-main has no ready endpoint now; the original request, with our
  // forwarding fields once each.
  rewrite(pg, "services.yaml",
          service_on("svc-main", main_->port, false) + "---\n" + service_yaml("errors", *errors_));
  for (const auto& proto : protos) {
    const auto out = fetch(pg, "/orders?id=7", cat({proto}, forged));
    const auto reqs = proxied_requests(*errors_);
    ASSERT_EQ(reqs.size(), ++seen) << proto << out;
    const auto& orig = reqs.back();
    EXPECT_EQ(json_field(orig, "target"), "/orders?id=7") << proto;
    EXPECT_EQ(record_header(orig, "X-Code"), "503") << proto << orig;
    for (const char* name : {"X-Forwarded-For", "X-Request-ID", "X-Real-IP", "Forwarded", "X-Forwarded-Proto",
                             "X-Forwarded-Host", "X-Forwarded-Port"}) {
      EXPECT_EQ(record_header_count(orig, name), 1) << proto << " " << name << "\n" << orig;
    }
    EXPECT_EQ(record_header(orig, "X-Forwarded-For"), "127.0.0.1") << proto << orig;
    EXPECT_EQ(record_header(orig, "X-Real-IP"), "127.0.0.1") << proto << orig;
    EXPECT_NE(record_header(orig, "X-Request-ID"), "forged") << proto << orig;
    EXPECT_EQ(record_header(orig, "X-Forwarded-Host").rfind("app.example", 0), 0u) << proto << orig;
  }
}

// phigate's own upstream errors with a listed code take the page too (connect refused: 502);
// disable-proxy-intercept-errors keeps those but lets the backend's own answers through.
TEST_F(ErrorsTest, OwnErrorsTakeThePageAndDisableInterceptKeepsOnlyThose) {
  dir_.write("manifests/services.yaml", service_yaml("svc-main", *main_) + "---\n" +
                                            service_on("svc-dead", 1) + "---\n" +
                                            service_yaml("errors", *errors_));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("dead", "other.example", "svc-dead", errors_annotations("502,503")) + "---\n" +
          ingress_yaml(
              "web", "app.example", "svc-main",
              errors_annotations("502,503", std::string(kN) + "disable-proxy-intercept-errors: \"true\"\n")));
  auto pg = start();
  const auto dead = curl(pg, {"-i", https_url(pg, "/", "other.example")}).out;
  EXPECT_EQ(status_of(dead), "200") << dead;  // the error backend's page (its own status: 200)
  auto reqs = proxied_requests(*errors_);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(record_header(reqs[0], "X-Code"), "502");
  EXPECT_EQ(record_header(reqs[0], "X-Ingress-Name"), "dead");
  // web: the backend's own 503 passes unchanged.
  const auto passed = fetch(pg, "/?status=503");
  EXPECT_EQ(status_of(passed), "503");
  EXPECT_NE(passed.find("X-Upstream-Name: main"), std::string::npos) << passed;
  EXPECT_EQ(proxied_requests(*errors_).size(), 1u);
}

// Phase refusals are phigate's policy answers: never replaced by an error page, and the error
// backend learns nothing of them.
TEST_F(ErrorsTest, RefusalsAreNeverRendered) {
  ingress(errors_annotations("403,413,503", std::string(kN) + "whitelist-source-range: \"10.0.0.0/8\"\n"));
  auto pg = start();
  EXPECT_EQ(status_of(fetch(pg, "/")), "403");
  EXPECT_TRUE(proxied_requests(*errors_).empty());
  // Failed closed (an invalid annotation): 503, never the page.
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc-main",
                       errors_annotations("503", std::string(kN) + "proxy-read-timeout: \"x\"\n")));
  EXPECT_EQ(status_of(fetch(pg, "/")), "503");
  EXPECT_TRUE(proxied_requests(*errors_).empty());
  EXPECT_TRUE(proxied_requests(*main_).empty());
}

// HTTP/2 clients (streams to HTTP/1.1 backends) get the page too: a listed 500 whose body is
// someone's PHI never reaches them either, and the next stream gets its own answer.
TEST_F(ErrorsTest, Http2ClientsGetThePageAndNeverTheBody) {
  ingress(errors_annotations("500"));
  auto pg = start();
  error_backend_status(503);
  auto args = cat({"--http2", "-i", "--data-binary", std::string(kMarker),
                   https_url(pg, "/leak?status=500&echo=1&overlong=1")},
                  next(pg, "--http2"));
  args.push_back(https_url(pg, "/after?bytes=5"));
  const auto out = curl(pg, args).out;
  EXPECT_EQ(out.find(kMarker), std::string::npos) << out;
  EXPECT_NE(out.find("HTTP/2 503"), std::string::npos) << out;
  EXPECT_NE(out.find("abcde"), std::string::npos) << out;
  const auto reqs = proxied_requests(*errors_);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(record_header(reqs[0], "X-Code"), "500");
  EXPECT_EQ(record_header(reqs[0], "X-Original-URI"), "/leak?status=500&echo=1&overlong=1");
  const auto audit = stop_and_read_audit(pg);
  int n = 0;
  for (const auto& rec : audit) n += has(rec, "/leak") ? 1 : 0;
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(has(find(audit, "/leak"), "\"error_page\":500")) << find(audit, "/leak");
}

// A WebSocket upgrade whose answer is replaced by an error page: the page is a GET / that asked for
// no upgrade, so an error backend answering 101 (followed by bytes that look like a response) is a
// failed fetch and the client gets phigate's own 404, never a 101 without a tunnel behind it.
TEST_F(ErrorsTest, ErrorBackendNeverSwitchesProtocols) {
  auto bad = start_ws_server({"--mode", "raw101"});
  dir_.write("manifests/services.yaml",
             service_yaml("svc-main", *main_) + "---\n" + service_on("errors", bad.port));
  ingress(errors_annotations("404"));
  auto pg = start();
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write(
      "GET /ws?status=404 HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  const auto resp = c->read_http_response(10s);
  ASSERT_TRUE(resp) << c->error();
  EXPECT_EQ(resp->status, 404);
  EXPECT_EQ(resp->body, "404 Not Found\n");
  EXPECT_EQ(resp->header("connection"), "close");
  EXPECT_TRUE(resp->header("upgrade").empty());
  const auto rest = c->read_all(3s);
  EXPECT_EQ(rest.find("forged"), std::string::npos) << rest;
  ASSERT_EQ(proxied_requests(*main_).size(), 1u);
  const auto audit = stop_and_read_audit(pg);
  const auto rec = find(audit, "\"path\":\"/ws\"");
  EXPECT_TRUE(has(rec, "\"status_code\":404")) << rec;
  EXPECT_FALSE(has(rec, "\"error_page\"")) << rec;
}

// connection-proxy-header: close: every request on one client connection reaches the backend on a
// connection of its own, carrying Connection: close, even when the backend ignores the close and
// keeps the connection open (HTTP/1.1 and HTTP/2 clients); keep-alive (and no annotation) reuses one.
TEST_F(ErrorsTest, ConnectionProxyHeaderCloseUsesOneBackendConnectionPerRequest) {
  ingress(std::string(kN) + "connection-proxy-header: \"close\"\n" + kN + "proxy-http-version: \"1.1\"\n");
  auto pg = start();
  const auto ctl = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://" + main_->address() + "/__control?keepalive=ignore_close"});
  ASSERT_EQ(ctl.out, "200") << ctl.err;
  std::size_t seen = 0;
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto r = curl(pg, {proto, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                             https_url(pg, "/a"), https_url(pg, "/b"), https_url(pg, "/c")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto reqs = proxied_requests(*main_);
    ASSERT_EQ(reqs.size(), seen + 3) << proto;
    EXPECT_NE(json_field(reqs[seen], "conn"), json_field(reqs[seen + 1], "conn")) << proto;
    EXPECT_NE(json_field(reqs[seen + 1], "conn"), json_field(reqs[seen + 2], "conn")) << proto;
    for (std::size_t i = seen; i < reqs.size(); ++i)
      EXPECT_EQ(record_header(reqs[i], "Connection"), "close") << reqs[i];
    seen += 3;
  }
  auto reqs = proxied_requests(*main_);

  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc-main",
                       std::string(kN) + "connection-proxy-header: \"keep-alive\"\n"));
  const auto k = curl(pg, {"-o", "/dev/null", "-o", "/dev/null", https_url(pg, "/d"), https_url(pg, "/e")});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  reqs = proxied_requests(*main_);
  ASSERT_EQ(reqs.size(), 8u);
  EXPECT_EQ(json_field(reqs[6], "conn"), json_field(reqs[7], "conn"));
  EXPECT_TRUE(record_header(reqs[6], "Connection").empty()) << reqs[6];
}

// connection-proxy-header: close holds for the error backend too, over HTTP/1.1 and HTTP/2: two
// pages fetched for requests on one client connection use two error-backend connections.
TEST_F(ErrorsTest, ConnectionProxyHeaderCloseNeverPoolsTheErrorBackend) {
  ingress(errors_annotations("500", std::string(kN) + "connection-proxy-header: \"close\"\n"));
  auto pg = start();
  std::size_t seen = 0;
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto r = curl(pg, {proto, "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                             https_url(pg, "/a?status=500"), https_url(pg, "/b?status=500")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200 200 ") << proto;  // the error backend's page (its own status)
    const auto reqs = proxied_requests(*errors_);
    ASSERT_EQ(reqs.size(), seen + 2) << proto;
    EXPECT_NE(json_field(reqs[seen], "conn"), json_field(reqs[seen + 1], "conn")) << proto;
    seen += 2;
  }
  const auto main = proxied_requests(*main_);
  ASSERT_EQ(main.size(), 4u);
  EXPECT_NE(json_field(main[2], "conn"), json_field(main[3], "conn"));  // HTTP/2 main hops too
}

// proxy-http-version "1.0" follows ingress.unsupported_annotations: served with a warning under
// warn, 503 under fail_closed.
TEST_F(ErrorsTest, ProxyHttpVersionOneZeroFollowsTheUnsupportedPolicy) {
  ingress(std::string(kN) + "proxy-http-version: \"1.0\"\n");
  {
    auto pg = start();
    EXPECT_EQ(status_of(fetch(pg, "/")), "200");
    EXPECT_NE(pg.process.output().find("proxy-http-version"), std::string::npos);
  }
  auto pg = start(", unsupported_annotations: fail_closed");
  EXPECT_EQ(status_of(fetch(pg, "/")), "503");
  EXPECT_EQ(proxied_requests(*main_).size(), 1u);  // only the first phigate's request
}

}  // namespace
}  // namespace phigate::test
