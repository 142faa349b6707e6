// Endpoint health end to end: real phigate and phigate-test-upstream processes on loopback.
// Active checks take an endpoint whose health path fails out of rotation and bring it back,
// passive checks eject an endpoint answering 5xx (never more than half of a service), no usable
// endpoint is a 503 with its audit reason, and an EndpointSlice's terminating endpoint gets no
// request. Every wait polls with a deadline.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"
#include "phigate_fixture.hpp"

namespace phigate::test {
namespace {

using Clock = std::chrono::steady_clock;

/// A test upstream answering --health-path /healthz.
Upstream start_checked_upstream(TempDir& dir, const std::string& name) {
  const std::string record = dir.path(name + ".jsonl");
  auto p = Process::start({bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--record", record,
                           "--name", name, "--health-path", "/healthz"});
  const auto line = p.wait_for_line("ready ", 10s);
  if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
  const auto colon = line->rfind(':');
  return Upstream{std::move(p), static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1))), record};
}

/// A test upstream serving HTTPS with `cert` and answering --health-path /healthz.
Upstream start_tls_upstream(TempDir& dir, const std::string& name, const CertPaths& cert) {
  const std::string record = dir.path(name + ".jsonl");
  auto p =
      Process::start({bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--record", record, "--name",
                      name, "--health-path", "/healthz", "--tls-cert", cert.cert, "--tls-key", cert.key});
  const auto line = p.wait_for_line("ready ", 10s);
  if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
  const auto colon = line->rfind(':');
  return Upstream{std::move(p), static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1))), record};
}

/// GET /__control?query straight to the upstream; its answer ("health=ok probes=N status=0").
/// `tls`: the upstream serves HTTPS (the test talks to it without verifying: it is the test's own).
std::string control(const Upstream& up, const std::string& query, bool tls = false) {
  auto r = run({"curl", "-sS", "-k", "--max-time", "5",
                std::string(tls ? "https://" : "http://") + up.address() + "/__control?" + query});
  return r.out;
}

std::uint64_t probes(const Upstream& up, bool tls = false) {
  const auto s = control(up, "", tls);
  const auto at = s.find("probes=");
  return at == std::string::npos ? 0 : std::stoull(s.substr(at + 7));
}

/// Request lines in an upstream's record (control and health requests are never recorded).
std::size_t requests(const Upstream& up) {
  std::size_t n = 0;
  for (const auto& l : up.records()) n += l.find("\"method\"") != std::string::npos ? 1 : 0;
  return n;
}

struct Answer {
  std::string status;
  std::string name;  // X-Upstream-Name, "" for a local answer
};

class HealthTest : public PhigateTest {
 protected:
  /// `n` requests in one curl (one keep-alive connection): status and upstream of each.
  std::vector<Answer> send(const Phigate& pg, int n, const std::string& host = "app.example") {
    std::vector<std::string> args = {"-w", "%{http_code} %header{x-upstream-name}\\n"};
    for (int i = 0; i < n; ++i) {
      args.push_back("-o");
      args.push_back("/dev/null");
      args.push_back(https_url(pg, "/r" + std::to_string(i), host));
    }
    const auto r = curl(pg, args);
    std::vector<Answer> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const auto sp = line.find(' ');
      out.push_back({line.substr(0, sp), sp == std::string::npos ? "" : line.substr(sp + 1)});
    }
    return out;
  }
  /// Polls (batches of 10 requests) until every answer of a batch satisfies `all`; false at the deadline.
  template <class Pred>
  bool until_all(const Phigate& pg, Pred all, std::chrono::milliseconds deadline,
                 const std::string& host = "app.example") {
    const auto end = Clock::now() + deadline;
    while (Clock::now() < end) {
      const auto batch = send(pg, 10, host);
      if (batch.size() == 10 && std::all_of(batch.begin(), batch.end(), all)) return true;
    }
    return false;
  }
  /// Polls until some answer satisfies `any`.
  template <class Pred>
  bool until_any(const Phigate& pg, Pred any, std::chrono::milliseconds deadline) {
    const auto end = Clock::now() + deadline;
    while (Clock::now() < end) {
      const auto batch = send(pg, 5);
      if (std::any_of(batch.begin(), batch.end(), any)) return true;
    }
    return false;
  }
  std::string two_backends(const Upstream& a, const Upstream& b) const {
    return "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" + a.address() + "\", \"" +
           b.address() + "\"] }\n";
  }
  std::string metrics(const Phigate& pg) {
    return run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
  }
  static double metric(const std::string& text, const std::string& series) {
    const auto at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
  }
};

