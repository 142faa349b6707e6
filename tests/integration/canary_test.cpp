// ingress-nginx canaries through the real binary: manifests as in ingress-nginx's canary docs, in
// a watched folder, and recording backends (phigate-test-upstream --record) that say which side
// served each request.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "ws_server.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

class CanaryTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    main_ = start_upstream("main");
    canary_ = start_upstream("canary");
    dir_.write("manifests/services.yaml",
               service_yaml("svc-main", *main_) + "---\n" + service_yaml("svc-canary", *canary_));
  }
  /// The main Ingress (`main_annotations`) and the canary one (canary: "true" plus `canary`).
  void write(const std::string& canary, const std::string& main_annotations = "") {
    dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-main", main_annotations) +
                                             "---\n" + canary_yaml(canary));
  }
  static std::string canary_yaml(const std::string& annotations, const std::string& host = "app.example") {
    return ingress_yaml("web-canary", host, "svc-canary",
                        std::string(kN) + "canary: \"true\"\n" + annotations);
  }
  /// Status of one GET / on app.example with extra curl arguments (-H, -b).
  std::string get(const Phigate& pg, std::vector<std::string> args = {}) {
    args.insert(args.end(), {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/")});
    return curl(pg, args).out;
  }
  /// `n` GETs over one keep-alive connection (curl URL globbing); every one must answer 200.
  void many(const Phigate& pg, int n, const std::string& host = "app.example") {
    const auto r = curl(
        pg,
        {"-o", "/dev/null", "-w", "%{http_code}\\n", https_url(pg, "/n[1-" + std::to_string(n) + "]", host)},
        120s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::size_t ok = 0;
    for (std::size_t at = r.out.find("200"); at != std::string::npos; at = r.out.find("200", at + 3)) ++ok;
    ASSERT_EQ(ok, static_cast<std::size_t>(n)) << r.out.substr(0, 200);
  }

  std::optional<Upstream> main_, canary_;
};

TEST_F(CanaryTest, ByHeaderAlwaysNeverAndOtherValues) {
  write(std::string(kN) + "canary-by-header: \"X-Canary\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "200");
  EXPECT_EQ(canary_->records().size(), 1u);
  EXPECT_EQ(get(pg, {"-H", "X-Canary: never"}), "200");
  EXPECT_EQ(get(pg, {"-H", "X-Canary: maybe"}), "200");
  EXPECT_EQ(get(pg), "200");
  EXPECT_EQ(main_->records().size(), 3u);
  EXPECT_EQ(canary_->records().size(), 1u);
  // Over HTTP/2 too.
  EXPECT_EQ(get(pg, {"--http2", "-H", "X-Canary: always"}), "200");
  EXPECT_EQ(canary_->records().size(), 2u);
}

TEST_F(CanaryTest, ByHeaderValueClientCannotForceItWithAlways) {
  write(std::string(kN) + "canary-by-header: \"X-Canary\"\n" + kN + "canary-by-header-value: \"v2\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "200");
  EXPECT_EQ(get(pg, {"-H", "X-Canary: V2"}), "200");
  EXPECT_TRUE(canary_->records().empty());
  EXPECT_EQ(get(pg, {"-H", "X-Canary: v2"}), "200");
  EXPECT_EQ(canary_->records().size(), 1u);
  EXPECT_EQ(main_->records().size(), 2u);
}

TEST_F(CanaryTest, ByHeaderPattern) {
  write(std::string(kN) + "canary-by-header: \"X-Region\"\n" + kN +
        "canary-by-header-pattern: \"^(eu|us)-\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-H", "X-Region: eu-west-1"}), "200");
  EXPECT_EQ(get(pg, {"-H", "X-Region: ap-eu-1"}), "200");
  EXPECT_EQ(canary_->records().size(), 1u);
  EXPECT_EQ(main_->records().size(), 1u);
}

TEST_F(CanaryTest, ByCookieAndHeaderWinsOverCookie) {
  write(std::string(kN) + "canary-by-cookie: \"canary_user\"\n" + kN + "canary-by-header: \"X-Canary\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-b", "canary_user=always"}), "200");
  EXPECT_EQ(canary_->records().size(), 1u);
  EXPECT_EQ(get(pg, {"-b", "canary_user=never"}), "200");
  EXPECT_EQ(get(pg, {"-b", "canary_user=always", "-H", "X-Canary: never"}), "200");
  EXPECT_EQ(main_->records().size(), 2u);
  EXPECT_EQ(canary_->records().size(), 1u);
}

