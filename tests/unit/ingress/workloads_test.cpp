// load_workloads: deployment manifests (workloads, RBAC, NetworkPolicy, PodDisruptionBudget) for
// `phigate check --manifests`, with lines, Lists, aliases, hostile input and the folder walk.
#include "phigate/ingress/workloads.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace phigate::ingress {
namespace {

namespace fs = std::filesystem;

Workloads load(const std::string& text) {
  Workloads w;
  load_workloads_text(text, "m.yaml", w);
  return w;
}

std::string errors(const Workloads& w) {
  std::string out;
  for (const auto& d : w.diagnostics.entries()) out += d.to_string() + "\n";
  return out;
}

constexpr const char* kDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels: { app: web }
    matchExpressions:
      - { key: tier, operator: In, values: [front] }
  template:
    metadata:
      labels: { app: web, tier: front }
    spec:
      serviceAccountName: web-sa
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
      initContainers:
        - name: init
          image: busybox
          securityContext: { privileged: true }
      containers:
        - name: app
          image: registry.example/team/phigate:1.2@sha256:abc
          args: ["run", "--config", "/c.yaml"]
          ports:
            - { name: admin, containerPort: 9901 }
            - { containerPort: 8443 }
          securityContext:
            runAsUser: 0
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL], add: [NET_ADMIN] }
)";

TEST(Workloads, ReadsADeploymentWithLinesContainersAndSecurityContexts) {
  const auto w = load(kDeployment);
  ASSERT_EQ(w.workloads.size(), 1u) << errors(w);
  EXPECT_EQ(w.diagnostics.entries().size(), 0u) << errors(w);
  const auto& d = w.workloads[0];
  EXPECT_EQ(d.resource(), "Deployment shop/web");
  EXPECT_EQ(d.origin.file, "m.yaml");
  EXPECT_EQ(d.origin.doc, 0);
  EXPECT_EQ(d.replicas, 3);
  EXPECT_EQ(d.replicas_line, 7);
  EXPECT_EQ(d.service_account, "web-sa");
  EXPECT_TRUE(d.selector.matches(d.pod_labels));
  EXPECT_FALSE(d.selector.matches({{"app", "web"}, {"tier", "back"}}));
  EXPECT_EQ(d.pod_sc.run_as_non_root, true);
  EXPECT_EQ(d.pod_sc.run_as_user, 1000);
  ASSERT_EQ(d.containers.size(), 2u);
  EXPECT_TRUE(d.containers[0].init);
  EXPECT_EQ(d.containers[0].name, "init");
  EXPECT_EQ(d.containers[0].sc.privileged, true);
  const auto& c = d.containers[1];
  EXPECT_FALSE(c.init);
  EXPECT_EQ(c.line, 25);
  EXPECT_EQ(c.sc.line, 32);
  EXPECT_EQ(c.sc.run_as_user, 0);
  EXPECT_FALSE(c.sc.run_as_non_root.has_value());
  EXPECT_EQ(c.sc.allow_privilege_escalation, false);
  EXPECT_EQ(c.sc.read_only_root_filesystem, true);
  EXPECT_EQ(c.sc.caps_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(c.sc.caps_add, std::vector<std::string>{"NET_ADMIN"});
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0], (std::pair<std::string, std::int32_t>{"admin", 9901}));
  EXPECT_EQ(c.ports[1], (std::pair<std::string, std::int32_t>{"", 8443}));
  EXPECT_EQ(c.args.size(), 3u);
}

TEST(Workloads, DefaultsReplicasToOneAndServiceAccountToDefault) {
  const auto w = load(
      "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: { name: db }\nspec:\n  template:\n    spec:\n"
      "      containers: [{ name: db, image: pg }]\n---\napiVersion: apps/v1\nkind: DaemonSet\n"
      "metadata: { name: agent, namespace: ops }\nspec: { template: { spec: { containers: [] } } }\n");
  ASSERT_EQ(w.workloads.size(), 2u) << errors(w);
  EXPECT_EQ(w.workloads[0].replicas, 1);
  EXPECT_EQ(w.workloads[0].replicas_line, 0);
  EXPECT_EQ(w.workloads[0].meta.ns, "default");
  EXPECT_EQ(w.workloads[0].service_account, "default");
  EXPECT_FALSE(w.workloads[1].replicas.has_value());  // DaemonSet: one per node
  EXPECT_EQ(w.workloads[1].origin.doc, 1);
}

