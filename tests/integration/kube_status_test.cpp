// Leader election (coordination.k8s.io/v1 Lease), Ingress status and Events against the test API
// server: in-process candidates, each with its own io_context and Client, run in turns by the test
// thread (no threads: every sample sees a settled state), with short durations (lease 3 s, renew
// 2 s, retry 300 ms) so each test stays well under a minute.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kube_fixture.hpp"
#include "phigate/kube/client.hpp"
#include "phigate/kube/credentials.hpp"
#include "phigate/kube/leader.hpp"
#include "phigate/kube/status.hpp"
#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kLease = 3000ms;
constexpr auto kRenew = 2000ms;
constexpr auto kRetry = 300ms;

FakeApiOptions api_options() {
  FakeApiOptions o;
  o.identities = {{"admin", "admin-token", {}}, {"a", "a-token", {}}, {"b", "b-token", {}}};
  return o;
}

config::KubernetesSpec short_spec() {
  config::KubernetesSpec s;
  s.lease_duration = kLease;
  s.renew_deadline = kRenew;
  s.retry_period = kRetry;
  s.request_timeout = 5000ms;
  return s;
}

/// One process's worth of API access: an io_context and a Client for one identity.
struct Peer {
  net::asio::io_context io;
  std::unique_ptr<kube::Client> client;

  Peer(FakeApiServer& api, const std::string& identity) {
    kube::CredentialsError err;
    auto creds = kube::from_kubeconfig(api.kubeconfig(identity), "", err);
    if (!creds) throw std::runtime_error("kubeconfig: " + err.message);
    client = std::make_unique<kube::Client>(io, std::move(*creds));
  }
  ~Peer() {
    // Let cancelled timers and requests finish on their own io_context before it goes away.
    io.restart();
    io.run_for(50ms);
  }
};

/// A candidate: its Peer, its LeaderElection and the on_change calls it saw.
struct Candidate {
  Peer peer;
  std::string name;
  std::vector<bool> changes;
  std::unique_ptr<kube::LeaderElection> election;

  Candidate(FakeApiServer& api, const std::string& identity, const config::KubernetesSpec& spec)
      : peer(api, identity), name("candidate-" + identity) {
    election = std::make_unique<kube::LeaderElection>(peer.io, *peer.client, spec, "default", name,
                                                      [this](bool leading) { changes.push_back(leading); });
  }
  bool leading() const { return election->leading(); }
};

/// Runs every io_context in turns for `total`, calling `each` between turns; stops early when
/// `each` returns true. Returns whether it did.
bool run_until(std::vector<net::asio::io_context*> ios, std::chrono::milliseconds total,
               const std::function<bool()>& each) {
  const auto deadline = Clock::now() + total;
  while (Clock::now() < deadline) {
    for (auto* io : ios) {
      io->restart();
      io->run_for(5ms);
    }
    if (each && each()) return true;
  }
  return false;
}

std::vector<net::asio::io_context*> ios(std::initializer_list<Candidate*> cs) {
  std::vector<net::asio::io_context*> out;
  for (auto* c : cs) out.push_back(&c->peer.io);
  return out;
}

/// A field of the one Lease in the test namespace ("" when absent).
std::string lease_field(FakeApiServer& api, const char* field) {
  for (const auto& text : api.objects("Lease", "default")) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(text).get(doc)) continue;
    simdjson::dom::element v;
    if (doc["spec"][field].get(v)) return "";
    if (v.is_string()) return std::string(v.get_string().value());
    if (v.is_int64()) return std::to_string(v.get_int64().value());
    return "";
  }
  return "";
}

int count_requests(FakeApiServer& api, const std::string& method, const std::string& resource,
                   int status = 0) {
  int n = 0;
  for (const auto& r : api.requests())
    if (r.method == method && r.resource == resource && (status == 0 || r.status == status)) ++n;
  return n;
}

// --- leader election

