// limit-rps, limit-rpm, limit-burst-multiplier, limit-connections and limit-allowlist through the
// real binary (2 workers): Ingresses as ingress-nginx users write them, a recording backend that
// shows what reached it, clients on distinct loopback addresses (curl --interface 127.0.0.x), and
// the encrypted audit log read back. Rates are low (20 r/s) so a loaded 2-core machine keeps up.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <future>
#include <string>
#include <vector>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

class RateLimitTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    up_ = start_upstream("up");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_));
  }
  Phigate start(const std::string& extra = "") {
    return start_phigate(config("  []\n", "ingress: { dir: " + dir_.path("manifests") +
                                              ", debounce: 50ms }\n" + audit_yaml() + extra));
  }
  void ingress(const std::string& annotations) {
    dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc", annotations));
  }
  /// Status codes of `n` requests to `path` (curl globbing: `path` + [1-n]), one per line.
  std::vector<std::string> codes(const Phigate& pg, std::vector<std::string> args, const std::string& path,
                                 int n) {
    args.insert(args.end(), {"-o", "/dev/null", "-w", "%{http_code}\\n",
                             https_url(pg, path + "[1-" + std::to_string(n) + "]")});
    const auto r = curl(pg, args, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return split_lines(r.out);
  }
  static int count(const std::vector<std::string>& v, const std::string& code) {
    return static_cast<int>(std::count(v.begin(), v.end(), code));
  }
  int backend_requests(const std::string& fragment) const {
    int n = 0;
    for (const auto& line : up_->records()) {
      if (!json_field(line, "method").empty() && line.find(fragment) != std::string::npos) ++n;
    }
    return n;
  }

  std::optional<Upstream> up_;
};

// At twice the limit from one address, over new connections spread across both workers, the
// backend sees the limit: burst + 1 + rate x elapsed, within 10%. Another address is unaffected.
TEST_F(RateLimitTest, TwiceTheRateFromOneAddressGetsTheRateAcrossWorkers) {
  ingress(std::string(kN) + "limit-rps: \"20\"\n" + kN + "limit-burst-multiplier: \"1\"\n");
  auto pg = start();
  // Two clients at 20 r/s each (40 r/s in all) for 3 s, a new connection per request
  // (Connection: close), so SO_REUSEPORT spreads them over the two workers.
  const auto t0 = std::chrono::steady_clock::now();
  const auto one = [&](const char* name) {
    return codes(pg, {"--rate", "20/s", "-H", "Connection: close", "--interface", "127.0.0.1"},
                 std::string("/") + name + "-", 60);
  };
  auto a = std::async(std::launch::async, one, "a");
  auto b = std::async(std::launch::async, one, "b");
  const auto ca = a.get(), cb = b.get();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(ca.size() + cb.size(), 120u);
  const int ok = count(ca, "200") + count(cb, "200");
  EXPECT_EQ(ok + count(ca, "503") + count(cb, "503"), 120);  // nothing else
  EXPECT_EQ(backend_requests("\"/a-") + backend_requests("\"/b-"), ok);
  // Upper bound: what the bucket can admit over the whole run; lower: 10% under it.
  const double limit = 21 + 20 * elapsed;
  EXPECT_LE(ok, limit * 1.1) << "elapsed " << elapsed;
  EXPECT_GE(ok, std::min(120.0, limit) * 0.9) << "elapsed " << elapsed;
  EXPECT_LT(ok, 110) << "most of the excess was refused";
  // Another client address right after: its own bucket, full.
  const auto other = codes(pg, {"--interface", "127.0.0.2"}, "/other-", 10);
  EXPECT_EQ(count(other, "200"), 10);
}

// The per-address refusal is audited with its outcome; 429 with Retry-After when configured.
TEST_F(RateLimitTest, RefusalsAre429WithRetryAfterAndAudited) {
  ingress(std::string(kN) + "limit-rpm: \"6\"\n" + kN + "limit-burst-multiplier: \"0\"\n");
  auto pg = start("limits: { rate_limit_status: 429 }\n");
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto first = curl(pg, {proto, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                                 proto[6] == '2' ? "127.0.0.3" : "127.0.0.4", https_url(pg, "/first")});
    EXPECT_EQ(first.out, "200") << proto;
    const auto r = curl(pg, {proto, "-s", "-i", "--interface", proto[6] == '2' ? "127.0.0.3" : "127.0.0.4",
                             https_url(pg, "/second")});
    EXPECT_NE(r.out.find(" 429"), std::string::npos) << proto << r.out;
    // rpm 6, no burst: one per 10 s; the second came right after the first.
    std::string lower = r.out;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    const auto at = lower.find("retry-after: ");
    ASSERT_NE(at, std::string::npos) << proto << r.out;
    const int secs = std::stoi(lower.substr(at + 13));
    EXPECT_GE(secs, 9) << proto;
    EXPECT_LE(secs, 10) << proto;
  }
  EXPECT_EQ(backend_requests("\"/second"), 0);
  const auto page = metrics(pg);
  EXPECT_NE(page.find("outcome=\"rate_limited\""), std::string::npos);
  // The table is far from full: the eviction counter is exported, at 0.
  EXPECT_EQ(metric(page, "phigate_rate_limit_evictions_total"), "0") << page;
  const auto audit = stop_and_read_audit(pg);
  int refused = 0;
  for (const auto& rec : audit) {
    if (has(rec, "/second")) {
      ++refused;
      EXPECT_TRUE(has(rec, "rate_limited")) << rec;
      EXPECT_TRUE(has(rec, "429")) << rec;
      EXPECT_TRUE(has(rec, "limit-rps/limit-rpm")) << rec;
    }
  }
  EXPECT_EQ(refused, 2);
}

