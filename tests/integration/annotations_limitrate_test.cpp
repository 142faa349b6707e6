// limit-rate / limit-rate-after (response bandwidth, KiB as ingress-nginx renders them) through
// the real binary: the time a response takes at the rate, over HTTP/1.1 and HTTP/2, the full-speed
// head start, per-request semantics, an unpaced stream next to a paced one on one HTTP/2
// connection, a client leaving a paced response, the global default and the audit records.
// Numbers are small (512 KiB at 256 KiB/s, ~2 s) so a loaded 2-core machine keeps up.
#include <gtest/gtest.h>

#include <csignal>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "text_lines.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

class LimitRateTest : public AuditTest {
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
  /// A second Ingress on the same host for /free, without any limit.
  void free_ingress() {
    auto y = ingress_yaml("free", "app.example", "svc");
    const auto at = y.find("path: /,");
    y.replace(at, 8, "path: /free,");
    dir_.write("manifests/free.yaml", y);
  }
  struct Transfer {
    std::string code;
    double seconds = 0;
    std::uint64_t bytes = 0;
  };
  /// Each URL's status, total time and size (curl -w, one line per transfer, in order).
  std::vector<Transfer> fetch(const Phigate& pg, std::vector<std::string> args) {
    args.insert(args.begin(), {"-s", "-w", "%{http_code} %{time_total} %{size_download}\\n"});
    const auto r = curl(pg, args, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Transfer> out;
    for (const auto& line : split_lines(r.out)) {
      Transfer t;
      const auto a = line.find(' '), b = line.rfind(' ');
      if (a == std::string::npos || b == a) continue;
      t.code = line.substr(0, a);
      t.seconds = std::stod(line.substr(a + 1, b - a - 1));
      t.bytes = std::stoull(line.substr(b + 1));
      out.push_back(t);
    }
    return out;
  }
  Transfer one(const Phigate& pg, const std::string& proto, const std::string& path) {
    const auto t = fetch(pg, {proto, "-o", "/dev/null", https_url(pg, path)});
    EXPECT_EQ(t.size(), 1u);
    return t.empty() ? Transfer{} : t[0];
  }
  int established_to_upstream() const {
    const auto r =
        run({"ss", "-Htn", "state", "established", "( dport = :" + std::to_string(up_->port) + " )"});
    return static_cast<int>(split_lines(r.out).size());
  }

  std::optional<Upstream> up_;
};

// 512 KiB at 256 KiB/s takes about 2 s over both protocols (the last 16 KiB slice is due at
// 1.94 s); with limit-rate-after 256 the first half comes at full speed: about 1 s in all, and a
// response within limit-rate-after is not slowed at all.
TEST_F(LimitRateTest, AResponseTakesItsTimeAtTheRateOverBothProtocols) {
  ingress(std::string(kN) + "limit-rate: \"256\"\n");
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto t = one(pg, proto, "/paced?bytes=512k");
    EXPECT_EQ(t.code, "200") << proto;
    EXPECT_EQ(t.bytes, 512u * 1024) << proto;
    EXPECT_GE(t.seconds, 1.7) << proto;
    EXPECT_LE(t.seconds, 4.0) << proto;  // headroom for a loaded CI machine (ASan)
    const auto chunked = one(pg, proto, "/chunked?bytes=512k&chunked=1");
    EXPECT_EQ(chunked.bytes, 512u * 1024) << proto;
    EXPECT_GE(chunked.seconds, 1.7) << proto;
  }
  const auto mark = pg.process.output().size();
  ingress(std::string(kN) + "limit-rate: \"256\"\n" + kN + "limit-rate-after: \"256\"\n");
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark));
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto t = one(pg, proto, "/after?bytes=512k");
    EXPECT_EQ(t.bytes, 512u * 1024) << proto;
    EXPECT_GE(t.seconds, 0.8) << proto;  // the second half is paced
    EXPECT_LE(t.seconds, 1.6) << proto;  // the first half was not
    const auto within = one(pg, proto, "/within?bytes=200k");
    EXPECT_EQ(within.bytes, 200u * 1024) << proto;
    EXPECT_LE(within.seconds, 0.5) << proto;
  }
  // Audit: one record per request, each with its whole response.
  const auto audit = stop_and_read_audit(pg);
  for (const char* path : {"/paced", "/chunked", "/after", "/within"}) {
    int n = 0;
    for (const auto& rec : audit) n += has(rec, std::string("\"path\":\"") + path + "\"");
    EXPECT_EQ(n, 2) << path;
  }
}

