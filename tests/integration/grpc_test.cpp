// gRPC end to end: a gRPC client (tests/grpc/grpc_client.py, python3-h2) through phigate to
// phigate-test-grpc (tests/grpc/) over backend-protocol GRPC (h2 prior knowledge) and GRPCS (TLS,
// ALPN h2). The tools are first checked against the test backend directly. One audit record per
// call, with its grpc_status.
#include <charconv>
#include <filesystem>
#include <sstream>
#include <thread>

#include "ingress_fixture.hpp"
#include "support/net.hpp"

namespace phigate::test {
namespace {

/// A running phigate-test-grpc.
struct GrpcBackend {
  Process process;
  std::uint16_t port = 0;
};

/// A Service and EndpointSlice for a backend on `port` (ingress_fixture's service_yaml takes an
/// Upstream).
std::string grpc_service_yaml(const std::string& name, std::uint16_t port) {
  return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name +
         ", namespace: default }\nspec:\n  ports: [{ name: grpc, port: 80, targetPort: 8080 }]\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
         name + "-abc\n  namespace: default\n  labels: { kubernetes.io/service-name: " + name +
         " }\naddressType: IPv4\nports: [{ name: grpc, port: " + std::to_string(port) +
         " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
}

/// The value of `"key": ...` in the client's JSON line: a string's contents, else the raw token.
std::string field(const std::string& json, const std::string& key) {
  const auto k = json.find("\"" + key + "\": ");
  if (k == std::string::npos) return "";
  auto pos = k + key.size() + 4;
  if (json[pos] == '"') {
    const auto end = json.find('"', pos + 1);
    return json.substr(pos + 1, end - pos - 1);
  }
  const auto end = json.find_first_of(",}", pos);
  return json.substr(pos, end - pos);
}

class GrpcTest : public IngressTest {
 protected:
  GrpcBackend start_grpc(bool tls) {
    std::vector<std::string> argv{bin("phigate-test-grpc"), "--listen", "127.0.0.1:0"};
    if (tls) {
      const auto leaf = make_leaf(dir_.path(), ca_, "grpc.default.svc", {"grpc.default.svc", "127.0.0.1"});
      argv.insert(argv.end(), {"--tls-cert", leaf.cert, "--tls-key", leaf.key});
    }
    GrpcBackend b{Process::start(argv)};
    const auto line = b.process.wait_for_line("ready ", 10s);
    if (!line) throw std::runtime_error("phigate-test-grpc did not start: " + b.process.output());
    const auto colon = line->rfind(':');
    unsigned port = 0;
    std::from_chars(line->data() + colon + 1, line->data() + line->size(), port);
    b.port = static_cast<std::uint16_t>(port);
    return b;
  }

  /// One call with the Python client; returns its JSON line (or its error output).
  std::string call(std::uint16_t port, bool tls, const std::string& authority, const std::string& path,
                   std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"/usr/bin/python3", std::string(PHIGATE_GRPC_DIR) + "/grpc_client.py",
                                  "--port",           std::to_string(port),
                                  "--authority",      authority,
                                  "--path",           path,
                                  "--timeout",        "10"};
    if (tls) argv.insert(argv.end(), {"--tls", "--sni", authority, "--cafile", ca_.cert});
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto r = run(argv, {.timeout = 20s});
    return r.out.empty() ? "client failed: " + r.err : r.out;
  }

  /// phigate routing grpc.example to `backend` (GRPC, or GRPCS verified against the test CA).
  Phigate start_with(const GrpcBackend& backend, bool tls, const std::string& extra = "") {
    return start_with(backend.port, tls, extra);
  }
  Phigate start_with(std::uint16_t backend_port, bool tls, const std::string& extra = "") {
    dir_.write("manifests/services.yaml", grpc_service_yaml("grpc", backend_port));
    std::string ann =
        std::string("    nginx.ingress.kubernetes.io/backend-protocol: ") + (tls ? "GRPCS" : "GRPC") + "\n";
    if (tls) {
      // proxy-ssl-secret is ingress-nginx's: a client certificate (tls.crt, tls.key) plus ca.crt.
      const auto client =
          make_leaf(dir_.path(), ca_, "phigate-client", {"phigate-client"}, KeyType::EcdsaP256, true);
      dir_.write("manifests/ca.yaml",
                 "apiVersion: v1\nkind: Secret\nmetadata: { name: backend-ca, namespace: default }\n"
                 "data:\n  ca.crt: " +
                     b64(read_file(ca_.cert)) + "\n  tls.crt: " + b64(read_file(client.cert)) +
                     "\n  tls.key: " + b64(read_file(client.key)) + "\n");
      ann +=
          "    nginx.ingress.kubernetes.io/proxy-ssl-secret: default/backend-ca\n"
          "    nginx.ingress.kubernetes.io/proxy-ssl-name: grpc.default.svc\n";
    }
    dir_.write("manifests/ingress.yaml", ingress_yaml("grpc", "app.example", "grpc", ann));
    return start(extra);
  }

