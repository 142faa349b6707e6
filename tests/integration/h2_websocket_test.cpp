// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) end to end: the raw-frame client
// tests/h2/ws_over_h2.py (Python h2, a minimal RFC 6455) through a real phigate to the Python
// WebSocket backend of tests/websocket/ws_server.py (a real websockets server, or its malicious
// modes). docs/websocket.md ("WebSocket over HTTP/2") describes the behaviour tested here.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "audit_fixture.hpp"
#include "ws_server.hpp"

namespace phigate::test {
namespace {

const std::string& kPython = kWsPython;

#if defined(__SANITIZE_ADDRESS__)
constexpr long kRssScale = 6;  // as h2_attack_test.cpp: quarantine and redzones under ASan
#else
constexpr long kRssScale = 1;
#endif

std::string route(const std::string& backend, const std::string& extra = "") {
  return "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" + backend + "\"]" + extra +
         " }\n";
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

class H2WebSocketTest : public AuditTest {
 protected:
  /// Runs ws_over_h2.py once; returns its JSON line (asserting it printed one).
  std::string client(const Phigate& pg, const std::string& mode, std::vector<std::string> extra = {},
                     std::chrono::milliseconds timeout = 90s) {
    std::vector<std::string> argv{kPython,  PHIGATE_WS_H2_SCRIPT,     "--mode",   mode,
                                  "--port", std::to_string(pg.https), "--cafile", ca_.cert};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunOptions opts;
    opts.timeout = timeout;
    const auto r = run(argv, opts);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto line = r.out.substr(0, r.out.find('\n'));
    EXPECT_EQ(line.rfind("{", 0), 0u) << r.out << r.err;
    return line;
  }
};

TEST_F(H2WebSocketTest, Echo_LargeMessagesBothWays_AuditedAndCounted) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()), audit_yaml()));
  const auto line = client(pg, "echo", {"--path", "/echo", "--sizes", "5,70000,1500000"});
  EXPECT_EQ(json_field(line, "enable_connect_protocol"), "1") << line;
  EXPECT_EQ(json_field(line, "status"), "200") << line;
  EXPECT_EQ(json_field(line, "echo_ok"), "true") << line;  // > 1 MiB each way through the windows
  EXPECT_EQ(json_field(line, "close_ok"), "true") << line;
  EXPECT_EQ(json_field(line, "end_stream"), "true") << line;      // the backend's FIN: END_STREAM
  EXPECT_EQ(json_field(line, "accept_header"), "false") << line;  // this hop's accept, not passed
  EXPECT_EQ(json_field(line, "flow_error"), "false") << line;
  EXPECT_EQ(ws.requests(), 1);  // the backend's websockets library accepted phigate's own key
  auto page = wait_metric(pg, "phigate_tunnels_open", "0");
  EXPECT_EQ(metric(page, "phigate_tunnels_opened_total"), "1") << page;
  EXPECT_GE(std::stod(metric(page, "phigate_tunnel_bytes_total{direction=\"to_client\"}")), 1.5e6) << page;
  EXPECT_GE(std::stod(metric(page, "phigate_tunnel_bytes_total{direction=\"to_upstream\"}")), 1.5e6) << page;
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"upstream\"}"), "1") << page;
  pg.process.terminate();
  const auto recs = records();
  const auto start = find(recs, "\"action\":\"tunnel-start\"");
  ASSERT_FALSE(start.empty());
  EXPECT_TRUE(has(start, "\"protocol\":\"websocket\"")) << start;
  EXPECT_TRUE(has(start, "\"h2_stream\":1")) << start;
  EXPECT_TRUE(has(start, "\"address\":\"" + ws.address() + "\"")) << start;
  const auto end = find(recs, "\"path\":\"/echo\"");
  ASSERT_FALSE(end.empty());
  EXPECT_TRUE(has(end, "\"status_code\":200")) << end;
  EXPECT_TRUE(has(end, "\"version\":\"2\"")) << end;
  EXPECT_TRUE(has(end, "\"method\":\"CONNECT\"")) << end;  // as the client sent it (GET only on the hop)
  EXPECT_TRUE(has(end, "\"h2_stream\":1")) << end;
  EXPECT_TRUE(has(end, "\"closed_by\":\"upstream\"")) << end;
  EXPECT_TRUE(has(end, "\"outcome\":\"success\"")) << end;
  EXPECT_EQ(json_field(start, "request_id"), json_field(end, "request_id"));
  EXPECT_EQ(std::count_if(recs.begin(), recs.end(), [](const std::string& r) { return has(r, "\"/echo\""); }),
            1);
}

