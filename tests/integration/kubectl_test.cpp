// The test Kubernetes API server (tests/kube/fake_apiserver.py) against independent clients:
// kubectl v1.32 (discovery, get, apply, delete, watch, 401/403 handling) and curl (protocol
// details: LIST pagination, 410 Expired, BOOKMARKs, client certificates, cut streams).
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kube_fixture.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kKubectl = "/usr/bin/kubectl";

std::string ingress_yaml(const std::string& ns, const std::string& name, const std::string& host) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  ingressClassName: phigate\n  rules:\n  - host: " + host +
         "\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n"
         "          service:\n            name: web\n            port:\n              number: 80\n";
}

/// One parsed JSON document; `ok` false when the text is not JSON.
struct Json {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool ok = false;
  explicit Json(const std::string& text) {
    ok = parser.parse(simdjson::padded_string(text)).get(root) == simdjson::SUCCESS;
  }
  std::string str(const char* pointer) const {
    std::string_view v;
    if (!ok || root.at_pointer(pointer).get(v) != simdjson::SUCCESS) return "<absent>";
    return std::string(v);
  }
  std::int64_t num(const char* pointer) const {
    std::int64_t v = -1;
    if (!ok) return -1;
    if (root.at_pointer(pointer).get(v) != simdjson::SUCCESS) return -1;
    return v;
  }
  std::size_t count(const char* pointer) const {
    simdjson::dom::array a;
    if (!ok || root.at_pointer(pointer).get(a) != simdjson::SUCCESS) return 0;
    return a.size();
  }
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    auto end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::size_t occurrences(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + needle.size())) ++n;
  return n;
}

class KubeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeApiOptions options;
    options.identities = {
        {"admin", "admin-token", {}},
        {"reader", "reader-token", {"get,list,watch networking.k8s.io/ingresses default"}},
        // Authenticated but allowed nothing that matters: the RBAC-denied client.
        {"nobody", "nobody-token", {"get /configmaps nowhere"}},
        {"certuser", "", {"get,list,watch networking.k8s.io/ingresses"}},
        {"one-secret", "one-secret-token", {"get,list,watch /secrets default s1"}},
    };
    options.bookmark_interval_ms = 200;
    api_ = FakeApiServer::start(dir_, options);
  }

  /// curl against the API with the server CA and, unless `token` is empty, a bearer token.
  RunResult curl(std::vector<std::string> args, const std::string& token = "admin-token",
                 std::chrono::milliseconds timeout = 20s) {
    std::vector<std::string> argv{"curl",          "-sS",        "--cacert",
                                  api_->ca().cert, "--max-time", std::to_string(timeout.count() / 1000)};
    if (!token.empty()) {
      argv.push_back("-H");
      argv.push_back("Authorization: Bearer " + token);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.timeout = timeout + 5s;
    return run(argv, opts);
  }
  std::string api(const std::string& path) const { return api_->url() + path; }

  TempDir dir_;
  std::unique_ptr<FakeApiServer> api_;
};

