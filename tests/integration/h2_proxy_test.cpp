// HTTP/2 clients through phigate to HTTP/1.1 backends (h2_connection.cpp): curl --http2 on
// loopback, phigate-test-upstream behind it, the audit log read back. Each stream is a request
// with the same phases, upstream layer, audit record and metrics as HTTP/1.1.
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "audit_fixture.hpp"
#include "support/hash.hpp"
#include "support/net.hpp"

namespace phigate::test {
namespace {

class H2ProxyTest : public AuditTest {
 protected:
  /// curl over HTTP/2 (ALPN h2), -w with the protocol version first.
  RunResult h2curl(const Phigate& pg, std::vector<std::string> args,
                   std::chrono::milliseconds timeout = 30s) {
    args.insert(args.begin(), "--http2");
    return curl(pg, std::move(args), timeout);
  }
  /// "<http_version> <status>" of one request.
  std::string version_status(const Phigate& pg, std::vector<std::string> args,
                             std::chrono::milliseconds timeout = 30s) {
    args.insert(args.begin(), {"-o", "/dev/null", "-w", "%{http_version} %{http_code}"});
    auto r = h2curl(pg, std::move(args), timeout);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  static std::string two_routes(const Upstream& a, const Upstream& b) {
    return "  - host: app.example\n    paths:\n"
           "      - { path: /a, backends: [\"" +
           a.address() +
           "\"] }\n"
           "      - { path: /b, backends: [\"" +
           b.address() +
           "\"] }\n"
           "      - { path: /down, backends: [\"127.0.0.1:" +
           std::to_string(free_port()) + "\"] }\n";
  }
  /// One request over a raw HTTP/2 connection (Debian python3-h2): HEADERS (with content-length
  /// when `declared`), then `pieces` DATA frames of `piece` bytes, the last with END_STREAM.
  /// Prints the response status ("reset" when the stream was reset first). curl 7.88 fails a
  /// transfer whose response completes before its upload (the codec then resets the stream with
  /// NO_ERROR, RFC 9113 §8.1): this client reads the response as RFC 9113 says it must.
  std::string raw_h2_status(const Phigate& pg, const std::string& path, int pieces, int piece,
                            bool declared) {
    static const std::string kScript = R"(
import socket, ssl, sys, h2.connection, h2.config, h2.events
port, path, pieces, piece, declared = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
ctx = ssl.create_default_context(cafile=sys.argv[6]); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
hs = [(':method', 'POST'), (':path', path), (':scheme', 'https'), (':authority', 'app.example')]
if declared: hs.append(('content-length', str(pieces * piece)))
c.send_headers(1, hs); s.sendall(c.data_to_send())
status = None
for i in range(pieces):
    if status is not None: break
    c.send_data(1, b'x' * piece, end_stream=(i == pieces - 1)); s.sendall(c.data_to_send())
    s.settimeout(0.05)
    try:
        for e in c.receive_data(s.recv(65535)):
            if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers)[b':status'].decode()
            if isinstance(e, h2.events.StreamReset) and status is None: status = 'reset'
    except (socket.timeout, h2.exceptions.StreamClosedError): pass
    except h2.exceptions.ProtocolError: break
s.settimeout(10)
while status is None:
    d = s.recv(65535)
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers)[b':status'].decode()
        if isinstance(e, h2.events.StreamReset) and status is None: status = 'reset'
    s.sendall(c.data_to_send())
print(status)
)";
    auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), path, std::to_string(pieces),
                  std::to_string(piece), declared ? "1" : "0", ca_.cert});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.empty() ? r.out : r.out.substr(0, r.out.size() - 1);
  }
  /// After phigate exits (its records are complete then): the record of `path` says failure and
  /// counts no response byte of its 200.
  void expect_failure_without_a_byte(Phigate& pg, const std::string& path) {
    EXPECT_EQ(pg.process.terminate(), 0);
    const auto rec = find(records(), path);
    EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;
    EXPECT_TRUE(has(rec, "\"status_code\":200,\"bytes\":0")) << rec;
  }
  static int count(const std::vector<std::string>& recs, const std::string& fragment) {
    int n = 0;
    for (const auto& r : recs) n += r.find(fragment) != std::string::npos ? 1 : 0;
    return n;
  }
  static std::string pattern(std::size_t n) {
    static constexpr std::string_view kP = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = kP[i % kP.size()];
    return s;
  }
};

