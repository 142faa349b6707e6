// K8S001-K8S009 and AC004 over deployment manifests: each rule on the compliant baseline
// (tests/fixtures/check/clean/manifests/workloads.yaml) with one thing changed, hostile shapes
// (wildcards hidden among rules or in aggregated roles, bindings to another service account,
// container settings overriding the pod's, init containers, policies in another namespace), the
// rule fixtures as the CLI will load them, and docker/base passing its own check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "phigate/check/check.hpp"
#include "phigate/config/loader.hpp"

namespace phigate::check {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kFixtures = PHIGATE_CHECK_FIXTURES_DIR;

/// The compliant workloads of the clean fixture.
std::string baseline() {
  static const std::string text = read(kFixtures + "/clean/manifests/workloads.yaml");
  return text;
}

/// `text` with `from` replaced by `to` (which must occur).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

/// Runs only this group's rules (the other groups judge the config, not the manifests).
std::vector<Finding> run_rules(const config::Config& cfg, const ingress::Workloads* wl,
                               const Options& opts = {}) {
  const View v{.config = cfg, .resources = nullptr, .workloads = wl, .options = opts};
  const Context ctx(v);
  Sink out;
  for (const auto& r : kubernetes_rules()) r.fn(v, r.info, ctx, out);
  return out;
}

struct K8s : ::testing::Test {
  config::Config cfg;
  ingress::Workloads wl;

  std::vector<Finding> check(const std::string& manifests) {
    wl = {};
    ingress::load_workloads_text(manifests, "w.yaml", wl);
    EXPECT_EQ(wl.diagnostics.entries().size(), 0u) << wl.diagnostics.to_string();
    return run_rules(cfg, &wl);
  }
};

std::multiset<std::string> ids(const std::vector<Finding>& fs) {
  std::multiset<std::string> out;
  for (const auto& f : fs) out.emplace(f.rule->id);
  return out;
}

std::string dump(const std::vector<Finding>& fs) {
  std::string out;
  for (const auto& f : fs) {
    out += std::string(f.rule->id) + " " + std::string(to_string(f.severity)) + " " + f.where.resource + " " +
           f.where.field + ":" + std::to_string(f.where.line) + " " + f.message + "\n";
  }
  return out;
}

using Ids = std::multiset<std::string>;

TEST(K8sRules, RowsAreCliOnlyWithTheirSafeguardsAndSeverities) {
  std::map<std::string_view, std::pair<Safeguard, Severity>> want = {
      {"AC004", {Safeguard::AccessControl, Severity::Error}},
      {"K8S001", {Safeguard::AccessControl, Severity::Error}},
      {"K8S002", {Safeguard::AccessControl, Severity::Warning}},
      {"K8S003", {Safeguard::AccessControl, Severity::Warning}},
      {"K8S004", {Safeguard::AccessControl, Severity::Error}},
      {"K8S005", {Safeguard::AccessControl, Severity::Warning}},
      {"K8S006", {Safeguard::Integrity, Severity::Warning}},
      {"K8S007", {Safeguard::AccessControl, Severity::Warning}},
      {"K8S008", {Safeguard::Integrity, Severity::Warning}},
      {"K8S009", {Safeguard::Integrity, Severity::Warning}}};
  ASSERT_EQ(kubernetes_rules().size(), want.size());
  for (const auto& r : kubernetes_rules()) {
    SCOPED_TRACE(std::string(r.info.id));
    ASSERT_TRUE(want.contains(r.info.id));
    EXPECT_EQ(r.info.safeguard, want[r.info.id].first);
    EXPECT_EQ(r.info.severity, want[r.info.id].second);
    EXPECT_EQ(r.info.hipaa, citation(r.info.safeguard));
    EXPECT_FALSE(r.info.runtime);
    EXPECT_FALSE(r.info.enforceable);
    EXPECT_NE(r.fn, nullptr);
  }
}

TEST_F(K8s, BaselineIsClean) {
  const auto f = check(baseline());
  EXPECT_TRUE(f.empty()) << dump(f);
  ASSERT_EQ(wl.workloads.size(), 1u);
}

TEST_F(K8s, NothingWithoutManifests) {
  EXPECT_TRUE(run_rules(cfg, nullptr).empty());
}

TEST_F(K8s, WildcardResourcesInOneRuleAmongManyIsAnErrorAtThatRule) {
  const auto f =
      check(edit(baseline(), "    verbs: [\"list\", \"watch\"]\n",
                 "    verbs: [\"list\", \"watch\"]\n  - apiGroups: [\"\"]\n    resources: [\"services\"]\n"
                 "    verbs: [\"list\"]\n  - apiGroups: [\"apps\"]\n    resources: [\"*\"]\n"
                 "    verbs: [\"get\"]\n"));
  ASSERT_EQ(ids(f), Ids{"K8S001"}) << dump(f);
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].where.resource, "ClusterRole phigate");
  EXPECT_EQ(f[0].where.field, "rules[2]");
  EXPECT_EQ(f[0].where.line, 19);
  EXPECT_EQ(f[0].where.file, "w.yaml");
  EXPECT_NE(f[0].message.find("resources"), std::string::npos) << f[0].message;
}