  /// phigate does not offer h2 to clients (then nothing here can pass).
  bool h2_missing(const Phigate& pg) {
    const auto out = call(pg.https, true, "app.example", "/test.Echo/Unary", {"--message", "probe"});
    return out.find("no h2 in ALPN") != std::string::npos;
  }

  /// The exchanges every backend protocol must carry.
  void exercise(const Phigate& pg) {
    const auto unary = call(pg.https, true, "app.example", "/test.Echo/Unary", {"--message", "hello"});
    EXPECT_EQ(field(unary, "status"), "200") << unary;
    EXPECT_NE(unary.find("\"messages\": [\"hello\"]"), std::string::npos) << unary;
    EXPECT_NE(unary.find("\"grpc-status\": \"0\""), std::string::npos) << unary;
    EXPECT_NE(unary.find("\"x-saw-te\": \"trailers\""), std::string::npos) << unary;

    const auto ss = call(pg.https, true, "app.example", "/test.Echo/ServerStream", {"--header", "x-count:3"});
    EXPECT_NE(ss.find("\"messages\": [\"msg-0\", \"msg-1\", \"msg-2\"]"), std::string::npos) << ss;

    const auto cs = call(pg.https, true, "app.example", "/test.Echo/ClientStream",
                         {"--message", "a", "--message", "b", "--message", "c"});
    EXPECT_NE(cs.find("\"messages\": [\"3\"]"), std::string::npos) << cs;

    const auto bidi = call(pg.https, true, "app.example", "/test.Echo/BidiStream",
                           {"--bidi", "--message", "x", "--message", "y"});
    EXPECT_NE(bidi.find("\"messages\": [\"x\", \"y\"]"), std::string::npos) << bidi;

    const auto tr = call(pg.https, true, "app.example", "/test.Echo/Trailers");
    EXPECT_NE(tr.find("\"x-custom-trailer\": \"custom-value\""), std::string::npos) << tr;

    // The backend's own error, trailers-only, passes through as it is.
    const auto fail = call(pg.https, true, "app.example", "/test.Echo/Fail", {"--header", "x-grpc-status:5"});
    EXPECT_EQ(field(fail, "trailers_only"), "true") << fail;
    EXPECT_NE(fail.find("\"grpc-status\": \"5\""), std::string::npos) << fail;

    // grpc-timeout shorter than the backend's answer: DEADLINE_EXCEEDED, trailers-only.
    const auto late = call(pg.https, true, "app.example", "/test.Echo/Sleep",
                           {"--header", "x-sleep-ms:3000", "--header", "grpc-timeout:300m"});
    EXPECT_EQ(field(late, "status"), "200") << late;
    EXPECT_NE(late.find("\"grpc-status\": \"4\""), std::string::npos) << late;
  }
};

TEST_F(GrpcTest, TheTestBackendAndClientSpeakGrpcPlainAndTls) {
  // The tools the end-to-end tests rely on, against each other (no phigate).
  auto plain = start_grpc(false);
  const auto unary = call(plain.port, false, "grpc.test", "/test.Echo/Unary", {"--message", "ping"});
  EXPECT_NE(unary.find("\"messages\": [\"ping\"]"), std::string::npos) << unary;
  EXPECT_NE(unary.find("\"grpc-status\": \"0\""), std::string::npos) << unary;
  const auto bidi = call(plain.port, false, "grpc.test", "/test.Echo/BidiStream",
                         {"--bidi", "--message", "1", "--message", "2"});
  EXPECT_NE(bidi.find("\"messages\": [\"1\", \"2\"]"), std::string::npos) << bidi;
  const auto fail = call(plain.port, false, "grpc.test", "/test.Echo/Fail", {"--header", "x-grpc-status:7"});
  EXPECT_EQ(field(fail, "trailers_only"), "true") << fail;
  const auto reset = call(plain.port, false, "grpc.test", "/test.Echo/Reset");
  EXPECT_EQ(field(reset, "reset"), "2") << reset;  // INTERNAL_ERROR, after a message
  EXPECT_NE(reset.find("\"messages\": [\"partial\"]"), std::string::npos) << reset;

  auto tls = start_grpc(true);
  const auto secure = call(tls.port, true, "grpc.default.svc", "/test.Echo/Unary", {"--message", "s"});
  EXPECT_NE(secure.find("\"messages\": [\"s\"]"), std::string::npos) << secure;
}

TEST_F(GrpcTest, UnsupportedBackendProtocolsFailClosed) {
  auto b = start_grpc(false);
  dir_.write("manifests/services.yaml", grpc_service_yaml("grpc", b.port));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("ajp", "app.example", "grpc", "    nginx.ingress.kubernetes.io/backend-protocol: AJP\n"));
  auto pg = start();
  EXPECT_EQ(code(pg, "app.example"), "503");  // never plain HTTP to a backend meant for AJP
  const auto out = pg.process.output();
  EXPECT_NE(out.find("GRPCS"), std::string::npos);  // the error says what is supported
}

