// phigate following the test Kubernetes API server end to end: readiness before and after the
// first full sync, Ingress/EndpointSlice/Secret changes reaching traffic, TLS contexts kept across
// endpoint changes, 410 re-LIST and cut watches, in-cluster credentials with token rotation, an
// API server that dies, a storm of events (debounce), and namespace/Secret isolation.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "kube_fixture.hpp"
#include "support/certs.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Pg {
  Process process;
  std::uint16_t https = 0;
  std::uint16_t admin = 0;
};

struct Up {
  Process process;
  std::uint16_t port = 0;
};

std::uint16_t port_after(const std::string& line, const std::string& key) {
  const auto at = line.find(key + "=");
  if (at == std::string::npos) return 0;
  const auto end = line.find(' ', at);
  const auto addr = line.substr(at + key.size() + 1,
                                end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  const auto hp = parse_host_port(addr);
  return hp ? hp->port : 0;
}

std::string ingress_class() {
  return "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: { name: phigate }\n"
         "spec: { controller: phigate.io/ingress-controller }\n";
}

std::string service(const std::string& ns, const std::string& name) {
  return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name + ", namespace: " + ns +
         " }\nspec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n";
}

std::string slice(const std::string& ns, const std::string& service, std::uint16_t port) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + service +
         "-abc\n  namespace: " + ns + "\n  labels: { kubernetes.io/service-name: " + service +
         " }\naddressType: IPv4\nports: [{ name: http, port: " + std::to_string(port) +
         " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
}

std::string ingress(const std::string& ns, const std::string& name, const std::string& host,
                    const std::string& svc, const std::string& tls_secret = "",
                    const std::string& annotations = "") {
  std::string y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                  "\n  namespace: " + ns + "\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n";
  if (!annotations.empty()) y += "  annotations:\n" + annotations;
  y += "spec:\n  ingressClassName: phigate\n";
  if (!tls_secret.empty()) y += "  tls: [{ hosts: [" + host + "], secretName: " + tls_secret + " }]\n";
  y += "  rules:\n  - host: " + host +
       "\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: " + svc +
       ", port: { number: 80 } } } }\n";
  return y;
}

std::string base64_file(const std::string& path) {
  auto r = run({"base64", "-w0", path});
  if (r.exit_code != 0) throw std::runtime_error("base64 failed: " + r.err);
  return r.out;
}

std::string tls_secret(const std::string& ns, const std::string& name, const CertPaths& c) {
  return "apiVersion: v1\nkind: Secret\nmetadata: { name: " + name + ", namespace: " + ns +
         " }\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " + base64_file(c.cert) +
         "\n  tls.key: " + base64_file(c.key) + "\n";
}

class KubeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_ca(dir_.path(), "phigate kube test CA");
    default_cert_ = make_leaf(dir_.path(), ca_, "default.example",
                              {"default.example", "app.example", "other.example", "static.example",
                               "steal.example", "grab.example"});
  }

  void start_api(FakeApiOptions options = {}) { api_ = FakeApiServer::start(dir_, std::move(options)); }

  Up start_upstream(const std::string& name) {
    auto p = Process::start({bin("phigate-test-upstream"), "--listen", "127.0.0.1:0", "--name", name});
    const auto line = p.wait_for_line("ready ", 10s);
    if (!line) throw std::runtime_error("test upstream did not start: " + p.output());
    const auto hp = parse_host_port(line->substr(line->find("ready ") + 6));
    if (!hp) throw std::runtime_error("bad ready line: " + *line);
    return Up{std::move(p), hp->port};
  }

  /// A config following the API server: `kube` lines go under `ingress.kubernetes:` (credentials),
  /// `extra` under `ingress:`. A static route /static answers from `static_port` when set.
  std::string config(const std::string& kube, const std::string& extra = "", std::uint16_t static_port = 0,
                     const std::string& debounce = "100ms") {
    std::string y =
        "listeners:\n  https: [\"127.0.0.1:0\"]\n  admin: \"127.0.0.1:0\"\nworkers: 1\n"
        "tls:\n  default_certificate: { cert: " +
        default_cert_.cert + ", key: " + default_cert_.key +
        " }\n"
        "ingress:\n  source: kubernetes\n  debounce: " +
        debounce + "\n" + extra +
        "  kubernetes:\n    backoff_initial: 50ms\n    backoff_max: 500ms\n    request_timeout: 5s\n" + kube;
    if (static_port != 0) {
      y += "routes:\n  - host: static.example\n    paths:\n      - { path: /, type: Prefix, backends: "
           "[\"127.0.0.1:" +
           std::to_string(static_port) + "\"] }\n";
    }
    return y;
  }

  std::string kubeconfig_lines() { return "    kubeconfig: " + api_->kubeconfig() + "\n"; }

  Pg start_phigate(const std::string& yaml, EnvVars env = {}) {
    const auto path = dir_.write("phigate.yaml", yaml);
    ProcessOptions o;
    o.env = std::move(env);
    auto p = Process::start({bin("phigate"), "run", "--config", path}, o);
    const auto line = p.wait_for_line("phigate ready", 20s);
    if (!line) throw std::runtime_error("phigate did not start: " + p.output());
    Pg pg{std::move(p), port_after(*line, "https"), port_after(*line, "admin")};
    if (pg.https == 0 || pg.admin == 0) throw std::runtime_error("no ports in: " + *line);
    return pg;
  }

  /// Status code and X-Upstream-Name of GET https://host/ through phigate.
  std::pair<std::string, std::string> get(const Pg& pg, const std::string& host,
                                          const std::string& cacert = "") {
    const auto port = std::to_string(pg.https);
    auto r = run({"curl", "-sS", "--http1.1", "-o", "/dev/null", "-D", "-", "--max-time", "5", "--cacert",
                  cacert.empty() ? ca_.cert : cacert, "--resolve", host + ":" + port + ":127.0.0.1",
                  "https://" + host + ":" + port + "/"},
                 RunOptions{10s});
    std::string code, upstream;
    if (r.out.size() > 12 && r.out.rfind("HTTP/1.1 ", 0) == 0) code = r.out.substr(9, 3);
    const std::string key = "x-upstream-name: ";
    std::string lower = r.out;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (const auto at = lower.find(key); at != std::string::npos) {
      const auto end = r.out.find('\r', at);
      upstream = r.out.substr(at + key.size(), end - at - key.size());
    }
    if (code.empty()) code = "curl:" + std::to_string(r.exit_code);
    return {code, upstream};
  }

  /// Polls until GET answers `code` from `upstream` ("" for any), within `deadline`.
  bool eventually(const Pg& pg, const std::string& host, const std::string& code, const std::string& upstream,
                  std::chrono::milliseconds deadline = 15s, const std::string& cacert = "") {
    const auto until = Clock::now() + deadline;
    do {
      const auto [c, u] = get(pg, host, cacert);
      if (c == code && (upstream.empty() || u == upstream)) return true;
      std::this_thread::sleep_for(50ms);
    } while (Clock::now() < until);
    const auto [c, u] = get(pg, host, cacert);
    ADD_FAILURE() << host << ": wanted " << code << " from '" << upstream << "', got " << c << " from '" << u
                  << "'";
    return false;
  }

  std::string readyz(const Pg& pg) {
    auto r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(pg.admin) + "/readyz"},
                 RunOptions{10s});
    return r.out;
  }

  bool wait_ready(const Pg& pg, std::chrono::milliseconds deadline = 20s) {
    const auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
      if (readyz(pg) == "200") return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// Value of an unlabelled metric (-1 when absent).
  double metric(const Pg& pg, const std::string& name) {
    auto r =
        run({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"},
            RunOptions{10s});
    std::size_t at = 0;
    while ((at = r.out.find(name + " ", at)) != std::string::npos) {
      if (at == 0 || r.out[at - 1] == '\n') return std::stod(r.out.substr(at + name.size() + 1));
      at += name.size();
    }
    return -1;
  }

  /// Polls a metric until `pred` holds (metrics of the API follow within a second).
  template <typename Pred>
  double wait_metric(const Pg& pg, const std::string& name, Pred pred,
                     std::chrono::milliseconds deadline = 15s) {
    const auto until = Clock::now() + deadline;
    double v = metric(pg, name);
    while (!pred(v) && Clock::now() < until) {
      std::this_thread::sleep_for(100ms);
      v = metric(pg, name);
    }
    return v;
  }

  /// Class, Service + EndpointSlice "web" → `up`, Ingress default/web for app.example.
  void seed(const Up& up, const std::string& tls = "") {
    api_->apply(ingress_class() + "---\n" + service("default", "web") + "---\n" +
                slice("default", "web", up.port) + "---\n" +
                ingress("default", "web", "app.example", "web", tls));
  }

  TempDir dir_;
  CertPaths ca_;
  CertPaths default_cert_;
  std::unique_ptr<FakeApiServer> api_;
};

TEST_F(KubeServerTest, NotReadyUntilTheFirstSync_StaticRoutesServeMeanwhile) {
  auto up = start_upstream("static");
  start_api();
  // A kubeconfig naming the test server's CA and token, but a port nobody listens on.
  auto text = read_file(api_->kubeconfig());
  const auto url = api_->url();
  const auto at = text.find(url);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, url.size(), "https://127.0.0.1:" + std::to_string(free_port()));
  const auto kubeconfig = dir_.write("closed.kubeconfig", text);
  auto pg = start_phigate(config("    kubeconfig: " + kubeconfig + "\n", "", up.port));
  EXPECT_TRUE(
      pg.process.wait_for_line("kubernetes: waiting for the first full sync of https://127.0.0.1:", 5s));
  EXPECT_TRUE(pg.process.wait_for_line("unreachable", 10s)) << pg.process.output();
  EXPECT_EQ(readyz(pg), "503");
  // Listeners are bound and the config file's own routes serve while the API is away.
  EXPECT_EQ(get(pg, "static.example").first, "200");
  EXPECT_EQ(metric(pg, "phigate_kube_synced"), 0);
  std::this_thread::sleep_for(500ms);  // several back-off rounds: still not ready
  EXPECT_EQ(readyz(pg), "503");
  EXPECT_EQ(pg.process.output().find("kubernetes: synced"), std::string::npos);
}

