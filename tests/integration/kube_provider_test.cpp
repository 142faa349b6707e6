// The Provider (reflectors + store) in-process against the test API server on loopback
// (tests/kube/fake_apiserver.py), and against a small hostile HTTPS server (Python, written here)
// that sends malformed watch lines and objects of the wrong shape.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kube_fixture.hpp"
#include "phigate/kube/credentials.hpp"
#include "phigate/kube/provider.hpp"
#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace phigate::kube {
namespace {

using namespace std::chrono_literals;
using test::FakeApiOptions;
using test::FakeApiServer;
using test::TempDir;

/// Runs `io` until `pred` holds or `timeout` passes; true when it held.
template <class Pred>
bool run_until(net::asio::io_context& io, Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

const std::string kSeed = R"(
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: phigate}
spec: {controller: phigate.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: phigate
  tls: [{hosts: [web.example], secretName: tls-web}]
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, namespace: shop}
spec:
  ingressClassName: nginx
  tls: [{secretName: their-tls}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: v1
kind: Secret
metadata: {name: tls-web, namespace: shop}
type: kubernetes.io/tls
stringData: {tls.crt: CERT-1, tls.key: KEY-1}
---
apiVersion: v1
kind: Secret
metadata: {name: db-password, namespace: shop, labels: {phigate.io/tls: "true"}}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Secret
metadata: {name: their-tls, namespace: shop}
stringData: {tls.crt: X}
)";

template <class T>
std::vector<std::string> keys(const std::vector<T>& v) {
  std::vector<std::string> out;
  for (const auto& o : v) out.push_back(o.meta.key());
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& k) {
  return std::find(v.begin(), v.end(), k) != v.end();
}

class KubeProviderTest : public ::testing::Test {
 protected:
  void start_api(FakeApiOptions options = {}) {
    options.identities.push_back({"phigate", "token-one", {}});
    api_ = FakeApiServer::start(dir_, options);
    api_->apply(kSeed);
  }

  Credentials creds(const std::string& identity = "phigate") {
    sa_dir_ = api_->service_account_dir(identity, "phigate-system");
    const auto port = std::to_string(api_->port());
    const Getenv env = [port](const std::string& name) -> std::optional<std::string> {
      if (name == "KUBERNETES_SERVICE_HOST") return "127.0.0.1";
      if (name == "KUBERNETES_SERVICE_PORT") return port;
      return std::nullopt;
    };
    CredentialsError err;
    auto c = in_cluster(env, err, sa_dir_);
    EXPECT_TRUE(c) << err.message;
    return c.value_or(Credentials{});
  }

  void start_provider(const std::string& identity = "phigate") {
    spec_.source = config::IngressSource::Kubernetes;
    spec_.kubernetes.backoff_initial = 50ms;
    spec_.kubernetes.backoff_max = 400ms;
    provider_ = std::make_unique<Provider>(io_, spec_, creds(identity), [this] { ++changes_; });
    provider_->start();
  }

  bool wait_synced() {
    return run_until(
        io_, [&] { return provider_->synced(); }, 20s);
  }

  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout = 15s) {
    return run_until(
        io_, [&] { return pred(provider_->resources()); }, timeout);
  }

  /// Every watch is open on the server's side (synced() holds once the WATCH requests are sent,
  /// not once the server took them): a cut now reaches all of them.
  bool all_watches_open() {
    const auto n = static_cast<int>(provider_->stats().reflectors);
    return run_until(
        io_, [&] { return api_->open_watches() >= n; }, 10s);
  }

