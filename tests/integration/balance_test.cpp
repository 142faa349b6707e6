// Load balancing end to end: a real phigate fed an Ingress whose Service has five endpoints, each a
// phigate-test-upstream with its own --name (echoed as X-Upstream-Name): consistent hashing by a
// header, cookie affinity (the cookie, stickiness, re-pinning after the endpoint dies).
#include <set>
#include <string>
#include <vector>

#include "ingress_fixture.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

constexpr const char* kNginx = "    nginx.ingress.kubernetes.io/";
constexpr const char* kHost = "lb.example";

bool is_hex32(std::string_view v) {
  return v.size() == 32 && v.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

class BalanceTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    for (int i = 0; i < 5; ++i) ups_.push_back(start_upstream("u" + std::to_string(i)));
  }

  /// Service "web" and one EndpointSlice per upstream (each listens on its own port).
  std::string services() const {
    std::string y =
        "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
        "spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n";
    for (std::size_t i = 0; i < ups_.size(); ++i) {
      y += "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-" +
           std::to_string(i) +
           "\n  namespace: default\n  labels: { kubernetes.io/service-name: web }\naddressType: IPv4\n"
           "ports: [{ name: http, port: " +
           std::to_string(ups_[i].port) +
           " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
    }
    return y;
  }

  Phigate start_with(const std::string& annotations) {
    dir_.write("manifests/services.yaml", services());
    // Plain HTTP without the redirect to HTTPS: the test reads raw responses over plain TCP.
    dir_.write(
        "manifests/ingress.yaml",
        ingress_yaml("lb", kHost, "web", std::string(kNginx) + "ssl-redirect: \"false\"\n" + annotations));
    auto pg = start();
    return pg;
  }

  /// One GET over plain HTTP on a new connection.
  HttpResponse get(const Phigate& pg, const std::string& extra_headers = "") {
    auto c = PlainClient::connect("127.0.0.1", pg.http);
    if (!c) throw std::runtime_error("connect to phigate failed: " + c.error);
    const std::string req = "GET /records HTTP/1.1\r\nHost: " + std::string(kHost) + "\r\n" + extra_headers +
                            "Connection: close\r\n\r\n";
    if (!c->write(req)) throw std::runtime_error("write failed");
    auto r = c->read_http_response(10s);
    if (!r) throw std::runtime_error("no response: " + c->error());
    return *r;
  }

  /// The affinity cookie's "name=value" from a Set-Cookie field.
  static std::string cookie_pair(const std::string& set_cookie) {
    return set_cookie.substr(0, set_cookie.find(';'));
  }

  std::vector<Upstream> ups_;
};

TEST_F(BalanceTest, HashByHeader_SameKeyAlwaysReachesTheSameUpstream) {
  auto pg = start_with(std::string(kNginx) + "upstream-hash-by: \"$http_x_user\"\n");
  std::set<std::string> used;
  for (int user = 0; user < 12; ++user) {
    const std::string h = "X-User: user-" + std::to_string(user) + "\r\n";
    const auto first = get(pg, h);
    ASSERT_EQ(first.status, 200) << first.body << pg.process.output();
    const auto name = first.header("X-Upstream-Name");
    ASSERT_FALSE(name.empty());
    used.insert(name);
    for (int k = 0; k < 6; ++k) {
      const auto r = get(pg, h);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.header("X-Upstream-Name"), name) << "user-" << user << " moved";
    }
  }
  // Twelve keys over five endpoints all on one would mean the key is not hashed at all.
  EXPECT_GE(used.size(), 2u);
}

TEST_F(BalanceTest, CookieAffinity_FirstResponseSetsTheCookieAndLaterRequestsStick) {
  auto pg = start_with(std::string(kNginx) + "affinity: cookie\n" + kNginx + "session-cookie-name: route\n" +
                       kNginx + "session-cookie-samesite: Strict\n" + kNginx +
                       "session-cookie-max-age: \"3600\"\n");
  const auto first = get(pg);
  ASSERT_EQ(first.status, 200) << pg.process.output();
  const auto sc = first.header_values("Set-Cookie");
  ASSERT_EQ(sc.size(), 1u);
  const auto pair = cookie_pair(sc[0]);
  ASSERT_EQ(pair.substr(0, 6), "route=");
  EXPECT_TRUE(is_hex32(pair.substr(6))) << sc[0];
  for (const auto& attr : {"; Path=/", "; Max-Age=3600", "; SameSite=Strict", "; HttpOnly"}) {
    EXPECT_NE(sc[0].find(attr), std::string::npos) << sc[0];
  }
  // The value names no address: neither the host nor any upstream's port.
  EXPECT_EQ(sc[0].find("127.0.0.1"), std::string::npos);
  for (const auto& u : ups_) EXPECT_EQ(pair.find(std::to_string(u.port)), std::string::npos) << sc[0];

  const auto name = first.header("X-Upstream-Name");
  for (int k = 0; k < 15; ++k) {
    const auto r = get(pg, "Cookie: theme=dark; " + pair + "\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("X-Upstream-Name"), name);
    EXPECT_FALSE(r.has_header("Set-Cookie")) << "a valid cookie is not set again";
  }
  // Without the cookie, requests are balanced (round robin) and each one is pinned.
  std::set<std::string> used;
  for (int k = 0; k < 5; ++k) {
    const auto r = get(pg);
    EXPECT_EQ(r.header_values("Set-Cookie").size(), 1u);
    used.insert(r.header("X-Upstream-Name"));
  }
  EXPECT_GE(used.size(), 2u);
  // A forged cookie (right shape, no such endpoint) is rebalanced and replaced.
  const auto forged = get(pg, "Cookie: route=0123456789abcdef0123456789abcdef\r\n");
  EXPECT_EQ(forged.status, 200);
  ASSERT_EQ(forged.header_values("Set-Cookie").size(), 1u);
  EXPECT_NE(cookie_pair(forged.header("Set-Cookie")), "route=0123456789abcdef0123456789abcdef");
}

// The refused connect to the dead endpoint is retried on another (docs/retries.md), whose answer
// pins the client there with a new cookie.
TEST_F(BalanceTest, CookieAffinity_AfterItsUpstreamDiesAnotherAnswersWithANewCookie) {
  auto pg = start_with(std::string(kNginx) + "affinity: cookie\n");
  const auto first = get(pg);
  ASSERT_EQ(first.status, 200) << pg.process.output();
  const auto pair = cookie_pair(first.header("Set-Cookie"));
  const auto name = first.header("X-Upstream-Name");
  ASSERT_EQ(pair.substr(0, 14), "INGRESSCOOKIE=");
  for (auto& u : ups_) {
    if ("u" + std::to_string(&u - ups_.data()) == name) u.process.terminate();
  }
  const auto r = get(pg, "Cookie: " + pair + "\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.header("X-Upstream-Name"), name);
  ASSERT_EQ(r.header_values("Set-Cookie").size(), 1u);
  const auto renewed = cookie_pair(r.header("Set-Cookie"));
  EXPECT_NE(renewed, pair);
  // And the new cookie sticks to the new upstream.
  const auto again = get(pg, "Cookie: " + renewed + "\r\n");
  EXPECT_EQ(again.header("X-Upstream-Name"), r.header("X-Upstream-Name"));
  EXPECT_FALSE(again.has_header("Set-Cookie"));
}

}  // namespace
}  // namespace phigate::test