TEST_F(H2ProxyTest, GetAndPostBodiesOverH2_ByteExact_ForwardedAsHttp11) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));

  auto get = h2curl(pg, {"-i", https_url(pg, "/a/hello?x=1"), "-H", "X-Forwarded-For: 6.6.6.6", "-H",
                         "Cookie: c1=1", "-H", "Cookie: c2=2"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out.rfind("HTTP/2 200", 0), 0u) << get.out;
  EXPECT_NE(get.out.find("\r\n\r\nok\n"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("strict-transport-security"), std::string::npos) << get.out;  // HSTS, as HTTP/1.1

  // Bodies of 0 B, 1 B, 64 KiB and 4 MiB, echoed back byte for byte.
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{64 * 1024}, std::size_t{4 << 20}}) {
    const auto body = pattern(n);
    const auto file = dir_.write("body" + std::to_string(n), body);
    const auto out = dir_.path("out" + std::to_string(n));
    auto r = h2curl(pg, {"-o", out, "-w", "%{http_version} %{http_code}", "--data-binary", "@" + file,
                         https_url(pg, "/a/echo?echo=1")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "2 200") << n;
    std::ifstream in(out, std::ios::binary);
    const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got.size(), n);
    EXPECT_TRUE(got == body) << n;
  }
  // A response of 4 MiB (more than any window) and a chunked one.
  auto big = h2curl(pg, {"-w", "%{size_download}", "-o", "/dev/null", https_url(pg, "/b/x?bytes=4m")});
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_EQ(big.out, std::to_string(4 << 20));
  auto chunked = h2curl(pg, {https_url(pg, "/b/y?bytes=40000&chunked=1")});
  ASSERT_EQ(chunked.exit_code, 0) << chunked.err;
  EXPECT_EQ(chunked.out, pattern(40000));

  const auto ra = a.records();
  ASSERT_EQ(ra.size(), 5u);
  EXPECT_EQ(json_field(ra[0], "method"), "GET");
  EXPECT_EQ(json_field(ra[0], "target"), "/a/hello?x=1");
  EXPECT_EQ(record_header(ra[0], "host"), "app.example:" + std::to_string(pg.https));
  EXPECT_EQ(record_header_count(ra[0], "x-forwarded-for"), 1);
  EXPECT_EQ(record_header(ra[0], "x-forwarded-for"), "127.0.0.1");  // spoofed value replaced
  EXPECT_EQ(record_header(ra[0], "x-forwarded-proto"), "https");
  EXPECT_EQ(record_header(ra[0], "cookie"), "c1=1; c2=2");  // RFC 9113 §8.2.3: one field on HTTP/1.1
  EXPECT_EQ(record_header(ra[0], "x-request-id").size(), 32u);
  EXPECT_EQ(json_field(ra[4], "body_bytes"), std::to_string(4 << 20));
  EXPECT_EQ(json_field(ra[4], "body_sha256"), sha256_hex(pattern(4 << 20)));
  EXPECT_EQ(json_field(ra[2], "body_bytes"), "1");

  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  // One record per stream, HTTP version 2, the stream id, the route and upstream.
  EXPECT_EQ(count(recs, "\"h2_stream\":"), 7);
  const auto g = find(recs, "/a/hello");
  EXPECT_TRUE(has(g, "\"version\":\"2\"")) << g;
  EXPECT_TRUE(has(g, "\"h2_stream\":1")) << g;
  EXPECT_TRUE(has(g, a.address())) << g;
  EXPECT_FALSE(has(g, "6.6.6.6")) << g;
}