  std::vector<test::ApiRequest> requests_of(const std::string& resource) {
    std::vector<test::ApiRequest> out;
    for (auto& r : api_->requests()) {
      if (r.resource == resource) out.push_back(std::move(r));
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<FakeApiServer> api_;
  std::string sa_dir_;
  net::asio::io_context io_;
  config::IngressSpec spec_;
  std::unique_ptr<Provider> provider_;
  int changes_ = 0;
};

TEST_F(KubeProviderTest, InitialSyncMatchesTheSeededObjects) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  const auto r = provider_->resources();
  EXPECT_FALSE(r.diagnostics.has_errors()) << r.diagnostics.to_string();
  EXPECT_EQ(keys(r.resources.ingresses), (std::vector<std::string>{"shop/theirs", "shop/web"}));
  ASSERT_EQ(r.resources.ingress_classes.size(), 1u);
  EXPECT_EQ(r.resources.ingress_classes[0].controller, "phigate.io/ingress-controller");
  EXPECT_EQ(keys(r.resources.services), (std::vector<std::string>{"shop/web"}));
  ASSERT_EQ(r.resources.endpoint_slices.size(), 1u);
  EXPECT_EQ(r.resources.endpoint_slices[0].endpoints[0].addresses, (std::vector<std::string>{"10.0.0.1"}));
  // Only the Secret our Ingress references: not db-password, not another controller's.
  ASSERT_EQ(keys(r.resources.secrets), (std::vector<std::string>{"shop/tls-web"}));
  EXPECT_EQ(r.resources.secrets[0].data.at("tls.crt"), "CERT-1");
  EXPECT_EQ(r.resources.ingresses[1].origin.file, "kubernetes:Ingress shop/web");
  EXPECT_GE(changes_, 1);
  const auto st = provider_->stats();
  EXPECT_EQ(st.reflectors, 5u);  // IngressClass, Ingress, Service, EndpointSlice, Secret shop/tls-web
  EXPECT_EQ(st.secrets_followed, 1u);
  EXPECT_GE(st.lists, 5u);

  // Every LIST asked for a page size; no Secret was ever listed or watched but by name.
  for (const auto& q : api_->requests()) {
    if (q.verb == "list") {
      EXPECT_NE(q.path.find("limit=500"), std::string::npos) << q.path;
    }
    if (q.resource == "secrets") {
      EXPECT_NE(q.path.find("fieldSelector=metadata.name%3Dtls-web"), std::string::npos) << q.path;
    }
    if (q.verb == "watch") {
      EXPECT_NE(q.path.find("allowWatchBookmarks=true"), std::string::npos) << q.path;
      EXPECT_NE(q.path.find("timeoutSeconds="), std::string::npos) << q.path;
    }
  }
}

TEST_F(KubeProviderTest, EveryEventOfEveryKindReachesResources) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());

  // ADDED (Ingress, Service, EndpointSlice, IngressClass).
  api_->apply(
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"api","namespace":"shop"},
    "spec":{"ingressClassName":"phigate","rules":[{"host":"api.example"}]}})");
  api_->apply(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"api","namespace":"shop"},
    "spec":{"ports":[{"port":81}]}})");
  api_->apply(
      R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"api-1","namespace":"shop",
    "labels":{"kubernetes.io/service-name":"api"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.9"]}]})");
  api_->apply(R"({"apiVersion":"networking.k8s.io/v1","kind":"IngressClass","metadata":{"name":"other"},
    "spec":{"controller":"example.com/other"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    return has(keys(r.resources.ingresses), "shop/api") && has(keys(r.resources.services), "shop/api") &&
           has(keys(r.resources.endpoint_slices), "shop/api-1") && r.resources.ingress_classes.size() == 2;
  }));

  // MODIFIED (each kind, the Secret included).
  api_->apply(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"tls-web","namespace":"shop"},
    "stringData":{"tls.crt":"CERT-2","tls.key":"KEY-2"}})");
  api_->apply(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},
    "spec":{"ports":[{"name":"http","port":80,"targetPort":9090}]}})");
  api_->apply(
      R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-1","namespace":"shop",
    "labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.2"]}]})");
  api_->apply(
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"api","namespace":"shop"},
    "spec":{"ingressClassName":"phigate","rules":[{"host":"api2.example"}]}})");
  api_->apply(R"({"apiVersion":"networking.k8s.io/v1","kind":"IngressClass","metadata":{"name":"other"},
    "spec":{"controller":"example.com/changed"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    const auto& res = r.resources;
    bool ok = res.secrets.size() == 1 && res.secrets[0].data.count("tls.crt") == 1 &&
              res.secrets[0].data.at("tls.crt") == "CERT-2";
    for (const auto& s : res.services) ok = ok && (s.meta.name != "web" || s.ports[0].target_port == "9090");
    for (const auto& s : res.endpoint_slices) {
      ok = ok && (s.meta.name != "web-1" || s.endpoints[0].addresses[0] == "10.0.0.2");
    }
    for (const auto& i : res.ingresses)
      ok = ok && (i.meta.name != "api" || i.rules[0].host == "api2.example");
    for (const auto& c : res.ingress_classes)
      ok = ok && (c.meta.name != "other" || c.controller == "example.com/changed");
    return ok;
  }));

  // DELETED (each kind).
  api_->remove("Ingress", "shop", "api");
  api_->remove("Service", "shop", "api");
  api_->remove("EndpointSlice", "shop", "api-1");
  api_->remove("IngressClass", "", "other");
  api_->remove("Secret", "shop", "tls-web");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    const auto& res = r.resources;
    return !has(keys(res.ingresses), "shop/api") && !has(keys(res.services), "shop/api") &&
           !has(keys(res.endpoint_slices), "shop/api-1") && res.ingress_classes.size() == 1 &&
           res.secrets.empty();
  }));
  EXPECT_GE(provider_->stats().events, 14u);
}

