// Retries (proxy_next_upstream) end to end: real phigate, several real test upstreams that fail on
// purpose, curl. What must hold: a request that never left is sent elsewhere whatever its method;
// one that left is sent again only when idempotent and without a body; tries, the retry timeout
// and the budget bound how often; every attempt is in the request's one audit record.
#include "audit_fixture.hpp"
#include "support/net.hpp"

namespace phigate::test {
namespace {

class RetryTest : public AuditTest {
 protected:
  /// A route on app.example to `backends` with `annotations`-like policy written as static YAML
  /// (the upstream.retry defaults apply unless `retry_yaml` overrides them).
  std::string routes(const std::vector<std::string>& backends) const {
    std::string list;
    for (const auto& b : backends) list += (list.empty() ? "\"" : ", \"") + b + "\"";
    return "  - host: app.example\n    paths:\n      - { path: /, type: Prefix, backends: [" + list + "] }\n";
  }
  /// How many requests for `target` reached `up`.
  static int hits(const Upstream& up, const std::string& target) {
    int n = 0;
    for (const auto& line : up.records()) n += json_field(line, "target") == target ? 1 : 0;
    return n;
  }
  std::string metric(const Phigate& pg, const std::string& name) {
    auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"});
    const auto at = m.out.find("\n" + name + " ");
    if (at == std::string::npos) return "";
    const auto start = at + name.size() + 2;
    return m.out.substr(start, m.out.find('\n', start) - start);
  }
  std::string status_of(const Phigate& pg, const std::vector<std::string>& extra) {
    std::vector<std::string> args{"-sS", "-o", "/dev/null", "-w", "%{http_code}"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = curl(pg, args);
    return r.out;
  }
};

// A closed port: the connect is refused, nothing of the request left, so any method goes to the
// next endpoint — a POST included — and the audit record lists the failed attempt.
TEST_F(RetryTest, RefusedConnectGoesToTheNextEndpointForAnyMethod) {
  auto up = start_upstream("live");
  const std::string dead = "127.0.0.1:" + std::to_string(free_port());
  // Two dead entries before the live one: with round robin, some requests start on a dead one.
  auto pg = start_phigate(config(routes({dead, up.address()}), audit_yaml()));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(status_of(pg, {https_url(pg, "/get" + std::to_string(i))}), "200");
    EXPECT_EQ(status_of(pg, {https_url(pg, "/post" + std::to_string(i) + "?echo=1"), "--data-binary", "x=1"}),
              "200");
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(hits(up, "/post" + std::to_string(i) + "?echo=1"), 1)
        << "each POST reached the live backend once";
  }
  EXPECT_NE(metric(pg, "phigate_upstream_retries_total"), "0");
  ASSERT_TRUE(pg.process.send_signal(SIGTERM));
  ASSERT_EQ(pg.process.wait_exit(20s), 0);
  int retried = 0;
  for (const auto& rec : records()) {
    if (!has(rec, "\"attempts\":2")) continue;
    ++retried;
    EXPECT_TRUE(has(rec, dead)) << "the failed attempt names its endpoint: " << rec;
    EXPECT_TRUE(has(rec, up.address())) << rec;
  }
  EXPECT_GE(retried, 2) << "round robin starts half the requests on the dead endpoint";
}

// The request left and the backend reset before answering: a GET is sent to the other endpoint
// (both saw it, both reset: 502 after two tries), a POST reached exactly one backend.
TEST_F(RetryTest, ResetAfterSendRetriesGetButNeverPost) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(routes({a.address(), b.address()})));
  EXPECT_EQ(status_of(pg, {https_url(pg, "/g?reset=before_headers")}), "502");
  EXPECT_EQ(hits(a, "/g?reset=before_headers") + hits(b, "/g?reset=before_headers"), 2);
  EXPECT_EQ(hits(a, "/g?reset=before_headers"), 1) << "the retry goes to the other endpoint";
  EXPECT_EQ(status_of(pg, {https_url(pg, "/p?reset=before_headers"), "--data-binary", "x=1"}), "502");
  EXPECT_EQ(hits(a, "/p?reset=before_headers") + hits(b, "/p?reset=before_headers"), 1)
      << "a POST that left is never sent twice";
  EXPECT_EQ(status_of(pg, {"-X", "PATCH", https_url(pg, "/q?reset=before_headers")}), "502");
  EXPECT_EQ(hits(a, "/q?reset=before_headers") + hits(b, "/q?reset=before_headers"), 1);
}

