// proxy-request-buffering and client-body-buffer-size through the real binary: a buffered body
// reaches the recording backend whole, with Content-Length (never chunked), over HTTP/1.1 and
// HTTP/2; bodies over the bound get 413 (announced: before a byte is read; chunked: as the bound
// is crossed); the worker's byte budget sheds with 503; and attackers (slow bodies, a
// Content-Length that lies, a request pipelined behind a buffered body) get nowhere, with every
// byte given back to the budget (phigate_request_buffer_bytes returns to 0).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "support/hash.hpp"
#include "support/tls_client.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

/// Two Ingresses of app.example on one Service: /b buffered (with `annotations`), /s streamed.
std::string ingresses(const std::string& annotations, const std::string& streamed = "") {
  const auto one = [](const std::string& name, const std::string& path, const std::string& ann) {
    std::string y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                    "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n";
    if (!ann.empty()) y += "  annotations:\n" + ann;
    y += "spec:\n  ingressClassName: phigate\n  rules:\n  - host: app.example\n    http:\n      paths:\n"
         "      - { path: " +
         path + ", pathType: Prefix, backend: { service: { name: svc-main, port: { number: 80 } } } }\n";
    return y;
  };
  return one("buffered", "/b", annotations) + "---\n" + one("streamed", "/s", streamed);
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

std::string chunked(const std::string& body, std::size_t piece) {
  std::string out;
  char size[32];
  for (std::size_t at = 0; at < body.size(); at += piece) {
    const auto n = std::min(piece, body.size() - at);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body, at, n);
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

class BufferingTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    main_ = start_upstream("main");
    dir_.write("manifests/services.yaml", service_yaml("svc-main", *main_));
  }
  /// One worker, so that the per-worker budget is the one every connection meets.
  Phigate start(const std::string& annotations, const std::string& extra = "",
                const std::string& streamed = "") {
    dir_.write("manifests/ingress.yaml", ingresses(annotations, streamed));
    auto yaml = config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" +
                                     audit_yaml() + extra);
    const auto w = yaml.find("workers: 2");
    yaml.replace(w, 10, "workers: 1");
    return start_phigate(yaml);
  }
  TlsClient client(const Phigate& pg) {
    auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    EXPECT_TRUE(c) << c.error;
    return std::move(*c);
  }
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    for (auto& line : main_->records()) {
      if (!json_field(line, "method").empty()) out.push_back(std::move(line));
    }
    return out;
  }
  /// The status of an HTTP/2 POST of `body` by nghttp (curl 7.88 drops a response that comes, with
  /// RST_STREAM NO_ERROR, before its upload ended: h2_test.cpp).
  std::string nghttp_post_status(const Phigate& pg, const std::string& path, const std::string& body) {
    const auto file = dir_.write("nghttp-body.bin", body);
    RunOptions o;
    o.timeout = 20s;
    auto r = run({"nghttp", "-v", "-t", "10", "-d", file, "-H", ":authority: app.example",
                  "https://127.0.0.1:" + std::to_string(pg.https) + path},
                 o);
    EXPECT_NE(r.out.find("The negotiated protocol: h2"), std::string::npos) << r.out << r.err;
    const std::string key = ":status: ";
    const auto at = r.out.find(key);
    return at == std::string::npos ? std::string() : r.out.substr(at + key.size(), 3);
  }
  /// Polls /metrics until `sample` is at least `least` (bounded: ~5 s), returns the last page.
  std::string wait_metric_at_least(const Phigate& pg, const std::string& sample, long long least) {
    std::string page;
    for (int i = 0; i < 200; ++i) {
      page = metrics(pg);
      if (std::stoll("0" + metric(page, sample)) >= least) break;
      std::this_thread::sleep_for(25ms);
    }
    return page;
  }
  /// Sends a buffered POST's head with Expect: 100-continue and waits for the 100: phigate is then
  /// reading its body (the budget was checked before).
  void start_upload(TlsClient& c, const std::string& path, std::size_t length) {
    ASSERT_TRUE(c.write("POST " + path + " HTTP/1.1\r\nHost: app.example\r\nContent-Length: " +
                        std::to_string(length) + "\r\nExpect: 100-continue\r\n\r\n"));
    const auto r = c.read_until("\r\n\r\n", 5s);
    ASSERT_TRUE(r) << c.error();
    ASSERT_EQ(r->rfind("HTTP/1.1 100", 0), 0u) << *r;
  }
  /// tests/h2/h2_attack.py --mode held_uploads in the background (its JSON line when it ends).
  Process held_uploads(const Phigate& pg, int streams, std::size_t size, std::size_t partial, int seconds) {
    return Process::start({"/usr/bin/python3", PHIGATE_H2_ATTACK_SCRIPT, "--mode", "held_uploads", "--port",
                           std::to_string(pg.https), "--count", std::to_string(streams), "--size",
                           std::to_string(size), "--partial", std::to_string(partial), "--settle",
                           std::to_string(seconds)});
  }
  void expect_budget_back(const Phigate& pg) {
    const auto page = wait_metric(pg, "phigate_request_buffer_bytes", "0");
    EXPECT_EQ(metric(page, "phigate_request_buffer_bytes"), "0") << page;
  }

  std::optional<Upstream> main_;
};