constexpr const char* kActive =
    "upstream:\n  health:\n    active: { path: /healthz, interval: 200ms, timeout: 150ms, healthy_threshold: "
    "2,"
    " unhealthy_threshold: 2 }\n    passive: { enabled: false }\n";

TEST_F(HealthTest, FailingHealthPathTakesTheEndpointOutWithinIntervalTimesThresholdAndBackAfter) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg = start_phigate(config(two_backends(a, b), kActive));
  const auto from_b = [](const Answer& x) { return x.status == "200" && x.name == "b"; };
  const auto from_a = [](const Answer& x) { return x.status == "200" && x.name == "a"; };
  ASSERT_TRUE(until_any(pg, from_a, 5s));
  ASSERT_TRUE(until_any(pg, from_b, 5s));
  const auto probes_start = probes(a);
  const auto t_start = Clock::now();

  ASSERT_NE(control(a, "health=fail").find("health=fail"), std::string::npos);
  const auto failed_at = Clock::now();
  ASSERT_TRUE(until_all(pg, from_b, 5s)) << pg.process.output();
  // interval × unhealthy_threshold = 400 ms, + 10 % jitter per probe; generous slack for a busy CI.
  EXPECT_LT(Clock::now() - failed_at, 400ms * 1.1 + 1500ms);
  const auto a_requests = requests(a);
  for (int i = 0; i < 3; ++i) {
    const auto batch = send(pg, 10);
    for (const auto& x : batch) EXPECT_TRUE(from_b(x)) << x.status << " " << x.name;
  }
  EXPECT_EQ(requests(a), a_requests) << "an unhealthy endpoint got requests";

  control(a, "health=ok");
  const auto ok_at = Clock::now();
  ASSERT_TRUE(until_any(pg, from_a, 5s));
  EXPECT_LT(Clock::now() - ok_at, 400ms * 1.1 + 1500ms);

  // One checker per endpoint for the whole process (2 workers): about one probe per interval.
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_start);
  const auto n = probes(a) - probes_start;
  EXPECT_GE(n, 2u);
  EXPECT_LE(n, static_cast<std::uint64_t>(elapsed.count() / 180 + 2))
      << n << " probes in " << elapsed.count() << " ms";
  const auto m = metrics(pg);
  EXPECT_GT(metric(m, "phigate_health_probe_failures_total"), 0) << m;
  EXPECT_EQ(metric(m, "phigate_health_endpoints{state=\"healthy\"}"), 2) << m;
}

TEST_F(HealthTest, TcpCheckNoticesAKilledBackend) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg = start_phigate(config(two_backends(a, b),
                                 "upstream:\n  health:\n    active: { interval: 200ms, timeout: 150ms,"
                                 " unhealthy_threshold: 1 }\n    passive: { enabled: false }\n"));
  ASSERT_TRUE(until_any(
      pg, [](const Answer& x) { return x.name == "a"; }, 5s));
  a.process.terminate(2s);
  // No request may be answered with an error once the check has seen it: all from b.
  ASSERT_TRUE(until_all(
      pg, [](const Answer& x) { return x.status == "200" && x.name == "b"; }, 5s));
  EXPECT_EQ(probes(b), 0u) << "a TCP check must not send HTTP requests";
}