TEST_F(H2WebSocketTest, SettingAnnouncedOnlyWhenOffered_ElseExtendedConnectRefused) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  for (const std::string extra : {"http2: { websocket: false }\n", "upstream: { upgrades: [] }\n",
                                  "http2: { max_websockets_per_connection: 0 }\n"}) {
    SCOPED_TRACE(extra);
    auto pg = start_phigate(config(route(ws.address()), extra));
    const auto settings = client(pg, "settings");
    EXPECT_EQ(json_field(settings, "enable_connect_protocol"), "0") << settings;
    // A client that sends :protocol anyway: malformed for nghttp2 (RFC 8441 §3), stream reset.
    const auto line = client(pg, "request", {"--case", "normal"});
    EXPECT_EQ(json_field(line, "status"), "null") << line;
    EXPECT_EQ(json_field(line, "reset_code"), "1") << line;  // PROTOCOL_ERROR
    pg.process.terminate();
  }
  EXPECT_EQ(ws.requests(), 0);
}

TEST_F(H2WebSocketTest, MaliciousClient_MalformedOrRefusedHeads_NeverReachTheBackend) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()), audit_yaml()));
  struct C {
    std::string name, status, reset;
  };
  for (const auto& c : std::vector<C>{{"plain_connect", "400", "null"},
                                      {"protocol_foo", "400", "null"},
                                      {"protocol_h2c", "400", "null"},
                                      {"content_length", "400", "null"},
                                      {"extra_pseudo", "null", "1"},
                                      {"missing_scheme", "null", "1"},
                                      {"protocol_on_get", "null", "1"}}) {
    SCOPED_TRACE(c.name);
    const auto line = client(pg, "request", {"--case", c.name, "--path", "/evil/" + c.name});
    EXPECT_EQ(json_field(line, "status"), c.status) << line;
    if (c.reset != "null") {
      EXPECT_EQ(json_field(line, "reset_code"), c.reset) << line;
    }
  }
  EXPECT_EQ(ws.requests(), 0);
  pg.process.terminate();
  const auto recs = records();
  for (const std::string reason : {"connect_refused", "extended_connect_protocol", "extended_connect_body"}) {
    EXPECT_FALSE(find(recs, "\"reason\":\"" + reason + "\"").empty()) << reason;
  }
}

TEST_F(H2WebSocketTest, PerConnectionCap_OverItRefused429_ThenFreedSlotReused) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(
      config(route(ws.address()), audit_yaml() + "http2: { max_websockets_per_connection: 3 }\n"));
  const auto line = client(pg, "many", {"--count", "4", "--path", "/echo"});
  EXPECT_EQ(json_field(line, "n_200"), "3") << line;
  EXPECT_EQ(json_field(line, "n_429"), "1") << line;
  EXPECT_EQ(json_field(line, "n_other"), "0") << line;
  EXPECT_EQ(json_field(line, "echoed"), "3") << line;
  EXPECT_EQ(json_field(line, "after_close_status"), "200") << line;
  EXPECT_EQ(ws.requests(), 4);  // the refused stream never reached the backend
  wait_metric(pg, "phigate_tunnels_open", "0");
  pg.process.terminate();
  const auto refused = find(records(), "\"reason\":\"websocket_cap\"");
  ASSERT_FALSE(refused.empty());
  EXPECT_TRUE(has(refused, "\"status_code\":429")) << refused;
}

TEST_F(H2WebSocketTest, PolicyEnforcedBeforeTheBackend_DeniedClientAndUnknownRoute) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()), "access: { deny: [\"127.0.0.2\"] }\n"));
  const auto denied = client(pg, "echo", {"--source", "127.0.0.2", "--path", "/echo"});
  EXPECT_EQ(json_field(denied, "status"), "403") << denied;
  const auto misrouted = client(pg, "echo", {"--authority", "nowhere.example", "--path", "/echo"});
  EXPECT_EQ(json_field(misrouted, "status"), "404") << misrouted;
  // Dot segments with parameters: the target phase refuses the :path (400).
  const auto bad_path = client(pg, "echo", {"--path", "/a/..;x/echo"});
  EXPECT_EQ(json_field(bad_path, "status"), "400") << bad_path;
  EXPECT_EQ(ws.requests(), 0);
  const auto ok = client(pg, "echo", {"--path", "/echo", "--sizes", "10"});
  EXPECT_EQ(json_field(ok, "echo_ok"), "true") << ok;
  EXPECT_EQ(ws.requests(), 1);
}