const std::string kOn = std::string(kN) + "proxy-request-buffering: \"on\"\n";

// A chunked upload to a buffered path reaches the backend with Content-Length and no
// Transfer-Encoding, byte for byte; the same upload to a streamed path stays chunked (the check
// can fail); the client sees the backend's answer.
TEST_F(BufferingTest, ChunkedUploadArrivesWithContentLength) {
  auto pg = start(kOn);
  const auto body = pattern(300 * 1024);
  const auto file = dir_.write("body.bin", body);
  for (const std::string path : {"/b/up", "/s/up"}) {
    const auto r = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked",
                             "--data-binary", "@" + file, https_url(pg, path)});
    EXPECT_EQ(r.out, "200") << r.err;
  }
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  const auto& b = reqs[0];
  EXPECT_EQ(json_field(b, "target"), "/b/up");
  EXPECT_EQ(json_field(b, "chunked"), "false") << b;
  EXPECT_EQ(record_header(b, "Content-Length"), std::to_string(body.size())) << b;
  EXPECT_EQ(record_header_count(b, "Transfer-Encoding"), 0) << b;
  EXPECT_EQ(json_field(b, "body_bytes"), std::to_string(body.size()));
  EXPECT_EQ(json_field(b, "body_sha256"), sha256_hex(body));
  const auto& s = reqs[1];
  EXPECT_EQ(json_field(s, "chunked"), "true") << s;
  EXPECT_EQ(json_field(s, "body_sha256"), sha256_hex(body));
  expect_budget_back(pg);
}

// An HTTP/2 upload without content-length (curl -T - reads stdin) is buffered and sent with one.
TEST_F(BufferingTest, Http2BodyWithoutLengthArrivesWithContentLength) {
  auto pg = start(kOn);
  const auto body = pattern(200 * 1024 + 17);
  RunOptions opts;
  opts.stdin_data = body;
  const auto r = run({"curl", "-sS", "--http2", "--cacert", ca_.cert, "--resolve",
                      "app.example:" + std::to_string(pg.https) + ":127.0.0.1", "-o", "/dev/null", "-w",
                      "%{http_version} %{http_code}", "-X", "POST", "-T", "-", https_url(pg, "/b/h2")},
                     opts);
  EXPECT_EQ(r.out, "2 200") << r.err;
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(json_field(reqs[0], "chunked"), "false") << reqs[0];
  EXPECT_EQ(record_header(reqs[0], "Content-Length"), std::to_string(body.size())) << reqs[0];
  EXPECT_EQ(json_field(reqs[0], "body_sha256"), sha256_hex(body));
  expect_budget_back(pg);
}