TEST_F(KubeServerTest, BadCredentialsAreAStartupErrorNamingTheField) {
  const auto yaml = config("    kubeconfig: " + dir_.path("missing.kubeconfig") + "\n");
  const auto path = dir_.write("phigate.yaml", yaml);
  auto r = run({bin("phigate"), "run", "--config", path}, RunOptions{20s});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ingress.kubernetes.kubeconfig"), std::string::npos) << r.err;
}

TEST_F(KubeServerTest, IngressAddedModifiedDeletedChangesWhatClientsGet) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  seed(a);
  auto pg = start_phigate(config(kubeconfig_lines()));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  EXPECT_TRUE(pg.process.wait_for_line("kubernetes: synced", 1s));
  EXPECT_EQ(wait_metric(pg, "phigate_kube_synced", [](double v) { return v == 1; }), 1);
  EXPECT_EQ(get(pg, "app.example"), (std::pair<std::string, std::string>{"200", "a"}));
  EXPECT_EQ(get(pg, "other.example").first, "404");

  // Added: a second Ingress and its backend.
  api_->apply(service("default", "b") + "---\n" + slice("default", "b", b.port) + "---\n" +
              ingress("default", "other", "other.example", "b"));
  EXPECT_TRUE(eventually(pg, "other.example", "200", "b"));
  // Modified: web now points at b.
  api_->apply(ingress("default", "web", "app.example", "b"));
  EXPECT_TRUE(eventually(pg, "app.example", "200", "b"));
  // Deleted.
  api_->remove("Ingress", "default", "web");
  EXPECT_TRUE(eventually(pg, "app.example", "404", ""));
  EXPECT_EQ(get(pg, "other.example").first, "200");
}

