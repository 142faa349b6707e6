// Load balancing end to end: a real phigate fed an Ingress whose Service has five endpoints, each a
// phigate-test-upstream with its own --name (echoed as X-Upstream-Name): consistent hashing by a
// header (and how few keys move when one of five endpoints leaves or dies), cookie affinity (the
// cookie, stickiness, re-pinning after the endpoint dies).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
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

  /// Service "web" and one EndpointSlice per upstream (each listens on its own port), but the
  /// upstream at index `skip`.
  std::string services(std::size_t skip = SIZE_MAX) const {
    std::string y =
        "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
        "spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n";
    for (std::size_t i = 0; i < ups_.size(); ++i) {
      if (i == skip) continue;
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

  /// Which upstream answers each of `keys` (X-User: key-N); "" for an answer other than 200.
  std::vector<std::string> owners(const Phigate& pg, int keys) {
    std::vector<std::string> out;
    for (int k = 0; k < keys; ++k) {
      const auto r = get(pg, "X-User: key-" + std::to_string(k) + "\r\n");
      out.push_back(r.status == 200 ? r.header("X-Upstream-Name") : "");
    }
    return out;
  }

  /// A series of the admin /metrics (-1 when absent).
  double metric(const Phigate& pg, const std::string& series) {
    const auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
    const auto at = m.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(m.substr(at + series.size() + 2));
  }
  double generation(const Phigate& pg) { return metric(pg, "phigate_config_generation"); }

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

constexpr int kKeys = 100;
constexpr std::size_t kLeaving = 2;  // "u2"

// Consistent hashing (RFC-less, as ingress-nginx's chash): when one of five endpoints leaves the
// Service, only its keys move (spread over the four others); every other key stays where it was,
// so per-user caches and sessions on the survivors are not reshuffled.
TEST_F(BalanceTest, HashByHeader_OneOfFiveEndpointsLeaving_MovesOnlyItsKeysAboutAFifth) {
  auto pg = start_with(std::string(kNginx) + "upstream-hash-by: \"$http_x_user\"\n");
  const auto before = owners(pg, kKeys);
  for (const auto& o : before) ASSERT_FALSE(o.empty()) << pg.process.output();
  const auto gen = generation(pg);
  ASSERT_GT(gen, 0);

  rewrite(pg, "services.yaml", services(kLeaving));
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (generation(pg) <= gen && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
  ASSERT_GT(generation(pg), gen) << "the configuration without u2 is not served";

  const auto after = owners(pg, kKeys);
  const std::string gone = "u" + std::to_string(kLeaving);
  int moved = 0;
  std::set<std::string> heirs;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_FALSE(after[k].empty()) << "key-" << k;
    EXPECT_NE(after[k], gone) << "key-" << k << " still reaches the removed endpoint";
    if (before[k] == gone) {
      ++moved;
      heirs.insert(after[k]);
    } else {
      EXPECT_EQ(after[k], before[k]) << "key-" << k << " moved from a surviving endpoint";
    }
  }
  EXPECT_GE(moved, kKeys / 10) << "u2 held " << moved << " of " << kKeys << " keys";
  EXPECT_LE(moved, kKeys * 3 / 10) << "u2 held " << moved << " of " << kKeys << " keys";
  // Its keys spread over the others rather than all landing on one (a ring with virtual nodes).
  EXPECT_GE(heirs.size(), std::min<std::size_t>(2, static_cast<std::size_t>(moved)));
}

// The same endpoint killed instead (the Service unchanged, as before Kubernetes notices): its
// keys are answered by the others (the refused connect is retried, then passive checks eject
// it), and no key of a surviving endpoint ever moves.
TEST_F(BalanceTest, HashByHeader_OneOfFiveEndpointsKilled_OnlyItsKeysAreAnsweredElsewhere) {
  auto pg = start_with(std::string(kNginx) + "upstream-hash-by: \"$http_x_user\"\n");
  const auto before = owners(pg, kKeys);
  for (const auto& o : before) ASSERT_FALSE(o.empty()) << pg.process.output();
  const std::string dead = "u" + std::to_string(kLeaving);
  ASSERT_TRUE(std::count(before.begin(), before.end(), dead) > 0) << "no key on u2: nothing to test";
  ups_[kLeaving].process.terminate(2s);

  // Twice: first while the dead endpoint is still tried (connect refused, retried elsewhere),
  // then once passive checks have ejected it.
  for (int round = 0; round < 2; ++round) {
    const auto after = owners(pg, kKeys);
    for (int k = 0; k < kKeys; ++k) {
      EXPECT_FALSE(after[k].empty()) << "key-" << k << " got no 200 (round " << round << ")";
      EXPECT_NE(after[k], dead);
      if (before[k] != dead) {
        EXPECT_EQ(after[k], before[k]) << "key-" << k << " moved (round " << round << ")";
      }
    }
  }
  EXPECT_EQ(metric(pg, "phigate_upstream_ejections_total"), 1) << "the dead endpoint is ejected, no other";
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