TEST_F(KubeProviderTest, ListsInPagesWithContinue) {
  start_api();
  std::string more;
  for (int i = 0; i < 7; ++i) {
    more += "---\n{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s" +
            std::to_string(i) + "\",\"namespace\":\"shop\"},\"spec\":{\"ports\":[{\"port\":80}]}}\n";
  }
  api_->apply(more);
  spec_.kubernetes.page_size = 2;
  start_provider();
  ASSERT_TRUE(wait_synced());
  EXPECT_EQ(provider_->resources().resources.services.size(), 8u);
  int pages = 0, with_continue = 0;
  for (const auto& q : requests_of("services")) {
    if (q.verb != "list") continue;
    ++pages;
    EXPECT_NE(q.path.find("limit=2"), std::string::npos) << q.path;
    if (q.path.find("continue=") != std::string::npos) ++with_continue;
  }
  EXPECT_EQ(pages, 4);  // 8 Services, 2 per page
  EXPECT_EQ(with_continue, 3);
}

TEST_F(KubeProviderTest, DeletionWhileDisconnectedIsNoticedAfterGone) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  const auto before = provider_->stats();
  EXPECT_EQ(before.relists_gone, 0u);
  ASSERT_TRUE(all_watches_open());
  // The io_context does not run between these calls: the reflectors see the cut only afterwards,
  // and re-watch from a resourceVersion that compaction expired.
  api_->cut_watches();
  api_->remove("Service", "shop", "web");
  api_->compact();
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) { return r.resources.services.empty(); }));
  ASSERT_TRUE(run_until(
      io_, [&] { return provider_->synced() && provider_->stats().relists_gone >= 5; }, 15s))
      << provider_->stats().relists_gone;
  const auto after = provider_->stats();
  EXPECT_GT(after.lists, before.lists);
  EXPECT_GE(after.failures, before.failures + 1);  // the cut
  // Everything else is still there after the re-LISTs.
  const auto r = provider_->resources();
  EXPECT_EQ(r.resources.ingresses.size(), 2u);
  EXPECT_EQ(r.resources.secrets.size(), 1u);
  EXPECT_EQ(r.resources.endpoint_slices.size(), 1u);
}

TEST_F(KubeProviderTest, CompactWithOpenWatchesThenChangeKeepsFollowing) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  api_->compact();
  api_->apply(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"late","namespace":"shop"},
    "spec":{"ports":[{"port":80}]}})");
  ASSERT_TRUE(
      wait_for([](const ingress::LoadResult& r) { return has(keys(r.resources.services), "shop/late"); }));
  // A cut now: the re-watch from an expired version gets 410 and re-LISTs.
  ASSERT_TRUE(all_watches_open());
  api_->cut_watches();
  api_->compact();
  api_->remove("Service", "shop", "late");
  ASSERT_TRUE(
      wait_for([](const ingress::LoadResult& r) { return !has(keys(r.resources.services), "shop/late"); }));
  EXPECT_TRUE(run_until(
      io_, [&] { return provider_->stats().relists_gone >= 1; }, 10s));
}