TEST_F(HealthTest, ConsecutiveFiveHundredsEjectTheEndpointUntilItsBackOffEnds) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg =
      start_phigate(config(two_backends(a, b),
                           "upstream:\n  health:\n    passive: { consecutive_failures: 3, base_ejection: 1s,"
                           " max_ejection: 2s }\n"));
  control(a, "status=500");
  std::size_t a_500 = 0;
  for (int i = 0; i < 4; ++i) {
    for (const auto& x : send(pg, 10)) a_500 += x.status == "500" ? 1 : 0;
  }
  EXPECT_GE(a_500, 3u);
  EXPECT_LE(a_500, 6u) << "3 in a row eject it (plus what two workers had under way)";
  const auto a_requests = requests(a);
  for (const auto& x : send(pg, 10)) EXPECT_TRUE(x.status == "200" && x.name == "b") << x.status << x.name;
  EXPECT_EQ(requests(a), a_requests);
  EXPECT_GE(metric(metrics(pg), "phigate_upstream_ejections_total"), 1);

  control(a, "status=0");
  ASSERT_TRUE(until_any(
      pg, [](const Answer& x) { return x.status == "200" && x.name == "a"; }, 5s))
      << "the ejection must end after its back-off";
}

TEST_F(HealthTest, ConnectionResetsEjectToo) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg =
      start_phigate(config(two_backends(a, b),
                           "upstream:\n  health:\n    passive: { consecutive_failures: 2, base_ejection: 60s,"
                           " max_ejection: 60s }\n"));
  control(a, "reset=1");
  for (int i = 0; i < 3; ++i) send(pg, 10);
  for (const auto& x : send(pg, 10)) EXPECT_TRUE(x.status == "200" && x.name == "b") << x.status << x.name;
  EXPECT_EQ(metric(metrics(pg), "phigate_upstream_ejections_total"), 1);
  // A reload keeps the ejection (same route, endpoint and settings): a is not tried again.
  control(a, "reset=0");
  const auto mark = pg.process.output().size();
  ASSERT_TRUE(pg.process.send_signal(SIGHUP));
  ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  const auto a_requests = requests(a);
  for (const auto& x : send(pg, 10)) EXPECT_TRUE(x.status == "200" && x.name == "b") << x.status << x.name;
  EXPECT_EQ(requests(a), a_requests);
}

TEST_F(HealthTest, NeverEjectsMoreThanHalfOfAService) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg =
      start_phigate(config(two_backends(a, b),
                           "upstream:\n  health:\n    passive: { consecutive_failures: 2, base_ejection: 60s,"
                           " max_ejection: 60s }\n"));
  control(a, "status=500");
  control(b, "status=502");
  for (int i = 0; i < 4; ++i) send(pg, 10);
  // One of the two is ejected; the other keeps getting requests (its 5xx reaches the client)
  // rather than the service answering 503 for want of an endpoint.
  const auto batch = send(pg, 10);
  ASSERT_EQ(batch.size(), 10u);
  for (const auto& x : batch) {
    EXPECT_TRUE(x.status == "500" || x.status == "502") << x.status;
    EXPECT_EQ(x.name, batch[0].name);
  }
  EXPECT_EQ(metric(metrics(pg), "phigate_upstream_ejections_total"), 1);
}

// --- HTTPS backends: the probe speaks TLS with the route's own verification ---

class HealthTlsTest : public HealthTest {
 protected:
  void SetUp() override {
    HealthTest::SetUp();
    backend_ca_ = make_ca(dir_.path(), "backend-ca");
    impostor_ca_ = make_ca(dir_.path(), "impostor-ca");
    good_cert_ = make_leaf(dir_.path(), backend_ca_, "backend.internal", {"backend.internal"});
    // Same name, another CA: what an attacker answering on the backend's address would present.
    impostor_cert_ = make_leaf(dir_.path(), impostor_ca_, "backend.internal", {"backend.internal"});
  }
  std::string tls_route(const Upstream& a, const Upstream& b) const {
    return "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" + a.address() + "\", \"" +
           b.address() + "\"], backend_tls: { ca: " + backend_ca_.cert + ", name: backend.internal } }\n";
  }
  CertPaths backend_ca_, impostor_ca_, good_cert_, impostor_cert_;
};