TEST_F(H2WebSocketTest, IdleTunnel_EndedByTheProxyReadAndSendTimeouts) {
  auto ws = start_ws_server({"--ping-interval", "0"});  // nothing moves unless the client talks
  auto pg = start_phigate(
      config(route(ws.address()), audit_yaml() + "timeouts: { upstream_read: 1s, upstream_send: 1s }\n"));
  const auto line = client(pg, "read", {"--path", "/echo", "--size", "1000000", "--time-limit", "15"});
  EXPECT_EQ(json_field(line, "status"), "200") << line;
  EXPECT_EQ(json_field(line, "reset_code"), "8") << line;  // CANCEL
  EXPECT_LT(std::stod(json_field(line, "elapsed_s")), 8.0) << line;
  const auto page = wait_metric(pg, "phigate_tunnels_closed_total{reason=\"idle\"}", "1");
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"idle\"}"), "1") << page;
  pg.process.terminate();
  const auto end = find(records(), "\"closed_by\":\"idle\"");
  ASSERT_FALSE(end.empty());
  EXPECT_TRUE(has(end, "\"status_code\":200")) << end;
  EXPECT_TRUE(has(end, "\"outcome\":\"success\"")) << end;  // as an HTTP/1.1 tunnel: proxied
}

TEST_F(H2WebSocketTest, MaliciousBackend_BadSwitchOr2xx_502_RefusalsRelayed) {
  auto evil = start_ws_server({"--mode", "evil"});
  // Passive checks on and strict: a backend that answers a well-formed head that is not the switch
  // (an ordinary app answering 200 to any GET) is not failing; only the 500 counts, once.
  auto pg = start_phigate(config(route(evil.address()),
                                 "upstream:\n  health:\n    passive: { consecutive_failures: 2, "
                                 "max_ejected_percent: 100, base_ejection: 60s }\n"));
  struct C {
    std::string path, status;
  };
  for (const auto& c : std::vector<C>{{"/noconn", "502"},
                                      {"/wrongupgrade", "502"},
                                      {"/wrongaccept", "502"},
                                      {"/ok200", "502"},
                                      {"/forbidden", "403"},
                                      {"/err500", "500"}}) {
    SCOPED_TRACE(c.path);
    const auto line = client(pg, "read", {"--path", c.path, "--size", "1", "--time-limit", "5"});
    EXPECT_EQ(json_field(line, "status"), c.status) << line;
    EXPECT_EQ(json_field(line, "end_stream"), "true") << line;
    EXPECT_EQ(json_field(line, "first_message"), "") << line;  // nothing of a bad 101 or 200 relayed
  }
  const auto page = metrics(pg);
  EXPECT_EQ(metric(page, "phigate_tunnels_opened_total"), "0") << page;
  EXPECT_EQ(metric(page, "phigate_upstream_ejections_total"), "0") << page;
}

// An extended CONNECT on a gRPC route: the backend speaks HTTP/2 only, so an HTTP/1.1 upgrade is
// never written to it (503, as an HTTP/1.x client on a gRPC route).
TEST_F(H2WebSocketTest, GrpcRouteRefusesExtendedConnect) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address(), ", backend_protocol: GRPC")));
  const auto line = client(pg, "echo", {"--path", "/echo"});
  EXPECT_EQ(json_field(line, "status"), "503") << line;
  EXPECT_EQ(ws.requests(), 0);
}

// A client that aborts an open tunnel (RST_STREAM): the tunnel ends as the client's doing, never as
// the backend's failure (audit and metrics).
TEST_F(H2WebSocketTest, ClientResetMidTunnel_IsTheClientsNotTheBackends) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()), audit_yaml()));
  const auto line = client(pg, "reset_tunnel", {"--path", "/echo"});
  EXPECT_EQ(json_field(line, "status"), "200") << line;
  EXPECT_EQ(json_field(line, "echo_ok"), "true") << line;
  const auto page = wait_metric(pg, "phigate_tunnels_open", "0");
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"client_error\"}"), "1") << page;
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"upstream_error\"}"), "0") << page;
  pg.process.terminate();
  const auto end = find(records(), "\"closed_by\":");
  ASSERT_FALSE(end.empty());
  EXPECT_TRUE(has(end, "\"closed_by\":\"client_error\"")) << end;
  EXPECT_FALSE(has(end, "upstream_reset")) << end;
}