TEST(Workloads, ReadsRbacWithAggregationAndEverySubjectKind) {
  const auto w = load(R"(apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: agg, labels: { team: x } }
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: { rbac.example/aggregate-to-agg: "true" }
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ["one"]
    verbs: ["get"]
  - nonResourceURLs: ["*"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: b, namespace: apps }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agg }
subjects:
  - { kind: ServiceAccount, name: sa1 }
  - { kind: ServiceAccount, name: sa2, namespace: other }
  - { kind: Group, name: "system:serviceaccounts" }
  - { kind: User, name: alice }
)");
  ASSERT_EQ(w.roles.size(), 1u) << errors(w);
  ASSERT_EQ(w.bindings.size(), 1u) << errors(w);
  const auto& r = w.roles[0];
  EXPECT_TRUE(r.cluster);
  EXPECT_EQ(r.resource(), "ClusterRole agg");
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(r.rules[0].line, 8);
  EXPECT_EQ(r.rules[0].resource_names, std::vector<std::string>{"one"});
  EXPECT_EQ(r.rules[1].non_resource_urls, std::vector<std::string>{"*"});
  ASSERT_EQ(r.aggregation.size(), 1u);
  EXPECT_TRUE(r.aggregation[0].matches({{"rbac.example/aggregate-to-agg", "true"}}));
  const auto& b = w.bindings[0];
  EXPECT_FALSE(b.cluster);
  EXPECT_EQ(b.resource(), "RoleBinding apps/b");
  EXPECT_EQ(b.role_kind, "ClusterRole");
  EXPECT_EQ(b.role_name, "agg");
  EXPECT_EQ(b.role_ref_line, 18);
  // A RoleBinding's ServiceAccount without namespace is in the binding's namespace.
  const std::vector<std::pair<std::string, std::string>> sas = {{"apps", "sa1"}, {"other", "sa2"}};
  EXPECT_EQ(b.service_accounts, sas);
  EXPECT_EQ(b.groups, std::vector<std::string>{"system:serviceaccounts"});
  EXPECT_EQ(b.users, std::vector<std::string>{"alice"});
}

TEST(Workloads, ReadsNetworkPoliciesPeersAndPorts) {
  const auto w = load(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np, namespace: apps }
spec:
  podSelector: {}
  ingress:
    - {}
    - from:
        - ipBlock: { cidr: 10.0.0.0/8 }
        - namespaceSelector: {}
        - namespaceSelector: { matchLabels: { x: y } }
          podSelector: { matchLabels: { a: b } }
      ports:
        - { port: 9901 }
        - { port: admin }
        - { protocol: TCP }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: egress-only, namespace: apps }
spec:
  podSelector: { matchLabels: { a: b } }
  policyTypes: [Egress]
)");
  ASSERT_EQ(w.network_policies.size(), 2u) << errors(w);
  const auto& np = w.network_policies[0];
  EXPECT_TRUE(np.ingress_type);  // absent policyTypes: Ingress
  EXPECT_TRUE(np.pod_selector.empty());
  EXPECT_TRUE(np.pod_selector.matches({}));
  ASSERT_EQ(np.ingress.size(), 2u);
  EXPECT_TRUE(np.ingress[0].from.empty());
  EXPECT_TRUE(np.ingress[0].ports.empty());
  const auto& from = np.ingress[1].from;
  ASSERT_EQ(from.size(), 3u);
  EXPECT_EQ(from[0].cidr, "10.0.0.0/8");
  EXPECT_FALSE(from[0].selector);
  EXPECT_TRUE(from[1].selector);
  EXPECT_TRUE(from[1].whole_cluster);
  EXPECT_TRUE(from[2].selector);
  EXPECT_FALSE(from[2].whole_cluster);
  EXPECT_EQ(np.ingress[1].ports, (std::vector<std::string>{"9901", "admin", "*"}));
  EXPECT_FALSE(w.network_policies[1].ingress_type);
}