TEST_F(HealthTlsTest, HttpsBackendsHealthPathIsCheckedOverTlsOutAndBackIn) {
  auto a = start_tls_upstream(dir_, "a", good_cert_);
  auto b = start_tls_upstream(dir_, "b", good_cert_);
  auto pg = start_phigate(config(tls_route(a, b), kActive));
  const auto from_a = [](const Answer& x) { return x.status == "200" && x.name == "a"; };
  const auto from_b = [](const Answer& x) { return x.status == "200" && x.name == "b"; };
  ASSERT_TRUE(until_any(pg, from_a, 5s)) << pg.process.output();
  ASSERT_TRUE(until_any(pg, from_b, 5s));
  // The probes reached the health path: HTTP inside the verified TLS connection (a TCP-only
  // check never sends one).
  const auto wait_probes = [&](const Upstream& u) {
    const auto end = Clock::now() + 5s;
    while (Clock::now() < end && probes(u, true) == 0) std::this_thread::sleep_for(50ms);
    return probes(u, true);
  };
  EXPECT_GT(wait_probes(a), 0u);
  EXPECT_GT(wait_probes(b), 0u);

  ASSERT_NE(control(a, "health=fail", true).find("health=fail"), std::string::npos);
  ASSERT_TRUE(until_all(pg, from_b, 5s)) << pg.process.output();
  const auto a_requests = requests(a);
  for (const auto& x : send(pg, 10)) EXPECT_TRUE(from_b(x)) << x.status << " " << x.name;
  EXPECT_EQ(requests(a), a_requests) << "an unhealthy HTTPS endpoint got requests";
  const auto m = metrics(pg);
  EXPECT_EQ(metric(m, "phigate_health_endpoints{state=\"unhealthy\"}"), 1) << m;

  control(a, "health=ok", true);
  ASSERT_TRUE(until_any(pg, from_a, 5s)) << "a passing check over TLS brings it back";
  EXPECT_EQ(metric(metrics(pg), "phigate_health_endpoints{state=\"healthy\"}"), 2);
}