TEST_F(GrpcTest, GrpcBackendEndToEnd) {
  auto b = start_grpc(false);
  auto pg = start_with(b, false);
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  exercise(pg);
}

// upstream-vhost on a gRPC route: the backend's :authority is the annotation's, X-Forwarded-Host
// the client's.
TEST_F(GrpcTest, UpstreamVhostIsTheBackendsAuthority) {
  auto b = start_grpc(false);
  dir_.write("manifests/services.yaml", grpc_service_yaml("grpc", b.port));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("grpc", "app.example", "grpc",
                          "    nginx.ingress.kubernetes.io/backend-protocol: GRPC\n"
                          "    nginx.ingress.kubernetes.io/upstream-vhost: grpc.internal\n"));
  auto pg = start();
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  const auto unary = call(pg.https, true, "app.example", "/test.Echo/Unary", {"--message", "hello"});
  EXPECT_NE(unary.find("\"x-saw-authority\": \"grpc.internal\""), std::string::npos) << unary;
  EXPECT_NE(unary.find("\"x-saw-xfh\": \"app.example\""), std::string::npos) << unary;
}

// A canary of a gRPC route (canary-by-header and canary-weight): the whole call, a bidi stream's
// every message included, goes to the side chosen at its head, and each call leaves exactly one
// audit record naming that side's endpoint (phigate.canary on the canary's).
TEST_F(GrpcTest, CanaryTakesTheWholeCallWithOneAuditRecord) {
  std::filesystem::create_directories(dir_.path("keys"));
  ASSERT_EQ(run({"openssl", "rand", "-base64", "-out", dir_.path("keys/k1.key"), "32"}).exit_code, 0);
  auto main = start_grpc(false);
  auto canary = start_grpc(false);
  constexpr const char* kN = "    nginx.ingress.kubernetes.io/";
  dir_.write("manifests/services.yaml",
             grpc_service_yaml("grpc", main.port) + "---\n" + grpc_service_yaml("grpc-canary", canary.port));
  // Header first (never: the main), then the weight (100: every other call).
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("grpc", "app.example", "grpc", std::string(kN) + "backend-protocol: GRPC\n") +
                 "---\n" +
                 ingress_yaml("grpc-canary", "app.example", "grpc-canary",
                              std::string(kN) + "canary: \"true\"\n" + kN + "canary-by-header: X-Canary\n" +
                                  kN + "canary-weight: \"100\"\n"));
  auto pg =
      start("audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") + ", active_key: k1 }\n");
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  const auto to_main = call(pg.https, true, "app.example", "/test.Echo/ClientStream",
                            {"--message", "a", "--message", "b", "--header", "x-canary:never"});
  EXPECT_NE(to_main.find("\"messages\": [\"2\"]"), std::string::npos) << to_main;
  const auto by_header =
      call(pg.https, true, "app.example", "/test.Echo/BidiStream",
           {"--bidi", "--message", "x", "--message", "y", "--message", "z", "--header", "x-canary:always"});
  EXPECT_NE(by_header.find("\"messages\": [\"x\", \"y\", \"z\"]"), std::string::npos) << by_header;
  const auto by_weight =
      call(pg.https, true, "app.example", "/test.Echo/ServerStream", {"--header", "x-count:2"});
  EXPECT_NE(by_weight.find("\"messages\": [\"msg-0\", \"msg-1\"]"), std::string::npos) << by_weight;
  pg.process.terminate();  // every record flushed
  const auto r = run({bin("phigate"), "audit", "decrypt", "--keys", dir_.path("keys"), dir_.path("audit")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> recs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("/test.Echo/") != std::string::npos) recs.push_back(line);
  }
  // One per call, however many messages it carried; the first is h2_missing's Unary probe (weight).
  ASSERT_EQ(recs.size(), 4u) << r.out;
  const auto main_ep = "\"address\":\"127.0.0.1:" + std::to_string(main.port) + "\"";
  const auto canary_ep = "\"address\":\"127.0.0.1:" + std::to_string(canary.port) + "\"";
  for (const auto& rec : recs) {
    const bool is_main = rec.find("/test.Echo/ClientStream") != std::string::npos;
    EXPECT_EQ(rec.find(main_ep) != std::string::npos, is_main) << rec;
    EXPECT_EQ(rec.find(canary_ep) != std::string::npos, !is_main) << rec;
    EXPECT_EQ(rec.find("\"canary\":true") != std::string::npos, !is_main) << rec;
    EXPECT_NE(rec.find("\"grpc_status\":0"), std::string::npos) << rec;
  }
}