TEST_F(H2ProxyTest, FiftyConcurrentStreams_EachRoutedToItsBackend_OneAuditRecordEach) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));
  // One connection, 50 streams at once: curl multiplexes parallel transfers to one host over h2.
  std::vector<std::string> args{
      "--parallel", "--parallel-max", "50", "-w", "%{http_version} %{http_code} %{url}\n", "-o", "/dev/null"};
  for (int i = 0; i < 50; ++i) {
    if (i > 0) args.insert(args.end(), {"-o", "/dev/null"});
    args.push_back(
        https_url(pg, std::string(i % 2 == 0 ? "/a" : "/b") + "/s?i=" + std::to_string(i) + "&delay_ms=200"));
  }
  auto r = h2curl(pg, args, 40s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int ok = 0;
  for (std::size_t pos = 0, nl = r.out.find('\n'); nl != std::string::npos;
       pos = nl + 1, nl = r.out.find('\n', pos)) {
    ok += r.out.compare(pos, 6, "2 200 ") == 0 ? 1 : 0;
  }
  EXPECT_EQ(ok, 50) << r.out;
  const auto ra = a.records();
  const auto rb = b.records();
  ASSERT_EQ(ra.size(), 25u);
  ASSERT_EQ(rb.size(), 25u);
  for (const auto& rec : ra) EXPECT_EQ(json_field(rec, "target").rfind("/a/s?i=", 0), 0u) << rec;
  for (const auto& rec : rb) EXPECT_EQ(json_field(rec, "target").rfind("/b/s?i=", 0), 0u) << rec;
  // Every stream ended is forgotten: the open-streams gauge is back to 0 (polled: the last
  // stream's bookkeeping may trail the client's view of its end by a moment).
  std::string m;
  const auto until = std::chrono::steady_clock::now() + 5s;
  do {
    m = metrics(pg);
    if (m.find("phigate_h2_streams_open 0\n") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < until);
  EXPECT_NE(m.find("phigate_h2_streams_open 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("phigate_h2_connections_total 1\n"), std::string::npos) << m;

  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  std::set<std::string> streams;
  std::set<std::string> connections;
  for (const auto& rec : recs) {
    const auto at = rec.find("\"h2_stream\":");
    if (at == std::string::npos) continue;
    streams.insert(rec.substr(at + 12, rec.find_first_of(",}", at) - at - 12));
    const auto c = rec.find("\"connection\":");
    if (c != std::string::npos) connections.insert(rec.substr(c, rec.find_first_of(",}", c) - c));
  }
  EXPECT_EQ(streams.size(), 50u);  // distinct streams, one record each
  EXPECT_EQ(count(recs, "\"h2_stream\":"), 50);
}

TEST_F(H2ProxyTest, PerStreamRefusalsAndUpstreamFailures) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(
      two_routes(a, b), audit_yaml() +
                            "timeouts: { upstream_read: 300ms }\nlimits: { request_body_bytes: 1024 }\n"
                            "access: { deny: [\"127.0.0.2\"] }\n"));
  EXPECT_EQ(version_status(pg, {https_url(pg, "/nothing-here")}), "2 404");
  EXPECT_EQ(version_status(pg, {"--interface", "127.0.0.2", https_url(pg, "/a/x")}), "2 403");
  EXPECT_EQ(version_status(pg, {https_url(pg, "/down")}), "2 502");
  EXPECT_EQ(version_status(pg, {https_url(pg, "/a/slow?delay_ms=5000")}, 10s), "2 504");
  // Over the body limit, declared (the body-size phase) and streamed without a length (the limit
  // checked as DATA arrives): 413 for that stream.
  EXPECT_EQ(raw_h2_status(pg, "/a/up", 2, 1024, true), "413");
  EXPECT_EQ(raw_h2_status(pg, "/a/up2", 64, 1000, false), "413");
  EXPECT_EQ(raw_h2_status(pg, "/a/fits", 2, 500, false), "200");
  // Several outcomes on one connection: each stream is answered on its own.
  auto multi = h2curl(pg, {"-w", "%{http_code}\n", "-o", "/dev/null", https_url(pg, "/nothing"), "-o",
                           "/dev/null", https_url(pg, "/a/fine"), "-o", "/dev/null", https_url(pg, "/down")});
  ASSERT_EQ(multi.exit_code, 0) << multi.err;
  EXPECT_EQ(multi.out, "404\n200\n502\n");
  // Only requests every phase allowed reached a backend: /a/slow, /a/fits, /a/fine, and perhaps
  // /a/up2, whose streamed body went over the limit on its way: when its first bytes were under
  // the limit its head went upstream with them (as HTTP/1.1 chunked: the backend saw a truncated
  // body, the client a 413); when more than the limit arrived at once, nothing did.
  std::set<std::string> targets;
  for (const auto& rec : a.records()) targets.insert(json_field(rec, "target"));
  EXPECT_TRUE(targets.count("/a/fine") == 1 && targets.count("/a/fits") == 1 &&
              targets.count("/a/slow?delay_ms=5000") == 1);
  targets.erase("/a/up2");
  EXPECT_EQ(targets.size(), 3u);
  const auto m = metrics(pg);
  EXPECT_NE(m.find("phigate_requests_total{protocol=\"h2\"} 10"), std::string::npos) << m;
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  EXPECT_TRUE(has(find(recs, "/nothing-here"), "\"status_code\":404"));
  EXPECT_TRUE(has(find(recs, "/a/slow"), "\"status_code\":504"));
  EXPECT_TRUE(has(find(recs, "/a/up\""), "\"status_code\":413"));
  EXPECT_EQ(count(recs, "\"h2_stream\":"), 10);
}

TEST_F(H2ProxyTest, DrainLetsOpenStreamsFinish) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));
  RunResult r;
  std::thread client([&] {
    r = h2curl(pg, {"-w", "%{http_version} %{http_code};", "-o", "/dev/null", "-o", "/dev/null", "--parallel",
                    https_url(pg, "/a/slow1?delay_ms=1500"), https_url(pg, "/b/slow2?delay_ms=1500")});
  });
  // Both requests are at their backends (a record is written before the delay): drain now.
  const auto until = std::chrono::steady_clock::now() + 20s;
  while ((a.records().size() < 1 || b.records().size() < 1) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  client.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2 200;2 200;");  // GOAWAY: open streams finish, then the connection closes
  ASSERT_EQ(pg.process.wait_exit(20s), 0);
  EXPECT_EQ(count(records(), "\"h2_stream\":"), 2);
}