// client-body-buffer-size: 64k. A Content-Length over it is refused before the body is sent
// (HTTP/1.1 and HTTP/2); a chunked body is refused as it crosses it; nothing reaches the backend;
// the audit says body_too_large.
TEST_F(BufferingTest, OverTheBound_413) {
  auto pg = start(kOn + kN + "client-body-buffer-size: \"64k\"\n");
  {
    auto c = client(pg);
    ASSERT_TRUE(c.write("POST /b/cl HTTP/1.1\r\nHost: app.example\r\nContent-Length: 65537\r\n\r\n"));
    const auto r = c.read_http_response(5s);  // no body byte sent: refused from the length alone
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 413);
  }
  {
    auto c = client(pg);
    ASSERT_TRUE(
        c.write("POST /b/chunked HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::optional<HttpResponse> r;
    std::size_t sent = 0;
    // Bounded: 40 pieces of 4 KiB; the answer must come once 64 KiB have passed.
    for (int i = 0; i < 40 && !r; ++i) {
      if (!c.write("1000\r\n" + pattern(4096) + "\r\n")) break;  // one 4 KiB chunk
      sent += 4096;
      r = c.read_http_response(100ms);
    }
    ASSERT_TRUE(r) << "after " << sent << ": " << c.error();
    EXPECT_EQ(r->status, 413);
    EXPECT_GT(sent, 64u * 1024);
    EXPECT_LE(sent, 64u * 1024 + 32 * 1024);
  }
  EXPECT_EQ(nghttp_post_status(pg, "/b/h2", pattern(65537)), "413");
  // At the bound: served.
  const auto at = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                            "@" + dir_.write("at.bin", pattern(65536)), https_url(pg, "/b/at")});
  EXPECT_EQ(at.out, "200") << at.err;
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(json_field(reqs[0], "target"), "/b/at");
  expect_budget_back(pg);
  const auto recs = stop_and_read_audit(pg);
  for (const std::string target : {"/b/cl", "/b/chunked", "/b/h2"}) {
    const auto rec = find(recs, "\"" + target + "\"");
    EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;
    EXPECT_TRUE(has(rec, "body_too_large")) << rec;
  }
}

// A chunked body's trailers never become fields of the buffered request's head (its head is
// built after the body): a trailer forging a header is dropped.
TEST_F(BufferingTest, Attack_TrailersNeverBecomeFields) {
  auto pg = start(kOn);
  auto c = client(pg);
  ASSERT_TRUE(c.write(
      "POST /b/trailers HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nX-Smuggled: 1\r\nAuthorization: Bearer forged\r\nHost: evil.example\r\n\r\n"));
  const auto r = c.read_http_response(5s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(record_header_count(reqs[0], "X-Smuggled"), 0) << reqs[0];
  EXPECT_EQ(record_header_count(reqs[0], "Authorization"), 0) << reqs[0];
  EXPECT_EQ(record_header_count(reqs[0], "Host"), 1) << reqs[0];
  EXPECT_EQ(record_header(reqs[0], "Content-Length"), "5") << reqs[0];
  EXPECT_EQ(json_field(reqs[0], "body_sha256"), sha256_hex("hello"));
}

// HTTP/2 without content-length: the body is refused (413) as it crosses the bound; the stream's
// window came back only as bytes were held; the budget is whole again.
TEST_F(BufferingTest, Http2BodyCrossingTheBound_413) {
  auto pg = start(kOn + kN + "client-body-buffer-size: \"64k\"\n");
  static const std::string kScript = R"(
import socket, ssl, sys, h2.connection, h2.config, h2.events, h2.exceptions
port, path, total, cafile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
c.send_headers(1, [(':method', 'POST'), (':path', path), (':scheme', 'https'), (':authority', 'app.example')])
s.sendall(c.data_to_send())
status, sent = None, 0
def take(d):
    global status
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers)[b':status'].decode()
        if isinstance(e, h2.events.StreamReset) and status is None: status = 'reset'
    s.sendall(c.data_to_send())
s.settimeout(0.05)
for _ in range(2000):
    if status is not None or sent >= total: break
    n = min(8192, total - sent, c.local_flow_control_window(1))
    if n > 0:
        try: c.send_data(1, b'y' * n, end_stream=(sent + n == total))
        except h2.exceptions.StreamClosedError: break
        sent += n; s.sendall(c.data_to_send())
    try: take(s.recv(65535))
    except socket.timeout: pass
s.settimeout(10)
while status is None:
    d = s.recv(65535)
    if not d: break
    take(d)
print(status, sent)
)";
  const auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), "/b/h2cross",
                      std::to_string(256 * 1024), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 4), "413 ") << r.out;
  EXPECT_TRUE(requests().empty());
  expect_budget_back(pg);
}