// The limit is per request (nginx limit_rate): two at once from one client each get the rate.
TEST_F(LimitRateTest, TwoRequestsEachGetTheFullRate) {
  ingress(std::string(kN) + "limit-rate: \"256\"\n");
  auto pg = start();
  const auto get = [&](const char* path) { return one(pg, "--http1.1", path); };
  auto a = std::async(std::launch::async, get, "/a?bytes=512k");
  auto b = std::async(std::launch::async, get, "/b?bytes=512k");
  const auto ta = a.get(), tb = b.get();
  for (const auto& t : {ta, tb}) {
    EXPECT_EQ(t.bytes, 512u * 1024);
    EXPECT_GE(t.seconds, 1.7);
    EXPECT_LE(t.seconds, 3.5);  // not 4 s: they do not share one rate
  }
}

// HTTP/2: a paced stream slows only itself. A stream of another Ingress's path on the same
// connection, started while the paced one runs, is served at full speed.
TEST_F(LimitRateTest, Http2PacesOneStreamNotItsNeighbours) {
  ingress(std::string(kN) + "limit-rate: \"128\"\n");
  free_ingress();
  auto pg = start();
  const auto t =
      fetch(pg, {"--http2", "--parallel", "--parallel-max", "2", "-o", "/dev/null",
                 https_url(pg, "/slow?bytes=256k"), "-o", "/dev/null", https_url(pg, "/free/x?bytes=4m")});
  ASSERT_EQ(t.size(), 2u);
  // curl reports in completion order; matched by size, the free stream ends long before the paced one.
  const auto& fast = t[0].bytes == (4u << 20) ? t[0] : t[1];
  const auto& paced = &fast == &t[0] ? t[1] : t[0];
  EXPECT_EQ(fast.bytes, 4u << 20);
  EXPECT_LE(fast.seconds, 1.5);  // the paced stream needs at least 1.7 s
  EXPECT_EQ(paced.bytes, 256u * 1024);
  EXPECT_GE(paced.seconds, 1.7);
  // One connection carried both (no stream had to wait for another connection).
  const auto audit = stop_and_read_audit(pg);
  const auto slow = find(audit, "\"path\":\"/slow\""), free = find(audit, "\"path\":\"/free/x\"");
  ASSERT_FALSE(slow.empty());
  ASSERT_FALSE(free.empty());
  EXPECT_TRUE(has(slow, "\"h2_stream\"")) << slow;
  EXPECT_FALSE(json_field(slow, "connection").empty()) << slow;
  EXPECT_EQ(json_field(slow, "connection"), json_field(free, "connection"));
  EXPECT_EQ(json_field(slow, "worker"), json_field(free, "worker"));
}

// A client that leaves a paced response: the upstream connection is closed (never pooled with
// the rest of its body unread), the request has its one record with the bytes that left.
TEST_F(LimitRateTest, AClientLeavingAPacedResponseFreesItsUpstreamConnection) {
  ingress(std::string(kN) + "limit-rate: \"64\"\n");
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    // 2 MiB at 64 KiB/s would take 32 s; the client gives up after 1 s.
    const auto r = curl(pg,
                        {proto, "-s", "-o", "/dev/null", "--max-time", "1", "-w", "%{size_download}",
                         https_url(pg, std::string("/gone") + (proto[6] == '2' ? "2" : "1") + "?bytes=2m")},
                        20s);
    EXPECT_NE(r.exit_code, 0) << proto;  // timed out: curl 28
    EXPECT_LT(std::stoull(r.out.empty() ? "0" : r.out), 512u * 1024) << proto;
    // The upstream connection goes within a slice's wait plus the write that fails.
    int open = -1;
    for (int i = 0; i < 100 && open != 0; ++i) {
      open = established_to_upstream();
      if (open != 0) std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(open, 0) << proto;
  }
  // The next request is served normally (new upstream connection, whole body).
  const auto after = one(pg, "--http1.1", "/next?bytes=10k");
  EXPECT_EQ(after.code, "200");
  EXPECT_EQ(after.bytes, 10u * 1024);
  const auto audit = stop_and_read_audit(pg);
  for (const char* path : {"\"path\":\"/gone1\"", "\"path\":\"/gone2\""}) {
    int n = 0;
    for (const auto& rec : audit) {
      if (!has(rec, path)) continue;
      ++n;
      EXPECT_TRUE(has(rec, "client_closed") || has(rec, "client_timeout")) << rec;
    }
    EXPECT_EQ(n, 1) << path;
  }
}