TEST_F(H2ProxyTest, RejectedStreamAndBadPrefaceAreAudited) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));
  // :authority and Host disagree (the codec refuses: 400), then a good request on the same
  // connection; and a connection whose first bytes are not the HTTP/2 preface.
  static const std::string kScript = R"(
import socket, ssl, sys, h2.connection, h2.config, h2.events
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(['h2'])
def conn():
    return ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
s = conn()
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
c.initiate_connection()
c.send_headers(1, [(':method', 'GET'), (':path', '/a/x'), (':scheme', 'https'), (':authority', 'app.example'), ('host', 'other.example')], end_stream=True)
c.send_headers(3, [(':method', 'GET'), (':path', '/a/good'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
got = {}
while len(got) < 2:
    d = s.recv(65535)
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived): got[e.stream_id] = dict(e.headers)[b':status'].decode()
        if isinstance(e, h2.events.StreamReset): got.setdefault(e.stream_id, 'reset')
    s.sendall(c.data_to_send())
print(got.get(1), got.get(3))
b = conn()
b.sendall(b'GET / HTTP/1.1\r\nHost: app.example\r\n\r\n' + b'x' * 64)
data = b''
try:
    while True:
        d = b.recv(65535)
        if not d: break
        data += d
except Exception: pass
types, at = [], 0
while at + 9 <= len(data):
    types.append(data[at + 3]); at += 9 + int.from_bytes(data[at:at + 3], 'big')
print('goaway' if 7 in types else 'other')  # our SETTINGS first, then GOAWAY
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "400 200\ngoaway\n");
  const auto m = metrics(pg);
  EXPECT_NE(m.find("phigate_h2_streams_rejected_total 1"), std::string::npos) << m;
  EXPECT_NE(m.find("phigate_h2_connection_errors_total{reason=\"protocol_error\"} 1"), std::string::npos)
      << m;
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  const auto rejected = find(recs, "\"h2_stream\":1");
  EXPECT_TRUE(has(rejected, "\"status_code\":400")) << rejected;
  EXPECT_TRUE(has(rejected, "host_mismatch")) << rejected;
  EXPECT_TRUE(has(find(recs, "/a/good"), "\"h2_stream\":3"));
  EXPECT_FALSE(find(recs, "h2-connection").empty());  // the bad preface: a connection record
  EXPECT_EQ(a.records().size(), 1u);                  // only the good request reached a backend
}

// The start every HTTP/2 client script below shares: python3 -c SCRIPT PORT CA [...]: a TLS
// connection with ALPN h2 to 127.0.0.1:PORT for app.example, and an h2 client `c` on socket `s`.
constexpr const char* kH2Connect = R"(
import socket, ssl, sys, time, h2.connection, h2.config, h2.events, h2.settings
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
)";

TEST_F(H2ProxyTest, SlowBodyIs408ForItsStream_IdleConnectionGetsGoaway) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(
      config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 400ms, keepalive_idle: 1s }\n"));
  // Stream 1 announces a body and never sends it; stream 3, on the same connection, is served
  // meanwhile. Then the connection stays idle: GOAWAY and close after keepalive_idle.
  static const std::string kScript = std::string(kH2Connect) + R"(