TEST_F(K8s, WildcardVerbsInAnAggregatedRoleAndBindingsToClusterAdminAreErrors) {
  const std::string agg =
      "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
      "metadata: { name: extra, labels: { example.com/aggregate-to-phigate: \"true\" } }\n"
      "rules: [{ apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"*\"] }]\n"
      "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: { name: root }\n"
      "roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }\n"
      "subjects: [{ kind: ServiceAccount, name: other, namespace: x }]\n";
  const auto f = check(baseline() + agg);
  EXPECT_EQ(ids(f), (Ids{"K8S001", "K8S001"})) << dump(f);
  EXPECT_EQ(f.at(0).where.resource, "ClusterRole extra");
  EXPECT_EQ(f.at(1).where.resource, "ClusterRoleBinding root");
  EXPECT_EQ(f.at(1).where.field, "roleRef");
}

const std::string kSecretsRole =
    "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: secrets }\n"
    "rules: [{ apiGroups: [\"\"], resources: [\"secrets\"], verbs: [\"list\", \"watch\"] }]\n";

std::string binding(const std::string& subject) {
  return "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: { name: s }\n"
         "roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secrets }\n"
         "subjects: [" +
         subject + "]\n";
}

TEST_F(K8s, ClusterWideSecretReadCountsOnlyForThePodsServiceAccount) {
  // Config reads Ingresses from a folder: no Secret needs reading at all.
  const auto other = check(baseline() + kSecretsRole +
                           binding("{ kind: ServiceAccount, name: phigate, namespace: elsewhere }"));
  EXPECT_TRUE(other.empty()) << dump(other);
  const auto own = check(baseline() + kSecretsRole +
                         binding("{ kind: ServiceAccount, name: phigate, namespace: phigate }"));
  ASSERT_EQ(ids(own), Ids{"K8S002"}) << dump(own);
  EXPECT_EQ(own[0].severity, Severity::Warning);
  EXPECT_EQ(own[0].where.resource, "ClusterRole secrets");
  EXPECT_NE(own[0].message.find("ServiceAccount phigate/phigate"), std::string::npos) << own[0].message;
  // Every service account of the cluster includes phigate's.
  const auto group =
      check(baseline() + kSecretsRole + binding("{ kind: Group, name: \"system:serviceaccounts\" }"));
  EXPECT_EQ(ids(group), Ids{"K8S002"}) << dump(group);
  // A namespaced RoleBinding of the same ClusterRole is what the remedy asks for.
  const auto ns = check(baseline() + kSecretsRole +
                        edit(binding("{ kind: ServiceAccount, name: phigate, namespace: phigate }"),
                             "kind: ClusterRoleBinding\nmetadata: { name: s }",
                             "kind: RoleBinding\nmetadata: { name: s, namespace: clinic }"));
  EXPECT_TRUE(ns.empty()) << dump(ns);
}