// Without a path the check is connect + TLS handshake: a backend whose certificate does not
// verify (an impostor on the address, a CA rotated on one side only) is unhealthy, where a
// TCP-connect check would call it healthy and let every worker's handshake fail on it.
TEST_F(HealthTlsTest, BackendWhoseCertificateDoesNotVerifyIsUnhealthyAndGetsNoRequest) {
  auto good = start_tls_upstream(dir_, "good", good_cert_);
  auto impostor = start_tls_upstream(dir_, "impostor", impostor_cert_);
  auto pg = start_phigate(
      config(tls_route(good, impostor),
             "upstream:\n  health:\n    initial: unhealthy\n    active: { interval: 200ms, timeout: 150ms,"
             " healthy_threshold: 1, unhealthy_threshold: 1 }\n    passive: { enabled: false }\n"));
  const auto end = Clock::now() + 5s;
  std::string m;
  while (Clock::now() < end) {
    m = metrics(pg);
    if (metric(m, "phigate_health_endpoints{state=\"healthy\"}") == 1 &&
        metric(m, "phigate_health_endpoints{state=\"unhealthy\"}") == 1 &&
        metric(m, "phigate_health_probes_total") >= 4)
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(metric(m, "phigate_health_endpoints{state=\"healthy\"}"), 1) << m;
  ASSERT_EQ(metric(m, "phigate_health_endpoints{state=\"unhealthy\"}"), 1) << m;
  EXPECT_GT(metric(m, "phigate_health_probe_failures_total"), 0) << m;
  // Starting unhealthy, the impostor never got a request: no worker even tried its handshake.
  const auto failures = metric(m, "phigate_backend_tls_failures_total");
  for (int i = 0; i < 3; ++i) {
    for (const auto& x : send(pg, 10))
      EXPECT_TRUE(x.status == "200" && x.name == "good") << x.status << x.name;
  }
  EXPECT_EQ(metric(metrics(pg), "phigate_backend_tls_failures_total"), failures);
  EXPECT_EQ(requests(impostor), 0u);
  EXPECT_EQ(probes(impostor, true), 0u) << "no path: the check sends no HTTP request";
  EXPECT_EQ(probes(good, true), 0u);
}

// --- test-upstream modes: a stalled health endpoint, a backend closing every connection ---

TEST_F(HealthTest, HealthEndpointSlowerThanTheTimeoutIsUnhealthy) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg = start_phigate(config(two_backends(a, b), kActive));
  const auto from_a = [](const Answer& x) { return x.status == "200" && x.name == "a"; };
  const auto from_b = [](const Answer& x) { return x.status == "200" && x.name == "b"; };
  ASSERT_TRUE(until_any(pg, from_a, 5s));
  // The health path still answers 200, but 400 ms late: past the 150 ms timeout.
  ASSERT_NE(control(a, "stall_ms=400").find("health=ok"), std::string::npos);
  const auto probes_before = probes(a);
  ASSERT_TRUE(until_all(pg, from_b, 10s)) << pg.process.output();
  EXPECT_GT(probes(a), probes_before) << "the probes reached it: the timeout, not a refused connect";
  EXPECT_EQ(metric(metrics(pg), "phigate_health_endpoints{state=\"unhealthy\"}"), 1);
  control(a, "stall_ms=0");
  ASSERT_TRUE(until_any(pg, from_a, 5s)) << "a prompt answer again brings it back";
}

TEST_F(HealthTest, BackendClosingEveryKeepAliveConnectionStillServesEveryRequestOnce) {
  auto a = start_checked_upstream(dir_, "a");
  auto pg = start_phigate(config("  - host: app.example\n    paths:\n      - { path: /, backends: [\"" +
                                 a.address() + "\"] }\n"));
  ASSERT_NE(control(a, "keepalive=close").find("health=ok"), std::string::npos);
  // 20 POSTs then 20 GETs, each list on one client connection (so one worker and its pool): a
  // pooled connection the backend closed would be a 502, or a POST sent twice.
  constexpr int kN = 20;
  for (const char* method : {"POST", "GET"}) {
    std::vector<std::string> args = {"-w", "%{http_code}\n", "-o", "/dev/null"};
    if (std::string(method) == "POST") {
      args.push_back("--data-binary");
      args.push_back("payload");
    }
    for (int i = 0; i < kN; ++i) {
      args.push_back(https_url(pg, "/" + std::string(method) + "-" + std::to_string(i)));
      if (i + 1 < kN) {
        args.push_back("-o");
        args.push_back("/dev/null");
      }
    }
    const auto r = curl(pg, args);
    std::istringstream in(r.out);
    int ok = 0;
    for (std::string line; std::getline(in, line);) {
      EXPECT_EQ(line, "200") << method;
      ok += line == "200" ? 1 : 0;
    }
    EXPECT_EQ(ok, kN) << r.out << r.err;
  }
  std::map<std::string, int> seen;
  for (const auto& l : a.records()) {
    if (l.find("\"method\"") == std::string::npos) continue;
    ++seen[json_field(l, "target")];
    EXPECT_EQ(json_field(l, "seq"), "1") << "a request on a connection the backend had closed: " << l;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * kN));
  for (const auto& [target, n] : seen) EXPECT_EQ(n, 1) << target << " reached the backend " << n << " times";
  const auto m = metrics(pg);
  EXPECT_EQ(metric(m, "phigate_upstream_reuses_total"), 0) << m;
  EXPECT_EQ(metric(m, "phigate_upstream_ejections_total"), 0) << m;
}