TEST(KubeLeader, ExactlyOneLeadsAtATime) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  const auto spec = short_spec();
  Candidate a(*api, "a", spec), b(*api, "b", spec);
  a.election->start();
  b.election->start();

  Candidate* leader = nullptr;
  ASSERT_TRUE(run_until(ios({&a, &b}), 10s, [&] {
    EXPECT_FALSE(a.leading() && b.leading());
    leader = a.leading() ? &a : b.leading() ? &b : nullptr;
    return leader != nullptr;
  })) << "nobody acquired the Lease";
  Candidate* other = leader == &a ? &b : &a;

  // Over more than a lease duration: the leader keeps renewing, the other never leads.
  run_until(ios({&a, &b}), kLease + 1000ms, [&] {
    EXPECT_TRUE(leader->leading());
    EXPECT_FALSE(other->leading());
    return false;
  });
  EXPECT_EQ(leader->changes, std::vector<bool>{true});
  EXPECT_TRUE(other->changes.empty());
  EXPECT_EQ(lease_field(*api, "holderIdentity"), leader->name);
  EXPECT_EQ(lease_field(*api, "leaseDurationSeconds"), "3");
  // Renewals are updates (PUT) carrying the read resourceVersion.
  EXPECT_GE(count_requests(*api, "PUT", "leases", 200), 5);
  const auto renew = lease_field(*api, "renewTime");
  ASSERT_EQ(renew.size(), std::string("2006-01-02T15:04:05.000000Z").size()) << renew;  // MicroTime
  EXPECT_EQ(renew[19], '.');
  EXPECT_EQ(renew.back(), 'Z');
}

TEST(KubeLeader, StopHandsOverWithinARetryPeriodOrTwo) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  const auto spec = short_spec();
  Candidate a(*api, "a", spec);
  a.election->start();
  ASSERT_TRUE(run_until(ios({&a}), 10s, [&] { return a.leading(); }));
  Candidate b(*api, "b", spec);
  b.election->start();
  // b has seen a's live Lease and follows.
  run_until(ios({&a, &b}), 3 * kRetry, [&] {
    EXPECT_FALSE(b.leading());
    return false;
  });
  ASSERT_TRUE(a.leading());

  a.election->stop();
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(a.changes, (std::vector<bool>{true, false}));
  const auto stopped = Clock::now();
  ASSERT_TRUE(run_until(ios({&a, &b}), 5s, [&] { return b.leading(); })) << "b did not take over";
  // Not a lease duration (3 s): the released Lease is free at b's next round.
  EXPECT_LT(Clock::now() - stopped, 2 * kRetry + 500ms);
  EXPECT_EQ(lease_field(*api, "holderIdentity"), b.name);
  EXPECT_EQ(lease_field(*api, "leaseTransitions"), "1");
  EXPECT_EQ(b.changes, std::vector<bool>{true});
}

// A stop that comes while a renewal is on its way: the server has stored that renewal under a new
// resourceVersion, so a release sent at once with the old one would be refused (409) and the
// successor would wait out the whole lease. The release follows the renewal's answer instead.
TEST(KubeLeader, StopDuringARenewalReleasesWithTheRenewalsVersion) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  const auto spec = short_spec();
  Candidate a(*api, "a", spec);
  a.election->start();
  ASSERT_TRUE(run_until(ios({&a}), 10s, [&] { return a.leading(); }));
  // Answers are held back (the writes themselves are stored on arrival): wait for a's next renewal
  // to reach the server, then stop a while its answer is still on the way.
  api->set_slow(600);
  const int puts = count_requests(*api, "PUT", "leases");
  ASSERT_TRUE(run_until(ios({&a}), 5s, [&] { return count_requests(*api, "PUT", "leases") > puts; }));
  a.election->stop();
  EXPECT_FALSE(a.leading());
  api->set_slow(0);
  const auto stopped = Clock::now();
  Candidate b(*api, "b", spec);
  b.election->start();
  ASSERT_TRUE(run_until(ios({&a, &b}), 5s, [&] { return b.leading(); })) << "b did not take over";
  // The renewal's answer (up to 600 ms) and b's next round or two: not the lease's 3 s.
  EXPECT_LT(Clock::now() - stopped, 600ms + 2 * kRetry + 500ms);
  EXPECT_EQ(count_requests(*api, "PUT", "leases", 409), 0) << "a released with a stale resourceVersion";
  EXPECT_EQ(lease_field(*api, "holderIdentity"), b.name);
}