c.send_headers(1, [(':method', 'POST'), (':path', '/a/stalled'), (':scheme', 'https'), (':authority', 'app.example'), ('content-length', '10')])
c.send_headers(3, [(':method', 'GET'), (':path', '/b/meanwhile'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
got, goaway, start = {}, None, time.monotonic()
while goaway is None:
    d = s.recv(65535)
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived): got[e.stream_id] = dict(e.headers)[b':status'].decode()
        if isinstance(e, h2.events.ConnectionTerminated): goaway = e.error_code
    s.sendall(c.data_to_send())
print(got.get(1), got.get(3), 'goaway' if goaway == 0 else goaway, 'late' if time.monotonic() - start > 8 else 'in time')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "408 200 goaway in time\n");
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  EXPECT_TRUE(has(find(recs, "/a/stalled"), "\"status_code\":408")) << find(recs, "/a/stalled");
  EXPECT_EQ(a.records().size(), 0u);  // its head goes upstream with the first body bytes: never sent
}

TEST_F(H2ProxyTest, ClientThatNeverOpensItsWindowLosesTheConnection) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 500ms }\n"));
  // Slow read: SETTINGS_INITIAL_WINDOW_SIZE 0, then a 1 MiB response. phigate cannot send a byte
  // of it; after body_idle with nothing drained the connection goes (it would otherwise hold the
  // response and an upstream connection for as long as the client likes).
  static const std::string kScript = R"(
import socket, ssl, sys, time, h2.connection, h2.config, h2.events, h2.settings
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=15), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
c.send_headers(1, [(':method', 'GET'), (':path', '/a/big?bytes=1m'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
start, status, ended = time.monotonic(), None, 'timeout'
try:
    while True:
        d = s.recv(65535)
        if not d: ended = 'closed'; break
        for e in c.receive_data(d):
            if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers)[b':status'].decode()
            if isinstance(e, h2.events.ConnectionTerminated): ended = 'goaway'
        if ended == 'goaway': break
except ConnectionResetError: ended = 'closed'
except socket.timeout: pass
print(status, ended, 'in time' if time.monotonic() - start < 10 else 'late')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200 closed in time\n");
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto rec = find(records(), "/a/big");
  EXPECT_TRUE(has(rec, "\"h2_stream\":1")) << rec;
  EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;  // it did not end well
}

// A client that stops reading its socket with three responses on their way: phigate's write stalls,
// and after body_idle it closes the connection. Every stream it cut timed out on a slow reader; none
// was left by the client, and each record must say so (they said client_closed before round 14).
TEST_F(H2ProxyTest, SlowReaderConnectionClosedByUs_EveryCutStreamIsAClientTimeout) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 500ms }\n"));
  static const std::string kScript = std::string(kH2Connect) + R"(
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's socket holds little
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
c.increment_flow_control_window(2**31 - 1 - 65535)
for i in range(3):
    c.send_headers(1 + 2 * i, [(':method', 'GET'), (':path', '/a/cut%d?bytes=4m' % i), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
time.sleep(2.5)  # reads nothing: phigate's write stalls for body_idle (500 ms), then it closes
print('done')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "done\n");
  EXPECT_EQ(pg.process.terminate(), 0);
  // Records written while the client slept (a drain at terminate() would not say client_timeout).
  const auto recs = records();
  for (const std::string path : {"/a/cut0", "/a/cut1", "/a/cut2"}) {
    EXPECT_EQ(count(recs, path), 1) << path;
    const auto rec = find(recs, path);
    EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;
    EXPECT_TRUE(has(rec, "\"reason\":\"client_timeout\"")) << rec;
  }
}