// proxy_next_upstream http_503: a 503 answer is dropped unseen and the other endpoint answers; with
// every endpoint answering 503, the last answer reaches the client. Not listed (the default): the
// 503 is the answer.
TEST_F(RetryTest, StatusConditionsAndTries) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto c = start_upstream("c");
  auto pg =
      start_phigate(config(routes({a.address(), b.address(), c.address()}),
                           "upstream: { retry: { next_upstream: [error, timeout, http_503], tries: 2 } }\n"));
  EXPECT_EQ(status_of(pg, {https_url(pg, "/s?status=503")}), "503");
  EXPECT_EQ(hits(a, "/s?status=503") + hits(b, "/s?status=503") + hits(c, "/s?status=503"), 2)
      << "tries: 2 bounds the attempts";
  EXPECT_EQ(status_of(pg, {https_url(pg, "/t?status=502")}), "502");
  EXPECT_EQ(hits(a, "/t?status=502") + hits(b, "/t?status=502") + hits(c, "/t?status=502"), 1)
      << "http_502 is not listed";
  EXPECT_EQ(status_of(pg, {https_url(pg, "/u?status=503"), "--data-binary", "x"}), "503");
  EXPECT_EQ(hits(a, "/u?status=503") + hits(b, "/u?status=503") + hits(c, "/u?status=503"), 1)
      << "a request with a body is not sent twice";
}

// The read deadline passes before any response byte: a GET goes to the other endpoint (both are
// slow: 504 after two tries), a POST that left is answered 504 without a second copy.
TEST_F(RetryTest, ReadTimeoutRetriesGetButNeverPost) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(
      config(routes({a.address(), b.address()}),
             "timeouts: { upstream_read: 300ms }\nupstream: { health: { passive: { enabled: false } } }\n"));
  EXPECT_EQ(status_of(pg, {https_url(pg, "/slow?delay_ms=1500")}), "504");
  EXPECT_EQ(hits(a, "/slow?delay_ms=1500"), 1);
  EXPECT_EQ(hits(b, "/slow?delay_ms=1500"), 1);
  EXPECT_EQ(status_of(pg, {https_url(pg, "/slowpost?delay_ms=1500"), "--data-binary", "x=1"}), "504");
  EXPECT_EQ(hits(a, "/slowpost?delay_ms=1500") + hits(b, "/slowpost?delay_ms=1500"), 1);
}

// One endpoint: nothing to retry on, so its 503 is the answer (never dropped with nothing after it).
TEST_F(RetryTest, StatusConditionWithOneEndpointAnswersItsStatus) {
  auto a = start_upstream("a");
  auto pg =
      start_phigate(config(routes({a.address()}), "upstream: { retry: { next_upstream: [http_503] } }\n"));
  for (int i = 0; i < 3; ++i) {
    const auto t = "/one" + std::to_string(i) + "?status=503";
    EXPECT_EQ(status_of(pg, {https_url(pg, t)}), "503");
    EXPECT_EQ(hits(a, t), 1);
  }
}

TEST_F(RetryTest, OffMeansOneAttempt) {
  auto up = start_upstream("live");
  const std::string dead = "127.0.0.1:" + std::to_string(free_port());
  auto pg = start_phigate(
      config(routes({dead, up.address()}), "upstream: { retry: { next_upstream: [\"off\"] } }\n"));
  int bad = 0;
  for (int i = 0; i < 8; ++i)
    bad += status_of(pg, {https_url(pg, "/x" + std::to_string(i))}) == "502" ? 1 : 0;
  // Round robin per worker, starting on the dead endpoint: every other request of each of the two
  // workers ends there, unanswered by anyone else.
  EXPECT_GE(bad, 4);
  EXPECT_LE(bad, 5);
}

// The budget: with no floor and 0% of requests, only the bucket's initial 10 tokens per worker are
// spent; after that, failures are answered without a retry and counted as refused. (Passive health
// checks are off: they would eject an endpoint after 5 resets and leave nothing to retry on.)
TEST_F(RetryTest, BudgetBoundsRetries) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config(routes({a.address(), b.address()}),
                                 "upstream: { retry: { budget_percent: 0, budget_min_per_second: 0 }, "
                                 "health: { passive: { enabled: false } } }\n"));
  constexpr int kRequests = 30;
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(status_of(pg, {https_url(pg, "/r" + std::to_string(i) + "?reset=before_headers")}), "502");
  }
  int total = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto t = "/r" + std::to_string(i) + "?reset=before_headers";
    total += hits(a, t) + hits(b, t);
  }
  const int retries = total - kRequests;
  // Two workers, 10 initial tokens each; which worker takes a connection is the kernel's choice.
  EXPECT_GE(retries, 10);
  EXPECT_LE(retries, 20);
  EXPECT_EQ(metric(pg, "phigate_upstream_retry_budget_exhausted_total"), std::to_string(kRequests - retries));
}

}  // namespace
}  // namespace phigate::test