TEST_F(K8s, ClusterWideSecretReadIsFineWhenEveryNamespaceIsWatchedAndFoundThroughAggregation) {
  const std::string secrets_via_agg = edit(kSecretsRole, "metadata: { name: secrets }",
                                           "metadata: { name: secrets, labels: { agg: phigate } }");
  const std::string text = edit(baseline(), "metadata: { name: phigate }\nrules:",
                                "metadata: { name: phigate }\naggregationRule:\n  clusterRoleSelectors: [{ "
                                "matchLabels: { agg: phigate } }]\n"
                                "rules:") +
                           secrets_via_agg;
  const auto f = check(text);
  ASSERT_EQ(ids(f), Ids{"K8S002"}) << dump(f);
  EXPECT_EQ(f[0].where.resource, "ClusterRole secrets");
  cfg.ingress.source = config::IngressSource::Kubernetes;  // namespaces: all
  EXPECT_TRUE(run_rules(cfg, &wl).empty());
  cfg.ingress.kubernetes.namespaces = {"clinic"};
  EXPECT_EQ(ids(run_rules(cfg, &wl)), Ids{"K8S002"});
}

TEST_F(K8s, ContainerRunAsUserZeroWinsOverThePodsRunAsNonRoot) {
  const auto f = check(edit(baseline(), "            runAsUser: 10001\n", "            runAsUser: 0\n"));
  ASSERT_EQ(ids(f), Ids{"K8S003"}) << dump(f);
  EXPECT_EQ(f[0].where.field, "spec.template.spec.containers[0].securityContext.runAsUser");
  EXPECT_EQ(f[0].where.line, 49);  // its securityContext
  // runAsNonRoot: false on the container overrides true on the pod.
  const auto g =
      check(edit(baseline(), "            runAsNonRoot: true\n", "            runAsNonRoot: false\n"));
  EXPECT_EQ(ids(g), Ids{"K8S003"}) << dump(g);
  // Set on the pod only: inherited.
  const auto h =
      check(edit(baseline(), "            runAsNonRoot: true\n            runAsUser: 10001\n", ""));
  EXPECT_TRUE(h.empty()) << dump(h);
  // Set nowhere: the image decides, often root.
  const auto i =
      check(edit(edit(baseline(), "            runAsNonRoot: true\n            runAsUser: 10001\n", ""),
                 "        runAsNonRoot: true\n        runAsUser: 10001\n", ""));
  EXPECT_EQ(ids(i), Ids{"K8S003"}) << dump(i);
}

TEST_F(K8s, PrivilegedInitContainerIsAnError) {
  const auto f = check(edit(baseline(), "      containers:\n",
                            "      initContainers:\n        - name: setup\n          image: busybox\n"
                            "          securityContext:\n            runAsNonRoot: true\n"
                            "            readOnlyRootFilesystem: true\n            privileged: true\n"
                            "            capabilities: { drop: [ALL] }\n      containers:\n"));
  ASSERT_EQ(ids(f), Ids{"K8S004"}) << dump(f);
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].where.field, "spec.template.spec.initContainers[0].securityContext.privileged");
  EXPECT_NE(f[0].message.find("init container setup"), std::string::npos) << f[0].message;
  // allowPrivilegeEscalation defaults to true.
  const auto g = check(edit(baseline(), "            allowPrivilegeEscalation: false\n", ""));
  EXPECT_EQ(ids(g), Ids{"K8S004"}) << dump(g);
}