class HealthAuditTest : public AuditTest {};

TEST_F(HealthAuditTest, NoHealthyEndpointIs503WithItsAuditReason) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  auto pg = start_phigate(config("  - host: app.example\n    paths:\n      - { path: /, backends: [\"" +
                                     a.address() + "\", \"" + b.address() + "\"] }\n",
                                 audit_yaml() + kActive));
  control(a, "health=fail");
  control(b, "health=fail");
  const auto end = Clock::now() + 5s;
  RunResult r;
  int tries = 0;
  while (Clock::now() < end) {
    r = curl(pg, {"-w", "\\n%{http_code}", https_url(pg, "/down-" + std::to_string(++tries))});
    if (r.out.ends_with("503")) break;
  }
  ASSERT_TRUE(r.out.ends_with("503")) << r.out;
  const auto body = r.out.substr(0, r.out.size() - 3);
  EXPECT_LT(body.size(), 200u) << body;
  EXPECT_EQ(body.find("127.0.0.1"), std::string::npos) << "the body names no endpoint: " << body;
  const auto before = requests(a) + requests(b);
  EXPECT_EQ(curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/all-down")}).out, "503");
  EXPECT_EQ(requests(a) + requests(b), before) << "a request reached an unhealthy endpoint";
  pg.process.terminate(10s);
  const auto rec = find(records(), "/all-down");
  EXPECT_TRUE(has(rec, "\"status_code\":503")) << rec;
  EXPECT_TRUE(has(rec, "\"reason\":\"no_healthy_endpoint\"")) << rec;
}

/// A Service with two EndpointSlices (one port each, both on 127.0.0.1): `a` ready, `b` with the
/// given conditions.
std::string two_slice_service(const Upstream& a, const Upstream& b, const std::string& b_conditions,
                              const std::string& a_conditions = "{ ready: true }") {
  auto slice = [](const std::string& name, const Upstream& up, const std::string& cond) {
    return "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
           "\n  namespace: default\n  labels: { kubernetes.io/service-name: app }\naddressType: IPv4\n"
           "ports: [{ name: http, port: " +
           std::to_string(up.port) +
           " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: " + cond + "\n";
  };
  return "apiVersion: v1\nkind: Service\nmetadata: { name: app, namespace: default }\nspec:\n"
         "  ports: [{ name: http, port: 80, targetPort: 8080 }]\n" +
         slice("app-a", a, a_conditions) + slice("app-b", b, b_conditions);
}

class HealthIngressTest : public IngressTest {
 protected:
  std::vector<std::string> codes(const Phigate& pg, int n) {
    std::vector<std::string> out;
    std::vector<std::string> args = {"-w", "%{http_code} %header{x-upstream-name}\\n"};
    for (int i = 0; i < n; ++i) {
      args.push_back("-o");
      args.push_back("/dev/null");
      args.push_back(https_url(pg, "/t" + std::to_string(i), "app.example"));
    }
    std::istringstream in(curl(pg, args).out);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
};

TEST_F(HealthIngressTest, TerminatingEndpointGetsNoNewRequests) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  dir_.write("manifests/svc.yaml",
             two_slice_service(a, b, "{ ready: false, serving: true, terminating: true }"));
  dir_.write("manifests/ing.yaml", ingress_yaml("app", "app.example", "app"));
  auto pg = start();
  for (const auto& line : codes(pg, 20)) EXPECT_EQ(line, "200 a");
  EXPECT_EQ(requests(b), 0u);
  // The same endpoint ready again (a rolled-back termination): it takes requests.
  rewrite(pg, "svc.yaml", two_slice_service(a, b, "{ ready: true }"));
  bool b_seen = false;
  for (int i = 0; i < 5 && !b_seen; ++i) {
    for (const auto& line : codes(pg, 10)) b_seen = b_seen || line == "200 b";
  }
  EXPECT_TRUE(b_seen);
}