// The worker's budget: a slow client holding a partly sent 60 KB body leaves too little of a
// 100 KB budget for a second one, which is shed with 503 (never queued); once the first finishes,
// the budget is back and the second is served.
TEST_F(BufferingTest, WorkerBudgetShedsWith503AndComesBack) {
  auto pg = start(kOn, "limits: { request_buffer_bytes: 100000, request_buffer_worker_bytes: 100000 }\n");
  const auto body = pattern(60000);
  auto slow = client(pg);
  // Bytes are held as they arrive (an announced length costs nothing): 59,000 of 60,000 sent.
  ASSERT_TRUE(slow.write("POST /b/slow HTTP/1.1\r\nHost: app.example\r\nContent-Length: 60000\r\n\r\n" +
                         body.substr(0, 59000)));
  auto page = wait_metric_at_least(pg, "phigate_request_buffer_bytes", 59000);
  ASSERT_GE(std::stoll("0" + metric(page, "phigate_request_buffer_bytes")), 59000) << page;
  const auto file = dir_.write("body.bin", body);
  const auto shed = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@" + file, https_url(pg, "/b/shed")});
  EXPECT_EQ(shed.out, "503") << shed.err;
  EXPECT_EQ(nghttp_post_status(pg, "/b/shed2", body), "503");
  ASSERT_TRUE(slow.write(body.substr(59000)));
  const auto r = slow.read_http_response(5s);
  ASSERT_TRUE(r) << slow.error();
  EXPECT_EQ(r->status, 200);
  expect_budget_back(pg);
  const auto ok = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@" + file, https_url(pg, "/b/after")});
  EXPECT_EQ(ok.out, "200") << ok.err;
  page = metrics(pg);
  EXPECT_EQ(metric(page, "phigate_request_buffer_shed_total"), "2") << page;
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(json_field(reqs[0], "target"), "/b/slow");
  EXPECT_EQ(json_field(reqs[0], "body_sha256"), sha256_hex(body));
  EXPECT_EQ(json_field(reqs[1], "target"), "/b/after");
  const auto recs = stop_and_read_audit(pg);
  const auto rec = find(recs, "\"/b/shed\"");
  EXPECT_TRUE(has(rec, "\"reason\":\"overloaded\"")) << rec;
}