// Weight 50 over 2,000 requests: binomial(2000, 0.5), mean 1000, sd 22.4; [888, 1112] is 5 sd
// (a false failure about once in 1.7 million runs). Then the canary Ingress is removed: all
// following requests reach the main.
TEST_F(CanaryTest, WeightSplitsWithinBinomialToleranceAndRemovalRestoresTheMain) {
  write(std::string(kN) + "canary-weight: \"50\"\n");
  auto pg = start();
  many(pg, 2000);
  const auto canary = canary_->records().size();
  const auto main = main_->records().size();
  EXPECT_EQ(canary + main, 2000u);
  EXPECT_GE(canary, 888u);
  EXPECT_LE(canary, 1112u);
  rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc-main"));
  many(pg, 200);
  EXPECT_EQ(canary_->records().size(), canary);
  EXPECT_EQ(main_->records().size(), main + 200);
}

// Weight 10 of 100 over 2,000: mean 200, sd 13.4; [133, 267] is 5 sd. canary-weight-total 1000
// with weight 5: mean 10, sd 3.15; [0, 35].
TEST_F(CanaryTest, WeightTenAndWeightTotal) {
  write(std::string(kN) + "canary-weight: \"10\"\n");
  auto pg = start();
  many(pg, 2000);
  const auto ten = canary_->records().size();
  EXPECT_GE(ten, 133u);
  EXPECT_LE(ten, 267u);
  rewrite(
      pg, "ingress.yaml",
      ingress_yaml("web", "app.example", "svc-main") + "---\n" +
          canary_yaml(std::string(kN) + "canary-weight: \"5\"\n" + kN + "canary-weight-total: \"1000\"\n"));
  many(pg, 2000);
  EXPECT_LE(canary_->records().size() - ten, 35u);
}