TEST_F(HealthIngressTest, ARequestUnderWayToAnEndpointThatStartsTerminatingFinishes) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  // b takes requests, a is terminating.
  dir_.write("manifests/svc.yaml", two_slice_service(a, b, "{ ready: true }",
                                                     "{ ready: false, serving: true, terminating: true }"));
  dir_.write("manifests/ing.yaml", ingress_yaml("app", "app.example", "app"));
  auto pg = start();
  RunResult slow;
  std::thread t([&] {
    slow = curl(pg, {"-w", "\n%{http_code} %header{x-upstream-name}", https_url(pg, "/slow?delay_ms=1500")});
  });
  const auto end = Clock::now() + 5s;
  while (requests(b) == 0 && Clock::now() < end) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(requests(b), 1u);
  // Now b terminates and a is ready again: the slow request still gets b's answer.
  rewrite(pg, "svc.yaml", two_slice_service(a, b, "{ ready: false, serving: true, terminating: true }"));
  for (const auto& line : codes(pg, 10)) EXPECT_EQ(line, "200 a");
  t.join();
  EXPECT_TRUE(slow.out.ends_with("200 b")) << slow.out;
  EXPECT_EQ(requests(b), 1u);
}

TEST_F(HealthIngressTest, OnlyTerminatingEndpointsLeftIs503) {
  auto a = start_checked_upstream(dir_, "a");
  auto b = start_checked_upstream(dir_, "b");
  dir_.write("manifests/svc.yaml",
             two_slice_service(a, b, "{ ready: false, serving: true, terminating: true }"));
  dir_.write("manifests/ing.yaml", ingress_yaml("app", "app.example", "app"));
  auto pg = start();
  ASSERT_EQ(code(pg, "app.example"), "200");
  // a goes away (not serving, terminating), b still terminating: nothing may take a request.
  rewrite(pg, "svc.yaml",
          two_slice_service(a, b, "{ ready: false, serving: true, terminating: true }",
                            "{ ready: false, serving: false, terminating: true }"));
  EXPECT_EQ(code(pg, "app.example"), "503");
  EXPECT_EQ(requests(b), 0u);
}

TEST_F(HealthIngressTest, HealthCheckAnnotationsTurnActiveChecksOn) {
  auto a = start_checked_upstream(dir_, "a");
  dir_.write("manifests/svc.yaml", service_yaml("app", a));
  dir_.write("manifests/ing.yaml", ingress_yaml("app", "app.example", "app",
                                                "    phigate.io/health-check-path: /healthz\n"
                                                "    phigate.io/health-check-interval: 200ms\n"
                                                "    phigate.io/health-check-timeout: 100ms\n"
                                                "    phigate.io/health-check-healthy-threshold: \"1\"\n"
                                                "    phigate.io/health-check-unhealthy-threshold: \"1\"\n"));
  auto pg = start();
  ASSERT_EQ(code(pg, "app.example"), "200");
  control(a, "health=fail");
  const auto wait_for = [&](const std::string& want) {
    const auto end = Clock::now() + 5s;
    while (Clock::now() < end) {
      if (code(pg, "app.example") == want) return true;
    }
    return false;
  };
  EXPECT_TRUE(wait_for("503"));
  EXPECT_GT(probes(a), 0u);
  control(a, "health=ok");
  EXPECT_TRUE(wait_for("200"));
}

TEST_F(HealthIngressTest, InvalidHealthCheckAnnotationFailsTheIngressClosed) {
  auto a = start_checked_upstream(dir_, "a");
  dir_.write("manifests/svc.yaml", service_yaml("app", a));
  dir_.write("manifests/ing.yaml",
             ingress_yaml("app", "app.example", "app",
                          "    phigate.io/health-check-path: \"/healthz\\r\\nX: y\"\n"));
  auto pg = start();
  EXPECT_EQ(code(pg, "app.example"), "503");
  EXPECT_EQ(requests(a), 0u);
}

}  // namespace
}  // namespace phigate::test