TEST(Workloads, ReadsPodDisruptionBudgetsAndAPdbWithoutSelectorSelectsNothing) {
  const auto w = load(
      "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: { name: p, namespace: a }\n"
      "spec: { minAvailable: 1, selector: { matchLabels: { app: web } } }\n---\n"
      "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: { name: q, namespace: a }\n"
      "spec: { minAvailable: 1 }\n");
  ASSERT_EQ(w.pdbs.size(), 2u) << errors(w);
  EXPECT_TRUE(w.pdbs[0].selector.matches({{"app", "web"}}));
  EXPECT_FALSE(w.pdbs[1].selector.matches({{"app", "web"}}));
}

TEST(Workloads, ListItemsAreReadAndOtherKindsAndApiVersionsAreIgnoredSilently) {
  const auto w = load(R"(apiVersion: v1
kind: List
items:
  - apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: { name: p }
    spec: { selector: { matchLabels: { a: b } } }
  - apiVersion: v1
    kind: ConfigMap
    metadata: { name: c }
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [a.yaml]
---
apiVersion: extensions/v1beta1
kind: Deployment
metadata: { name: old }
---
listeners: { admin: "127.0.0.1:9901" }
)");
  EXPECT_EQ(w.diagnostics.entries().size(), 0u) << errors(w);
  ASSERT_EQ(w.pdbs.size(), 1u);
  EXPECT_EQ(w.pdbs[0].origin.item, 0);
  EXPECT_EQ(w.pdbs[0].origin.line, 4);
  EXPECT_EQ(w.pdbs[0].origin.where(), "m.yaml#0.items[0]");
  EXPECT_TRUE(w.workloads.empty());
}

TEST(Workloads, AnchorsAndAliasesAreFollowed) {
  const auto w = load(R"(apiVersion: apps/v1
kind: Deployment
metadata: { name: a }
spec:
  template:
    spec:
      containers:
        - name: one
          securityContext: &sc { privileged: true, runAsUser: 0 }
        - name: two
          securityContext: *sc
)");
  ASSERT_EQ(w.workloads.size(), 1u) << errors(w);
  ASSERT_EQ(w.workloads[0].containers.size(), 2u);
  EXPECT_EQ(w.workloads[0].containers[1].sc.privileged, true);
  EXPECT_EQ(w.workloads[0].containers[1].sc.run_as_user, 0);
}

TEST(Workloads, AliasBombIsBoundedAndReportedNotExpanded) {
  // Nine levels of ten aliases: 10^9 nodes if expanded.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const auto p = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p;
    for (int k = 1; k < 10; ++k) text += ", " + p;
    text += "]\n";
  }
  text +=
      "kind: Deployment\napiVersion: apps/v1\nmetadata: { name: x }\nspec: { template: { spec: { containers: "
      "*a9 } } }\n";
  const auto start = std::chrono::steady_clock::now();
  const auto w = load(text);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(w.broken_files, 1u);
  EXPECT_TRUE(w.workloads.empty());
  ASSERT_EQ(w.diagnostics.entries().size(), 1u);
  EXPECT_EQ(w.diagnostics.entries()[0].severity, config::Severity::Error);
}

TEST(Workloads, WrongTypesAreErrorsNamingFileResourceAndField) {
  const auto w = load(R"(apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: many
  template:
    spec:
      containers:
        - name: app
          securityContext: { privileged: "yes" }
)");
  ASSERT_EQ(w.workloads.size(), 1u);
  const auto& e = w.diagnostics.entries();
  ASSERT_EQ(e.size(), 2u) << errors(w);
  EXPECT_EQ(e[0].file, "m.yaml#0");
  EXPECT_EQ(e[0].resource, "Deployment shop/web");
  EXPECT_EQ(e[0].field, "spec.replicas");
  EXPECT_EQ(e[0].line, 5);
  EXPECT_EQ(e[1].field, "spec.template.spec.containers[0].securityContext.privileged");
  // Unreadable privileged: treated as absent (not false), so K8S004 still reports the container.
  EXPECT_FALSE(w.workloads[0].containers[0].sc.privileged.has_value());
}