// Slowloris on a buffered route: a body that stops coming hits body_idle (408), is audited, and
// its bytes go back to the budget; the backend never hears of it.
TEST_F(BufferingTest, Attack_SlowBodyTimesOutAndGivesTheBudgetBack) {
  auto pg = start(kOn, "timeouts: { body_idle: 1s }\n");
  auto c = client(pg);
  ASSERT_TRUE(
      c.write("POST /b/slowloris HTTP/1.1\r\nHost: app.example\r\nContent-Length: 50000\r\n\r\nxxxx"));
  // What arrived is held (the first allocation: 30 bytes for 4), not the announced 50,000.
  auto page = wait_metric(pg, "phigate_request_buffer_bytes", "30");
  EXPECT_EQ(metric(page, "phigate_request_buffer_bytes"), "30") << page;
  const auto r = c.read_http_response(5s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 408);
  expect_budget_back(pg);
  // Chunked, the same: what arrived is held, then given back.
  auto d = client(pg);
  ASSERT_TRUE(
      d.write("POST /b/slowchunks HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n" +
              std::string("1000\r\n") + pattern(4096) + "\r\n"));
  const auto r2 = d.read_http_response(5s);
  ASSERT_TRUE(r2) << d.error();
  EXPECT_EQ(r2->status, 408);
  expect_budget_back(pg);
  EXPECT_TRUE(requests().empty());
  const auto recs = stop_and_read_audit(pg);
  EXPECT_TRUE(has(find(recs, "\"/b/slowloris\""), "client_timeout")) << find(recs, "\"/b/slowloris\"");
  EXPECT_TRUE(has(find(recs, "\"/b/slowchunks\""), "client_timeout")) << find(recs, "\"/b/slowchunks\"");
}

// A Content-Length that lies: fewer bytes, then the connection closes. Nothing is sent upstream
// (a streamed request would have reached it), the record says the client closed, and the budget
// is whole again.
TEST_F(BufferingTest, Attack_ShortBodyThenCloseNeverReachesTheBackend) {
  auto pg = start(kOn);
  {
    auto c = client(pg);
    ASSERT_TRUE(c.write("POST /b/lie HTTP/1.1\r\nHost: app.example\r\nContent-Length: 40000\r\n\r\n" +
                        pattern(10000)));
    wait_metric(pg, "phigate_request_buffer_bytes", "40000");
    c.close();
  }
  expect_budget_back(pg);
  EXPECT_TRUE(requests().empty());
  const auto recs = stop_and_read_audit(pg);
  const auto rec = find(recs, "\"/b/lie\"");
  EXPECT_TRUE(has(rec, "client_closed")) << rec;
}

// A request pipelined behind a buffered chunked body (in the same write) is its own request: the
// backend gets the body with Content-Length, then the next request, and the client both answers
// in order (no desync: the chunked framing ended exactly where the body did).
TEST_F(BufferingTest, Attack_PipelinedAfterBufferedBodyStaysInStep) {
  auto pg = start(kOn);
  auto c = client(pg);
  const auto body = pattern(5000);
  // The smuggling shape: a body that looks like a request, then a real one.
  const std::string inner = "GET /b/smuggled HTTP/1.1\r\nHost: app.example\r\n\r\n";
  ASSERT_TRUE(c.write("POST /b/first HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      chunked(body + inner, 1000) +
                      "GET /b/second?echo=0 HTTP/1.1\r\nHost: app.example\r\n\r\n"));
  const auto r1 = c.read_http_response(5s);
  ASSERT_TRUE(r1) << c.error();
  EXPECT_EQ(r1->status, 200);
  const auto r2 = c.read_http_response(5s);
  ASSERT_TRUE(r2) << c.error();
  EXPECT_EQ(r2->status, 200);
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(json_field(reqs[0], "target"), "/b/first");
  EXPECT_EQ(record_header(reqs[0], "Content-Length"), std::to_string(body.size() + inner.size()));
  EXPECT_EQ(json_field(reqs[0], "body_sha256"), sha256_hex(body + inner));
  EXPECT_EQ(json_field(reqs[1], "target"), "/b/second?echo=0");
  EXPECT_EQ(json_field(reqs[1], "method"), "GET");
  expect_budget_back(pg);
}