TEST_F(KubeServerTest, EndpointChangeKeepsTlsContexts_SecretChangeServesTheNewCertificate) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  const auto ca1 = make_ca(dir_.path(), "ca one");
  const auto ca2 = make_ca(dir_.path(), "ca two");
  const auto cert1 = make_leaf(dir_.path(), ca1, "app one", {"secure.example"});
  const auto cert2 = make_leaf(dir_.path(), ca2, "app two", {"secure.example"});
  api_->apply(tls_secret("default", "app-tls", cert1));
  // secure.example: not among the default certificate's names (that one would win the SNI match).
  api_->apply(ingress_class() + "---\n" + service("default", "web") + "---\n" +
              slice("default", "web", a.port) + "---\n" +
              ingress("default", "web", "secure.example", "web", "app-tls"));
  auto pg = start_phigate(config(kubeconfig_lines()));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "secure.example", "200", "a", 15s, ca1.cert)) << pg.process.output();
  const double builds = wait_metric(pg, "phigate_tls_context_builds_total", [](double v) { return v >= 1; });
  ASSERT_GE(builds, 1);
  const double gen = metric(pg, "phigate_config_generation");

  // An endpoint change: traffic moves, the TLS contexts stay.
  api_->apply(slice("default", "web", b.port));
  EXPECT_TRUE(eventually(pg, "secure.example", "200", "b", 15s, ca1.cert));
  EXPECT_GT(metric(pg, "phigate_config_generation"), gen);
  EXPECT_EQ(metric(pg, "phigate_tls_context_builds_total"), builds);

  // A Secret change: the new certificate is served (verifiable only with the new CA).
  api_->apply(tls_secret("default", "app-tls", cert2));
  EXPECT_TRUE(eventually(pg, "secure.example", "200", "b", 15s, ca2.cert));
  EXPECT_NE(get(pg, "secure.example", ca1.cert).first, "200");
  EXPECT_GT(metric(pg, "phigate_tls_context_builds_total"), builds);
}

TEST_F(KubeServerTest, RelistAfter410AndCutWatchesConverge) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  seed(a);
  api_->apply(service("default", "b") + "---\n" + slice("default", "b", b.port));
  auto pg = start_phigate(config(kubeconfig_lines()));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "app.example", "200", "a"));

  // Cut every stream, then compact history: the reconnecting watches get 410 and LIST again.
  api_->cut_watches();
  api_->compact();
  api_->apply(ingress("default", "web", "app.example", "b"));
  api_->compact();
  EXPECT_TRUE(eventually(pg, "app.example", "200", "b", 20s));
  EXPECT_GE(wait_metric(pg, "phigate_kube_relists_total", [](double v) { return v >= 1; }), 1);

  // A cut alone: watches resume and later changes still arrive.
  api_->cut_watches();
  api_->remove("Ingress", "default", "web");
  EXPECT_TRUE(eventually(pg, "app.example", "404", "", 20s));
  EXPECT_EQ(readyz(pg), "200");
}

TEST_F(KubeServerTest, InClusterCredentialsFollowTokenRotation) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  seed(a);
  api_->apply(service("default", "b") + "---\n" + slice("default", "b", b.port));
  const auto sa = api_->service_account_dir("admin");
  EnvVars env{{"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
              {"KUBERNETES_SERVICE_PORT", std::to_string(api_->port())}};
  auto pg = start_phigate(config("    service_account_dir: " + sa + "\n"), env);
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "app.example", "200", "a"));

  // Rotation: the API refuses the old token from now on; the kubelet rewrites the file.
  api_->set_token("admin", "rotated-token-2");
  dir_.write(sa.substr(dir_.path().size() + 1) + "/token", "rotated-token-2");
  api_->cut_watches();  // every reconnect must carry the new token
  api_->apply(ingress("default", "web", "app.example", "b"));
  EXPECT_TRUE(eventually(pg, "app.example", "200", "b", 20s));
}

TEST_F(KubeServerTest, ApiServerKilledKeepsTheLastSnapshotServing) {
  auto a = start_upstream("a");
  start_api();
  seed(a);
  auto pg = start_phigate(config(kubeconfig_lines()));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "app.example", "200", "a"));
  const auto offset = pg.process.output().size();
  api_.reset();  // SIGKILL by PID
  EXPECT_TRUE(pg.process.wait_for_line("unreachable", 15s, offset)) << pg.process.output().substr(offset);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(get(pg, "app.example"), (std::pair<std::string, std::string>{"200", "a"}));
    EXPECT_EQ(readyz(pg), "200");
    std::this_thread::sleep_for(200ms);
  }
}

