// A malicious client against real phigate and real backends: request smuggling through upgrades,
// path parameters, backslashes, spoofable identity fields, Connection abuse, Host tricks and
// framing conflicts. Beyond each case's answer, the invariant test holds the class closed: every
// request a backend received was vetted by phigate (it carries a request id phigate generated,
// with exactly one audit record of the same method, host and path), nothing else reached a
// backend, and every response a client read was produced by that client's own request.
#include <csignal>
#include <map>
#include <set>

#include "audit_fixture.hpp"

namespace phigate::test {
namespace {

struct Case {
  std::string name;
  std::string bytes;                   // written in one go on a fresh TLS connection
  std::vector<int> statuses;           // the responses expected, in order
  bool closes = false;                 // phigate must close the connection after them
  std::vector<std::string> targets{};  // what the client asked for in each 2xx exchange, in order
};

std::string req(const std::string& line, const std::string& fields = "", const std::string& body = "") {
  return line + "\r\n" + fields + "\r\n" + body;
}

std::vector<Case> corpus() {
  const std::string host = "Host: app.example\r\n";
  return {
      // The reported case: over one connection, an upgrade request with a 1-byte body, then a POST
      // whose body hides a GET /admin with forged identity fields.
      {"upgrade-smuggling",
       req("POST /x HTTP/1.1", host + "Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 1\r\n", "A") +
           req("POST /y HTTP/1.1", host + "Content-Length: 99\r\n",
               "A" + req("GET /admin HTTP/1.1",
                         host + "ssl-client-verify: SUCCESS\r\nX-Forwarded-For: 10.0.0.1\r\n")),
       {400},
       true},
      // A WebSocket handshake is forwarded (docs/websocket.md); the backend answers 200, not 101,
      // so the connection closes after it and the request hidden behind the handshake is never
      // parsed or forwarded.
      {"websocket-without-101",
       req("GET /ws HTTP/1.1",
           host + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") +
           req("GET /admin/after-ws HTTP/1.1", host),
       {200},
       true,
       {"/ws"}},
      {"keep-alive-and-upgrade",
       req("GET /ka HTTP/1.1", host + "Connection: keep-alive, Upgrade\r\nUpgrade: foo\r\n") +
           req("GET /admin/after-ka HTTP/1.1", host),
       {400},
       true},
      {"connect",
       req("CONNECT app.example:443 HTTP/1.1", "Host: app.example:443\r\n") +
           req("GET /admin/c HTTP/1.1", host),
       {400},
       true},
      {"h2c-upgrade",
       req("GET /h2c HTTP/1.1", host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                       "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
       {400},
       true},
      {"dot-dot-semicolon", req("GET /public/..;/admin/p HTTP/1.1", host), {400}, true},
      {"dot-semicolon", req("GET /public/.;/x HTTP/1.1", host), {400}, true},
      // Routed as Tomcat resolves it: /admin/secret, so the /admin rule (backend B) takes it.
      {"segment-parameters", req("GET /admin;x/secret HTTP/1.1", host), {200}, false, {"/admin;x/secret"}},
      {"raw-backslash", req("GET /public\\..\\admin HTTP/1.1", host), {400}, true},
      // Routed by `/` here but served as /admin by servers that strip fragments.
      {"fragment", req("GET /admin#x HTTP/1.1", host), {400}, true},
      {"identity-spoofing",
       req("GET /spoof HTTP/1.1",
           host + "ssl_client_verify: SUCCESS\r\nX_Forwarded_For: 10.0.0.1\r\n"
                  "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n"
                  "Forwarded: for=10.0.0.1;proto=https\r\nssl-client-verify: SUCCESS\r\n"),
       {200},
       false,
       {"/spoof"}},
      {"connection-host-and-many-tokens",
       req("GET /conn HTTP/1.1",
           host + "Connection: host, a1, a2, a3, a4, a5, a6, a7, a8, X-Ninth\r\nX-Ninth: secret\r\n"),
       {200},
       false,
       {"/conn"}},
      {"host-userinfo", req("GET /h HTTP/1.1", "Host: app.example:@other.example\r\n"), {400}, true},
      {"host-slash", req("GET /h HTTP/1.1", "Host: app.example/..\r\n"), {400}, true},
      {"host-backslash", req("GET /h HTTP/1.1", "Host: app.example\\x\r\n"), {400}, true},
      {"te-in-http10",
       req("POST /te10 HTTP/1.0", host + "Transfer-Encoding: chunked\r\n", "0\r\n\r\n") +
           req("GET /admin/te HTTP/1.1", host),
       {400},
       true},
      {"cl-and-te",
       req("POST /clte HTTP/1.1", host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
           "0\r\n\r\n" + req("GET /admin/clte HTTP/1.1", host)),
       {400},
       true},
      {"two-content-lengths",
       req("POST /cl2 HTTP/1.1", host + "Content-Length: 1\r\nContent-Length: 2\r\n", "AB"),
       {400},
       true},
      {"two-hosts", req("GET /hh HTTP/1.1", host + "Host: other.example\r\n"), {400}, true},
      // Legitimate pipelining still works, each answer in order and to its own request.
      {"pipelined",
       req("GET /p1 HTTP/1.1", host) + req("GET /p2?bytes=5 HTTP/1.1", host),
       {200, 200},
       false,
       {"/p1", "/p2?bytes=5"}},
  };
}

class SmugglingTest : public AuditTest {};

TEST_F(SmugglingTest, MaliciousClientCorpus_RefusedOrServedSafely_EveryBackendRequestVettedAndAudited) {
  auto up_a = start_upstream("a");
  auto up_b = start_upstream("b");
  const std::string routes = "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" +
                             up_a.address() + "\"] }\n      - { path: /admin, backends: [\"" +
                             up_b.address() + "\"] }\n";
  auto pg = start_phigate(config(routes, audit_yaml()));

  // What each 2xx response says produced it (upstream name, connection, sequence) → the target
  // the client sent.
  std::map<std::string, std::string> produced_by;
  std::map<std::string, std::string> echoed;  // the X-Request-Id the backend saw, as it echoed it
  std::size_t exchanges = 0;
  for (const auto& c : corpus()) {
    SCOPED_TRACE(c.name);
    auto cl = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .ca_file = ca_.cert});
    ASSERT_TRUE(cl) << cl.error;
    ASSERT_TRUE(cl->write(c.bytes)) << cl->error();
    std::size_t served = 0;
    for (int want : c.statuses) {
      auto r = cl->read_http_response(10s);
      ASSERT_TRUE(r) << cl->error();
      EXPECT_EQ(r->status, want);
      ++exchanges;
      if (r->status == 200) {
        ASSERT_LT(served, c.targets.size());
        const auto key = r->header("X-Upstream-Name") + "/" + r->header("X-Upstream-Conn") + "/" +
                         r->header("X-Upstream-Seq");
        produced_by[key] = c.targets[served++];
        echoed[key] = r->header("X-Echo-Request-Id");
      }
    }
    if (c.closes) {
      // Nothing more is answered, and the connection ends: the bytes after the refused request
      // were never parsed as requests.
      const auto rest = cl->read_all(5s);
      EXPECT_TRUE(cl->closed()) << "connection left open";
      EXPECT_EQ(rest.find("HTTP/1.1"), std::string::npos) << rest;
    }
  }

  // Exactly the requests that should have reached a backend did, each where its route says.
  std::multiset<std::string> seen;
  std::vector<std::pair<std::string, std::string>> records;  // (upstream, record line)
  for (const auto* up : {&up_a, &up_b}) {
    for (const auto& line : up->records()) records.emplace_back(up == &up_a ? "a" : "b", line);
  }
  for (const auto& [name, line] : records) seen.insert(name + " " + json_field(line, "target"));
  EXPECT_EQ(seen, (std::multiset<std::string>{"a /ws", "b /admin;x/secret", "a /spoof", "a /conn", "a /p1",
                                              "a /p2?bytes=5"}));

  // Forged identity fields never arrive; Host survives Connection: host; every token is honoured.
  for (const auto& [name, line] : records) {
    const auto target = json_field(line, "target");
    SCOPED_TRACE(target);
    EXPECT_EQ(record_header_count(line, "ssl_client_verify"), 0);
    EXPECT_EQ(record_header_count(line, "x_forwarded_for"), 0);
    EXPECT_EQ(record_header_count(line, "x-original-url"), 0);
    EXPECT_EQ(record_header_count(line, "x-rewrite-url"), 0);
    EXPECT_EQ(record_header_count(line, "ssl-client-verify"), 0);  // no client certificates on this host
    EXPECT_EQ(record_header(line, "x-forwarded-for"), "127.0.0.1");
    EXPECT_EQ(record_header_count(line, "forwarded"), 1);
    EXPECT_EQ(record_header(line, "forwarded").rfind("for=127.0.0.1;", 0), 0u)
        << record_header(line, "forwarded");
    EXPECT_EQ(record_header_count(line, "host"), 1);
    EXPECT_EQ(record_header(line, "host"), "app.example");
    EXPECT_EQ(record_header_count(line, "x-ninth"), 0);
  }

  // Every response went to the client whose request produced it.
  for (const auto& [key, target] : produced_by) {
    bool found = false;
    for (const auto& [name, line] : records) {
      if (name + "/" + json_field(line, "conn") + "/" + json_field(line, "seq") == key) {
        EXPECT_EQ(json_field(line, "target"), target) << key;
        EXPECT_EQ(echoed[key], record_header(line, "x-request-id")) << key;
        found = true;
      }
    }
    EXPECT_TRUE(found) << key;
  }

  // Every backend request carries a request id phigate made, and has exactly one audit record
  // with the same method, host and path.
  // SIGTERM drains and flushes the audit log.
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  ASSERT_EQ(pg.process.wait_exit(20s), 0);
  const auto audit = this->records();
  std::set<std::string> ids;
  for (const auto& [name, line] : records) {
    const auto id = record_header(line, "x-request-id");
    SCOPED_TRACE(id);
    EXPECT_TRUE(id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos);
    EXPECT_TRUE(ids.insert(id).second) << "request id seen twice";
    int matches = 0;
    for (const auto& a : audit) {
      if (a.find("\"request_id\":\"" + id + "\"") == std::string::npos) continue;
      ++matches;
      EXPECT_TRUE(has(a, "\"method\":\"" + json_field(line, "method") + "\"")) << a;
      EXPECT_TRUE(has(a, "\"domain\":\"app.example\"")) << a;
      const auto target = json_field(line, "target");
      EXPECT_TRUE(has(a, "\"path\":\"" + target.substr(0, target.find('?')) + "\"")) << a;
    }
    EXPECT_EQ(matches, 1);
  }
  // And every exchange a client saw (refusals included) is in the audit log.
  std::size_t http_records = 0;
  for (const auto& a : audit) http_records += has(a, "\"action\":\"http-request\"") ? 1 : 0;
  EXPECT_EQ(http_records, exchanges);
}

}  // namespace
}  // namespace phigate::test