// Retries: a buffered body is whole in memory, so an idempotent PUT whose answer is a listed 503 is
// sent again, body and all, to the other endpoint; a streamed PUT and a buffered POST never are.
TEST_F(BufferingTest, BufferedIdempotentRequestIsRetriedWithItsBody) {
  auto b = start_upstream("b");
  // svc-main gets a second endpoint (its own EndpointSlice: another port).
  dir_.write(
      "manifests/services.yaml",
      service_yaml("svc-main", *main_) +
          "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-main-b\n"
          "  namespace: default\n  labels: { kubernetes.io/service-name: svc-main }\naddressType: IPv4\n"
          "ports: [{ name: http, port: " +
          std::to_string(b.port) +
          " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n");
  const std::string retry = std::string(kN) + "proxy-next-upstream: \"error timeout http_503\"\n" + kN +
                            "proxy-next-upstream-tries: \"2\"\n";
  auto pg = start(kOn + retry, "upstream: { health: { passive: { enabled: false } } }\n", retry);
  const auto body = pattern(20000);
  const auto file = dir_.write("body.bin", body);
  const auto status = [&](const std::string& method, const std::string& path) {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--data-binary", "@" + file,
                     https_url(pg, path)})
        .out;
  };
  EXPECT_EQ(status("PUT", "/b/put?status=503"), "503");
  EXPECT_EQ(status("PUT", "/s/put?status=503"), "503");
  EXPECT_EQ(status("POST", "/b/post?status=503"), "503");
  std::map<std::string, int> seen;
  for (const auto* up : {&*main_, &b}) {
    for (const auto& line : up->records()) {
      const auto target = json_field(line, "target");
      if (target.empty()) continue;
      ++seen[target];
      EXPECT_EQ(json_field(line, "body_sha256"), sha256_hex(body)) << line;
      EXPECT_EQ(record_header(line, "Content-Length"), std::to_string(body.size())) << line;
    }
  }
  EXPECT_EQ(seen["/b/put?status=503"], 2) << "the buffered PUT goes to both endpoints";
  EXPECT_EQ(seen["/s/put?status=503"], 1) << "a streamed body is never sent twice";
  EXPECT_EQ(seen["/b/post?status=503"], 1) << "a POST is never sent twice";
  expect_budget_back(pg);
}

// client-body-buffer-size without proxy-request-buffering: "on" changes nothing (a warning); an
// invalid one fails the Ingress closed naming the field.
// Attack (review F3): a buffered request whose answer the client reads slowly must not hold its
// buffered body, and its share of the worker's budget, for the whole relay.
TEST_F(BufferingTest, Attack_SlowReaderDoesNotHoldTheBudgetDuringTheRelay) {
  auto pg = start(std::string(kN) + "proxy-request-buffering: \"on\"\n");
  const auto file = dir_.write("upload.bin", pattern(8000));  // --limit-rate paces the upload too
  auto c =
      Process::start({"curl", "-sk", "--http1.1", "--limit-rate", "10k", "-o", "/dev/null", "--resolve",
                      "app.example:" + std::to_string(pg.https) + ":127.0.0.1", "--data-binary", "@" + file,
                      "https://app.example:" + std::to_string(pg.https) + "/b?bytes=50000000"});
  for (int i = 0; i < 500 && requests().empty(); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(requests().size(), 1u);
  std::string held;
  for (int i = 0; i < 100; ++i) {
    held = metric(metrics(pg), "phigate_request_buffer_bytes");
    if (held == "0") break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(c.running()) << "the relay must still be going on";
  EXPECT_EQ(held, "0");
  ASSERT_TRUE(c.send_signal(SIGTERM));
  c.wait_exit(5s);
}

TEST_F(BufferingTest, BufferSizeAloneWarnsAndInvalidFailsClosed) {
  auto pg = start(std::string(kN) + "client-body-buffer-size: \"1k\"\n");
  EXPECT_NE(pg.process.output().find("client-body-buffer-size"), std::string::npos);
  const auto big = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                             "@" + dir_.write("b.bin", pattern(10000)), https_url(pg, "/b/x")});
  EXPECT_EQ(big.out, "200") << big.err;  // streamed: no bound
  const auto mark = pg.process.output().size();
  dir_.write("manifests/ingress.yaml", ingresses(kOn + kN + "client-body-buffer-size: \"1.5m\"\n"));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  EXPECT_NE(pg.process.output().find("client-body-buffer-size", mark), std::string::npos);
  const auto closed = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/b/x")});
  EXPECT_EQ(closed.out, "503") << closed.err;
}