class KubectlTest : public KubeApiTest {
 protected:
  void SetUp() override {
    if (access(kKubectl, X_OK) != 0)
      GTEST_SKIP() << kKubectl << " is not installed: no independent client to test with";
    KubeApiTest::SetUp();
  }
  std::vector<std::string> kubectl_argv(const std::string& kubeconfig, const std::vector<std::string>& args) {
    std::vector<std::string> argv{kKubectl,      "--kubeconfig",          kubeconfig,
                                  "--cache-dir", dir_.path("kube-cache"), "--request-timeout",
                                  "20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  RunResult kubectl(const std::string& kubeconfig, const std::vector<std::string>& args) {
    RunOptions opts;
    opts.timeout = 40s;
    opts.env = {{"HOME", dir_.path()}};  // kubectl writes ~/.kube/cache: keep it in the test's folder
    return run(kubectl_argv(kubeconfig, args), opts);
  }
};

class FakeApiTest : public KubeApiTest {};

// ---------------------------------------------------------------------------------------------
// kubectl

TEST_F(KubectlTest, GetIngressesAllNamespacesAsJson) {
  api_->apply(ingress_yaml("default", "one", "one.example") + "---\n" +
              ingress_yaml("default", "two", "two.example") + "---\n" +
              ingress_yaml("prod", "three", "three.example"));
  auto r = kubectl(api_->kubeconfig("admin"), {"get", "ingresses", "-A", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json list(r.out);
  ASSERT_TRUE(list.ok) << r.out;
  EXPECT_EQ(list.count("/items"), 3u);
  EXPECT_EQ(list.str("/items/0/metadata/name"), "one");
  EXPECT_EQ(list.str("/items/2/metadata/namespace"), "prod");
  EXPECT_EQ(list.str("/items/2/spec/rules/0/host"), "three.example");
  bool listed = false;
  for (const auto& req : api_->requests()) {
    if (req.verb == "list" && req.group == "networking.k8s.io" && req.resource == "ingresses" &&
        req.ns.empty()) {
      listed = req.user == "admin" && req.status == 200;
    }
  }
  EXPECT_TRUE(listed) << "kubectl's cluster-wide LIST of ingresses is not in the request log";
}

TEST_F(KubectlTest, ApplyCreatesThenUpdatesIngress) {
  // --validate=false: kubectl's client-side validation downloads the OpenAPI schema, which this
  // server does not serve (see tests/kube/README.md); apply itself needs only discovery.
  std::string file = dir_.write("ing.yaml", ingress_yaml("default", "shop", "shop.example"));
  auto r = kubectl(api_->kubeconfig(), {"apply", "--validate=false", "-f", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("created"), std::string::npos) << r.out;
  auto stored = api_->objects("Ingress", "default");
  ASSERT_EQ(stored.size(), 1u);
  Json first(stored[0]);
  EXPECT_EQ(first.str("/spec/rules/0/host"), "shop.example");
  EXPECT_EQ(first.num("/metadata/generation"), 1);

  dir_.write("ing.yaml", ingress_yaml("default", "shop", "store.example"));
  r = kubectl(api_->kubeconfig(), {"apply", "--validate=false", "-f", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("configured"), std::string::npos) << r.out;
  stored = api_->objects("Ingress", "default");
  ASSERT_EQ(stored.size(), 1u);
  Json second(stored[0]);
  EXPECT_EQ(second.str("/spec/rules/0/host"), "store.example");
  EXPECT_EQ(second.num("/metadata/generation"), 2);  // spec changed
  EXPECT_EQ(second.str("/metadata/uid"), first.str("/metadata/uid"));
  EXPECT_NE(second.str("/metadata/resourceVersion"), first.str("/metadata/resourceVersion"));
}

TEST_F(KubectlTest, DeleteIngress) {
  api_->apply(ingress_yaml("default", "gone", "gone.example") + "---\n" +
              ingress_yaml("default", "kept", "k.example"));
  auto r = kubectl(api_->kubeconfig(), {"delete", "ingress", "gone"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stored = api_->objects("Ingress", "default");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(Json(stored[0]).str("/metadata/name"), "kept");
  r = kubectl(api_->kubeconfig(), {"delete", "ingress", "gone"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ingresses.networking.k8s.io \"gone\" not found"), std::string::npos) << r.err;
}

TEST_F(KubectlTest, WatchSeesChangeMadeThroughControlPort) {
  api_->apply(ingress_yaml("default", "before", "before.example"));
  ProcessOptions opts;
  opts.env = {{"HOME", dir_.path()}};
  auto watcher = Process::start(
      kubectl_argv(api_->kubeconfig(), {"get", "ingress", "--watch", "-o", "json", "--output-watch-events"}),
      opts);
  ASSERT_TRUE(watcher.wait_for_line("\"before\"", 20s)) << watcher.output();
  // The watch is open once the server counts it; then a change through the control port must arrive.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (api_->open_watches() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_GE(api_->open_watches(), 1);
  auto offset = watcher.output().size();
  api_->apply(ingress_yaml("default", "after", "after.example"));
  ASSERT_TRUE(watcher.wait_for_line("\"after\"", 20s, offset)) << watcher.output();
  EXPECT_NE(watcher.output().find("\"ADDED\""), std::string::npos) << watcher.output();
  offset = watcher.output().size();
  api_->remove("Ingress", "default", "after");
  ASSERT_TRUE(watcher.wait_for_line("\"DELETED\"", 20s, offset)) << watcher.output();
  watcher.terminate(2s);  // by PID
}

TEST_F(KubectlTest, RotatedTokenIsUnauthorized) {
  std::string old_config = api_->kubeconfig("admin");
  ASSERT_EQ(kubectl(old_config, {"get", "ingresses"}).exit_code, 0);
  api_->set_token("admin", "rotated-token");
  auto r = kubectl(old_config, {"get", "ingresses"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Unauthorized"), std::string::npos) << r.err;
  auto fresh = kubectl(api_->kubeconfig("admin"), {"get", "ingresses"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
  bool saw_401 = false;
  for (const auto& req : api_->requests()) saw_401 = saw_401 || (req.status == 401 && req.user.empty());
  EXPECT_TRUE(saw_401);
}

TEST_F(KubectlTest, IdentityWithoutRulesGetsForbiddenMessage) {
  auto r = kubectl(api_->kubeconfig("nobody"), {"get", "secrets", "-n", "default"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(
                "secrets is forbidden: User \"nobody\" cannot list resource \"secrets\" in API group \"\" in "
                "the namespace \"default\""),
            std::string::npos)
      << r.err;
  // The reader may read ingresses in "default" only, and may not write them.
  EXPECT_EQ(kubectl(api_->kubeconfig("reader"), {"get", "ingresses", "-n", "default"}).exit_code, 0);
  r = kubectl(api_->kubeconfig("reader"), {"get", "ingresses", "-A"});
  EXPECT_NE(
      r.err.find(
          "ingresses.networking.k8s.io is forbidden: User \"reader\" cannot list resource \"ingresses\" "
          "in API group \"networking.k8s.io\" at the cluster scope"),
      std::string::npos)
      << r.err;
  std::string file = dir_.write("ing.yaml", ingress_yaml("default", "nope", "nope.example"));
  r = kubectl(api_->kubeconfig("reader"), {"apply", "--validate=false", "-f", file});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(
      r.err.find("cannot create resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace "
                 "\"default\""),
      std::string::npos)
      << r.err;
  EXPECT_TRUE(api_->objects("Ingress").empty());
}

TEST_F(KubectlTest, ClientCertificateIdentity) {
  api_->apply(ingress_yaml("default", "one", "one.example"));
  auto r = kubectl(api_->kubeconfig("certuser"), {"get", "ingresses", "-A", "-o", "name"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ingress.networking.k8s.io/one\n");
  r = kubectl(api_->kubeconfig("certuser"), {"get", "secrets"});
  EXPECT_NE(r.err.find("User \"certuser\" cannot list resource \"secrets\""), std::string::npos) << r.err;
}

TEST_F(KubectlTest, AuthCanIAnswersFromRules) {
  // kubectl sends the SelfSubjectAccessReview in protobuf; the server reads the few fields it needs.
  auto can = [&](const std::string& identity, std::vector<std::string> args) {
    args.insert(args.begin(), {"auth", "can-i"});
    auto r = kubectl(api_->kubeconfig(identity), args);
    return r.out.substr(0, r.out.find_first_of(" \n"));
  };
  EXPECT_EQ(can("reader", {"list", "ingresses", "-n", "default"}), "yes");
  EXPECT_EQ(can("reader", {"watch", "ingresses", "-n", "default"}), "yes");
  EXPECT_EQ(can("reader", {"list", "ingresses", "-n", "prod"}), "no");
  EXPECT_EQ(can("reader", {"create", "ingresses", "-n", "default"}), "no");
  EXPECT_EQ(can("reader", {"update", "ingresses", "--subresource=status", "-n", "default"}), "no");
  EXPECT_EQ(can("one-secret", {"get", "secrets/s1", "-n", "default"}), "yes");
  EXPECT_EQ(can("one-secret", {"get", "secrets/s2", "-n", "default"}), "no");
  EXPECT_EQ(can("admin", {"delete", "leases.coordination.k8s.io", "-n", "kube-system"}), "yes");
}

// ---------------------------------------------------------------------------------------------
// curl: protocol details

TEST_F(FakeApiTest, ListPaginatesOverOneSnapshot) {
  std::string objects;
  for (int i = 1; i <= 5; ++i) {
    objects += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm" + std::to_string(i) +
               "\n  namespace: default\ndata:\n  k: v\n";
  }
  std::string rv = api_->apply(objects);
  auto page1 = curl({api("/api/v1/namespaces/default/configmaps?limit=2")});
  ASSERT_EQ(page1.exit_code, 0) << page1.err;
  Json p1(page1.out);
  ASSERT_TRUE(p1.ok) << page1.out;
  EXPECT_EQ(p1.str("/kind"), "ConfigMapList");
  EXPECT_EQ(p1.str("/metadata/resourceVersion"), rv);
  EXPECT_EQ(p1.count("/items"), 2u);
  EXPECT_EQ(p1.num("/metadata/remainingItemCount"), 3);
  std::string token = p1.str("/metadata/continue");
  ASSERT_NE(token, "<absent>");

  // A write between pages must not show: the pages come from the first page's snapshot.
  api_->apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm0, namespace: default}\n");
  auto page2 = curl({api("/api/v1/namespaces/default/configmaps?limit=2&continue=" + token)});
  Json p2(page2.out);
  EXPECT_EQ(p2.str("/metadata/resourceVersion"), rv);
  EXPECT_EQ(p2.str("/items/0/metadata/name"), "cm3");
  EXPECT_EQ(p2.str("/items/1/metadata/name"), "cm4");
  auto page3 =
      curl({api("/api/v1/namespaces/default/configmaps?limit=2&continue=" + p2.str("/metadata/continue"))});
  Json p3(page3.out);
  EXPECT_EQ(p3.str("/metadata/resourceVersion"), rv);
  EXPECT_EQ(p3.count("/items"), 1u);
  EXPECT_EQ(p3.str("/items/0/metadata/name"), "cm5");
  EXPECT_EQ(p3.str("/metadata/continue"), "<absent>");
  // The next full LIST sees the write.
  Json all(curl({api("/api/v1/namespaces/default/configmaps")}).out);
  EXPECT_EQ(all.count("/items"), 6u);
}

TEST_F(FakeApiTest, CompactionExpiresWatchAndContinueToken) {
  for (int i = 1; i <= 3; ++i) {
    api_->apply("apiVersion: v1\nkind: Secret\nmetadata: {name: s" + std::to_string(i) +
                ", namespace: default}\n");
  }
  Json page(curl({api("/api/v1/secrets?limit=1")}).out);
  std::string old_rv = page.str("/metadata/resourceVersion");
  std::string token = page.str("/metadata/continue");
  ASSERT_NE(token, "<absent>");
  api_->compact();

  // A watch from a compacted resourceVersion: 200, then one ERROR event with a 410 Status, then the
  // stream ends cleanly (curl exits 0).
  auto w = curl({"-N", api("/api/v1/secrets?watch=1&resourceVersion=" + old_rv)}, "admin-token", 10s);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  auto events = lines_of(w.out);
  ASSERT_EQ(events.size(), 1u) << w.out;
  Json ev(events[0]);
  EXPECT_EQ(ev.str("/type"), "ERROR");
  EXPECT_EQ(ev.str("/object/kind"), "Status");
  EXPECT_EQ(ev.num("/object/code"), 410);
  EXPECT_EQ(ev.str("/object/reason"), "Expired");

  auto cont = curl({"-w", "\n%{http_code}", api("/api/v1/secrets?limit=1&continue=" + token)});
  EXPECT_NE(cont.out.find("\n410"), std::string::npos) << cont.out;
  Json status(cont.out.substr(0, cont.out.rfind('\n')));
  EXPECT_EQ(status.str("/reason"), "Expired");
  EXPECT_EQ(status.num("/code"), 410);

  // A fresh LIST gives a resourceVersion that can be watched from again.
  Json fresh(curl({api("/api/v1/secrets")}).out);
  EXPECT_EQ(fresh.count("/items"), 3u);
  auto again = curl({"-N", api("/api/v1/secrets?watch=1&timeoutSeconds=1&resourceVersion=" +
                               fresh.str("/metadata/resourceVersion"))},
                    "admin-token", 10s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out.find("ERROR"), std::string::npos) << again.out;
}

TEST_F(FakeApiTest, WatchSendsBookmarksWhenAllowed) {
  std::string rv = api_->apply("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n");
  auto w = curl(
      {"-N", api("/api/v1/namespaces/default/services?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&"
                 "resourceVersion=" +
                 rv)},
      "admin-token", 10s);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  auto events = lines_of(w.out);
  ASSERT_GE(events.size(), 2u) << w.out;  // every 200 ms for one second
  for (const auto& line : events) {
    Json ev(line);
    EXPECT_EQ(ev.str("/type"), "BOOKMARK") << line;
    EXPECT_EQ(ev.str("/object/kind"), "Service");
    EXPECT_EQ(ev.str("/object/metadata/resourceVersion"), rv);
    EXPECT_EQ(ev.str("/object/metadata/name"), "<absent>");  // a bookmark carries only the version
  }
  // Without allowWatchBookmarks there are none.
  auto plain = curl(
      {"-N", api("/api/v1/namespaces/default/services?watch=true&timeoutSeconds=1&resourceVersion=" + rv)},
      "admin-token", 10s);
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "");
}

TEST_F(FakeApiTest, WatchReplaysThenFollowsInOrder) {
  std::string rv = api_->apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc\n  namespace: "
      "default\n"
      "  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\nendpoints:\n- addresses: "
      "[10.0.0.1]\n");
  std::string path =
      "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?watch=1&labelSelector=kubernetes.io%"
      "2Fservice-name%3Dweb&resourceVersion=" +
      rv;
  auto watcher = Process::start({"curl", "-sS", "-N", "--cacert", api_->ca().cert, "--max-time", "30", "-H",
                                 "Authorization: Bearer admin-token", api(path)});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (api_->open_watches() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(api_->open_watches(), 1);
  constexpr int kEvents = 300;
  api_->storm("default", "web-abc", kEvents);
  deadline = std::chrono::steady_clock::now() + 20s;
  while (occurrences(watcher.output(), "\n") < kEvents && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  watcher.terminate(2s);
  auto events = lines_of(watcher.output());
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents)) << watcher.output().substr(0, 2000);
  long previous = std::stol(rv);
  for (const auto& line : events) {
    Json ev(line);
    ASSERT_EQ(ev.str("/type"), "MODIFIED") << line;
    long current = std::stol(ev.str("/object/metadata/resourceVersion"));
    ASSERT_EQ(current, previous + 1) << "lost or reordered event: " << line;
    previous = current;
  }
}

TEST_F(FakeApiTest, CutEndsWatchWithoutFinalChunk) {
  auto watcher = Process::start({"curl", "-sS", "-N", "--cacert", api_->ca().cert, "--max-time", "30", "-H",
                                 "Authorization: Bearer admin-token", api("/api/v1/configmaps?watch=1")});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (api_->open_watches() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(api_->open_watches(), 1);
  api_->cut_watches();
  auto code = watcher.wait_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0) << "curl saw a complete response: " << watcher.output();  // 18 or 56: cut mid-body
  EXPECT_EQ(api_->open_watches(), 0);
}

TEST_F(FakeApiTest, ClientCertificateAuthenticatesAndUnknownCertificateIsRefused) {
  api_->apply(ingress_yaml("default", "one", "one.example"));
  CertPaths good =
      make_leaf(dir_.path(), api_->client_ca(), "certuser", {}, KeyType::EcdsaP256, /*client=*/true);
  auto r = curl({"--cert", good.cert, "--key", good.key, "-w", "\n%{http_code}",
                 api("/apis/networking.k8s.io/v1/ingresses")},
                "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\n200"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"one\""), std::string::npos);

  CertPaths rogue_ca = make_ca(dir_.path(), "rogue-ca");
  CertPaths rogue = make_leaf(dir_.path(), rogue_ca, "admin", {}, KeyType::EcdsaP256, /*client=*/true);
  r = curl({"--cert", rogue.cert, "--key", rogue.key, api("/apis/networking.k8s.io/v1/ingresses")}, "");
  EXPECT_NE(r.exit_code, 0) << "a certificate from an unknown CA was accepted: " << r.out;

  // A trusted certificate for a user without rules authenticates but is forbidden.
  CertPaths stranger = make_leaf(dir_.path(), api_->client_ca(), "stranger", {}, KeyType::EcdsaP256, true);
  r = curl({"--cert", stranger.cert, "--key", stranger.key, api("/apis/networking.k8s.io/v1/ingresses")}, "");
  EXPECT_EQ(Json(r.out).num("/code"), 403) << r.out;

  // No credentials at all: 401 Status.
  r = curl({api("/apis/networking.k8s.io/v1/ingresses")}, "");
  Json unauth(r.out);
  EXPECT_EQ(unauth.num("/code"), 401) << r.out;
  EXPECT_EQ(unauth.str("/reason"), "Unauthorized");

  std::vector<std::string> users;
  for (const auto& req : api_->requests()) {
    if (req.path.find("/ingresses") != std::string::npos)
      users.push_back(req.user + ":" + std::to_string(req.status));
  }
  EXPECT_EQ(users, (std::vector<std::string>{"certuser:200", "stranger:403", ":401"}));
}

TEST_F(FakeApiTest, WritesFollowApiSemantics) {
  const std::string base = api("/apis/networking.k8s.io/v1/namespaces/default/ingresses");
  const std::string body =
      "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":\"w\"},"
      "\"spec\":{\"rules\":[{\"host\":\"w.example\"}]},\"status\":{\"loadBalancer\":{\"ingress\":[{"
      "\"ip\":\"6.6.6.6\"}]}}}";
  auto created = curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, base});
  Json c(created.out);
  EXPECT_EQ(c.str("/metadata/namespace"), "default");  // defaulted from the URL
  EXPECT_EQ(c.num("/metadata/generation"), 1);
  EXPECT_NE(c.str("/metadata/uid"), "<absent>");
  EXPECT_EQ(c.str("/status/loadBalancer/ingress/0/ip"), "<absent>");  // status only through /status
  Json again(curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, base}).out);
  EXPECT_EQ(again.num("/code"), 409);
  EXPECT_EQ(again.str("/reason"), "AlreadyExists");

  // The status subresource changes status only.
  auto st =
      curl({"-X", "PATCH", "-H", "Content-Type: application/merge-patch+json", "--data-binary",
            "{\"spec\":{\"rules\":[]},\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"127.0.0.1\"}]}}}",
            base + "/w/status"});
  Json s(st.out);
  EXPECT_EQ(s.str("/status/loadBalancer/ingress/0/ip"), "127.0.0.1") << st.out;
  EXPECT_EQ(s.str("/spec/rules/0/host"), "w.example");
  // ... and the main resource ignores status.
  Json m(curl({"-X", "PATCH", "-H", "Content-Type: application/merge-patch+json", "--data-binary",
               "{\"status\":null,\"spec\":{\"rules\":[{\"host\":\"v.example\"}]}}", base + "/w"})
             .out);
  EXPECT_EQ(m.str("/status/loadBalancer/ingress/0/ip"), "127.0.0.1");
  EXPECT_EQ(m.str("/spec/rules/0/host"), "v.example");
  EXPECT_EQ(m.num("/metadata/generation"), 2);

  // PUT with a stale resourceVersion: 409 Conflict in the real server's words.
  Json stale(curl({"-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                   "{\"metadata\":{\"name\":\"w\",\"resourceVersion\":\"" +
                       c.str("/metadata/resourceVersion") + "\"},\"spec\":{}}",
                   base + "/w"})
                 .out);
  EXPECT_EQ(stale.num("/code"), 409);
  EXPECT_EQ(stale.str("/reason"), "Conflict");
  EXPECT_EQ(stale.str("/message"),
            "Operation cannot be fulfilled on ingresses.networking.k8s.io \"w\": the object has "
            "been modified; please apply your changes to the latest version and try again");

  Json missing(curl({base + "/nope"}).out);
  EXPECT_EQ(missing.num("/code"), 404);
  EXPECT_EQ(missing.str("/message"), "ingresses.networking.k8s.io \"nope\" not found");

  Json deleted(curl({"-X", "DELETE", base + "/w"}).out);
  EXPECT_EQ(deleted.str("/metadata/name"), "w");
  EXPECT_TRUE(api_->objects("Ingress").empty());
}

TEST_F(FakeApiTest, ResourceNamesRestrictGetAndNamedList) {
  api_->apply(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s1, namespace: default}\n---\n"
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s2, namespace: default}\n");
  const std::string base = api("/api/v1/namespaces/default/secrets");
  const std::string token = "one-secret-token";
  EXPECT_EQ(Json(curl({base + "/s1"}, token).out).str("/metadata/name"), "s1");
  Json denied(curl({base + "/s2"}, token).out);
  EXPECT_EQ(denied.num("/code"), 403);
  EXPECT_EQ(denied.str("/message"),
            "secrets \"s2\" is forbidden: User \"one-secret\" cannot get resource \"secrets\" in "
            "API group \"\" in the namespace \"default\"");
  Json named(curl({base + "?fieldSelector=metadata.name%3Ds1"}, token).out);
  EXPECT_EQ(named.count("/items"), 1u);
  EXPECT_EQ(Json(curl({base}, token).out).num("/code"), 403);
}

TEST_F(FakeApiTest, SelectorsFilterListAndWatch) {
  api_->apply(
      "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default, labels: {tier: web}}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: default, labels: {tier: db}}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: other}\n");
  auto names = [&](const std::string& query) {
    Json list(curl({api("/api/v1/services?" + query)}).out);
    std::string out;
    for (std::size_t i = 0; i < list.count("/items"); ++i) {
      std::string p = "/items/" + std::to_string(i) + "/metadata/name";
      out += list.str(p.c_str()) + " ";
    }
    return out;
  };
  EXPECT_EQ(names("labelSelector=tier%3Dweb"), "a ");
  EXPECT_EQ(names("labelSelector=tier!%3Dweb"), "b c ");
  EXPECT_EQ(names("labelSelector=tier%20in%20(web,db)"), "a b ");
  EXPECT_EQ(names("labelSelector=tier%20notin%20(web)"), "b c ");
  EXPECT_EQ(names("labelSelector=tier"), "a b ");
  EXPECT_EQ(names("labelSelector=!tier"), "c ");
  EXPECT_EQ(names("fieldSelector=metadata.namespace%3Dother"), "c ");
  EXPECT_EQ(names("fieldSelector=metadata.name!%3Da"), "b c ");
  EXPECT_EQ(Json(curl({api("/api/v1/services?fieldSelector=spec.type%3DNodePort")}).out).num("/code"), 400);
}

TEST_F(FakeApiTest, ServiceAccountFolderAuthenticates) {
  std::string folder = api_->service_account_dir("reader", "apps");
  EXPECT_EQ(read_file(folder + "/namespace"), "apps");
  std::string token = read_file(folder + "/token");
  EXPECT_EQ(token, "reader-token");
  // The folder's ca.crt alone verifies the server (as in a pod).
  auto r = run({"curl", "-sS", "--max-time", "10", "--cacert", folder + "/ca.crt", "-H",
                "Authorization: Bearer " + token, "-w", "\n%{http_code}",
                api("/apis/networking.k8s.io/v1/namespaces/default/ingresses")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\n200"), std::string::npos) << r.out;
  EXPECT_THROW(api_->service_account_dir("certuser"), std::invalid_argument);  // no token to put there
}

TEST_F(FakeApiTest, MaxWatchSecondsEndsEveryWatch) {
  TempDir other;
  FakeApiOptions options;
  options.max_watch_seconds = 1;
  auto short_api = FakeApiServer::start(other, options);
  auto started = std::chrono::steady_clock::now();
  auto r = run({"curl", "-sS", "-N", "--max-time", "20", "--cacert", short_api->ca().cert, "-H",
                "Authorization: Bearer admin-token",
                short_api->url() + "/api/v1/configmaps?watch=1&timeoutSeconds=600"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.exit_code, 0) << r.err;  // ended with the final chunk, not cut
  EXPECT_LT(took, 10s);
  EXPECT_GE(took, 900ms);
}

TEST_F(FakeApiTest, HistoryIsBoundedAndOldVersionsExpire) {
  TempDir other;
  FakeApiOptions options;
  options.max_history = 100;
  auto small = FakeApiServer::start(other, options);
  std::string first = small->apply(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web, namespace: default}\n"
      "addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n");
  small->storm("default", "web", 300);
  auto watch_from = [&](const std::string& rv) {
    return run(
        {"curl", "-sS", "-N", "--max-time", "20", "--cacert", small->ca().cert, "-H",
         "Authorization: Bearer admin-token",
         small->url() +
             "/apis/discovery.k8s.io/v1/endpointslices?watch=1&timeoutSeconds=1&resourceVersion=" + rv});
  };
  auto expired = lines_of(watch_from(first).out);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(Json(expired[0]).num("/object/code"), 410);
  // The last 100 events are still there to replay.
  auto recent = lines_of(watch_from(std::to_string(std::stol(first) + 300 - 50)).out);
  ASSERT_EQ(recent.size(), 50u);
  EXPECT_EQ(Json(recent.back()).str("/type"), "MODIFIED");
}

TEST_F(FakeApiTest, WatchWithInitialEventsEndsThemWithAnnotatedBookmark) {
  std::string rv = api_->apply(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n---\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: default}\n");
  auto w = curl({"-N", api("/api/v1/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&"
                           "resourceVersionMatch=NotOlderThan&timeoutSeconds=1")},
                "admin-token", 10s);
  auto events = lines_of(w.out);
  ASSERT_GE(events.size(), 3u) << w.out;
  EXPECT_EQ(Json(events[0]).str("/type"), "ADDED");
  EXPECT_EQ(Json(events[1]).str("/type"), "ADDED");
  Json end(events[2]);
  EXPECT_EQ(end.str("/type"), "BOOKMARK");
  EXPECT_EQ(end.str("/object/metadata/resourceVersion"), rv);
  EXPECT_EQ(end.str("/object/metadata/annotations/k8s.io~1initial-events-end"), "true");
  Json refused(curl({api("/api/v1/configmaps?watch=1&sendInitialEvents=true")}).out);
  EXPECT_EQ(refused.num("/code"), 422);
}

TEST_F(FakeApiTest, InjectedMisbehaviour) {
  const std::string path = api("/api/v1/namespaces/default/secrets");
  api_->misbehave("malformed");
  auto cut = curl({path});
  EXPECT_FALSE(Json(cut.out).ok) << cut.out;
  EXPECT_TRUE(Json(curl({path}).out).ok) << "the misbehaviour is for one response only";

  api_->misbehave("huge", 1, 2u << 20);
  auto huge = curl({path});
  EXPECT_GT(huge.out.size(), 2u << 20);
  EXPECT_EQ(Json(huge.out).str("/kind"), "SecretList");

  api_->misbehave("status-500", 2);
  EXPECT_EQ(Json(curl({path}).out).num("/code"), 500);
  EXPECT_EQ(Json(curl({path}).out).num("/code"), 500);
  EXPECT_EQ(Json(curl({path}).out).str("/kind"), "SecretList");

  std::string rv = api_->apply("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n");
  api_->misbehave("watch-garbage");
  auto w = curl({"-N", path + "?watch=1&timeoutSeconds=1"}, "admin-token", 10s);
  auto events = lines_of(w.out);
  ASSERT_EQ(events.size(), 1u) << w.out;
  EXPECT_FALSE(Json(events[0]).ok) << events[0];
}

TEST_F(FakeApiTest, SlowDelaysResponses) {
  api_->set_slow(400);
  auto started = std::chrono::steady_clock::now();
  auto r = curl({api("/api/v1/namespaces/default/secrets")});
  EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
  EXPECT_EQ(Json(r.out).str("/kind"), "SecretList");
  api_->set_slow(0);
}

}  // namespace
}  // namespace phigate::test