TEST_F(GrpcTest, Http11ClientToAGrpcBackendIsRefused) {
  // The backend speaks HTTP/2 only: an HTTP/1.1 request is answered 503 by phigate, never sent
  // there in a protocol it would misread.
  auto b = start_grpc(false);
  auto pg = start_with(b, false);
  EXPECT_EQ(code(pg, "app.example"), "503");  // the fixture's curl speaks HTTP/1.1
}

TEST_F(GrpcTest, GrpcsBackendEndToEnd) {
  auto b = start_grpc(true);
  auto pg = start_with(b, true);
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  exercise(pg);
}

// The static config says the same as the annotation: backend_protocol GRPC (h2 prior knowledge)
// and GRPCS (TLS + ALPN h2, verified with backend_tls's CA and name).
TEST_F(GrpcTest, StaticRoutesWithBackendProtocolGrpcAndGrpcs) {
  auto plain = start_grpc(false);
  auto tls = start_grpc(true);
  for (const bool use_tls : {false, true}) {
    SCOPED_TRACE(use_tls ? "GRPCS" : "GRPC");
    const auto port = std::to_string(use_tls ? tls.port : plain.port);
    const std::string routes =
        "  - host: app.example\n    paths:\n"
        "      - path: /\n        backends: [\"127.0.0.1:" +
        port + "\"]\n" +
        (use_tls ? "        backend_protocol: GRPCS\n        backend_tls: { ca: " + ca_.cert +
                       ", name: grpc.default.svc }\n"
                 : "        backend_protocol: GRPC\n");
    auto pg = start_phigate(config(routes));
    exercise(pg);
    EXPECT_EQ(pg.process.terminate(), 0);
  }
}

TEST_F(GrpcTest, NoRouteIsUnimplementedTrailersOnly) {
  auto b = start_grpc(false);
  auto pg = start_with(b, false);
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  const auto r = call(pg.https, true, "other.example", "/test.Echo/Unary", {"--message", "x"});
  EXPECT_EQ(field(r, "status"), "200") << r;
  EXPECT_EQ(field(r, "trailers_only"), "true") << r;
  EXPECT_NE(r.find("\"grpc-status\": \"12\""), std::string::npos) << r;
}