TEST_F(K8s, CapabilitiesMustDropAllAndAddNothingButNetBindService) {
  EXPECT_EQ(ids(check(edit(baseline(), "drop: [\"ALL\"]", "drop: [\"NET_RAW\"]"))), Ids{"K8S005"});
  EXPECT_EQ(
      ids(check(edit(baseline(), "drop: [\"ALL\"]", "drop: [\"ALL\"]\n              add: [\"SYS_ADMIN\"]"))),
      Ids{"K8S005"});
  EXPECT_TRUE(
      check(edit(baseline(), "drop: [\"ALL\"]", "drop: [\"ALL\"]\n              add: [NET_BIND_SERVICE]"))
          .empty());
}

TEST_F(K8s, WritableRootFilesystemIsAWarning) {
  const auto f = check(edit(baseline(), "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"));
  ASSERT_EQ(ids(f), Ids{"K8S006"}) << dump(f);
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(ids(check(edit(baseline(), "            readOnlyRootFilesystem: true\n", ""))), Ids{"K8S006"});
}

TEST_F(K8s, NetworkPolicyInAnotherNamespaceOrOfEgressOnlyDoesNotCount) {
  const std::string np = "metadata: { name: phigate, namespace: phigate }\nspec:\n  podSelector:";
  const auto f =
      check(edit(baseline(), np, "metadata: { name: phigate, namespace: default }\nspec:\n  podSelector:"));
  ASSERT_EQ(ids(f), Ids{"K8S007"}) << dump(f);
  EXPECT_EQ(f[0].where.resource, "Deployment phigate/phigate");
  EXPECT_EQ(f[0].where.field, "metadata");
  EXPECT_EQ(ids(check(edit(baseline(), "policyTypes: [\"Ingress\"]", "policyTypes: [\"Egress\"]"))),
            Ids{"K8S007"});
  EXPECT_EQ(ids(check(edit(baseline(), "  podSelector:\n    matchLabels: { app.kubernetes.io/name: phigate }",
                           "  podSelector:\n    matchLabels: { app.kubernetes.io/name: other }"))),
            Ids{"K8S007"});
}

TEST_F(K8s, SingleReplicaAndNoDisruptionBudget) {
  const auto one = check(edit(baseline(), "  replicas: 2\n", "  replicas: 1\n"));
  ASSERT_EQ(ids(one), Ids{"K8S008"}) << dump(one);
  EXPECT_EQ(one[0].where.line, 30);
  EXPECT_EQ(one[0].where.field, "spec.replicas");
  EXPECT_EQ(ids(check(edit(baseline(), "  replicas: 2\n", ""))), Ids{"K8S008"});  // absent: 1
  // The PDB's selector is the file's last one.
  const std::string labels = "matchLabels: { app.kubernetes.io/name: phigate }";
  std::string changed = baseline();
  changed.replace(changed.rfind(labels), labels.size(), "matchLabels: { app.kubernetes.io/name: old }");
  EXPECT_EQ(ids(check(changed)), Ids{"K8S009"});
  // A DaemonSet has no replicas and drains do not evict its pods.
  const auto ds = check(edit(edit(baseline(), "kind: Deployment", "kind: DaemonSet"), "  replicas: 2\n", ""));
  EXPECT_TRUE(ds.empty()) << dump(ds);
}

// ---- AC004 ----

TEST_F(K8s, AdminOnLoopbackIsFine) {
  for (const char* admin : {"127.0.0.1:9901", "127.8.0.1:9901", "[::1]:9901", "localhost:9901", ""}) {
    cfg.listeners.admin = admin;
    EXPECT_TRUE(run_rules(cfg, nullptr).empty()) << admin;
  }
}

TEST_F(K8s, AdminBeyondLoopbackWithoutManifestsIsAWarning) {
  cfg.listeners.admin = "0.0.0.0:9901";
  const auto f = run_rules(cfg, nullptr);
  ASSERT_EQ(ids(f), Ids{"AC004"}) << dump(f);
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(f[0].where.field, "listeners.admin");
}