// Attack (review F1): an announced Content-Length costs the client nothing to send, so it must
// cost phigate nothing either. Two stalled uploads announcing 60 KB each, on a 100 KB budget,
// leave it to everyone else (before the fix, the second was shed at once, and so was the next).
TEST_F(BufferingTest, Attack_AnnouncedLengthsHoldNothing) {
  auto pg = start(kOn, "limits: { request_buffer_bytes: 100000, request_buffer_worker_bytes: 100000 }\n");
  auto a = client(pg);
  auto b = client(pg);
  start_upload(a, "/b/stalled-a", 60000);
  start_upload(b, "/b/stalled-b", 60000);
  EXPECT_EQ(metric(metrics(pg), "phigate_request_buffer_bytes"), "0");
  const auto file = dir_.write("small.bin", pattern(10000));
  const auto ok = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@" + file, https_url(pg, "/b/served")});
  EXPECT_EQ(ok.out, "200") << ok.err;
  EXPECT_EQ(metric(metrics(pg), "phigate_request_buffer_shed_total"), "0");
  a.close();
  b.close();
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(json_field(reqs[0], "target"), "/b/served");
  expect_budget_back(pg);
}

// The same over HTTP/2: streams announcing content-length and sending nothing hold nothing.
TEST_F(BufferingTest, Attack_Http2AnnouncedLengthsHoldNothing) {
  auto pg = start(kOn, "limits: { request_buffer_bytes: 100000, request_buffer_worker_bytes: 100000 }\n");
  auto attack = held_uploads(pg, 2, 60000, 0, 4);
  auto page = wait_metric(pg, "phigate_h2_streams_open", "2");
  ASSERT_EQ(metric(page, "phigate_h2_streams_open"), "2") << page;
  EXPECT_EQ(nghttp_post_status(pg, "/b/served", pattern(10000)), "200");
  ASSERT_TRUE(attack.wait_for_line("{", 15s)) << attack.output();
  const auto line = attack.output();
  EXPECT_EQ(json_field(line, "answered"), "0") << line;
  EXPECT_EQ(metric(metrics(pg), "phigate_request_buffer_shed_total"), "0");
}

// Attack (review F1): one HTTP/2 connection's streams hold at most their connection's share of the
// worker's budget (an eighth, or one request's bound when that is more): here 50 KB of 400 KB. The
// fourth 15 KB stream is shed with 503, while another connection's upload is still served.
TEST_F(BufferingTest, Attack_OneHttp2ConnectionHoldsOnlyItsShare) {
  auto pg = start(kOn, "limits: { request_buffer_bytes: 20000, request_buffer_worker_bytes: 400000 }\n");
  auto attack = held_uploads(pg, 4, 19000, 15000, 4);
  auto page = wait_metric(pg, "phigate_request_buffer_shed_total", "1");
  ASSERT_EQ(metric(page, "phigate_request_buffer_shed_total"), "1") << page << attack.output();
  EXPECT_GE(std::stoll("0" + metric(page, "phigate_request_buffer_bytes")), 45000) << page;
  EXPECT_LE(std::stoll("0" + metric(page, "phigate_request_buffer_bytes")), 50000) << page;
  EXPECT_EQ(nghttp_post_status(pg, "/b/other-connection", pattern(15000)), "200");
  ASSERT_TRUE(attack.wait_for_line("{", 15s)) << attack.output();
  const auto line = attack.output();
  EXPECT_EQ(json_field(line, "answered"), "1") << line;
  EXPECT_EQ(json_field(line, "status_5xx"), "1") << line;
  expect_budget_back(pg);
}