TEST_F(GrpcTest, OneAuditRecordPerCallWithItsGrpcStatus) {
  std::filesystem::create_directories(dir_.path("keys"));
  ASSERT_EQ(run({"openssl", "rand", "-base64", "-out", dir_.path("keys/k1.key"), "32"}).exit_code, 0);
  auto b = start_grpc(false);
  auto pg = start_with(
      b, false,
      "audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") + ", active_key: k1 }\n");
  const auto ok = call(pg.https, true, "app.example", "/test.Echo/Unary", {"--message", "audited"});
  EXPECT_NE(ok.find("\"grpc-status\": \"0\""), std::string::npos) << ok;
  const auto failed = call(pg.https, true, "app.example", "/test.Echo/Fail", {"--header", "x-grpc-status:9"});
  EXPECT_NE(failed.find("\"grpc-status\": \"9\""), std::string::npos) << failed;
  const auto none = call(pg.https, true, "other.example", "/test.Echo/Unary");
  EXPECT_NE(none.find("\"grpc-status\": \"12\""), std::string::npos) << none;
  pg.process.terminate();  // every record flushed
  const auto r = run({bin("phigate"), "audit", "decrypt", "--keys", dir_.path("keys"), dir_.path("audit")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto count = [&](const std::string& fragment) {
    std::size_t n = 0;
    for (auto pos = r.out.find(fragment); pos != std::string::npos; pos = r.out.find(fragment, pos + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("\"grpc_status\":0"), 1u) << r.out;
  EXPECT_EQ(count("\"grpc_status\":9"), 1u) << r.out;
  EXPECT_EQ(count("\"grpc_status\":12"), 1u) << r.out;
  EXPECT_EQ(count("/test.Echo/Unary"), 2u) << r.out;  // the audited call and the unrouted one
  EXPECT_EQ(count("audited"), 0u);                    // never a body byte in the log
}

// Review finding 2: a bidi call whose client sends one message without ending its request (the
// pump waits for body) and never opens its window (the relay waits to write the echo, above the
// high-water mark). The two waits of one stream must not share a timer: the stream ends after
// body_idle, and phigate does not spin meanwhile (its CPU time is read from /proc).
TEST_F(GrpcTest, StalledBidiClientEndsAfterBodyIdleWithoutSpinning) {
  auto b = start_grpc(false);
  auto pg = start_with(b, false, "timeouts: { body_idle: 1s }\n");
  ASSERT_FALSE(h2_missing(pg)) << "phigate does not offer h2 to clients";
  static const std::string kScript = R"(
import socket, ssl, struct, sys, time, h2.connection, h2.config, h2.events, h2.settings
port, ca, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def cpu():
    f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime, clock ticks
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
c.send_headers(1, [(':method', 'POST'), (':path', '/test.Echo/BidiStream'), (':scheme', 'https'), (':authority', 'app.example'), ('content-type', 'application/grpc'), ('te', 'trailers')])
msg = b'\0' + struct.pack('>I', 60000) + b'x' * 60000
for i in range(0, len(msg), 16384): c.send_data(1, msg[i:i + 16384])
s.sendall(c.data_to_send())
time.sleep(0.2)
c0, start, ended = cpu(), time.monotonic(), 'stuck'
s.settimeout(0.2)
while time.monotonic() - start < 8 and ended == 'stuck':
    try: d = s.recv(65535)
    except socket.timeout: continue
    except (ConnectionResetError, ssl.SSLError): ended = 'closed'; break
    if not d: ended = 'closed'; break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.StreamReset): ended = 'reset'
        if isinstance(e, h2.events.ConnectionTerminated): ended = 'closed'
    try: s.sendall(c.data_to_send())
    except OSError: ended = 'closed'
elapsed, ticks = time.monotonic() - start, cpu() - c0
print('ended' if ended != 'stuck' else 'stuck', 'in time' if elapsed < 5 else 'late', 'idle' if ticks < 30 else 'spinning(%d ticks in %.1fs)' % (ticks, elapsed))
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert,
                std::to_string(pg.process.pid())},
               {.timeout = 20s});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ended in time idle\n");
}