// Tunnels count against limits.max_connections_per_worker with the client connections: one client
// connection (1) plus two tunnels fill a limit of 3; the third tunnel is refused 429.
TEST_F(H2WebSocketTest, TunnelsCountAgainstTheWorkersConnectionLimit) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()), "limits: { max_connections_per_worker: 3 }\n"));
  const auto line = client(pg, "many", {"--count", "3", "--path", "/echo"});
  EXPECT_EQ(json_field(line, "n_200"), "2") << line;
  EXPECT_EQ(json_field(line, "n_429"), "1") << line;
  EXPECT_EQ(ws.requests(), 3);  // two tunnels, then the one after a slot was freed; never the refused
}

TEST_F(H2WebSocketTest, MaliciousBackend_FloodBoundedByFlowControl_EofIsEndStream) {
  auto evil = start_ws_server({"--mode", "evil", "--flood-seconds", "20"});
  auto pg = start_phigate(
      config(route(evil.address()), "timeouts: { body_idle: 2s, upstream_read: 30s, upstream_send: 30s }\n"));
  const auto baseline = rss_kib(pg.process.pid());
  ASSERT_GT(baseline, 0);
  // A reader: what it gets never exceeds the windows it gave (h2 checks), at full speed.
  const auto read = client(pg, "read", {"--path", "/flood", "--size", std::to_string(16 << 20)});
  EXPECT_EQ(json_field(read, "status"), "200") << read;
  EXPECT_GE(std::stol(json_field(read, "data_bytes")), 16l << 20) << read;
  EXPECT_EQ(json_field(read, "flow_error"), "false") << read;
  // A client that never returns window while the backend floods: phigate stops reading the backend
  // (memory bounded), and its write deadline (body_idle) ends the tunnel.
  long peak = 0;
  std::string zero;
  std::thread t([&] { zero = client(pg, "zero_window", {"--path", "/flood", "--time-limit", "15"}); });
  for (int i = 0; i < 40; ++i) {
    peak = std::max(peak, rss_kib(pg.process.pid()));
    std::this_thread::sleep_for(100ms);
  }
  t.join();
  ASSERT_EQ(json_field(zero, "status"), "200") << zero << pg.process.output();
  EXPECT_EQ(json_field(zero, "data_bytes"), "0") << zero;
  EXPECT_LE(std::stod(json_field(zero, "waited_s")), 8.0) << zero;  // ended by body_idle, not our limit
  EXPECT_TRUE(json_field(zero, "reset_code") != "null" || json_field(zero, "closed") == "true") << zero;
  EXPECT_LT(peak - baseline, 32 * 1024 * kRssScale) << "KiB over baseline " << baseline;
  // The backend sends a frame and closes: the client gets the frame, then END_STREAM.
  const auto eof = client(pg, "read", {"--path", "/eof", "--size", "100", "--time-limit", "10"});
  EXPECT_EQ(json_field(eof, "status"), "200") << eof << pg.process.output();
  EXPECT_EQ(json_field(eof, "first_message"), "bye") << eof;
  EXPECT_EQ(json_field(eof, "end_stream"), "true") << eof;
  const auto page = wait_metric(pg, "phigate_tunnels_open", "0");
  EXPECT_EQ(metric(page, "phigate_tunnels_opened_total"), "3") << page;
  EXPECT_GE(std::stoi(metric(page, "phigate_tunnels_closed_total{reason=\"upstream\"}")), 1) << page;
}

TEST_F(H2WebSocketTest, ClientResetDuringBackendTlsHandshake_NotReportedAgainstTheEndpoint) {
  // A TLS backend whose listener never answers the ClientHello: every stream is reset by the
  // client while phigate is still in the handshake. Two failures would eject it.
  auto silent = start_ws_server({"--mode", "silent"});
  auto pg = start_phigate(config(route(silent.address(), ", backend_tls: { ca: " + ca_.cert + " }"),
                                 "upstream:\n  health:\n    passive: { consecutive_failures: 2, "
                                 "max_ejected_percent: 100, base_ejection: 60s }\n"
                                 "timeouts: { upstream_connect: 10s }\n"));
  const auto line = client(pg, "reset_connect", {"--path", "/echo", "--count", "5", "--settle", "0.3"});
  EXPECT_EQ(json_field(line, "answered"), "0") << line;
  const auto page = metrics(pg);
  EXPECT_EQ(metric(page, "phigate_upstream_ejections_total"), "0") << page;
}

}  // namespace
}  // namespace phigate::test