TEST(KubeLeader, RevokedLeaderStepsDownAndTheOtherTakesOverAfterTheLease) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  const auto spec = short_spec();
  Candidate a(*api, "a", spec), b(*api, "b", spec);
  a.election->start();
  ASSERT_TRUE(run_until(ios({&a}), 10s, [&] { return a.leading(); }));
  b.election->start();
  run_until(ios({&a, &b}), 2 * kRetry, nullptr);
  ASSERT_TRUE(a.leading());
  ASSERT_FALSE(b.leading());

  // a can no longer renew (its token is refused: 401).
  api->set_token("a", "a-token-rotated");
  const auto revoked = Clock::now();
  Clock::time_point a_stepped_down{}, b_took_over{};
  run_until(ios({&a, &b}), kLease + 4s, [&] {
    EXPECT_FALSE(a.leading() && b.leading()) << "two leaders";
    if (a_stepped_down == Clock::time_point{} && !a.changes.empty() && !a.changes.back())
      a_stepped_down = Clock::now();
    if (b_took_over == Clock::time_point{} && b.leading()) b_took_over = Clock::now();
    return b_took_over != Clock::time_point{};
  });
  ASSERT_NE(a_stepped_down, Clock::time_point{}) << "a never called on_change(false)";
  ASSERT_NE(b_took_over, Clock::time_point{}) << "b never took over";
  // Within renew_deadline of a's last renewal (which came at most a retry period before).
  EXPECT_LE(a_stepped_down - revoked, kRenew + 200ms);
  // b waits out the lease from when it last saw it change, so not before a stepped down.
  EXPECT_GT(b_took_over, a_stepped_down);
  EXPECT_GE(b_took_over - revoked, kLease - kRetry - 100ms);
  EXPECT_LE(b_took_over - revoked, kLease + 3 * kRetry + 500ms);
  EXPECT_EQ(a.changes, (std::vector<bool>{true, false}));
  EXPECT_EQ(lease_field(*api, "holderIdentity"), b.name);
}

TEST(KubeLeader, ConflictingWriteIsNotLeadership) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  // A free Lease (no holder).
  api->apply(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"phigate-leader","namespace":"default"},"spec":{"leaseTransitions":4}})");
  // Answers are held back: between a's GET and its PUT, someone else takes the Lease.
  api->set_slow(1200);
  const auto spec = short_spec();
  Candidate a(*api, "a", spec);
  a.election->start();
  ASSERT_TRUE(run_until(ios({&a}), 5s, [&] { return count_requests(*api, "GET", "leases") >= 1; }));
  // The GET has read the free Lease and is waiting out the slow answer; now the intruder writes.
  std::this_thread::sleep_for(100ms);
  api->apply(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"phigate-leader","namespace":"default"},
    "spec":{"holderIdentity":"intruder","leaseDurationSeconds":3600,"leaseTransitions":5}})");
  api->set_slow(0);
  run_until(ios({&a}), 3s, [&] {
    EXPECT_FALSE(a.leading());
    return false;
  });
  EXPECT_GE(count_requests(*api, "PUT", "leases", 409), 1)
      << "a did not write with the stale resourceVersion";
  EXPECT_EQ(count_requests(*api, "PUT", "leases", 200), 0);
  EXPECT_TRUE(a.changes.empty());
  EXPECT_EQ(lease_field(*api, "holderIdentity"), "intruder");
}

// A broken or hostile API server: answers that are not a Lease never make a leader, and a leader
// whose renewals fail (500) steps down within renew_deadline and comes back when the server does.
TEST(KubeLeader, BrokenAnswersAreNeverLeadership) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"phigate-leader","namespace":"default"},"spec":{}})");
  api->misbehave("malformed", 1000);  // every 2xx body cut in half
  const auto spec = short_spec();
  Candidate a(*api, "a", spec);
  a.election->start();
  run_until(ios({&a}), 5 * kRetry, [&] {
    EXPECT_FALSE(a.leading());
    return false;
  });
  EXPECT_TRUE(a.changes.empty());
  EXPECT_EQ(count_requests(*api, "PUT", "leases"), 0) << "acted on a body that is not a Lease";
  EXPECT_GE(count_requests(*api, "GET", "leases"), 4);

  api->misbehave("malformed", 0);
  ASSERT_TRUE(run_until(ios({&a}), 5s, [&] { return a.leading(); }));

  // Every request now fails with 500: the leader steps down within renew_deadline ...
  api->misbehave("status-500", 100000);
  const auto failing = Clock::now();
  ASSERT_TRUE(run_until(ios({&a}), kRenew + 1s, [&] { return !a.leading(); }));
  // The safety bound is kLease (another candidate may take the Lease only after it): stepping down
  // by renew_deadline plus scheduling slack, well inside it, even on a loaded 2-core machine.
  static_assert(kRenew + 500ms < kLease);
  EXPECT_LE(Clock::now() - failing, kRenew + 500ms);
  EXPECT_EQ(a.changes, (std::vector<bool>{true, false}));
  // ... and leads again once the server answers (the Lease still names it).
  api->misbehave("status-500", 0);
  ASSERT_TRUE(run_until(ios({&a}), 5s, [&] { return a.leading(); }));
  EXPECT_EQ(a.changes, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(lease_field(*api, "holderIdentity"), a.name);
}