// A stalled stream beside one that drains: only the stalled stream is cancelled after body_idle;
// the connection, and the other stream's whole response, go on (the connection's write progress is
// any stream's bytes being taken, not a look at each stream: perf-h2-many-streams.md, round 9).
TEST_F(H2ProxyTest, StalledStreamIsCancelledWhileItsNeighbourDrainsOnTheSameConnection) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(
      config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 500ms, keepalive_idle: 30s }\n"));
  // Every stream's window starts at 0; stream 3's is opened 16 KiB at a time every 100 ms (200 kB:
  // about 1.2 s, longer than body_idle), stream 1's never.
  static const std::string kScript = std::string(kH2Connect) + R"(
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
for sid, path in ((1, '/a/stalled?bytes=200000'), (3, '/a/drains?bytes=200000')):
    c.send_headers(sid, [(':method', 'GET'), (':path', path), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
c.increment_flow_control_window(1 << 24)
s.sendall(c.data_to_send())
start, got, reset1, ended3, closed, last = time.monotonic(), 0, False, False, False, 0.0
s.settimeout(0.05)
while time.monotonic() - start < 8 and not (reset1 and ended3) and not closed:
    if time.monotonic() - last >= 0.1 and not ended3:
        c.increment_flow_control_window(16384, stream_id=3); last = time.monotonic()
        s.sendall(c.data_to_send())
    try: d = s.recv(65535)
    except socket.timeout: continue
    except (ConnectionResetError, ssl.SSLError): closed = True; break
    if not d: closed = True; break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.DataReceived) and e.stream_id == 3:
            got += len(e.data); c.increment_flow_control_window(len(e.data))
        if isinstance(e, h2.events.StreamEnded) and e.stream_id == 3: ended3 = True
        if isinstance(e, h2.events.StreamReset) and e.stream_id == 1: reset1 = True
        if isinstance(e, h2.events.ConnectionTerminated): closed = True
    s.sendall(c.data_to_send())
print('stream1', 'reset' if reset1 else 'not reset', 'stream3', got, 'ended' if ended3 else 'open',
      'closed' if closed else 'connection up')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "stream1 reset stream3 200000 ended connection up\n");
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  EXPECT_TRUE(has(find(recs, "/a/stalled"), "\"outcome\":\"failure\"")) << find(recs, "/a/stalled");
  EXPECT_TRUE(has(find(recs, "/a/drains"), "\"outcome\":\"success\"")) << find(recs, "/a/drains");
}

// Review findings 1 and 3: a client with a zero window that keeps the connection busy with PINGs.
// (a) /a/tail: the response (30 kB) is below the stream's high-water mark, so the stream's coroutine
// ends with the tail still queued; (b) /a/big: 1 MiB, send_body waits for the window. In both the
// stream must end after body_idle: PING ACKs and other frames never move its write deadline, only
// its own bytes leaving would. The record says it did not end well and claims no undelivered byte.
TEST_F(H2ProxyTest, ZeroWindowClientThatPingsStillLosesTheStreamAfterBodyIdle) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(
      config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 600ms, keepalive_idle: 30s }\n"));
  static const std::string kScript = std::string(kH2Connect) + R"(
path = sys.argv[3]
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
c.send_headers(1, [(':method', 'GET'), (':path', path), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
start, status, ended, last_ping, n = time.monotonic(), None, 'stuck', 0.0, 0
s.settimeout(0.1)
while time.monotonic() - start < 8 and ended == 'stuck':
    if time.monotonic() - last_ping >= 0.2:
        n += 1; c.ping(n.to_bytes(8, 'big')); last_ping = time.monotonic()
        try: s.sendall(c.data_to_send())
        except OSError: ended = 'closed'; break
    try: d = s.recv(65535)
    except socket.timeout: continue
    except (ConnectionResetError, ssl.SSLError): ended = 'closed'; break
    if not d: ended = 'closed'; break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers)[b':status'].decode()
        if isinstance(e, h2.events.StreamReset): ended = 'reset'
        if isinstance(e, h2.events.ConnectionTerminated): ended = 'closed'
print(status, 'ended' if ended != 'stuck' else 'stuck', 'in time' if time.monotonic() - start < 5 else 'late')
)";
  for (const std::string path : {"/a/tail?bytes=30000", "/a/big?bytes=1m"}) {
    auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert, path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200 ended in time\n") << path;
  }
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  for (const std::string path : {"/a/tail", "/a/big"}) {
    const auto rec = find(recs, path);
    EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;
    // The window was never opened: not one body byte reached the client, and the record says so.
    EXPECT_TRUE(has(rec, "\"status_code\":200,\"bytes\":0")) << rec;
  }
}