TEST_F(K8s, AdminBeyondLoopbackAdmittedOnlyFromANamespaceSelectorByPortNameIsFine) {
  cfg.listeners.admin = "0.0.0.0:9901";
  const auto f = check(baseline());
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST_F(K8s, AdminOpenByNumberNameEveryPortOrEveryNamespaceIsAnError) {
  cfg.listeners.admin = "[::]:9901";
  const std::string sel =
      "        - namespaceSelector:\n            matchLabels: { kubernetes.io/metadata.name: monitoring }\n";
  for (const auto& text : {
           edit(baseline(), sel, "        - ipBlock: { cidr: 0.0.0.0/0 }\n"),
           edit(baseline(), sel, "        - ipBlock: { cidr: \"::/0\" }\n"),
           edit(baseline(), sel, "        - namespaceSelector: {}\n"),
           edit(baseline(), "        - { port: 8443, protocol: TCP }\n",
                "        - { port: 9901, protocol: TCP }\n"),
           edit(baseline(), "    - ports:\n        - { port: 8443, protocol: TCP }\n", "    - {}\n"),
           // The only NetworkPolicy is in another namespace: K8S007 too.
           edit(baseline(), "metadata: { name: phigate, namespace: phigate }\nspec:\n  podSelector:",
                "metadata: { name: phigate, namespace: default }\nspec:\n  podSelector:"),
       }) {
    const auto f = check(text);
    std::vector<Finding> ac;
    for (const auto& x : f) {
      if (x.rule->id == "AC004") ac.push_back(x);
    }
    ASSERT_EQ(ac.size(), 1u) << dump(f);
    EXPECT_EQ(ac[0].severity, Severity::Error);
    EXPECT_NE(ac[0].message.find("Deployment phigate/phigate"), std::string::npos) << ac[0].message;
  }
  // A narrow CIDR is an allowlist.
  const auto narrow = check(edit(baseline(), sel, "        - ipBlock: { cidr: 10.9.0.0/24 }\n"));
  EXPECT_TRUE(narrow.empty()) << dump(narrow);
}

TEST_F(K8s, AdminInsideAPortRangeOrOnTheHostNetworkIsOpen) {
  cfg.listeners.admin = "0.0.0.0:9901";
  const auto range = check(edit(baseline(), "        - { port: 8443, protocol: TCP }\n",
                                "        - { port: 8000, endPort: 9999 }\n"));
  ASSERT_EQ(ids(range), Ids{"AC004"}) << dump(range);
  EXPECT_EQ(range[0].severity, Severity::Error);
  const auto below = check(edit(baseline(), "        - { port: 8443, protocol: TCP }\n",
                                "        - { port: 8000, endPort: 9900 }\n"));
  EXPECT_TRUE(below.empty()) << dump(below);
  // NetworkPolicies do not apply to host-network pods; sharing the node's namespaces is K8S004.
  const auto host = check(edit(baseline(), "      serviceAccountName: phigate\n",
                               "      serviceAccountName: phigate\n      hostNetwork: true\n"));
  EXPECT_EQ(ids(host), (Ids{"AC004", "K8S004"})) << dump(host);
  for (const auto& f : host) EXPECT_EQ(f.severity, Severity::Error);
}

TEST_F(K8s, AdminBeyondLoopbackWithoutAPhigateDeploymentIsAWarning) {
  cfg.listeners.admin = "10.0.0.5:9901";
  const auto f = check(edit(edit(baseline(), "image: phigate:0.1.0", "image: nginx:1"), "\"run\", ", ""));
  ASSERT_EQ(ids(f), Ids{"AC004"}) << dump(f);
  EXPECT_EQ(f[0].severity, Severity::Warning);
}

// ---- fixtures, as the CLI loads them ----

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

/// Stand-ins for the generated materials: these rules read no certificate or key, and
/// load_config only needs the files to exist.
const std::string& materials() {
  static const std::string dir = [] {
    const auto d = fs::temp_directory_path() / ("phigate-k8s-rules-" + std::to_string(::getpid()));
    fs::create_directories(d / "audit-keys");
    fs::create_directories(d / "audit");
    for (const char* f :
         {"server.crt", "server.key", "server-ca.crt", "ca.crt", "ca.crl", "audit-keys/k1.key"})
      std::ofstream(d / f) << "x\n";
    return d.string();
  }();
  return dir;
}

std::optional<config::Config> load_config(const std::string& file,
                                          const std::vector<std::pair<std::string, std::string>>& rewrite) {
  std::string text = read(file);
  for (const auto& [from, to] : rewrite) text = replace_all(text, from, to);
  config::Diagnostics diag;
  auto cfg = config::load_config_text(text, file, diag);
  EXPECT_TRUE(cfg.has_value()) << diag.to_string();
  return cfg;
}

/// The folder's config (@GEN@ pointing at stand-ins) and, when its `args` passes --manifests,
/// the workloads under it, as the CLI loads them.
std::vector<Finding> run_fixture(const std::string& dir, bool force_manifests = false) {
  auto cfg = load_config(dir + "/phigate.yaml", {{"@GEN@", materials()}});
  if (!cfg) return {};
  const auto args = read(dir + "/args");
  std::vector<std::string> paths;
  std::istringstream lines(args);
  std::string prev, line;
  while (std::getline(lines, line)) {
    if (prev == "--manifests") paths.push_back(dir + "/" + line);
    prev = line;
  }
  if (force_manifests) paths = {dir + "/manifests"};
  if (paths.empty()) return run_rules(*cfg, nullptr);
  const auto wl = ingress::load_workloads(paths);
  EXPECT_EQ(wl.diagnostics.entries().size(), 0u) << wl.diagnostics.to_string();
  return run_rules(*cfg, &wl);
}

TEST(K8sFixtures, CleanIsCleanWithAndWithoutManifests) {
  EXPECT_TRUE(run_fixture(kFixtures + "/clean").empty());
  const auto f = run_fixture(kFixtures + "/clean", true);
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(K8sFixtures, EachRuleFixtureYieldsExactlyItsRule) {
  for (const char* id :
       {"AC004", "K8S001", "K8S002", "K8S003", "K8S004", "K8S005", "K8S006", "K8S007", "K8S008", "K8S009"}) {
    SCOPED_TRACE(id);
    const auto dir = kFixtures + "/rules/" + id;
    ASSERT_TRUE(fs::exists(dir + "/args"));
    const auto f = run_fixture(dir);
    std::set<std::string> got;
    for (const auto& x : f) got.emplace(x.rule->id);
    EXPECT_EQ(got, std::set<std::string>{id}) << dump(f);
  }
}

TEST(K8sFixtures, DockerBasePassesItsOwnCheck) {
  const std::string base = std::string(PHIGATE_SOURCE_DIR) + "/docker/base";
  // The pod's mounts, as tests/integration/check_docker_test.cpp rewrites them.
  const auto& m = materials();
  auto cfg = load_config(base + "/phigate.yaml", {{"/etc/phigate/tls/default/tls.crt", m + "/server.crt"},
                                                  {"/etc/phigate/tls/default/tls.key", m + "/server.key"},
                                                  {"/etc/phigate/tls/webhook/tls.crt", m + "/server.crt"},
                                                  {"/etc/phigate/tls/webhook/tls.key", m + "/server.key"},
                                                  {"/etc/phigate/audit-keys", m + "/audit-keys"},
                                                  {"/var/lib/phigate/audit", m + "/audit"}});
  ASSERT_TRUE(cfg.has_value());
  const auto wl = ingress::load_workloads({base});
  EXPECT_EQ(wl.diagnostics.entries().size(), 0u) << wl.diagnostics.to_string();
  ASSERT_EQ(wl.workloads.size(), 1u);
  const auto f = run_rules(*cfg, &wl);
  // Not even a warning: admin on 0.0.0.0 is admitted from the monitoring namespace only, and the
  // ClusterRole's cluster-wide Secret read matches `namespaces: all`.
  EXPECT_TRUE(f.empty()) << dump(f);
}

}  // namespace
}  // namespace phigate::check