// --- status and Events

constexpr const char* kIngresses = R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: one, namespace: apps}
spec:
  ingressClassName: phigate
  rules: [{host: one.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: two, namespace: apps}
spec:
  ingressClassName: phigate
  rules: [{host: two.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: apps}
spec:
  ingressClassName: someone-else
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.99}]
)";

/// status.loadBalancer.ingress of an Ingress as "ip:X" / "hostname:Y" strings.
std::vector<std::string> lb_of(FakeApiServer& api, const std::string& name) {
  for (const auto& text : api.objects("Ingress", "apps")) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(text).get(doc)) continue;
    std::string_view n;
    if (doc["metadata"]["name"].get_string().get(n) || n != name) continue;
    std::vector<std::string> out;
    simdjson::dom::array items;
    if (doc["status"]["loadBalancer"]["ingress"].get_array().get(items)) return out;
    for (auto item : items) {
      std::string_view v;
      if (!item["ip"].get_string().get(v)) out.push_back("ip:" + std::string(v));
      if (!item["hostname"].get_string().get(v)) out.push_back("hostname:" + std::string(v));
    }
    return out;
  }
  return {"(no such Ingress)"};
}

kube::ServedIngress served(std::string name, std::vector<std::string> current = {},
                           std::vector<std::string> failed = {}) {
  return kube::ServedIngress{"apps", std::move(name), std::move(current), std::move(failed)};
}

TEST(KubeStatus, WritesOnlyWhileLeadingAndOnlyWhenItDiffers) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(kIngresses);
  Peer peer(*api, "a");
  auto spec = short_spec();
  spec.status = true;
  spec.publish_address = "10.0.0.7, lb.example.com";
  bool leading = false;
  kube::StatusWriter writer(peer.io, *peer.client, spec, [&] { return leading; });
  EXPECT_EQ(writer.addresses(), (std::vector<std::string>{"10.0.0.7", "lb.example.com"}));
  writer.start();
  writer.update({served("one"), served("two")});
  run_until({&peer.io}, 3 * kRetry, nullptr);
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status"), 0) << "wrote while not leading";

  leading = true;
  writer.update({served("one"), served("two")});
  const std::vector<std::string> want{"ip:10.0.0.7", "hostname:lb.example.com"};
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 2; }));
  EXPECT_EQ(lb_of(*api, "one"), want);
  EXPECT_EQ(lb_of(*api, "two"), want);
  EXPECT_EQ(lb_of(*api, "other"), std::vector<std::string>{"ip:192.0.2.99"});

  // The snapshot now shows what was written (in any order): equal, so nothing more is written,
  // through several ticks.
  writer.update(
      {served("one", {"lb.example.com", "10.0.0.7"}), served("two", {"10.0.0.7", "lb.example.com"})});
  run_until({&peer.io}, 4 * kRetry, nullptr);
  // Before the snapshot catches up with our own write, the stale `current` does not cause a repeat.
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status"), 2);
  EXPECT_EQ(writer.stats().status_failures, 0u);

  // Someone else overwrote one's status: it is put back.
  writer.update({served("one", {"198.51.100.1"}), served("two", {"10.0.0.7", "lb.example.com"})});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 3; }));
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status", 200), 3);
  for (const auto& r : api->requests()) {
    if (r.method == "PATCH") {
      EXPECT_EQ(r.user, "a");
    }
  }
}