TEST_F(KubeServerTest, DebounceHoldsBuildsToAHandfulUnderAStormOf10000Events) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  seed(a);
  // 500 ms: the bound below (30 builds) then holds for a storm delivered over up to 15 s.
  auto pg = start_phigate(config(kubeconfig_lines(), "", 0, "500ms"));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "app.example", "200", "a"));
  const double gen = metric(pg, "phigate_config_generation");
  const double builds = metric(pg, "phigate_tls_context_builds_total");
  const auto started = Clock::now();
  api_->storm("default", "web-abc", 10000);
  // The last word after the storm: traffic must follow it.
  api_->apply(slice("default", "web", b.port));
  EXPECT_TRUE(eventually(pg, "app.example", "200", "b", 40s));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  // Every event arrived (or, had the watch fallen behind, a re-LIST replaced them).
  const double events = wait_metric(
      pg, "phigate_kube_watch_events_total", [](double v) { return v >= 10000; }, 20s);
  EXPECT_TRUE(events >= 10000 || metric(pg, "phigate_kube_relists_total") >= 1) << events;
  const double now = metric(pg, "phigate_config_generation");
  // At most one build per debounce period while events kept arriving, plus the last.
  EXPECT_LE(now - gen, 30) << "storm took " << took.count() << " ms";
  EXPECT_LE(now - gen, took.count() / 500.0 + 3) << "storm took " << took.count() << " ms";
  EXPECT_GE(now - gen, 1);
  EXPECT_EQ(metric(pg, "phigate_tls_context_builds_total"), builds);
  EXPECT_EQ(get(pg, "app.example").second, "b");
}

TEST_F(KubeServerTest, OtherNamespacesAndTheirSecretsStayOutOfReach) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  start_api();
  const auto other_ca = make_ca(dir_.path(), "other tenant CA");
  const auto other_cert = make_leaf(dir_.path(), other_ca, "other tenant", {"app.example"});
  // Tenant "other" (not watched) has a Service, an Ingress for its own host and a TLS Secret.
  api_->apply(service("other", "b") + "---\n" + slice("other", "b", b.port) + "---\n" +
              ingress("other", "steal", "steal.example", "b") + "---\n" +
              tls_secret("other", "their-tls", other_cert));
  seed(a);
  // An Ingress in a watched namespace naming the other tenant's Secret and client CA.
  api_->apply(ingress("default", "grab", "grab.example", "web", "",
                      "    nginx.ingress.kubernetes.io/auth-tls-secret: other/their-tls\n"));
  auto pg = start_phigate(config(kubeconfig_lines(), "  namespaces: [default]\n"));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  ASSERT_TRUE(eventually(pg, "app.example", "200", "a"));
  EXPECT_EQ(get(pg, "steal.example").first, "404");
  // The cross-namespace reference is not followed: grab.example never serves (it fails closed or
  // is refused), and phigate never asked for anything in namespace "other".
  EXPECT_NE(get(pg, "grab.example").first, "200");
  for (const auto& r : api_->requests()) {
    EXPECT_NE(r.ns, "other") << r.method << " " << r.path;
    if (r.resource == "secrets") {
      EXPECT_FALSE(r.ns.empty()) << "listed Secrets cluster-wide: " << r.path;
    }
  }
}