// limit-allowlist exempts; a forged X-Forwarded-For from an untrusted peer changes nothing (it
// neither escapes its bucket nor claims the allowlist).
TEST_F(RateLimitTest, AllowlistExemptsAndForgedForwardedForDoesNot) {
  ingress(std::string(kN) + "limit-rps: \"1\"\n" + kN + "limit-burst-multiplier: \"1\"\n" + kN +
          "limit-allowlist: \"127.0.0.5/32, 10.0.0.0/8\"\n");
  auto pg = start();
  const auto allowed = codes(pg, {"--interface", "127.0.0.5"}, "/allow-", 20);
  EXPECT_EQ(count(allowed, "200"), 20);
  // Each request claims another address, and one in the allowlist: still one client, 127.0.0.6.
  const auto forged =
      codes(pg, {"--interface", "127.0.0.6", "-H", "X-Forwarded-For: 10.1.2.3"}, "/forged-", 20);
  EXPECT_LE(count(forged, "200"), 4);  // burst 1 + 1, and at most a second's refill
  EXPECT_GE(count(forged, "503"), 16);
  EXPECT_EQ(backend_requests("\"/forged-"), count(forged, "200"));
}

// HTTP/2 multiplexing and path spellings do not escape the limit: 40 streams on one connection to
// /x, /./x, /%78, /y/../x and /x;p share one bucket.
TEST_F(RateLimitTest, Http2StreamsAndPathSpellingsShareTheBucket) {
  ingress(std::string(kN) + "limit-rps: \"2\"\n" + kN + "limit-burst-multiplier: \"2\"\n");
  auto pg = start();
  std::vector<std::string> args = {"--http2",     "--parallel", "--parallel-max", "40", "--interface",
                                   "127.0.0.7",   "-o",         "/dev/null",      "-w", "%{http_code}\\n",
                                   "--path-as-is"};
  for (int i = 0; i < 8; ++i) {
    for (const char* p : {"/x", "/./x", "/%78", "/y/../x", "/x;p"}) {
      args.push_back("-o");
      args.push_back("/dev/null");
      args.push_back(https_url(pg, p));
    }
  }
  const auto r = curl(pg, args, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const int ok = static_cast<int>(std::count(r.out.begin(), r.out.end(), '2'));  // "200" has one '2'
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 5 + 2 * 2) << r.out;  // burst 4 + 1, plus at most 2 s of refill
  EXPECT_EQ(up_->records().size() - 0, static_cast<std::size_t>(ok));
}

// limit-connections counts requests in flight per address, HTTP/2 streams included.
TEST_F(RateLimitTest, ConnectionsLimitCountsRequestsInFlight) {
  ingress(std::string(kN) + "limit-connections: \"2\"\n");
  auto pg = start();
  std::vector<std::string> args = {"--http2",   "--parallel", "--parallel-max", "6",  "--interface",
                                   "127.0.0.8", "-o",         "/dev/null",      "-w", "%{http_code}\\n"};
  for (int i = 0; i < 6; ++i) {
    args.push_back("-o");
    args.push_back("/dev/null");
    args.push_back(https_url(pg, "/slow?delay_ms=1500"));
  }
  const auto r = curl(pg, args, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  int ok = 0, refused = 0;
  for (std::size_t pos = 0; pos + 3 <= r.out.size(); pos += 4) {
    const auto c = r.out.substr(pos, 3);
    ok += c == "200";
    refused += c == "503";
  }
  EXPECT_EQ(ok + refused, 6) << r.out;
  EXPECT_LE(ok, 2) << r.out;
  EXPECT_GE(ok, 1) << r.out;
  // Given back when they ended: the next request is served.
  EXPECT_EQ(curl(pg, {"-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.8",
                      https_url(pg, "/after")})
                .out,
            "200");
}

// A limit the other prefix tries to undo fails the Ingress closed.
TEST_F(RateLimitTest, ThePhigatePrefixCannotLoosenTheNginxLimit) {
  ingress(std::string(kN) + "limit-rps: \"1\"\n    phigate.io/limit-rps: \"0\"\n");
  auto pg = start();
  EXPECT_EQ(curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/x")}).out, "503");
  EXPECT_EQ(backend_requests("\"/x"), 0);
}

}  // namespace
}  // namespace phigate::test