TEST(Workloads, AKeyGivenTwiceIsAnErrorWhateverItsPlace) {
  // The API server keeps one of them: reading the first would let `privileged: true` hide.
  const auto w = load(R"(apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    spec:
      containers:
        - name: app
          securityContext:
            privileged: false
            privileged: true
)");
  ASSERT_EQ(w.workloads.size(), 1u);
  const auto& e = w.diagnostics.entries();
  ASSERT_EQ(e.size(), 1u) << errors(w);
  EXPECT_EQ(e[0].field, "spec.template.spec.containers[0].securityContext.privileged");
  EXPECT_EQ(e[0].line, 11);
  EXPECT_EQ(e[0].resource, "Deployment default/web");
}

long max_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // KiB on Linux
}

TEST(Workloads, DeeplyNestedLongKeysStayBoundedInMemoryAndDiagnostics) {
  // 500 nested flow mappings under explicit 4 KiB keys (2 MB), a key given twice every 50 levels and
  // at the deepest. A path copied per level held key length x depth^2 / 2 (512 MB here; 4.9 GB for
  // a 7.9 MB file) and reported megabyte field paths.
  constexpr int kDepth = 500;
  const auto key = [](int level) { return std::string(4096, static_cast<char>('a' + level % 26)); };
  std::string inner = "v";
  for (int level = kDepth - 1; level >= 0; --level) {
    std::string m = "{ ? " + key(level) + " : " + inner;
    if (level % 50 == 0 || level == kDepth - 1) m += ", ? " + key(level) + " : w";
    inner = std::move(m) + " }";
  }
  const std::string text =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: deep }\nspec:\n  x: " + inner + "\n";
  const long rss_before = max_rss_kib();
  const auto start = std::chrono::steady_clock::now();
  const auto w = load(text);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_LT(max_rss_kib() - rss_before, 200L * 1024) << "KiB";
  ASSERT_EQ(w.workloads.size(), 1u);
  const auto& e = w.diagnostics.entries();
  ASSERT_EQ(e.size(), 11u);  // levels 499, 450, 400, ..., 0: deepest first (reported after its value)
  std::size_t total = 0;
  for (const auto& d : e) {
    total += d.to_string().size();
    EXPECT_LE(d.field.size(), 1024u);
    EXPECT_EQ(d.resource, "Deployment default/deep");
    EXPECT_EQ(d.message, "key given twice: the API server keeps only one of them");
  }
  EXPECT_LT(total, 64u * 1024);
  // Both ends of a long path: where it starts and the (shortened) key given twice.
  EXPECT_TRUE(e.front().field.starts_with("spec.x." + key(0).substr(0, 320) + "...")) << e.front().field;
  EXPECT_TRUE(e.front().field.ends_with("." + key(kDepth - 1).substr(0, 320) + "...")) << e.front().field;
  EXPECT_EQ(e.back().field, "spec.x." + key(0).substr(0, 320) + "...");
}

TEST(Workloads, KeysGivenTwiceAreReportedAHundredTimesAtMostWithoutCuttingUtf8) {
  std::string map = "{ ";
  for (int i = 0; i < 150; ++i) map += "a: 1, ";
  map += "b: 1 }";
  // A 401-byte key: cut at 320 bytes would split the 2-byte e-acute at bytes 319-320.
  std::string long_key = "x";
  for (int i = 0; i < 200; ++i) long_key += "\xc3\xa9";
  auto w = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec:\n  m: " + map + "\n  " +
                long_key + ": 1\n  " + long_key + ": 2\n");
  ASSERT_EQ(w.workloads.size(), 1u);
  const auto& e = w.diagnostics.entries();
  ASSERT_EQ(e.size(), 101u);
  EXPECT_EQ(e[0].field, "spec.m.a");
  EXPECT_EQ(e[100].message, "more keys given twice: only the first 100 are reported");
  w = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec:\n  " + long_key + ": 1\n  " +
           long_key + ": 2\n");
  ASSERT_EQ(w.diagnostics.entries().size(), 1u);
  EXPECT_EQ(w.diagnostics.entries()[0].field, "spec." + long_key.substr(0, 319) + "...");
}