TEST_F(KubeProviderTest, CutWatchesReconnectAndCatchUp) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  // Every watch is open on the server's side before the cut (synced() is true once the WATCH
  // requests are sent, not once the server took them).
  ASSERT_TRUE(run_until(
      io_, [&] { return api_->open_watches() >= 5; }, 10s));
  const auto watches = provider_->stats().watches;
  api_->cut_watches();
  api_->apply(
      R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"new","namespace":"shop"},
    "spec":{"ingressClassName":"phigate"}})");
  ASSERT_TRUE(
      wait_for([](const ingress::LoadResult& r) { return has(keys(r.resources.ingresses), "shop/new"); }));
  EXPECT_TRUE(run_until(
      io_, [&] { return api_->open_watches() >= 5 && provider_->stats().watches >= watches + 5; }, 10s))
      << api_->open_watches();
  const auto st = provider_->stats();
  EXPECT_GE(st.watches, watches + 5);
  EXPECT_GE(st.failures, 5u);
  EXPECT_EQ(st.relists_gone, 0u);  // caught up from the last resourceVersion, no re-LIST needed
  EXPECT_TRUE(provider_->synced());
}

TEST_F(KubeProviderTest, RotatedServiceAccountTokenIsReadFromItsFile) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  ASSERT_TRUE(all_watches_open());
  // The server stops accepting the old token before the kubelet rewrote the file: requests fail
  // (401) until the file holds the new one.
  api_->set_token("phigate", "token-two-longer");
  api_->cut_watches();
  ASSERT_TRUE(run_until(
      io_,
      [&] {
        for (const auto& q : api_->requests()) {
          if (q.status == 401) return true;
        }
        return false;
      },
      10s));
  { std::ofstream(sa_dir_ + "/token", std::ios::trunc) << "token-two-longer"; }
  api_->apply(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"after","namespace":"shop"},
    "spec":{"ports":[{"port":80}]}})");
  ASSERT_TRUE(
      wait_for([](const ingress::LoadResult& r) { return has(keys(r.resources.services), "shop/after"); }));
  EXPECT_TRUE(run_until(
      io_, [&] { return api_->open_watches() >= 5; }, 10s));
  EXPECT_GE(provider_->stats().failures, 1u);
  // The token never shows up in what the server logged as the user (it logs the identity).
  for (const auto& q : api_->requests()) EXPECT_EQ(q.path.find("token"), std::string::npos) << q.path;
}