// A client that resets a stream whose response waits in the codec behind its shut window: the
// record must say failure and count no byte, not success with the whole body (the codec forgets a
// closed stream's queue, so the count is taken as the stream closes).
TEST_F(H2ProxyTest, StreamResetWithItsResponseStillQueuedIsAFailureWithNoByte) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));
  static const std::string kScript = std::string(kH2Connect) + R"(
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
c.send_headers(1, [(':method', 'GET'), (':path', '/a/held?bytes=30000'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
status, acked = None, False
while status is None:
    d = s.recv(65535)
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == 1: status = dict(e.headers)[b':status'].decode()
    s.sendall(c.data_to_send())
c.reset_stream(1)
c.ping(b'12345678')  # answered after the reset was read
s.sendall(c.data_to_send())
while not acked:
    d = s.recv(65535)
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.PingAckReceived): acked = True
print(status, 'reset read' if acked else 'no ping ack')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200 reset read\n");
  expect_failure_without_a_byte(pg, "/a/held");
}

// A client that reads slowly while one stream's window stays shut: that stream's response is whole
// in the codec but none of it left when the stream ends with its connection. Its record must say
// failure with no byte, never success (found in round 12's review; the same before it).
TEST_F(H2ProxyTest, StreamWhoseTailNeverLeftIsAFailureInItsRecord) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(
      config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 600ms, keepalive_idle: 30s }\n"));
  static const std::string kScript = std::string(kH2Connect) + R"(
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
c.increment_flow_control_window(2**30)
c.send_headers(1, [(':method', 'GET'), (':path', '/a/tail?bytes=30000'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
c.send_headers(3, [(':method', 'GET'), (':path', '/b/big?bytes=256m'), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
c.increment_flow_control_window(2**30, stream_id=3)
s.sendall(c.data_to_send())
start, got1, ended = time.monotonic(), 0, False
while time.monotonic() - start < 10 and not ended:
    try: d = s.recv(4096)  # a slow reader
    except (ConnectionResetError, ssl.SSLError): break
    if not d: break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.StreamReset) and e.stream_id == 1: ended = True
        if isinstance(e, h2.events.DataReceived):
            if e.stream_id == 3: c.acknowledge_received_data(e.flow_controlled_length, 3)
            if e.stream_id == 1: got1 += len(e.data)
    s.sendall(c.data_to_send())
    time.sleep(0.005)
print('stream1 bytes', got1)
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "stream1 bytes 0\n");
  expect_failure_without_a_byte(pg, "/a/tail");
}

// A stream whose response is still queued when its coroutine ends is finished by the write loop
// (settle_flushing). A client that stops reading its socket stalls that loop in a write, with up
// to 100 finished streams waiting on it, and then resets the connection: every stream still
// leaves exactly one record, and none is left behind (the open-streams gauge returns to 0).
TEST_F(H2ProxyTest, ClientThatStopsReadingThenResets_EveryQueuedStreamKeepsItsOneRecord) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml() + "timeouts: { body_idle: 20s }\n"));
  const auto go = dir_.path("all-at-backend");
  static const std::string kScript = std::string(kH2Connect) + R"(
import os, struct
go, n = sys.argv[3], int(sys.argv[4])
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's socket holds little
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
c.increment_flow_control_window(2**31 - 1 - 65535)
for i in range(n):
    c.send_headers(1 + 2 * i, [(':method', 'GET'), (':path', '/a/q?bytes=60000&i=%d' % i), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
s.sendall(c.data_to_send())
start = time.monotonic()
while not os.path.exists(go) and time.monotonic() - start < 20: time.sleep(0.02)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()  # unread bytes in the socket: RST
print('reset' if os.path.exists(go) else 'backend never saw them all')
)";
  constexpr int kStreams = 100;
  RunResult r;
  std::thread client([&] {
    r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert, go,
             std::to_string(kStreams)});
  });
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (a.records().size() < kStreams && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  std::ofstream(go) << "go\n";
  client.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "reset\n");
  std::string m;
  const auto gauge_until = std::chrono::steady_clock::now() + 10s;
  do {
    m = metrics(pg);
    if (m.find("phigate_h2_streams_open 0\n") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < gauge_until);
  EXPECT_NE(m.find("phigate_h2_streams_open 0\n"), std::string::npos) << m;
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  std::set<std::string> streams;
  for (const auto& rec : recs) {
    const auto at = rec.find("\"h2_stream\":");
    if (at != std::string::npos) streams.insert(rec.substr(at + 12, rec.find_first_of(",}", at) - at - 12));
  }
  EXPECT_EQ(streams.size(), static_cast<std::size_t>(kStreams));
  EXPECT_EQ(count(recs, "\"h2_stream\":"), kStreams);  // one each, none twice
}

// Review finding 5: HEADERS(END_STREAM) and RST_STREAM(CANCEL) together, stream after stream. The
// client withdrew each request before phigate looked at it: none may reach the backend; each still
// has its one audit record (client closed).
TEST_F(H2ProxyTest, StreamsResetWithTheirHeadersAreNeverForwarded) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(two_routes(a, b), audit_yaml()));
  static const std::string kScript = std::string(kH2Connect) + R"(