TEST_F(KubeServerTest, CustomHeadersConfigMapCreatedLaterChangedDeletedReloads) {
  auto a = start_upstream("a");
  start_api();
  seed(a);
  api_->apply(ingress("default", "web", "app.example", "web", "",
                      "    nginx.ingress.kubernetes.io/custom-headers: hdrs\n"));
  auto pg = start_phigate(config(kubeconfig_lines(), "  allowed_response_headers: [x-team]\n"));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  // The ConfigMap does not exist yet: the Ingress fails closed.
  EXPECT_TRUE(eventually(pg, "app.example", "503", ""));
  const auto x_team = [&] {
    const auto port = std::to_string(pg.https);
    auto r = run(
        {"curl", "-sS", "--http1.1", "-o", "/dev/null", "-D", "-", "--max-time", "5", "--cacert", ca_.cert,
         "--resolve", "app.example:" + port + ":127.0.0.1", "https://app.example:" + port + "/"},
        RunOptions{10s});
    std::string lower = r.out;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto at = lower.find("\r\nx-team: ");
    if (at == std::string::npos) return std::string("(none)");
    const auto from = at + 10;
    return r.out.substr(from, r.out.find('\r', from) - from);
  };
  const auto header_becomes = [&](const std::string& want) {
    const auto until = Clock::now() + 15s;
    while (Clock::now() < until) {
      if (x_team() == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "X-Team never became " << want << ", is " << x_team();
    return false;
  };
  // Created: served with the header.
  api_->apply(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hdrs, namespace: default }\n"
      "data: { X-Team: one }\n");
  EXPECT_TRUE(header_becomes("one"));
  EXPECT_EQ(get(pg, "app.example"), (std::pair<std::string, std::string>{"200", "a"}));
  // Changed: the new value.
  api_->apply(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hdrs, namespace: default }\n"
      "data: { X-Team: two }\n");
  EXPECT_TRUE(header_becomes("two"));
  // Changed to a header the operator did not allow: fails closed.
  api_->apply(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hdrs, namespace: default }\n"
      "data: { X-Other: three }\n");
  EXPECT_TRUE(eventually(pg, "app.example", "503", ""));
  api_->apply(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hdrs, namespace: default }\n"
      "data: { X-Team: four }\n");
  EXPECT_TRUE(header_becomes("four"));
  // Deleted: fails closed again.
  api_->remove("ConfigMap", "default", "hdrs");
  EXPECT_TRUE(eventually(pg, "app.example", "503", ""));
  for (const auto& r : api_->requests()) {
    if (r.resource == "configmaps") {
      EXPECT_NE(r.path.find("fieldSelector=metadata.name%3Dhdrs"), std::string::npos) << r.path;
    }
  }
}

TEST_F(KubeServerTest, LeaderPublishesStatusOfServedIngressesAndEventsForFailedClosedOnes) {
  auto a = start_upstream("a");
  start_api();
  seed(a);
  api_->apply(ingress("default", "broken", "other.example", "web", "",
                      "    nginx.ingress.kubernetes.io/proxy-read-timeout: \"soon\"\n"));
  auto pg = start_phigate(config(kubeconfig_lines(),
                                 "  status: { publish_address: 203.0.113.7 }\n"
                                 "  leader_election: { lease_namespace: default, lease_duration: 3s, "
                                 "renew_deadline: 2s, retry_period: 500ms }\n"));
  ASSERT_TRUE(wait_ready(pg)) << pg.process.output();
  EXPECT_TRUE(eventually(pg, "app.example", "200", "a"));
  EXPECT_TRUE(eventually(pg, "other.example", "503", ""));
  const auto until = Clock::now() + 15s;
  bool status_published = false, event = false, lease = false;
  while (Clock::now() < until && !(status_published && event && lease)) {
    // Both are served (one failing closed with 503): both carry the published address.
    int with_status = 0;
    for (const auto& o : api_->objects("Ingress", "default")) {
      with_status += o.find("203.0.113.7") != std::string::npos ? 1 : 0;
    }
    status_published = with_status == 2;
    for (const auto& o : api_->objects("Event", "default")) {
      if (o.find("FailedClosed") != std::string::npos && o.find("broken") != std::string::npos &&
          o.find("proxy-read-timeout") != std::string::npos)
        event = true;
    }
    for (const auto& o : api_->objects("Lease", "default"))
      lease |= o.find("phigate-leader") != std::string::npos;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(status_published) << pg.process.output();
  EXPECT_TRUE(event);
  EXPECT_TRUE(lease);
  EXPECT_EQ(wait_metric(pg, "phigate_kube_leading", [](double v) { return v == 1; }), 1);
  EXPECT_GE(wait_metric(pg, "phigate_kube_status_updates_total", [](double v) { return v >= 1; }), 1);
}

}  // namespace
}  // namespace phigate::test