TEST_F(KubeProviderTest, SecretsFollowTheReferencesOnly) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  // A newly referenced Secret is fetched; the one no longer referenced leaves.
  api_->apply(R"(
apiVersion: v1
kind: Secret
metadata: {name: tls-new, namespace: shop}
stringData: {tls.crt: NEW}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/auth-tls-secret: shop/client-ca}
spec:
  ingressClassName: phigate
  tls: [{hosts: [web.example], secretName: tls-new}]
)");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    return keys(r.resources.secrets) == std::vector<std::string>{"shop/tls-new"};
  }));
  ASSERT_TRUE(wait_synced());
  // A referenced Secret created later arrives through its watch.
  api_->apply(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"client-ca","namespace":"shop"},
    "stringData":{"ca.crt":"CA"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    return keys(r.resources.secrets) == std::vector<std::string>{"shop/client-ca", "shop/tls-new"};
  }));
  EXPECT_EQ(provider_->stats().secrets_followed, 2u);
  // Unreferenced Secrets change: nothing of them ever appears.
  api_->apply(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db-password","namespace":"shop"},
    "stringData":{"password":"hunter3"}})");
  run_until(
      io_, [] { return false; }, 300ms);
  const auto r = provider_->resources();
  EXPECT_EQ(keys(r.resources.secrets), (std::vector<std::string>{"shop/client-ca", "shop/tls-new"}));

  // The client logs "watching" when it sends a WATCH; the test API server records it when it reads
  // it: on a loaded machine the last one may not be in its log yet. tls-web stopped being
  // referenced right after its WATCH was sent, so that reflector may close its connection before
  // the server reads the request: only its LIST is certain.
  const auto seen = [&](const std::string& verb, const std::string& name) {
    for (const auto& q : requests_of("secrets")) {
      if (q.verb == verb && q.path.find("metadata.name%3D" + name) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(run_until(
      io_,
      [&] {
        return seen("list", "tls-web") && seen("list", "tls-new") && seen("watch", "tls-new") &&
               seen("list", "client-ca") && seen("watch", "client-ca");
      },
      10s));
  for (const auto& q : requests_of("secrets")) {
    EXPECT_TRUE(q.verb == "list" || q.verb == "watch") << q.verb;
    EXPECT_NE(q.path.find("fieldSelector=metadata.name%3D"), std::string::npos) << q.path;
    EXPECT_EQ(q.path.find("db-password"), std::string::npos) << q.path;
    EXPECT_EQ(q.path.find("their-tls"), std::string::npos) << q.path;
  }
}

// auth-type: basic: the auth-secret is followed like a TLS Secret, and a change to its users
// arrives (translate then rebuilds the users, docs/auth-basic.md); another namespace's is not.
TEST_F(KubeProviderTest, BasicAuthSecretIsFollowedAndItsChangesArrive) {
  start_api();
  start_provider();
  ASSERT_TRUE(wait_synced());
  api_->apply(R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/auth-type: basic, nginx.ingress.kubernetes.io/auth-secret: users}
spec:
  ingressClassName: phigate
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: sneaky
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/auth-type: basic, nginx.ingress.kubernetes.io/auth-secret: kube-system/admins}
spec:
  ingressClassName: phigate
---
apiVersion: v1
kind: Secret
metadata: {name: users, namespace: shop}
stringData: {auth: "alice:v1"}
---
apiVersion: v1
kind: Secret
metadata: {name: admins, namespace: kube-system}
stringData: {auth: "root:x"}
)");
  const auto auth_is = [](const std::string& want) {
    return [want](const ingress::LoadResult& r) {
      for (const auto& s : r.resources.secrets) {
        if (s.meta.key() == "shop/users") return s.data.count("auth") == 1 && s.data.at("auth") == want;
      }
      return false;
    };
  };
  ASSERT_TRUE(wait_for(auth_is("alice:v1")));
  api_->apply(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"users","namespace":"shop"},
    "stringData":{"auth":"alice:v2"}})");
  ASSERT_TRUE(wait_for(auth_is("alice:v2")));
  for (const auto& s : provider_->resources().resources.secrets) EXPECT_NE(s.meta.ns, "kube-system");
}