TEST(Workloads, TypedListsHostNamespacesAndPortRanges) {
  const auto w = load(R"(apiVersion: apps/v1
kind: DeploymentList
items:
  - metadata: { name: a, namespace: n }
    spec:
      template:
        spec: { hostNetwork: true, hostPID: true, containers: [] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np }
spec:
  podSelector: {}
  ingress:
    - ports: [{ port: 9000, endPort: 9999 }]
)");
  ASSERT_EQ(w.workloads.size(), 1u) << errors(w);
  EXPECT_EQ(w.workloads[0].resource(), "Deployment n/a");
  EXPECT_EQ(w.workloads[0].origin.where(), "m.yaml#0.items[0]");
  EXPECT_TRUE(w.workloads[0].host_network);
  EXPECT_TRUE(w.workloads[0].host_pid);
  EXPECT_FALSE(w.workloads[0].host_ipc);
  ASSERT_EQ(w.network_policies.size(), 1u);
  EXPECT_EQ(w.network_policies[0].ingress.at(0).ports, std::vector<std::string>{"9000-9999"});
}

TEST(Workloads, BrokenYamlContributesNothing) {
  const auto w = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: [\n");
  EXPECT_EQ(w.broken_files, 1u);
  EXPECT_TRUE(w.workloads.empty());
  ASSERT_EQ(w.diagnostics.entries().size(), 1u);
  EXPECT_NE(w.diagnostics.entries()[0].message.find("invalid YAML"), std::string::npos);
}

TEST(Workloads, WalksFoldersSortedSkippingDotNamesAndReadsSingleFilesWithTheirDigest) {
  const auto dir = fs::temp_directory_path() / ("phigate-workloads-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  fs::create_directories(dir / "..data");
  const auto write = [&](const fs::path& p, const std::string& name) {
    std::ofstream(p) << "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: { name: " << name
                     << " }\nspec: { selector: {} }\n";
  };
  write(dir / "b.yaml", "b");
  write(dir / "sub" / "a.yml", "a");
  write(dir / ".hidden.yaml", "hidden");
  write(dir / "..data" / "x.yaml", "x");
  write(dir / "notes.txt", "txt");
  std::ofstream(dir / "abc.yaml") << "abc";  // a scalar document: nothing
  const auto w = load_workloads({dir.string(), (dir / "b.yaml").string()});
  EXPECT_EQ(w.diagnostics.entries().size(), 0u) << errors(w);
  std::vector<std::string> names;
  for (const auto& p : w.pdbs) names.push_back(p.meta.name);
  EXPECT_EQ(names, (std::vector<std::string>{"b", "a", "b"}));
  const auto missing = load_workloads({(dir / "nope").string()});
  EXPECT_EQ(missing.broken_files, 1u);
  EXPECT_EQ(missing.diagnostics.entries().size(), 1u);
  fs::remove_all(dir);
}

TEST(Workloads, DockerBaseManifestsLoadWithoutDiagnostics) {
  const auto w = load_workloads({std::string(PHIGATE_SOURCE_DIR) + "/docker/base"});
  EXPECT_EQ(w.diagnostics.entries().size(), 0u) << errors(w);
  EXPECT_EQ(w.broken_files, 0u);
  ASSERT_EQ(w.workloads.size(), 1u);
  EXPECT_EQ(w.workloads[0].resource(), "Deployment phigate/phigate");
  EXPECT_EQ(w.workloads[0].service_account, "phigate");
  EXPECT_EQ(w.roles.size(), 2u);
  EXPECT_EQ(w.bindings.size(), 2u);
  EXPECT_EQ(w.network_policies.size(), 1u);
  EXPECT_EQ(w.pdbs.size(), 1u);
}

}  // namespace
}  // namespace phigate::ingress