// A drain does not wait for paced responses beyond its deadline: 2 MiB at 64 KiB/s would take
// 32 s; with timeouts.drain 1s phigate exits about a second after SIGTERM, over both protocols.
TEST_F(LimitRateTest, DrainEndsPacedResponsesAtItsDeadline) {
  ingress(std::string(kN) + "limit-rate: \"64\"\n");
  auto pg = start("timeouts: { drain: 1s }\n");
  const auto get = [&](const char* proto, const char* path) {
    return curl(pg, {proto, "-s", "-o", "/dev/null", "-w", "%{size_download}", https_url(pg, path)}, 40s);
  };
  auto h1 = std::async(std::launch::async, get, "--http1.1", "/drain1?bytes=2m");
  auto h2 = std::async(std::launch::async, get, "--http2", "/drain2?bytes=2m");
  // Both reached the backend (and so are being relayed) before the signal.
  for (int i = 0; i < 200 && up_->records().size() < 2; ++i) std::this_thread::sleep_for(25ms);
  ASSERT_EQ(up_->records().size(), 2u);
  std::this_thread::sleep_for(300ms);  // paced for a while: the relays are in their waits
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  EXPECT_EQ(pg.process.wait_exit(15s), 0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LE(took, 5.0);  // drain 1 s, plus the tick and the exit (LeakSanitizer's too): not 32 s
  for (auto* f : {&h1, &h2}) {
    const auto r = f->get();
    EXPECT_LT(std::stoull(r.out.empty() ? "0" : r.out), 1u << 20) << r.out;  // cut short, not finished
  }
  // Each request still has its one record.
  const auto audit = records();
  for (const char* path : {"\"path\":\"/drain1\"", "\"path\":\"/drain2\""}) {
    int n = 0;
    for (const auto& rec : audit) n += has(rec, path);
    EXPECT_EQ(n, 1) << path;
  }
}

// phigate's own pacing waits are not a slow reader: at 1 KiB/s each wait is about a second, far
// over timeouts.body_idle (300 ms), and the response still completes over both protocols.
TEST_F(LimitRateTest, PaceWaitsLongerThanBodyIdleAreNotASlowClient) {
  ingress(std::string(kN) + "limit-rate: \"1\"\n");
  auto pg = start("timeouts: { body_idle: 300ms }\n");
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto t = one(pg, proto, "/trickle?bytes=3k");
    EXPECT_EQ(t.code, "200") << proto;
    EXPECT_EQ(t.bytes, 3u * 1024) << proto;
    EXPECT_GE(t.seconds, 1.7) << proto;  // 3 slices of 1 KiB, the second and third each a second later
  }
}

// limits.response_rate is the default for every Ingress; limit-rate "0" on one turns it off (an
// annotation overrides ingress-nginx's ConfigMap value too).
TEST_F(LimitRateTest, TheGlobalDefaultAppliesAndZeroTurnsItOff) {
  free_ingress();
  ingress(std::string(kN) + "limit-rate: \"0\"\n");
  auto pg = start("limits: { response_rate: 256k }\n");
  const auto paced = one(pg, "--http1.1", "/free/x?bytes=512k");
  EXPECT_GE(paced.seconds, 1.7);
  EXPECT_LE(paced.seconds, 4.0);
  const auto off = one(pg, "--http1.1", "/other?bytes=512k");
  EXPECT_LE(off.seconds, 1.2);  // paced it would take 1.9 s
}

// A bad value fails the Ingress closed (503), naming the annotation; nothing reaches the backend.
TEST_F(LimitRateTest, ABadValueFailsTheIngressClosed) {
  ingress(std::string(kN) + "limit-rate: \"256k\"\n");
  auto pg = start();
  EXPECT_EQ(one(pg, "--http1.1", "/x").code, "503");
  EXPECT_NE(pg.process.output().find("limit-rate"), std::string::npos);
  EXPECT_TRUE(up_->records().empty());
}

}  // namespace
}  // namespace phigate::test