// Review F2: a buffered body can take minutes to arrive; the request then goes on under the
// configuration current when it is whole. An allowlist narrowed meanwhile refuses it (403, the
// backend never hears of it), and a Service moved to another backend gets it there.
TEST_F(BufferingTest, Attack_AccessWithdrawnWhileTheBodyArrivesIsRefused) {
  auto pg = start(kOn + kN + "whitelist-source-range: \"127.0.0.0/8\"\n");
  const auto body = pattern(20000);
  auto c = client(pg);
  start_upload(c, "/b/revoked", body.size());
  ASSERT_TRUE(c.write(body.substr(0, 10000)));
  const auto mark = pg.process.output().size();
  dir_.write("manifests/ingress.yaml", ingresses(kOn + kN + "whitelist-source-range: \"10.0.0.0/8\"\n"));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  ASSERT_TRUE(c.write(body.substr(10000)));
  const auto r = c.read_http_response(5s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 403);
  EXPECT_TRUE(requests().empty());
  expect_budget_back(pg);
  const auto recs = stop_and_read_audit(pg);
  const auto rec = find(recs, "\"/b/revoked\"");
  EXPECT_TRUE(has(rec, "\"status_code\":403")) << rec;
  EXPECT_TRUE(has(rec, "\"decision\":\"denied\"")) << rec;
}

TEST_F(BufferingTest, Attack_EndpointsMovedWhileTheBodyArrivesAreFollowed) {
  auto other = start_upstream("other");
  auto pg = start(kOn);
  const auto body = pattern(20000);
  auto c = client(pg);
  start_upload(c, "/b/moved", body.size());
  ASSERT_TRUE(c.write(body.substr(0, 10000)));
  const auto mark = pg.process.output().size();
  dir_.write("manifests/services.yaml", service_yaml("svc-main", other));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  ASSERT_TRUE(c.write(body.substr(10000)));
  const auto r = c.read_http_response(5s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(requests().empty()) << "the old endpoint must not get it";
  std::vector<std::string> got;
  for (auto& line : other.records()) {
    if (!json_field(line, "method").empty()) got.push_back(std::move(line));
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(json_field(got[0], "body_sha256"), sha256_hex(body));
}

// The same over HTTP/2 (review F2): a stream whose body is still arriving when the allowlist is
// narrowed is refused once it is whole; the backend never hears of it.
TEST_F(BufferingTest, Attack_Http2AccessWithdrawnWhileTheBodyArrivesIsRefused) {
  auto pg = start(kOn + kN + "whitelist-source-range: \"127.0.0.0/8\"\n");
  const auto go = dir_.path("go");
  auto upload = Process::start({"/usr/bin/python3", PHIGATE_H2_ATTACK_SCRIPT, "--mode", "paused_upload",
                                "--port", std::to_string(pg.https), "--path", "/b/h2-revoked", "--size",
                                "20000", "--partial", "10000", "--go-file", go, "--time-limit", "15"});
  ASSERT_TRUE(upload.wait_for_line("HELD", 10s)) << upload.output();
  const auto page = wait_metric_at_least(pg, "phigate_request_buffer_bytes", 10000);
  ASSERT_GE(std::stoll("0" + metric(page, "phigate_request_buffer_bytes")), 10000) << page;
  const auto mark = pg.process.output().size();
  dir_.write("manifests/ingress.yaml", ingresses(kOn + kN + "whitelist-source-range: \"10.0.0.0/8\"\n"));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  dir_.write("go", "go");
  ASSERT_TRUE(upload.wait_for_line("{", 20s)) << upload.output();
  const auto out = upload.output();
  const auto line = out.substr(out.find('{'));
  EXPECT_EQ(json_field(line, "status"), "403") << line;
  EXPECT_TRUE(requests().empty());
  expect_budget_back(pg);
}

}  // namespace
}  // namespace phigate::test