TEST(KubeStatus, ClearsOnlyIngressesItSetAndNoLongerServes) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(kIngresses);
  Peer peer(*api, "a");
  auto spec = short_spec();
  spec.status = true;
  spec.publish_address = "10.0.0.7";
  kube::StatusWriter writer(peer.io, *peer.client, spec, [] { return true; });
  writer.start();
  writer.update({served("one"), served("two")});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 2; }));
  ASSERT_EQ(lb_of(*api, "two"), std::vector<std::string>{"ip:10.0.0.7"});

  // "two" is not served any more; "other" was never ours.
  writer.update({served("one", {"10.0.0.7"})});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 3; }));
  EXPECT_TRUE(lb_of(*api, "two").empty());
  EXPECT_EQ(lb_of(*api, "one"), std::vector<std::string>{"ip:10.0.0.7"});
  EXPECT_EQ(lb_of(*api, "other"), std::vector<std::string>{"ip:192.0.2.99"});
  run_until({&peer.io}, 3 * kRetry, nullptr);
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status"), 3) << "cleared more than once";
}

TEST(KubeStatus, FollowsThePublishServiceAddress) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(kIngresses);
  api->apply(R"(
apiVersion: v1
kind: Service
metadata: {name: phigate, namespace: ingress}
spec: {type: LoadBalancer, ports: [{port: 443}]}
status: {loadBalancer: {ingress: [{ip: 203.0.113.7}]}}
)");
  Peer peer(*api, "a");
  auto spec = short_spec();
  spec.status = true;
  spec.publish_service = "ingress/phigate";
  kube::StatusWriter writer(peer.io, *peer.client, spec, [] { return true; });
  writer.start();
  writer.update({served("one")});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 1; }));
  EXPECT_EQ(writer.addresses(), std::vector<std::string>{"203.0.113.7"});
  EXPECT_EQ(lb_of(*api, "one"), std::vector<std::string>{"ip:203.0.113.7"});

  // A Service answer that is not JSON changes nothing (the last good addresses stay).
  api->misbehave("malformed", 3);
  writer.update({served("one", {"203.0.113.7"})});
  run_until({&peer.io}, 4 * kRetry, nullptr);
  EXPECT_EQ(writer.addresses(), std::vector<std::string>{"203.0.113.7"});
  EXPECT_EQ(writer.stats().status_updates, 1u);
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status"), 1);
  api->misbehave("malformed", 0);

  // The load balancer moved to a host name: followed within a retry period or two.
  api->apply(R"(
apiVersion: v1
kind: Service
metadata: {name: phigate, namespace: ingress}
spec: {type: LoadBalancer, ports: [{port: 443}]}
status: {loadBalancer: {ingress: [{hostname: lb-2.example.net}]}}
)");
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().status_updates == 2; }));
  EXPECT_EQ(writer.addresses(), std::vector<std::string>{"lb-2.example.net"});
  EXPECT_EQ(lb_of(*api, "one"), std::vector<std::string>{"hostname:lb-2.example.net"});
}

struct EventView {
  std::string name, reason, type, message, involved_kind, involved_name, involved_api, instance, component;
};

std::vector<EventView> events_of(FakeApiServer& api) {
  std::vector<EventView> out;
  for (const auto& text : api.objects("Event", "apps")) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(text).get(doc)) continue;
    auto str = [](simdjson::simdjson_result<simdjson::dom::element> e) {
      std::string_view v;
      return e.get_string().get(v) ? std::string() : std::string(v);
    };
    out.push_back({str(doc["metadata"]["name"]), str(doc["reason"]), str(doc["type"]), str(doc["message"]),
                   str(doc["involvedObject"]["kind"]), str(doc["involvedObject"]["name"]),
                   str(doc["involvedObject"]["apiVersion"]), str(doc["reportingInstance"]),
                   str(doc["source"]["component"])});
  }
  return out;
}