n = int(sys.argv[3])
def get(sid, path):
    c.send_headers(sid, [(':method', 'GET'), (':path', path), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
    s.sendall(c.data_to_send())
    status = None
    while status is None:
        d = s.recv(65535)
        if not d: break
        for e in c.receive_data(d):
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid: status = dict(e.headers)[b':status'].decode()
        s.sendall(c.data_to_send())
    return status
s.sendall(c.data_to_send())
warm = get(1, '/a/warm')  # leaves an idle upstream connection in the pool: the fast path
for i in range(n):
    sid = 3 + 2 * i
    c.send_headers(sid, [(':method', 'POST'), (':path', '/a/withdrawn-%d' % i), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
    c.reset_stream(sid, error_code=8)
    s.sendall(c.data_to_send())  # one TLS record: phigate reads both frames at once
    time.sleep(0.01)
print(warm, get(3 + 2 * n, '/a/after'))
)";
  constexpr int kStreams = 30;  // under the default reset budget (100)
  auto r =
      run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert, std::to_string(kStreams)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200 200\n");  // the connection still serves: the last request went through
  const auto seen = a.records();
  int withdrawn = 0;
  std::string leaked;
  for (const auto& rec : seen) {
    if (rec.find("/a/withdrawn-") == std::string::npos) continue;
    ++withdrawn;
    leaked += rec + "\n";
  }
  EXPECT_EQ(withdrawn, 0) << "reset streams reached the backend:\n" << leaked;
  EXPECT_EQ(count(seen, "/a/after"), 1);
  EXPECT_EQ(pg.process.terminate(), 0);
  const auto recs = records();
  EXPECT_EQ(count(recs, "/a/withdrawn-"), kStreams);  // one record each, none lost
  for (const auto& rec : recs) {
    if (rec.find("/a/withdrawn-") == std::string::npos) continue;
    EXPECT_TRUE(has(rec, "\"outcome\":\"failure\"")) << rec;
  }
}

TEST_F(H2ProxyTest, StreamsResetWhileTheBackendConnectsAreNotCountedAgainstIt) {
  // A backend that takes TCP connections and never answers the TLS ClientHello: every attempt
  // waits in connect (the handshake is part of it) until the client resets its stream. A client
  // must not be able to get endpoints ejected by resetting streams: the reset is not the
  // endpoint's failure (passive checks count connect failures, resets and timeouts).
  SilentListener listener;
  const std::string silent = listener.address();
  const std::string routes =
      "  - host: app.example\n    paths:\n"
      "      - path: /silent\n        backends: [\"" +
      silent + "\"]\n        backend_tls: { verify: false }\n";
  auto pg = start_phigate(
      config(routes, audit_yaml() + "timeouts: { upstream_connect: 1s }\n"
                                    "upstream:\n  health:\n    passive: { consecutive_failures: 2,"
                                    " base_ejection: 60s, max_ejection: 60s, max_ejected_percent: 100 }\n"));
  const auto ejections = [&] {
    const auto text = metrics(pg);
    const auto at = text.find("\nphigate_upstream_ejections_total ");
    return at == std::string::npos ? -1L : std::strtol(text.c_str() + at + 34, nullptr, 10);
  };
  static const std::string kScript = std::string(kH2Connect) + R"(
n = int(sys.argv[3])
s.sendall(c.data_to_send())
for i in range(n):
    sid = 1 + 2 * i
    c.send_headers(sid, [(':method', 'GET'), (':path', '/silent/reset-%d' % i), (':scheme', 'https'), (':authority', 'app.example')], end_stream=True)
    s.sendall(c.data_to_send())
    time.sleep(0.2)  # phigate waits in the backend's TLS handshake (its connect timeout is 1 s)
    c.reset_stream(sid, error_code=8)
    s.sendall(c.data_to_send())
print('sent')
)";
  constexpr int kStreams = 6;  // three times the failures in a row that eject an endpoint
  auto r =
      run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert, std::to_string(kStreams)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Each reset stream is audited once its attempt has ended: wait (bounded) for all of them.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (count(records(), "/silent/reset-") < kStreams && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(count(records(), "/silent/reset-"), kStreams);
  EXPECT_EQ(ejections(), 0) << "client resets were counted as the endpoint's failures";
  // The control: two real connect timeouts in a row do eject it (the counter above could move).
  for (int i = 0; i < 2; ++i) {
    const auto res =
        curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/silent/timeout")}, 10s);
    EXPECT_EQ(res.out, "504");
  }
  EXPECT_EQ(ejections(), 1);
  EXPECT_EQ(pg.process.terminate(), 0);
}

}  // namespace
}  // namespace phigate::test
