// WebSocket and other upgrades end to end: a real WebSocket client and server (Python
// websockets, tests/websocket/) through a real phigate over TLS, plus raw clients and malicious
// backends for what must be refused. docs/websocket.md describes the behaviour tested here.
#include <csignal>
#include <fstream>
#include <thread>

#include "audit_fixture.hpp"
#include "phigate_fixture.hpp"
#include "ws_server.hpp"

namespace phigate::test {
namespace {

const std::string& kPython = kWsPython;

std::string route(const std::string& backend) {
  return "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" + backend + "\"] }\n";
}

std::string ws_request(const std::string& path, const std::string& upgrade = "websocket",
                       const std::string& connection = "Upgrade") {
  return "GET " + path + " HTTP/1.1\r\nHost: app.example\r\nConnection: " + connection +
         "\r\nUpgrade: " + upgrade +
         "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

/// A masked client text frame (RFC 6455 §5.2), payload < 126 bytes.
std::string client_text_frame(const std::string& payload) {
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  std::string f;
  f += static_cast<char>(0x81);
  f += static_cast<char>(0x80 | payload.size());
  for (unsigned char m : mask) f += static_cast<char>(m);
  for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

class WebSocketTest : public AuditTest {
 protected:
  RunResult client(const Phigate& pg, std::vector<std::string> args,
                   std::chrono::milliseconds timeout = 90s) {
    std::vector<std::string> argv = {
        kPython, kWsDir + "/ws_client.py", "--port", std::to_string(pg.https), "--ca", ca_.cert};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.timeout = timeout;
    return run(argv, opts);
  }
  Process start_client(const Phigate& pg, std::vector<std::string> args) {
    std::vector<std::string> argv = {
        kPython, kWsDir + "/ws_client.py", "--port", std::to_string(pg.https), "--ca", ca_.cert};
    argv.insert(argv.end(), args.begin(), args.end());
    return Process::start(argv);
  }
  TlsClient tls(const Phigate& pg) {
    auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    if (!c) throw std::runtime_error("TLS connect: " + c.error);
    return std::move(*c);
  }
};

TEST_F(WebSocketTest, EchoBothWays_PingsLargeMessageAndCloses_Counted) {
  auto ws = start_ws_server();
  auto pg = start_phigate(config(route(ws.address())));
  const auto r = client(pg, {"basic"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("large ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ping ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("server close ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("client close ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok basic"), std::string::npos) << r.out;
  const auto page = wait_metric(pg, "phigate_tunnels_open", "0");
  EXPECT_EQ(metric(page, "phigate_tunnels_opened_total"), "2") << page;
  EXPECT_EQ(metric(page, "phigate_tunnels_open"), "0") << page;
  EXPECT_GE(std::stod(metric(page, "phigate_tunnel_bytes_total{direction=\"to_client\"}")), 1 << 20) << page;
  EXPECT_GE(std::stod(metric(page, "phigate_tunnel_bytes_total{direction=\"to_upstream\"}")), 1 << 20)
      << page;
  // Both closes ended at the server's TCP close, after the in-band close handshake.
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"upstream\"}"), "2") << page;
  EXPECT_EQ(metric(page, "phigate_responses_total{class=\"1xx\"}"), "2") << page;
}

TEST_F(WebSocketTest, ThousandTunnels_SurviveReload) {
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address())));
  const std::string trigger = dir_.path("go");
  auto c = start_client(pg, {"many", "1000", trigger});
  ASSERT_TRUE(c.wait_for_line("opened 1000", 90s)) << c.output();
  EXPECT_EQ(metric(metrics(pg), "phigate_tunnels_open"), "1000");
  // A new configuration (another route added) while every tunnel is open.
  dir_.write("phigate.yaml",
             config(route(ws.address()) + "  - host: other.example\n    paths:\n      - { path: /, "
                                          "backends: [\"127.0.0.1:1\"] }\n"));
  const auto mark = pg.process.output().size();
  ASSERT_TRUE(pg.process.send_signal(SIGHUP));
  ASSERT_TRUE(pg.process.wait_for_line("generation 2", 20s, mark)) << pg.process.output();
  std::ofstream(trigger) << "go";
  ASSERT_TRUE(c.wait_for_line("echoed", 90s)) << c.output();
  EXPECT_NE(c.output().find("echoed 1000"), std::string::npos) << c.output();
  EXPECT_EQ(c.wait_exit(60s), 0) << c.output();
}

TEST_F(WebSocketTest, IdleTimeout_ClosesSilentTunnel) {
  auto ws = start_ws_server({"--ping-interval", "0"});  // nothing moves unless the client talks
  auto pg =
      start_phigate(config(route(ws.address()), "timeouts: { upstream_read: 1s, upstream_send: 1s }\n"));
  const auto r = client(pg, {"--wait", "15", "idle"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto at = r.out.find("closed after ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const int ms = std::stoi(r.out.substr(at + 13));
  EXPECT_GE(ms, 800) << r.out;
  EXPECT_LE(ms, 5000) << r.out;
  const auto page = wait_metric(pg, "phigate_tunnels_closed_total{reason=\"idle\"}", "1");
  EXPECT_EQ(metric(page, "phigate_tunnels_closed_total{reason=\"idle\"}"), "1") << page;
}

TEST_F(WebSocketTest, Drain_WaitsForTunnelsThenClosesThemAtTheDeadline) {
  auto ws = start_ws_server();
  auto pg = start_phigate(config(route(ws.address()), "timeouts: { drain: 2s }\n"));
  auto c = start_client(pg, {"--wait", "20", "idle"});
  ASSERT_TRUE(c.wait_for_line("opened", 20s)) << c.output();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  ASSERT_TRUE(c.wait_for_line("closed after", 15s)) << c.output();
  const auto waited = std::chrono::steady_clock::now() - start;
  // Not before the drain deadline (the server's pings keep it alive), and soon after it.
  EXPECT_GE(waited, 1500ms);
  EXPECT_LE(waited, 6s);
  EXPECT_EQ(pg.process.wait_exit(10s), 0) << pg.process.output();
  EXPECT_EQ(c.wait_exit(10s), 0) << c.output();
}

TEST_F(WebSocketTest, NonSwitchingAnswer_RelayedThenConnectionClosed) {
  auto up = start_upstream();  // answers 200 to anything
  auto ws = start_ws_server();
  auto pg = start_phigate(config(route(up.address()) +
                                 "  - host: app.example\n    paths:\n      - { path: "
                                 "/forbidden, backends: [\"" +
                                 ws.address() + "\"] }\n"));
  for (const auto& [path, status] :
       std::vector<std::pair<std::string, int>>{{"/plain", 200}, {"/forbidden", 403}}) {
    SCOPED_TRACE(path);
    auto c = tls(pg);
    // A client that sends a frame right behind its head (it must not reach anyone as HTTP).
    ASSERT_TRUE(c.write(ws_request(path) + client_text_frame("GET /admin HTTP/1.1")));
    const auto resp = c.read_http_response(10s);
    ASSERT_TRUE(resp) << c.error();
    EXPECT_EQ(resp->status, status);
    EXPECT_EQ(resp->header("connection"), "close");
    EXPECT_FALSE(resp->has_header("upgrade"));
    c.read_all(5s);
    EXPECT_TRUE(c.closed());
  }
  // The test upstream saw the upgrade asked for again, and nothing after it.
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header(recs[0], "upgrade"), "websocket");
  EXPECT_EQ(record_header(recs[0], "connection"), "upgrade");
}

TEST_F(WebSocketTest, MaliciousBackend_101WithoutUpgradeRequest_502) {
  auto bad = start_ws_server({"--mode", "raw101"});
  auto pg = start_phigate(config(route(bad.address())));
  auto c = tls(pg);
  ASSERT_TRUE(c.write("GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n"));
  const auto resp = c.read_http_response(10s);
  ASSERT_TRUE(resp) << c.error();
  EXPECT_EQ(resp->status, 502);
  const auto rest = c.read_all(3s);
  EXPECT_EQ(rest.find("forged"), std::string::npos) << rest;
  EXPECT_EQ(metric(metrics(pg), "phigate_tunnels_opened_total"), "0");
}

TEST_F(WebSocketTest, RefusedTokensAudited_TunnelAuditedAtStartAndEnd) {
  auto up = start_upstream();
  auto ws = start_ws_server({"--ping-interval", "0"});
  auto pg = start_phigate(config(route(ws.address()) +
                                     "  - host: app.example\n    paths:\n      - { path: "
                                     "/foo, backends: [\"" +
                                     up.address() + "\"] }\n",
                                 audit_yaml() + "upstream: { upgrades: [websocket, foo] }\n"));
  struct C {
    std::string upgrade;
    std::string path;
    int status;
  };
  for (const auto& t : std::vector<C>{{"h2c", "/h2c", 400}, {"bar", "/bar", 400}, {"foo", "/foo", 200}}) {
    SCOPED_TRACE(t.upgrade);
    auto c = tls(pg);
    ASSERT_TRUE(c.write(ws_request(
        t.path, t.upgrade,
        t.upgrade == "h2c" ? "Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__" : "Upgrade")));
    const auto resp = c.read_http_response(10s);
    ASSERT_TRUE(resp) << c.error();
    EXPECT_EQ(resp->status, t.status);
    c.read_all(5s);
    EXPECT_TRUE(c.closed());
  }
  ASSERT_EQ(up.records().size(), 1u);
  EXPECT_EQ(record_header(up.records()[0], "upgrade"), "foo");  // a configured token goes through

  // A tunnel by hand: the 101, then a frame each way.
  {
    auto c = tls(pg);
    ASSERT_TRUE(c.write(ws_request("/chat")));
    const auto resp = c.read_http_response(10s);
    ASSERT_TRUE(resp) << c.error();
    ASSERT_EQ(resp->status, 101);
    EXPECT_EQ(resp->header("upgrade"), "websocket");
    EXPECT_EQ(resp->header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ASSERT_TRUE(c.write(client_text_frame("hi")));
    const auto echo = c.read_until([](std::string_view b) { return b.size() >= 4; }, 10s);
    ASSERT_TRUE(echo) << c.error();
    EXPECT_EQ(*echo, std::string("\x81\x02hi", 4));
  }  // closed by the client: the tunnel ends
  wait_metric(pg, "phigate_tunnels_open", "0");
  pg.process.terminate();
  const auto recs = records();
  const auto h2c = find(recs, "\"path\":\"/h2c\"");
  ASSERT_FALSE(h2c.empty());
  EXPECT_TRUE(has(h2c, "\"status_code\":400")) << h2c;
  EXPECT_TRUE(has(h2c, "\"reason\":\"bad_request\"")) << h2c;
  const auto bar = find(recs, "\"path\":\"/bar\"");
  EXPECT_TRUE(has(bar, "\"status_code\":400")) << bar;
  const auto start = find(recs, "\"action\":\"tunnel-start\"");
  ASSERT_FALSE(start.empty());
  EXPECT_TRUE(has(start, "\"protocol\":\"websocket\"")) << start;
  EXPECT_TRUE(has(start, "\"address\":\"" + ws.address() + "\"")) << start;
  const auto end = find(recs, "\"path\":\"/chat\"");
  ASSERT_FALSE(end.empty());
  EXPECT_TRUE(has(end, "\"status_code\":101")) << end;
  EXPECT_TRUE(has(end, "\"bytes_to_upstream\":8")) << end;  // the 8-byte masked frame
  EXPECT_TRUE(has(end, "\"bytes_to_client\":4")) << end;
  EXPECT_TRUE(has(end, "\"closed_by\":\"client\"")) << end;
  EXPECT_EQ(json_field(start, "request_id"), json_field(end, "request_id"));
}

}  // namespace
}  // namespace phigate::test