// A client must not be able to get a gRPC endpoint ejected by resetting its calls while phigate
// connects to it: a GRPCS backend that takes TCP connections and never answers the ClientHello,
// calls reset mid-handshake. Passive checks eject after 2 failures; the resets are no failures.
TEST_F(GrpcTest, CallsResetWhileTheBackendConnectsAreNotCountedAgainstIt) {
  SilentListener silent;
  std::filesystem::create_directories(dir_.path("keys"));
  ASSERT_EQ(run({"openssl", "rand", "-base64", "-out", dir_.path("keys/k1.key"), "32"}).exit_code, 0);
  auto pg = start_with(silent.port(), true,
                       "audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") +
                           ", active_key: k1 }\n"
                           "timeouts: { upstream_connect: 2s }\n"
                           "upstream:\n  health:\n    passive: { consecutive_failures: 2, base_ejection: 60s,"
                           " max_ejection: 60s, max_ejected_percent: 100 }\n");
  const auto ejections = [&] {
    const auto text = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
    const auto at = text.find("\nphigate_upstream_ejections_total ");
    return at == std::string::npos ? -1L : std::strtol(text.c_str() + at + 34, nullptr, 10);
  };
  static const std::string kScript = R"(
import socket, ssl, sys, time, h2.connection, h2.config
port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='app.example')
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()
s.sendall(c.data_to_send())
start = time.time()
for i in range(n):
    sid = 1 + 2 * i
    c.send_headers(sid, [(':method', 'POST'), (':path', '/test.Echo/Reset'), (':scheme', 'https'),
                         (':authority', 'app.example'), ('content-type', 'application/grpc'), ('te', 'trailers')])
    s.sendall(c.data_to_send())
    time.sleep(0.15)  # phigate waits in the backend's TLS handshake (its connect timeout is 2 s)
    c.reset_stream(sid, error_code=8)
    s.sendall(c.data_to_send())
# Every call was reset well before the connect (2 s) ends; stay connected until it has ended,
# so that whatever phigate does with its failure happens while we look.
s.settimeout(0.1)
until = start + 2.8
while time.time() < until:
    try:
        if not s.recv(65535): break
    except socket.timeout: pass
print('sent')
)";
  auto r = run({"/usr/bin/python3", "-c", kScript, std::to_string(pg.https), ca_.cert, "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ejections(), 0) << "call resets were counted as the endpoint's failures";
  // The control: two real connect timeouts in a row do eject it (the counter above could move).
  for (int i = 0; i < 2; ++i) {
    const auto out = call(pg.https, true, "app.example", "/test.Echo/Unary", {"--message", "x"});
    // DEADLINE_EXCEEDED (connect timeout), or UNAVAILABLE once a call's own retry (a connect
    // failure is retried on the next attempt) has ejected it.
    EXPECT_TRUE(out.find("\"grpc-status\": \"4\"") != std::string::npos ||
                out.find("\"grpc-status\": \"14\"") != std::string::npos)
        << out;
  }
  EXPECT_EQ(ejections(), 1);
  // The calls that timed out say so in their records: the endpoint and the reason of each failed
  // connect (phigate.upstream.failed_attempts; a call that waited for another's connect gets that
  // connect's failure); the reset calls list none, and none of them was answered.
  pg.process.terminate();  // every record flushed
  const auto rec = run({bin("phigate"), "audit", "decrypt", "--keys", dir_.path("keys"), dir_.path("audit")});
  ASSERT_EQ(rec.exit_code, 0) << rec.err;
  const std::string attempt =
      "{\"address\":\"127.0.0.1:" + std::to_string(silent.port()) + "\",\"reason\":\"connect_timeout\"";
  EXPECT_NE(rec.out.find("\"failed_attempts\":[" + attempt), std::string::npos) << rec.out;
  std::size_t reset_records = 0;
  std::istringstream lines(rec.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("/test.Echo/Reset") == std::string::npos) continue;
    ++reset_records;
    EXPECT_NE(line.find("\"rule\":\"http-parser\""), std::string::npos) << line;  // client_closed
    EXPECT_EQ(line.find("grpc_status"), std::string::npos) << line;               // never answered
    EXPECT_EQ(line.find("failed_attempts"), std::string::npos) << line;
  }
  EXPECT_EQ(reset_records, 6u) << rec.out;
}

}  // namespace
}  // namespace phigate::test