TEST(KubeStatus, OneEventPerDistinctFailedClosedMessageAndNoneWhenNotLeading) {
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(kIngresses);
  Peer peer(*api, "a");
  auto spec = short_spec();
  spec.status = false;  // Events only
  spec.events = true;
  spec.identity = "phigate-test-0";
  bool leading = false;
  kube::StatusWriter writer(peer.io, *peer.client, spec, [&] { return leading; });
  writer.start();
  const std::vector<std::string> why{
      "annotation nginx.ingress.kubernetes.io/auth-url: not supported (fails closed)"};
  writer.update({served("one", {}, why), served("two")});
  run_until({&peer.io}, 3 * kRetry, nullptr);
  EXPECT_EQ(count_requests(*api, "POST", "events"), 0) << "an Event while not leading";
  EXPECT_EQ(count_requests(*api, "PATCH", "ingresses/status"), 0) << "status is off";

  leading = true;
  writer.update({served("one", {}, why), served("two")});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().events == 1; }));
  // The same message again (every publish, every tick): no second Event.
  writer.update({served("one", {}, why), served("two")});
  run_until({&peer.io}, 3 * kRetry, nullptr);
  auto evs = events_of(*api);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].reason, "FailedClosed");
  EXPECT_EQ(evs[0].type, "Warning");
  EXPECT_EQ(evs[0].message, why[0]);
  EXPECT_EQ(evs[0].involved_kind, "Ingress");
  EXPECT_EQ(evs[0].involved_api, "networking.k8s.io/v1");
  EXPECT_EQ(evs[0].involved_name, "one");
  EXPECT_EQ(evs[0].instance, "phigate-test-0");
  EXPECT_EQ(evs[0].component, "phigate");
  EXPECT_EQ(evs[0].name.rfind("one.", 0), 0u) << evs[0].name;

  // A different message is a new Event; so is the first one again after it changed. A long one is
  // cut to 1 KiB.
  const std::vector<std::string> longer{std::string(3000, 'x'), "second line"};
  writer.update({served("one", {}, longer), served("two")});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().events == 2; }));
  writer.update({served("one", {}, why), served("two")});
  ASSERT_TRUE(run_until({&peer.io}, 5s, [&] { return writer.stats().events == 3; }));
  run_until({&peer.io}, 2 * kRetry, nullptr);
  evs = events_of(*api);
  ASSERT_EQ(evs.size(), 3u);
  std::size_t longest = 0;
  for (const auto& e : evs) longest = std::max(longest, e.message.size());
  EXPECT_EQ(longest, 1024u);
  EXPECT_EQ(writer.stats().event_failures, 0u);

  // Leadership lost: a new message waits.
  leading = false;
  writer.update({served("one", {}, {"a third reason"})});
  run_until({&peer.io}, 3 * kRetry, nullptr);
  EXPECT_EQ(count_requests(*api, "POST", "events"), 3);
}

TEST(KubeStatus, FailedWritesAreCountedAndRetriedWithoutATightLoop) {
  TempDir dir;
  FakeApiOptions o = api_options();
  // "limited" may read Services but not write Ingress status.
  o.identities.push_back({"limited", "limited-token", {"get,list,watch networking.k8s.io/ingresses"}});
  auto api = FakeApiServer::start(dir, o);
  api->apply(kIngresses);
  Peer peer(*api, "limited");
  auto spec = short_spec();
  spec.status = true;
  spec.publish_address = "10.0.0.7";
  kube::StatusWriter writer(peer.io, *peer.client, spec, [] { return true; });
  writer.start();
  writer.update({served("one")});
  run_until({&peer.io}, 10 * kRetry, nullptr);
  // Once at update and once per tick: about 11 attempts, never hundreds. (Counted by the writer:
  // the test server does not log every refused request on a kept-alive connection.)
  const auto failures = writer.stats().status_failures;
  EXPECT_GE(failures, 5u);
  EXPECT_LE(failures, 14u);
  EXPECT_GE(count_requests(*api, "PATCH", "ingresses/status", 403), 1);
  EXPECT_LE(count_requests(*api, "PATCH", "ingresses/status"), 14);
  EXPECT_EQ(writer.stats().status_updates, 0u);
}

// --- two phigate processes against one API server

namespace two_processes {

constexpr const char* kObjects = R"(
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: phigate}
spec: {controller: phigate.io/ingress-controller}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: apps, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 9}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
)";

std::string ingress(const std::string& name) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: " + name +
         ", namespace: apps}\nspec:\n  ingressClassName: phigate\n  rules:\n  - host: " + name +
         ".example.com\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: "
         "{name: "
         "web, port: {number: 80}}}}\n";
}

}  // namespace two_processes