// affinity-canary-behavior sticky (the default): the main's cookie affinity holds across the split.
// 50 requests with a cookie jar all reach the side that served the first one (at weight 50,
// without affinity they would reach both: the chance of 49 more draws on one side is 2^-49).
TEST_F(CanaryTest, AffinityCookieSticksToTheSideThatIssuedIt) {
  write(std::string(kN) + "canary-weight: \"50\"\n", std::string(kN) + "affinity: \"cookie\"\n");
  auto pg = start();
  const auto jar = dir_.path("jar.txt");
  const auto r =
      curl(pg, {"-c", jar, "-b", jar, "-o", "/dev/null", "-w", "%{http_code}\\n", https_url(pg, "/n[1-50]")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto main = main_->records().size();
  const auto canary = canary_->records().size();
  EXPECT_EQ(main + canary, 50u);
  EXPECT_TRUE(main == 50u || canary == 50u) << "main " << main << ", canary " << canary;
}

TEST_F(CanaryTest, InvalidCanaryMainGetsEverything) {
  write(std::string(kN) + "canary-weight: \"lots\"\n" + kN + "canary-by-header: \"X-Canary\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "200");
  many(pg, 50);
  EXPECT_TRUE(canary_->records().empty());
  EXPECT_EQ(main_->records().size(), 51u);
  auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("Ingress default/web-canary"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("canary-weight"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("Ingress default/web:"), std::string::npos) << v.out;
}

// Attacker: a canary Ingress in another namespace claiming a host it does not own, weight 100.
TEST_F(CanaryTest, AnotherNamespaceCannotTakeTheTraffic) {
  auto evil = start_upstream("evil");
  auto svc = service_yaml("svc-evil", evil);
  for (std::size_t at = svc.find("namespace: default"); at != std::string::npos;
       at = svc.find("namespace: default", at)) {
    svc.replace(at, 18, "namespace: tenant");
  }
  auto steal =
      canary_yaml(std::string(kN) + "canary-weight: \"100\"\n" + kN + "canary-by-header: \"X-Canary\"\n");
  steal.replace(steal.find("svc-canary"), 10, "svc-evil");
  steal.replace(steal.find("namespace: default"), 18, "namespace: tenant");
  dir_.write("manifests/evil.yaml", svc + "---\n" + steal);
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-main"));
  auto pg = start();
  many(pg, 20);
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "200");
  EXPECT_TRUE(evil.records().empty());
  EXPECT_EQ(main_->records().size(), 21u);
  auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")});
  EXPECT_NE(v.out.find("another namespace"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("Ingress tenant/web-canary"), std::string::npos) << v.out;
}

// Attacker: a canary with no main does not serve (no route for its host), whatever its weight.
TEST_F(CanaryTest, NoMainNoRoute) {
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc-main") + "---\n" +
                 canary_yaml(std::string(kN) + "canary-weight: \"100\"\n", "other.example"));
  auto pg = start();
  EXPECT_EQ(code(pg, "other.example"), "404");
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_TRUE(canary_->records().empty());
}

// The main's access rules hold for requests routed to the canary; the canary's own access-control
// annotations cannot hold, so that canary gets nothing.
TEST_F(CanaryTest, MainAccessRulesApplyToCanaryTrafficCanaryOwnRulesDetachIt) {
  write(std::string(kN) + "canary-by-header: \"X-Canary\"\n",
        std::string(kN) + "whitelist-source-range: \"10.0.0.0/8\"\n");
  auto pg = start();
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "403");
  EXPECT_EQ(get(pg), "403");
  EXPECT_TRUE(canary_->records().empty());
  EXPECT_TRUE(main_->records().empty());
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc-main") + "---\n" +
              canary_yaml(std::string(kN) + "canary-by-header: \"X-Canary\"\n" + kN +
                          "whitelist-source-range: \"127.0.0.1/32\"\n"));
  EXPECT_EQ(get(pg, {"-H", "X-Canary: always"}), "200");
  EXPECT_TRUE(canary_->records().empty());
  EXPECT_EQ(main_->records().size(), 1u);
}

/// A Service and EndpointSlice for a backend listening on 127.0.0.1:`port`.
std::string service_on(const std::string& name, std::uint16_t port) {
  return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name +
         ", namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
         name + "-abc\n  namespace: default\n  labels: { kubernetes.io/service-name: " + name +
         " }\naddressType: IPv4\nports: [{ name: http, port: " + std::to_string(port) +
         " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
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

// A canary of a WebSocket route: the upgrade (and so the whole tunnel) goes to the side chosen at
// its head, by header or by weight, and each tunnel leaves exactly one request record (with
// phigate.canary on the canary's) besides its tunnel-start event.
class CanaryTunnelTest : public AuditTest {};

TEST_F(CanaryTunnelTest, WebSocketTunnelGoesWholeToTheChosenSide) {
  dir_.write("manifests/class.yaml", kIngressClass);
  auto main = start_ws_server({"--ping-interval", "0"});
  auto canary = start_ws_server({"--ping-interval", "0"});
  dir_.write("manifests/services.yaml",
             service_on("svc-main", main.port) + "---\n" + service_on("svc-canary", canary.port));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc-main") + "---\n" +
                 ingress_yaml("web-canary", "app.example", "svc-canary",
                              std::string(kN) + "canary: \"true\"\n" + kN + "canary-by-header: X-Canary\n" +
                                  kN + "canary-weight: \"100\"\n"));
  auto pg = start_phigate(
      config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" + audit_yaml()));
  struct Case {
    std::string path;
    std::string header;  // the X-Canary line, or none (the weight decides)
    bool to_canary;
  };
  const std::vector<Case> cases = {{"/echo-never", "X-Canary: never\r\n", false},
                                   {"/echo-always", "X-Canary: always\r\n", true},
                                   {"/echo-weight", "", true}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    auto conn = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
    ASSERT_TRUE(conn) << conn.error;
    ASSERT_TRUE(
        conn->write("GET " + c.path + " HTTP/1.1\r\nHost: app.example\r\n" + c.header +
                    "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    const auto resp = conn->read_http_response(10s);
    ASSERT_TRUE(resp) << conn->error();
    ASSERT_EQ(resp->status, 101);
    // Several messages, all through the one tunnel to the one side.
    for (const char* msg : {"one", "two"}) {
      ASSERT_TRUE(conn->write(client_text_frame(msg)));
      const auto echo = conn->read_until([](std::string_view b) { return b.size() >= 5; }, 10s);
      ASSERT_TRUE(echo) << conn->error();
      EXPECT_EQ(*echo, std::string("\x81\x03") + msg);
    }
  }
  EXPECT_EQ(main.requests(), 1);
  EXPECT_EQ(canary.requests(), 2);
  wait_metric(pg, "phigate_tunnels_open", "0");
  pg.process.terminate();
  const auto recs = records();
  for (const auto& c : cases) {
    std::vector<std::string> mine;
    for (const auto& r : recs) {
      if (has(r, "\"path\":\"" + c.path + "\"") && !has(r, "tunnel-start")) mine.push_back(r);
    }
    ASSERT_EQ(mine.size(), 1u) << c.path;
    const auto& rec = mine[0];
    EXPECT_TRUE(has(rec, "\"status_code\":101")) << rec;
    EXPECT_EQ(has(rec, "\"canary\":true"), c.to_canary) << rec;
    const auto side = c.to_canary ? canary.address() : main.address();
    EXPECT_TRUE(has(rec, "\"address\":\"" + side + "\"")) << rec;
  }
}

}  // namespace
}  // namespace phigate::test