TEST_F(KubeProviderTest, ConfigMapsFollowTheReferencesOnly) {
  start_api();
  // Follows ConfigMaps whatever the Secret mode.
  spec_.kubernetes.secrets_label_selector = "phigate.io/tls=true";
  start_provider();
  ASSERT_TRUE(wait_synced());
  api_->apply(R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated, namespace: shop}
data: {X-Secretish: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: victim, namespace: other}
data: {X-Team: other}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/custom-headers: shop/hdrs
    phigate.io/proxy-set-headers: other/victim
spec:
  ingressClassName: phigate
  rules: [{host: web.example, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: theirs
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/custom-headers: shop/unrelated}
spec:
  ingressClassName: nginx
)");
  // Referenced, created later: arrives through its watch.
  ASSERT_TRUE(run_until(
      io_, [&] { return provider_->stats().config_maps_followed == 1; }, 10s));
  ASSERT_TRUE(wait_synced());
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hdrs","namespace":"shop"},
    "data":{"X-Team":"one"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    return r.resources.config_maps.size() == 1 && r.resources.config_maps[0].data.at("X-Team") == "one";
  }));
  // Changed.
  const auto before = changes_;
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hdrs","namespace":"shop"},
    "data":{"X-Team":"two"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) {
    return r.resources.config_maps.size() == 1 && r.resources.config_maps[0].data.at("X-Team") == "two";
  }));
  EXPECT_GT(changes_, before);
  // Deleted.
  api_->remove("ConfigMap", "shop", "hdrs");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) { return r.resources.config_maps.empty(); }));
  // No longer referenced: its reflector stops.
  api_->apply(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hdrs","namespace":"shop"},
    "data":{"X-Team":"three"}})");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) { return r.resources.config_maps.size() == 1; }));
  api_->apply(R"(
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: phigate
  rules: [{host: web.example, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
)");
  ASSERT_TRUE(wait_for([](const ingress::LoadResult& r) { return r.resources.config_maps.empty(); }));
  EXPECT_EQ(provider_->stats().config_maps_followed, 0u);
  // Only by name, only shop/hdrs: never another namespace's (refused reference), never one of
  // another controller's Ingress, never a list of all.
  const auto cms = requests_of("configmaps");
  EXPECT_FALSE(cms.empty());
  for (const auto& q : cms) {
    EXPECT_TRUE(q.verb == "list" || q.verb == "watch") << q.verb;
    EXPECT_EQ(q.ns, "shop") << q.path;
    EXPECT_NE(q.path.find("fieldSelector=metadata.name%3Dhdrs"), std::string::npos) << q.path;
  }
}

TEST_F(KubeProviderTest, SecretsByLabelSelectorWhenConfigured) {
  start_api();
  spec_.kubernetes.secrets_label_selector = "phigate.io/tls=true";
  spec_.kubernetes.namespaces = {"shop"};
  start_provider();
  ASSERT_TRUE(wait_synced());
  EXPECT_EQ(keys(provider_->resources().resources.secrets), (std::vector<std::string>{"shop/db-password"}));
  for (const auto& q : requests_of("secrets")) {
    EXPECT_NE(q.path.find("labelSelector=phigate.io%2Ftls%3Dtrue"), std::string::npos) << q.path;
    EXPECT_EQ(q.ns, "shop") << q.path;
  }
  // Namespaced everywhere: nothing listed cluster-wide but IngressClasses.
  for (const auto& q : api_->requests()) {
    if (q.resource != "ingressclasses") {
      EXPECT_EQ(q.ns, "shop") << q.path;
    }
  }
}

// auth-url may name a Service of ingress.auth_url_namespaces (a shared oauth2-proxy): with the
// watched namespaces restricted, that namespace's Services and EndpointSlices are followed too,
// and nothing else of it.
TEST_F(KubeProviderTest, AuthUrlNamespacesServicesAndSlicesAreFollowed) {
  start_api();
  spec_.kubernetes.namespaces = {"shop"};
  spec_.auth_url_namespaces = {"auth", "shop"};
  start_provider();
  ASSERT_TRUE(wait_synced());
  bool services = false, slices = false;
  for (const auto& q : api_->requests()) {
    if (q.ns != "auth") continue;
    EXPECT_TRUE(q.resource == "services" || q.resource == "endpointslices") << q.path;
    services = services || q.resource == "services";
    slices = slices || q.resource == "endpointslices";
  }
  EXPECT_TRUE(services);
  EXPECT_TRUE(slices);
}

TEST_F(KubeProviderTest, ForbiddenKindIsNotSynced) {
  FakeApiOptions o;
  o.identities.push_back({"limited",
                          "limited-token",
                          {"get,list,watch networking.k8s.io/ingresses,ingressclasses",
                           "get,list,watch /services", "get,list,watch /secrets"}});
  start_api(o);
  start_provider("limited");
  // Everything but EndpointSlices lists; those answer 403 and are retried with back-off.
  ASSERT_TRUE(run_until(
      io_,
      [&] {
        int forbidden = 0;
        for (const auto& q : requests_of("endpointslices")) forbidden += q.status == 403 ? 1 : 0;
        // The server logs its answer as it sends it; the provider counts it once its io ran.
        return forbidden >= 3 && provider_->stats().failures >= 3;
      },
      15s));
  EXPECT_FALSE(provider_->synced());
  EXPECT_GE(provider_->stats().failures, 3u);
  const auto r = provider_->resources();
  EXPECT_EQ(r.resources.ingresses.size(), 2u);
  EXPECT_TRUE(r.resources.endpoint_slices.empty());
}

/// A broken or hostile API server: LISTs answer fixed items; the Ingress watch sends an object
/// without a name, then a line that is not JSON, then waits. Logs "LIST <plural>" per LIST.
constexpr const char* kHostileServer = R"PY(
import json, socket, ssl, sys, threading, time
cert, key = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("READY", srv.getsockname()[1], flush=True)
GOOD = {"metadata": {"name": "good", "namespace": "a", "resourceVersion": "5"}, "spec": {"ingressClassName": "phigate"}}
TYPED = {"metadata": {"name": "typed", "namespace": "a", "resourceVersion": "6"},
         "spec": {"ingressClassName": "phigate", "rules": "not a list", "tls": [{"secretName": {"x": 1}}]}}

def chunk(b):
    return b"%x\r\n" % len(b) + b + b"\r\n"

def handle(raw):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return
            data += d
        path = data.split(b" ", 2)[1].decode()
        plural = path.split("?")[0].rsplit("/", 1)[-1]
        if "watch=1" not in path:
            print("LIST", plural, flush=True)
            items = [GOOD, TYPED] if plural == "ingresses" else []
            body = json.dumps({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
                               "items": items}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        if plural == "ingresses":
            noname = {"type": "ADDED", "object": {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
                      "metadata": {"namespace": "a", "resourceVersion": "11"}}}
            c.sendall(chunk(json.dumps(noname).encode() + b"\n"))
            c.sendall(chunk(b'{"type":"MODIFIED","object":{"metadata":{"name":"good"\n'))
            print("SENT", flush=True)
        time.sleep(30)
        c.close()
    except Exception as e:
        print("error:", e, flush=True)

while True:
    s, _ = srv.accept()
    threading.Thread(target=handle, args=(s,), daemon=True).start()
)PY";

TEST(KubeProviderHostile, MalformedLinesAndObjectsDoNotPoisonTheStore) {
  TempDir dir;
  const auto ca = test::make_ca(dir.path(), "hostile-ca");
  const auto leaf = test::make_leaf(dir.path(), ca, "apiserver", {"127.0.0.1"});
  const auto script = dir.write("hostile.py", kHostileServer);
  auto server = test::Process::start({"/usr/bin/python3", "-u", script, leaf.cert, leaf.key});
  const auto ready = server.wait_for_line("READY ", 15s);
  ASSERT_TRUE(ready) << server.output();

  Credentials c;
  c.server = "https://127.0.0.1:" + ready->substr(ready->find(' ') + 1);
  c.server_name = "127.0.0.1";
  c.ca_pem = test::read_file(ca.cert);
  c.token = "t";
  config::IngressSpec spec;
  spec.source = config::IngressSource::Kubernetes;
  spec.kubernetes.backoff_initial = 50ms;
  spec.kubernetes.backoff_max = 200ms;
  net::asio::io_context io;
  Provider provider(io, spec, c, [] {});
  provider.start();
  ASSERT_TRUE(run_until(
      io, [&] { return provider.synced(); }, 15s))
      << server.output();
  // The malformed line makes the Ingress reflector back off and re-LIST.
  ASSERT_TRUE(run_until(
      io,
      [&] {
        const auto out = server.output();
        std::size_t n = 0;
        for (auto p = out.find("LIST ingresses"); p != std::string::npos;
             p = out.find("LIST ingresses", p + 1))
          ++n;
        return n >= 2;
      },
      15s))
      << server.output();
  run_until(
      io, [] { return false; }, 200ms);
  EXPECT_GE(provider.stats().failures, 1u);
  const auto r = provider.resources();
  ASSERT_EQ(keys(r.resources.ingresses), (std::vector<std::string>{"a/good", "a/typed"}));
  EXPECT_TRUE(r.resources.ingresses[0].problems.empty());
  // Wrong types: the object is kept with its problems (it fails closed) and the errors name it.
  EXPECT_EQ(r.resources.ingresses[1].problems,
            (std::vector<std::string>{"spec.tls[0].secretName", "spec.rules"}));
  ASSERT_EQ(r.diagnostics.error_count(), 2u) << r.diagnostics.to_string();
  for (const auto& d : r.diagnostics.entries()) EXPECT_EQ(d.file, "kubernetes:Ingress a/typed");
  EXPECT_TRUE(r.resources.secrets.empty());  // a mistyped secretName references nothing
}

}  // namespace
}  // namespace phigate::kube
