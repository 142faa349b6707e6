// custom-headers and phigate.io/proxy-set-headers through the real binary fed by static manifests:
// ConfigMap fields reach the client (HTTP/1.1 and HTTP/2) and the backend (phigate-test-upstream
// records), replace same-named fields, follow ConfigMap edits, and every attempt to get around the
// rules (another namespace's ConfigMap, owned fields, CR/LF, trusted request fields) fails the
// Ingress closed (503) without reaching the backend.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ingress_fixture.hpp"
#include "response_head.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";
constexpr const char* kP = "    phigate.io/";

std::string config_map_yaml(const std::string& name, const std::string& data_lines,
                            const std::string& ns = "default") {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: " + name + ", namespace: " + ns + " }\ndata:\n" +
         data_lines;
}

class ConfigMapHeadersTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    up_ = start_upstream("up");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_));
  }
  /// phigate fed by manifests/, with the operator's response header allowlist.
  Phigate start_allowing(const std::string& allowed) {
    return start_phigate(config("  []\n", "ingress: { dir: " + dir_.path("manifests") +
                                              ", debounce: 50ms, allowed_response_headers: [" + allowed +
                                              "] }\n"));
  }
  Head request(const Phigate& pg, const std::string& path, std::vector<std::string> args = {}) {
    std::vector<std::string> a = {"-s", "-D", "-", "-o", "/dev/null"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(https_url(pg, path));
    const auto r = curl(pg, a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return parse_head(r.out);
  }
  std::optional<Upstream> up_;
};

TEST_F(ConfigMapHeadersTest, CustomHeadersReplaceTheBackendsOnHttp1AndHttp2AndFollowEdits) {
  dir_.write("manifests/maps.yaml",
             config_map_yaml("hdrs", "  X-Frame-Options: DENY\n  X-Team: \"web shop\"\n"));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc", std::string(kN) + "custom-headers: default/hdrs\n"));
  auto pg = start_allowing("X-Frame-Options, x-team");
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto h = request(pg, "/x?header=X-Frame-Options:SAMEORIGIN&header=x-frame-options:ALLOW", {proto});
    EXPECT_EQ(h.status, "200") << proto;
    EXPECT_EQ(h.count("x-frame-options"), 1u) << proto;  // replaced, not added next to the backend's
    EXPECT_EQ(h.get("x-frame-options"), "DENY") << proto;
    EXPECT_EQ(h.get("x-team"), "web shop") << proto;
  }
  // The ConfigMap changes: the next reload serves the new value.
  rewrite(pg, "maps.yaml", config_map_yaml("hdrs", "  X-Frame-Options: SAMEORIGIN\n"));
  EXPECT_EQ(request(pg, "/").get("x-frame-options"), "SAMEORIGIN");
  EXPECT_EQ(request(pg, "/").get("x-team"), "(none)");
  // Removed: the Ingress fails closed (as ingress-nginx's "location denied").
  const auto mark = pg.process.output().size();
  std::filesystem::remove(dir_.path("manifests/maps.yaml"));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  EXPECT_EQ(code(pg, "app.example", "/"), "503");
  EXPECT_NE(pg.process.output().find("ConfigMap default/hdrs not found"), std::string::npos);
}

TEST_F(ConfigMapHeadersTest, ProxySetHeadersReachTheBackendReplacingTheClients) {
  dir_.write("manifests/maps.yaml", config_map_yaml("up", "  X-Env: prod\n  X-Tenant: shop\n"));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc", std::string(kP) + "proxy-set-headers: up\n"));
  auto pg = start_allowing("");
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto before = up_->records().size();
    EXPECT_EQ(request(pg, "/r", {proto, "-H", "X-Env: dev", "-H", "x-env: staging"}).status, "200") << proto;
    const auto recs = up_->records();
    ASSERT_EQ(recs.size(), before + 1) << proto;
    EXPECT_EQ(record_header(recs.back(), "X-Env"), "prod") << proto;
    EXPECT_EQ(record_header_count(recs.back(), "X-Env"), 1) << proto;
    EXPECT_EQ(record_header(recs.back(), "X-Tenant"), "shop") << proto;
  }
}

// An Ingress author tries to get around the rules: each attempt fails the Ingress closed (503), and
// nothing reaches the backend.
TEST_F(ConfigMapHeadersTest, AttacksFailClosed) {
  dir_.write(
      "manifests/maps.yaml",
      config_map_yaml("victim", "  X-Team: a\n", "team-a") + "---\n" +
          config_map_yaml("cookie", "  Set-Cookie: \"session=attacker; Path=/\"\n") + "---\n" +
          config_map_yaml("hsts", "  Strict-Transport-Security: max-age=0\n") + "---\n" +
          config_map_yaml("crlf", "  X-Team: \"a\\r\\nSet-Cookie: session=attacker\"\n") + "---\n" +
          config_map_yaml("xff", "  X-Forwarded-For: 10.0.0.1\n") + "---\n" +
          config_map_yaml("cert", "  ssl-client-verify: SUCCESS\n  ssl-client-subject-dn: CN=admin\n") +
          "---\n" + config_map_yaml("vars", "  X-Client: $remote_addr\n") + "---\n" +
          config_map_yaml("unlisted", "  X-Powered-By: evil\n"));
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc"));
  auto pg = start_allowing("x-team, set-cookie, strict-transport-security, x-powered-by-not");
  const std::vector<std::string> attacks = {
      std::string(kN) + "custom-headers: team-a/victim\n",  // another namespace's ConfigMap
      std::string(kN) + "custom-headers: cookie\n",         // allowed by the operator, owned by phigate
      std::string(kN) + "custom-headers: hsts\n",
      std::string(kN) + "custom-headers: crlf\n",      // response splitting
      std::string(kN) + "custom-headers: unlisted\n",  // not in allowed_response_headers
      std::string(kP) + "proxy-set-headers: xff\n",    // forge the client address
      std::string(kP) + "proxy-set-headers: cert\n",   // forge a verified client certificate
      std::string(kP) + "proxy-set-headers: vars\n",
      std::string(kP) + "proxy-set-headers: team-a/victim\n",
  };
  for (const auto& a : attacks) {
    rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc", a));
    const auto h = request(pg, "/", {"-H", "X-Forwarded-For: 10.9.9.9"});
    EXPECT_EQ(h.status, "503") << a;
    EXPECT_EQ(h.get("set-cookie"), "(none)") << a;
  }
  EXPECT_TRUE(up_->records().empty());
}

}  // namespace
}  // namespace phigate::test