TEST(KubeLeader, TwoPhigateProcessesOnlyTheLeaderWritesAndSigtermHandsOver) {
  using namespace two_processes;
  TempDir dir;
  auto api = FakeApiServer::start(dir, api_options());
  api->apply(kObjects);
  api->apply(ingress("one"));
  const auto ca = make_ca(dir.path(), "phigate status test CA");
  const auto cert = make_leaf(dir.path(), ca, "default.example", {"default.example"});

  struct Pg {
    Process process;
    std::string user;
  };
  auto start = [&](const std::string& user) {
    const std::string yaml =
        "listeners:\n  https: [\"127.0.0.1:0\"]\n  admin: \"127.0.0.1:0\"\nworkers: 1\n"
        "tls:\n  default_certificate: { cert: " +
        cert.cert + ", key: " + cert.key +
        " }\n"
        "ingress:\n  source: kubernetes\n  debounce: 50ms\n"
        "  status: { publish_address: \"10.0.0.7\" }\n"
        "  leader_election: { lease_namespace: default, identity: pg-" +
        user +
        ", lease_duration: 3s, renew_deadline: 2s, retry_period: 300ms }\n"
        "  kubernetes:\n    request_timeout: 5s\n    kubeconfig: " +
        api->kubeconfig(user) + "\n";
    const auto path = dir.write("phigate-" + user + ".yaml", yaml);
    auto p = Process::start({bin("phigate"), "run", "--config", path});
    if (!p.wait_for_line("phigate ready", 20s))
      throw std::runtime_error("phigate did not start: " + p.output());
    return Pg{std::move(p), user};
  };
  Pg a = start("a");
  Pg b = start("b");

  // Bounded polling on the API server's own state (no sleeps): the Ingress gets its address.
  auto wait_for = [&](const std::function<bool()>& done, std::chrono::milliseconds total) {
    const auto until = Clock::now() + total;
    while (Clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return lb_of(*api, "one") == std::vector<std::string>{"ip:10.0.0.7"}; }, 20s))
      << a.process.output() << b.process.output();
  const auto holder = lease_field(*api, "holderIdentity");
  ASSERT_TRUE(holder == "pg-a" || holder == "pg-b") << holder;
  Pg& leader = holder == "pg-a" ? a : b;
  Pg& follower = holder == "pg-a" ? b : a;

  // Exactly one writes: every status PATCH and every successful Lease write is the leader's.
  auto writes_by = [&](const std::string& user) {
    int n = 0;
    for (const auto& r : api->requests()) {
      if (r.user != user) continue;
      if (r.method == "PATCH" && r.resource == "ingresses/status") ++n;
      if ((r.method == "PUT" || r.method == "POST") && r.resource == "leases" && r.status < 300) ++n;
    }
    return n;
  };
  api->apply(two_processes::ingress("two"));
  ASSERT_TRUE(wait_for([&] { return lb_of(*api, "two") == std::vector<std::string>{"ip:10.0.0.7"}; }, 10s));
  EXPECT_GE(writes_by(leader.user), 3);
  EXPECT_EQ(writes_by(follower.user), 0);

  // SIGTERM the leader: it releases the Lease, so the other takes it over well within the lease
  // duration (3 s; without the release it would wait for the lease to expire), and then writes the
  // status of an Ingress that appears now. The takeover is what is timed; the status write after it
  // goes through a watch, a reload and a PATCH, which a sanitizer build can make slow.
  ASSERT_TRUE(leader.process.send_signal(SIGTERM));
  ASSERT_TRUE(leader.process.wait_exit(15s).has_value()) << leader.process.output();
  const auto stopped = Clock::now();
  api->apply(two_processes::ingress("three"));
  ASSERT_TRUE(wait_for([&] { return lease_field(*api, "holderIdentity") == "pg-" + follower.user; }, 10s))
      << follower.process.output();
  // Three quarters of the lease: a takeover at expiry (the last renewal, at most a retry period
  // before the SIGTERM, plus 3 s) would come later.
  EXPECT_LT(Clock::now() - stopped, kLease * 3 / 4);
  ASSERT_TRUE(wait_for([&] { return lb_of(*api, "three") == std::vector<std::string>{"ip:10.0.0.7"}; }, 10s))
      << follower.process.output();
  EXPECT_EQ(lease_field(*api, "holderIdentity"), "pg-" + follower.user);
  int follower_patches = 0;
  for (const auto& r : api->requests()) {
    if (r.method == "PATCH" && r.resource == "ingresses/status" && r.name == "three") {
      EXPECT_EQ(r.user, follower.user);
      ++follower_patches;
    }
  }
  EXPECT_GE(follower_patches, 1);
}

}  // namespace
}  // namespace phigate::test
