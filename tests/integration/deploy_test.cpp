// The deployment in docker/: `kubectl kustomize docker/` renders, and every security property the
// manifests promise is asserted one by one on the rendered objects (pod security, probes, drain,
// Services, PodDisruptionBudget, NetworkPolicy, RBAC least privilege, the admission webhook and its
// certificate); the ConfigMap's phigate.yaml passes `phigate validate`; the image built by
// docker/build-image.sh (buildah) has no shell and the promised config; `phigate probe` (the
// image's HEALTHCHECK) exits 0 only on a 200.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
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
namespace dom = simdjson::dom;
namespace fs = std::filesystem;

constexpr const char* kKubectl = "/usr/bin/kubectl";
constexpr const char* kPython = "/usr/bin/python3";
const std::string kDocker = std::string(PHIGATE_SOURCE_DIR) + "/docker";

// --- reading the rendered objects ---------------------------------------------------------------

std::optional<dom::element> at(dom::element e, std::string_view pointer) {
  dom::element out;
  if (e.at_pointer(pointer).get(out) != simdjson::SUCCESS) return std::nullopt;
  return out;
}
std::string str(dom::element e, std::string_view pointer) {
  std::string_view s;
  auto v = at(e, pointer);
  if (!v || v->get_string().get(s) != simdjson::SUCCESS) return "<missing " + std::string(pointer) + ">";
  return std::string(s);
}
std::optional<std::int64_t> num(dom::element e, std::string_view pointer) {
  std::int64_t n = 0;
  auto v = at(e, pointer);
  if (!v || v->get_int64().get(n) != simdjson::SUCCESS) return std::nullopt;
  return n;
}
std::optional<bool> flag(dom::element e, std::string_view pointer) {
  bool b = false;
  auto v = at(e, pointer);
  if (!v || v->get_bool().get(b) != simdjson::SUCCESS) return std::nullopt;
  return b;
}
std::vector<dom::element> items(dom::element e, std::string_view pointer) {
  std::vector<dom::element> out;
  dom::array a;
  auto v = at(e, pointer);
  if (v && v->get_array().get(a) == simdjson::SUCCESS) {
    for (dom::element x : a) out.push_back(x);
  }
  return out;
}
std::vector<std::string> strings(dom::element e, std::string_view pointer) {
  std::vector<std::string> out;
  for (auto x : items(e, pointer)) {
    std::string_view s;
    out.emplace_back(x.get_string().get(s) == simdjson::SUCCESS ? std::string(s) : "<not a string>");
  }
  return out;
}

/// `kubectl kustomize DIR`, converted to a JSON array of objects by python3-yaml (no JSON or YAML
/// parser of our own), parsed with simdjson.
class Rendered {
 public:
  /// Empty error: rendered. Otherwise why not (and `skip` when a tool is missing).
  std::string render(const std::string& dir, bool& skip) {
    skip = false;
    for (const char* tool : {kKubectl, kPython}) {
      if (::access(tool, X_OK) != 0) {
        skip = true;
        return std::string(tool) + " is not installed";
      }
    }
    auto k = run({kKubectl, "kustomize", dir}, {.timeout = 30s});
    if (k.exit_code != 0) return "kubectl kustomize " + dir + " failed: " + k.err;
    yaml_ = k.out;
    auto j = run({kPython, "-c",
                  "import sys, json, yaml\n"
                  "json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)\n"},
                 {.timeout = 30s, .stdin_data = k.out});
    if (j.exit_code != 0) {
      if (j.err.find("No module named 'yaml'") != std::string::npos) {
        skip = true;
        return "python3-yaml is not installed";
      }
      return "YAML to JSON failed: " + j.err;
    }
    json_ = simdjson::padded_string(j.out);
    dom::array a;
    if (parser_.parse(json_).get(a) != simdjson::SUCCESS) return "not a JSON array";
    for (dom::element o : a) objects_.push_back(o);
    return {};
  }
  const std::vector<dom::element>& objects() const { return objects_; }
  std::vector<dom::element> of_kind(std::string_view kind) const {
    std::vector<dom::element> out;
    for (auto o : objects_) {
      if (str(o, "/kind") == kind) out.push_back(o);
    }
    return out;
  }
  std::optional<dom::element> find(std::string_view kind, std::string_view name) const {
    for (auto o : objects_) {
      if (str(o, "/kind") == kind && str(o, "/metadata/name") == name) return o;
    }
    return std::nullopt;
  }
  const std::string& yaml() const { return yaml_; }

 private:
  std::string yaml_;
  simdjson::padded_string json_;
  dom::parser parser_;
  std::vector<dom::element> objects_;
};

/// Renders docker/ once per test (ctest runs each test in its own process).
class DeployManifests : public ::testing::Test {
 protected:
  void SetUp() override {
    bool skip = false;
    const auto error = r_.render(kDocker, skip);
    if (skip) GTEST_SKIP() << error;
    ASSERT_EQ(error, "");
  }
  dom::element get(std::string_view kind, std::string_view name) {
    auto o = r_.find(kind, name);
    if (!o) {
      ADD_FAILURE() << kind << " " << name << " is not rendered";
      return r_.objects().front();
    }
    return *o;
  }
  dom::element container() {
    auto cs = items(get("Deployment", "phigate"), "/spec/template/spec/containers");
    EXPECT_EQ(cs.size(), 1u);
    return cs.front();
  }
  /// containerPort of a named port of the container.
  std::int64_t port_named(const std::string& name) {
    for (auto p : items(container(), "/ports")) {
      if (str(p, "/name") == name) return num(p, "/containerPort").value_or(-1);
    }
    return -1;
  }
  /// The ConfigMap kustomize generated from docker/base/phigate.yaml ("phigate-config-<hash>").
  dom::element config_map() {
    const auto maps = r_.of_kind("ConfigMap");
    EXPECT_EQ(maps.size(), 1u);
    if (maps.empty()) return get("ConfigMap", "phigate-config");
    EXPECT_EQ(str(maps[0], "/metadata/name").rfind("phigate-config-", 0), 0u)
        << str(maps[0], "/metadata/name");
    return maps[0];
  }
  /// The phigate.yaml the ConfigMap carries.
  std::string phigate_yaml() { return str(config_map(), "/data/phigate.yaml"); }
  Rendered r_;
};

// --- the manifests ------------------------------------------------------------------------------

TEST_F(DeployManifests, RendersEveryObjectOnceInNamespacePhigate) {
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Namespace", "phigate"},
      {"ServiceAccount", "phigate"},
      {"ClusterRole", "phigate"},
      {"ClusterRoleBinding", "phigate"},
      {"Role", "phigate"},
      {"RoleBinding", "phigate"},
      {"IngressClass", "phigate"},
      {"PersistentVolumeClaim", "phigate-audit"},
      {"Deployment", "phigate"},
      {"Service", "phigate"},
      {"Service", "phigate-webhook"},
      {"PodDisruptionBudget", "phigate"},
      {"NetworkPolicy", "phigate"},
      {"ValidatingWebhookConfiguration", "phigate"},
      {"Certificate", "phigate-webhook"},
      {"Certificate", "phigate-default"},
  };
  for (const auto& [kind, name] : expected) {
    int n = 0;
    for (auto o : r_.objects()) n += str(o, "/kind") == kind && str(o, "/metadata/name") == name;
    EXPECT_EQ(n, 1) << kind << " " << name;
  }
  const std::set<std::string> cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                                                "IngressClass", "ValidatingWebhookConfiguration"};
  for (auto o : r_.objects()) {
    const auto kind = str(o, "/kind");
    if (cluster_scoped.count(kind)) {
      EXPECT_FALSE(at(o, "/metadata/namespace")) << kind << " is cluster-scoped";
    } else {
      EXPECT_EQ(str(o, "/metadata/namespace"), "phigate") << kind << " " << str(o, "/metadata/name");
    }
  }
  // The pods mount the generated ConfigMap (its hashed name), so a change to phigate.yaml rolls them.
  std::string mounted_config;
  for (auto v : items(get("Deployment", "phigate"), "/spec/template/spec/volumes")) {
    if (str(v, "/name") == "config") mounted_config = str(v, "/configMap/name");
  }
  EXPECT_EQ(mounted_config, str(config_map(), "/metadata/name"));
  // No key material is ever part of the manifests: Secrets are made by cert-manager or by hand.
  EXPECT_TRUE(r_.of_kind("Secret").empty());
  EXPECT_EQ(str(get("IngressClass", "phigate"), "/spec/controller"), "phigate.io/ingress-controller");
  EXPECT_EQ(str(get("Namespace", "phigate"), "/metadata/labels/pod-security.kubernetes.io~1enforce"),
            "restricted");
}

TEST_F(DeployManifests, PodRunsUnprivilegedWithReadOnlyRoot) {
  const auto d = get("Deployment", "phigate");
  const auto pod = *at(d, "/spec/template/spec");
  EXPECT_EQ(flag(pod, "/securityContext/runAsNonRoot"), true);
  EXPECT_EQ(num(pod, "/securityContext/runAsUser"), 10001);
  EXPECT_EQ(str(pod, "/securityContext/seccompProfile/type"), "RuntimeDefault");
  for (const char* host : {"/hostNetwork", "/hostPID", "/hostIPC"}) {
    EXPECT_NE(flag(pod, host), true) << host;
  }
  const auto c = container();
  EXPECT_EQ(flag(c, "/securityContext/runAsNonRoot"), true);
  EXPECT_EQ(num(c, "/securityContext/runAsUser"), 10001);
  EXPECT_EQ(flag(c, "/securityContext/readOnlyRootFilesystem"), true);
  EXPECT_EQ(flag(c, "/securityContext/allowPrivilegeEscalation"), false);
  EXPECT_NE(flag(c, "/securityContext/privileged"), true);
  EXPECT_EQ(strings(c, "/securityContext/capabilities/drop"), std::vector<std::string>{"ALL"});
  EXPECT_TRUE(items(c, "/securityContext/capabilities/add").empty());
  EXPECT_EQ(str(c, "/securityContext/seccompProfile/type"), "RuntimeDefault");
  // Every port is unprivileged (no NET_BIND_SERVICE), none is a host port.
  for (auto p : items(c, "/ports")) {
    EXPECT_GT(num(p, "/containerPort").value_or(0), 1024) << str(p, "/name");
    EXPECT_FALSE(at(p, "/hostPort")) << str(p, "/name");
  }
  for (const char* r : {"/resources/requests/cpu", "/resources/requests/memory", "/resources/limits/cpu",
                        "/resources/limits/memory"}) {
    EXPECT_TRUE(at(c, r)) << r;
  }
  EXPECT_NE(str(c, "/image").find(':'), std::string::npos) << "a tag or digest, never implicit :latest";
  EXPECT_EQ(str(c, "/image").find(":latest"), std::string::npos);
}

TEST_F(DeployManifests, PodIdentityAndServiceAccountToken) {
  const auto pod = *at(get("Deployment", "phigate"), "/spec/template/spec");
  EXPECT_EQ(str(pod, "/serviceAccountName"), "phigate");
  EXPECT_EQ(flag(pod, "/automountServiceAccountToken"), true);
  EXPECT_NE(flag(get("ServiceAccount", "phigate"), "/automountServiceAccountToken"), false);
  std::map<std::string, std::string> env;
  for (auto e : items(container(), "/env")) env[str(e, "/name")] = str(e, "/valueFrom/fieldRef/fieldPath");
  EXPECT_EQ(env["POD_NAME"], "metadata.name");
  EXPECT_EQ(env["POD_NAMESPACE"], "metadata.namespace");
}

TEST_F(DeployManifests, ReplicasSpreadAcrossNodesAndSurviveDisruption) {
  const auto d = get("Deployment", "phigate");
  EXPECT_GE(num(d, "/spec/replicas").value_or(0), 2);
  EXPECT_EQ(num(d, "/spec/strategy/rollingUpdate/maxUnavailable"), 0);
  const auto terms =
      items(d, "/spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution");
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(str(terms[0], "/topologyKey"), "kubernetes.io/hostname");
  const auto pod_label = str(d, "/spec/template/metadata/labels/app.kubernetes.io~1name");
  EXPECT_EQ(str(terms[0], "/labelSelector/matchLabels/app.kubernetes.io~1name"), pod_label);
  const auto pdb = get("PodDisruptionBudget", "phigate");
  EXPECT_EQ(num(pdb, "/spec/minAvailable"), 1);
  EXPECT_EQ(str(pdb, "/spec/selector/matchLabels/app.kubernetes.io~1name"), pod_label);
}

/// "30s" / "1m" / "500ms" → seconds, rounded up (the config's duration forms used here).
std::int64_t seconds_of(const std::string& d) {
  if (d.size() > 2 && d.substr(d.size() - 2) == "ms") return (std::stoll(d) + 999) / 1000;
  if (!d.empty() && d.back() == 'm') return std::stoll(d) * 60;
  return std::stoll(d);
}

TEST_F(DeployManifests, ProbesOnAdminPortAndGraceCoversDrain) {
  const auto c = container();
  EXPECT_EQ(str(c, "/readinessProbe/httpGet/path"), "/readyz");
  EXPECT_EQ(str(c, "/livenessProbe/httpGet/path"), "/healthz");
  EXPECT_EQ(port_named(str(c, "/readinessProbe/httpGet/port")), 9901);
  EXPECT_EQ(port_named(str(c, "/livenessProbe/httpGet/port")), 9901);
  EXPECT_NE(phigate_yaml().find("admin: \"0.0.0.0:9901\""), std::string::npos);

  // timeouts.drain from the ConfigMap; the grace period must cover the preStop sleep plus it.
  const auto yaml = phigate_yaml();
  const auto at_drain = yaml.find("drain: ");
  ASSERT_NE(at_drain, std::string::npos) << "the ConfigMap sets timeouts.drain explicitly";
  const auto drain =
      seconds_of(yaml.substr(at_drain + 7, yaml.find_first_of(" \n", at_drain + 7) - at_drain - 7));
  const auto pre_stop = num(c, "/lifecycle/preStop/sleep/seconds");
  ASSERT_TRUE(pre_stop) << "preStop is the kubelet's sleep action (the image has no shell)";
  EXPECT_FALSE(at(c, "/lifecycle/preStop/exec")) << "no shell in the image to exec anything";
  const auto grace = num(get("Deployment", "phigate"), "/spec/template/spec/terminationGracePeriodSeconds");
  ASSERT_TRUE(grace);
  EXPECT_GT(*grace, *pre_stop + drain);
}

TEST_F(DeployManifests, ServicesExposeTrafficKeepClientAddressAndHideAdmin) {
  const auto lb = get("Service", "phigate");
  EXPECT_EQ(str(lb, "/spec/type"), "LoadBalancer");
  EXPECT_EQ(str(lb, "/spec/externalTrafficPolicy"), "Local");
  std::map<std::int64_t, std::int64_t> ports;  // port → container port
  for (auto p : items(lb, "/spec/ports"))
    ports[num(p, "/port").value_or(-1)] = port_named(str(p, "/targetPort"));
  EXPECT_EQ(ports, (std::map<std::int64_t, std::int64_t>{{80, 8080}, {443, 8443}}));
  const auto wh = get("Service", "phigate-webhook");
  EXPECT_EQ(str(wh, "/spec/type"), "ClusterIP");
  const auto wh_ports = items(wh, "/spec/ports");
  ASSERT_EQ(wh_ports.size(), 1u);
  EXPECT_EQ(num(wh_ports[0], "/port"), 443);
  EXPECT_EQ(port_named(str(wh_ports[0], "/targetPort")), 9443);
  EXPECT_NE(phigate_yaml().find("listen: \"0.0.0.0:9443\""), std::string::npos);
  // The admin port is behind no Service.
  for (auto s : r_.of_kind("Service")) {
    for (auto p : items(s, "/spec/ports")) {
      EXPECT_NE(str(p, "/targetPort"), "admin");
      EXPECT_NE(num(p, "/targetPort"), 9901);
    }
  }
}

TEST_F(DeployManifests, NetworkPolicyAdmitsAdminOnlyFromMonitoring) {
  const auto np = get("NetworkPolicy", "phigate");
  EXPECT_EQ(str(np, "/spec/podSelector/matchLabels/app.kubernetes.io~1name"), "phigate");
  EXPECT_EQ(strings(np, "/spec/policyTypes"), std::vector<std::string>{"Ingress"});
  std::set<std::int64_t> open_to_all, admin_rules;
  for (auto rule : items(np, "/spec/ingress")) {
    std::set<std::int64_t> ports;
    for (auto p : items(rule, "/ports")) ports.insert(num(p, "/port").value_or(-1));
    EXPECT_FALSE(ports.empty()) << "every rule names its ports";
    const auto from = items(rule, "/from");
    if (from.empty()) open_to_all.insert(ports.begin(), ports.end());
    if (ports.count(9901)) {
      EXPECT_EQ(ports, std::set<std::int64_t>{9901}) << "the admin rule admits nothing else";
      ASSERT_EQ(from.size(), 1u);
      EXPECT_EQ(str(from[0], "/namespaceSelector/matchLabels/kubernetes.io~1metadata.name"), "monitoring");
      EXPECT_FALSE(at(from[0], "/ipBlock"));
      admin_rules.insert(9901);
    }
  }
  EXPECT_EQ(open_to_all, (std::set<std::int64_t>{8080, 8443}));
  EXPECT_EQ(admin_rules.size(), 1u);
}

TEST_F(DeployManifests, WebhookFailsClosedWithInjectedCa) {
  const auto vwc = get("ValidatingWebhookConfiguration", "phigate");
  EXPECT_EQ(str(vwc, "/metadata/annotations/cert-manager.io~1inject-ca-from"), "phigate/phigate-webhook");
  const auto hooks = items(vwc, "/webhooks");
  ASSERT_EQ(hooks.size(), 1u);
  const auto h = hooks[0];
  EXPECT_EQ(str(h, "/failurePolicy"), "Fail");
  EXPECT_EQ(str(h, "/sideEffects"), "None");
  EXPECT_EQ(strings(h, "/admissionReviewVersions"), std::vector<std::string>{"v1"});
  EXPECT_EQ(num(h, "/timeoutSeconds"), 10);
  EXPECT_EQ(str(h, "/clientConfig/service/name"), "phigate-webhook");
  EXPECT_EQ(str(h, "/clientConfig/service/namespace"), "phigate");
  EXPECT_EQ(str(h, "/clientConfig/service/path"), "/validate");
  EXPECT_FALSE(at(h, "/clientConfig/url"));
  const auto rules = items(h, "/rules");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(strings(rules[0], "/apiGroups"), std::vector<std::string>{"networking.k8s.io"});
  EXPECT_EQ(strings(rules[0], "/apiVersions"), std::vector<std::string>{"v1"});
  EXPECT_EQ(strings(rules[0], "/resources"), std::vector<std::string>{"ingresses"});
  EXPECT_EQ(strings(rules[0], "/operations"), (std::vector<std::string>{"CREATE", "UPDATE"}));
  // The certificate names what the API server dials, and lands where the pod reads it.
  const auto cert = get("Certificate", "phigate-webhook");
  const auto names = strings(cert, "/spec/dnsNames");
  EXPECT_NE(std::find(names.begin(), names.end(), "phigate-webhook.phigate.svc"), names.end());
  std::map<std::string, std::string> secret_of_volume;
  for (auto v : items(get("Deployment", "phigate"), "/spec/template/spec/volumes")) {
    secret_of_volume[str(v, "/name")] = str(v, "/secret/secretName");
  }
  EXPECT_EQ(secret_of_volume["webhook-tls"], str(cert, "/spec/secretName"));
  EXPECT_EQ(secret_of_volume["default-tls"], str(get("Certificate", "phigate-default"), "/spec/secretName"));
  EXPECT_EQ(secret_of_volume["audit-keys"], "phigate-audit-keys");
}

TEST(DeployOverlay, ManualWebhookCertNeedsNoCertManager) {
  Rendered r;
  bool skip = false;
  const auto error = r.render(kDocker + "/manual-webhook-cert", skip);
  if (skip) GTEST_SKIP() << error;
  ASSERT_EQ(error, "");
  ASSERT_TRUE(r.find("Deployment", "phigate"));
  ASSERT_TRUE(r.find("ValidatingWebhookConfiguration", "phigate"));
  for (auto o : r.objects()) {
    EXPECT_EQ(str(o, "/apiVersion").find("cert-manager.io"), std::string::npos) << str(o, "/kind");
  }
  EXPECT_EQ(r.yaml().find("cert-manager.io/inject-ca-from"), std::string::npos);
}

// --- RBAC ---------------------------------------------------------------------------------------

/// The rules granted to ServiceAccount phigate/phigate through the rendered bindings, as the test
/// API server's rule strings (FakeApiOptions::Identity, tests/kube/README.md: "verb,verb
/// group/resource [ns] [names]", "/x" for the core group), one per group/resource/names, sorted.
/// Errors (a wildcard, a non-resource URL, resourceNames on a cluster-wide grant, a binding to a
/// missing role) are added to `errors`.
std::vector<std::string> rules_for_service_account(const Rendered& r, std::vector<std::string>& errors) {
  std::map<std::string, std::set<std::string>> verbs;  // "group/resource [ns]" → verbs
  const auto add_rules = [&](dom::element role, const std::string& ns) {
    for (auto rule : items(role, "/rules")) {
      if (at(rule, "/nonResourceURLs")) errors.push_back("nonResourceURLs granted");
      std::string names;  // "a,b" from resourceNames
      for (const auto& n : strings(rule, "/resourceNames")) names += (names.empty() ? "" : ",") + n;
      if (!names.empty() && ns.empty()) errors.push_back("resourceNames in a cluster-wide grant");
      for (const auto& group : strings(rule, "/apiGroups")) {
        for (const auto& resource : strings(rule, "/resources")) {
          for (const auto& verb : strings(rule, "/verbs")) {
            if (group == "*" || resource == "*" || verb == "*" || resource.find('*') != std::string::npos)
              errors.push_back("wildcard in " + str(role, "/metadata/name"));
            verbs[group + "/" + resource + (ns.empty() ? "" : " " + ns) + (names.empty() ? "" : " " + names)]
                .insert(verb);
          }
        }
      }
    }
  };
  const auto is_ours = [](dom::element binding) {
    for (auto s : items(binding, "/subjects")) {
      if (str(s, "/kind") == "ServiceAccount" && str(s, "/name") == "phigate" &&
          str(s, "/namespace") == "phigate")
        return true;
    }
    return false;
  };
  for (auto b : r.of_kind("ClusterRoleBinding")) {
    if (!is_ours(b)) continue;
    auto role = r.find("ClusterRole", str(b, "/roleRef/name"));
    if (!role) errors.push_back("ClusterRoleBinding to missing ClusterRole " + str(b, "/roleRef/name"));
    if (role) add_rules(*role, "");
  }
  for (auto b : r.of_kind("RoleBinding")) {
    if (!is_ours(b)) continue;
    const auto ns = str(b, "/metadata/namespace");
    std::optional<dom::element> role;
    for (auto o : r.of_kind(str(b, "/roleRef/kind"))) {
      if (str(o, "/metadata/name") == str(b, "/roleRef/name") &&
          (str(o, "/kind") == "ClusterRole" || str(o, "/metadata/namespace") == ns))
        role = o;
    }
    if (!role) errors.push_back("RoleBinding to missing role " + str(b, "/roleRef/name"));
    if (role) add_rules(*role, ns);
  }
  std::vector<std::string> out;
  for (const auto& [what, vs] : verbs) {
    std::string line;
    for (const auto& v : vs) line += (line.empty() ? "" : ",") + v;
    out.push_back(line + " " + what);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(DeployManifests, RbacGrantsExactlyWhatPhigateUses) {
  std::vector<std::string> errors;
  const auto rules = rules_for_service_account(r_, errors);
  EXPECT_EQ(errors, std::vector<std::string>{});
  // Verbs sorted alphabetically. Anything more (or a verb fewer) fails: change it here only with
  // the code that makes the new request.
  const std::vector<std::string> expected_sorted = [] {
    std::vector<std::string> v = {
        "create coordination.k8s.io/leases phigate",
        "get,update coordination.k8s.io/leases phigate phigate-leader",
        "get /services phigate phigate",
        "create /events",
        "list,watch /secrets",
        "list,watch /configmaps",
        "list,watch /services",
        "list,watch networking.k8s.io/ingressclasses",
        "list,watch networking.k8s.io/ingresses",
        "patch networking.k8s.io/ingresses/status",
        "list,watch discovery.k8s.io/endpointslices",
    };
    std::sort(v.begin(), v.end());
    return v;
  }();
  EXPECT_EQ(rules, expected_sorted);
  // The namespaced rules name their object (create cannot be limited by name).
  const auto role = get("Role", "phigate");
  for (auto rule : items(role, "/rules")) {
    const auto vs = strings(rule, "/verbs");
    if (vs != std::vector<std::string>{"create"}) {
      EXPECT_EQ(strings(rule, "/resourceNames").size(), 1u) << str(rule, "/resources/0");
    }
  }
  EXPECT_NE(phigate_yaml().find("lease_name: phigate-leader"), std::string::npos);
  // Nothing bound cluster-wide to anyone but phigate's service account.
  for (auto b : r_.of_kind("ClusterRoleBinding")) {
    EXPECT_EQ(items(b, "/subjects").size(), 1u);
    EXPECT_EQ(str(b, "/roleRef/name"), "phigate");
  }
}

// --- the configuration --------------------------------------------------------------------------

/// Replaces every occurrence of `from` in `s` by `to`.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

TEST_F(DeployManifests, ConfigMapPassesValidateWithItsMountedFiles) {
  const auto yaml = phigate_yaml();
  ASSERT_FALSE(yaml.empty());
  const auto c = container();
  // Every file the config names lives under a volume mount of the container, and the container
  // runs exactly that file.
  std::vector<std::string> mounts;
  for (auto m : items(c, "/volumeMounts")) mounts.push_back(str(m, "/mountPath") + "/");
  const auto mounted = [&](const std::string& path) {
    return std::any_of(mounts.begin(), mounts.end(),
                       [&](const std::string& m) { return path.rfind(m, 0) == 0; });
  };
  for (const char* path : {"/etc/phigate/tls/default/tls.crt", "/etc/phigate/tls/default/tls.key",
                           "/etc/phigate/tls/webhook/tls.crt", "/etc/phigate/tls/webhook/tls.key",
                           "/etc/phigate/audit-keys", "/var/lib/phigate/audit"}) {
    EXPECT_NE(yaml.find(path), std::string::npos) << path;
    EXPECT_TRUE(mounted(std::string(path) + (std::string(path).find('.') == std::string::npos ? "/" : "")))
        << path << " is on no volume";
  }
  const auto args = strings(c, "/args");
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(args[0], "run");
  EXPECT_TRUE(mounted(args[2])) << args[2];
  EXPECT_EQ(fs::path(args[2]).filename(), "phigate.yaml");

  // The same file, its paths pointed into a temp dir holding the certificates and keys it names.
  TempDir dir;
  const auto root = dir.path();
  const auto ca = make_ca(root, "deploy test CA");
  for (const char* which : {"default", "webhook"}) {
    const auto leaf = make_leaf(root, ca, std::string("phigate-") + which, {"phigate-webhook.phigate.svc"});
    fs::create_directories(root + "/etc/phigate/tls/" + which);
    fs::copy_file(leaf.cert, root + "/etc/phigate/tls/" + which + "/tls.crt");
    fs::copy_file(leaf.key, root + "/etc/phigate/tls/" + which + "/tls.key");
  }
  // The key the config uses is the one docs/deployment.md tells the operator to create.
  EXPECT_NE(yaml.find("active_key: k1\n"), std::string::npos);
  EXPECT_NE(read_file(std::string(PHIGATE_SOURCE_DIR) + "/docs/deployment.md")
                .find("create secret generic phigate-audit-keys --from-file=k1.key=k1.key"),
            std::string::npos);
  // An audit key as docs/deployment.md makes one: `openssl rand -base64 32`.
  auto key = run({"openssl", "rand", "-base64", "32"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  dir.write("etc/phigate/audit-keys/k1.key", key.out);
  fs::create_directories(root + "/var/lib/phigate/audit");
  const auto local = replace_all(replace_all(yaml, "/etc/phigate/", root + "/etc/phigate/"),
                                 "/var/lib/phigate/", root + "/var/lib/phigate/");
  ASSERT_NE(local, yaml);
  const auto file = dir.write("phigate.yaml", local);
  auto v = run({bin("phigate"), "validate", "--config", file}, {.timeout = 30s});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find(": ok"), std::string::npos) << v.out;
}

// --- the image ----------------------------------------------------------------------------------

bool have(const char* tool) {
  auto r = run({"sh", "-c", std::string("command -v ") + tool}, {.timeout = 10s});
  return r.exit_code == 0;
}

TEST(DeployImage, BuildahImageHasNoShellRunsAsNonRootAndProbesHealth) {
  if (!have("buildah")) GTEST_SKIP() << "buildah is not installed (Debian 12: apt-get install buildah)";
  TempDir dir;
  const RunOptions opts{.timeout = 120s,
                        .env = {{"BUILDAH_ROOT", dir.path("storage")}, {"BUILDAH_RUNROOT", dir.path("run")}}};
  const std::string tag = "localhost/phigate:deploy-test";
  auto b = run({kDocker + "/build-image.sh", "--binary", bin("phigate"), "--tag", tag}, opts);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  const std::vector<std::string> bah = {"buildah",           "--storage-driver", "vfs",          "--root",
                                        dir.path("storage"), "--runroot",        dir.path("run")};
  auto cmd = [&](std::vector<std::string> args) {
    auto argv = bah;
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, opts);
  };
  auto inspect = cmd({"inspect", "--type", "image", tag});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  dom::parser parser;
  dom::element doc;
  ASSERT_EQ(parser.parse(inspect.out).get(doc), simdjson::SUCCESS);
  const auto config = *at(doc, "/Docker/config");
  EXPECT_EQ(str(config, "/User"), "10001:10001");
  EXPECT_EQ(strings(config, "/Entrypoint"), std::vector<std::string>{"/usr/local/bin/phigate"});
  EXPECT_EQ(strings(config, "/Cmd"),
            (std::vector<std::string>{"run", "--config", "/etc/phigate/config/phigate.yaml"}));
  EXPECT_EQ(
      strings(config, "/Healthcheck/Test"),
      (std::vector<std::string>{"CMD", "/usr/local/bin/phigate", "probe", "http://127.0.0.1:9901/healthz"}))
      << "exec form (CMD), never CMD-SHELL";
  EXPECT_GT(num(config, "/Healthcheck/Interval").value_or(0), 0);

  // The file system: no shell or any other program but phigate, and phigate runs from it alone.
  auto from = cmd({"from", tag});
  ASSERT_EQ(from.exit_code, 0) << from.err;
  const auto ctr = from.out.substr(0, from.out.find('\n'));
  auto mount = cmd({"mount", ctr});
  ASSERT_EQ(mount.exit_code, 0) << mount.err;
  const auto rootfs = mount.out.substr(0, mount.out.find('\n'));
  ASSERT_TRUE(fs::is_directory(rootfs)) << rootfs;
  for (const char* sh : {"bin/sh", "usr/bin/sh", "bin/bash", "bin/busybox", "usr/bin/env"}) {
    EXPECT_FALSE(fs::exists(fs::path(rootfs) / sh)) << sh;
  }
  std::vector<std::string> executables;
  for (const auto& e : fs::recursive_directory_iterator(rootfs)) {
    if (!e.is_regular_file() || e.is_symlink()) continue;
    const auto rel = fs::relative(e.path(), rootfs).string();
    if ((fs::status(e.path()).permissions() & fs::perms::owner_exec) != fs::perms::none &&
        rel.find(".so") == std::string::npos)
      executables.push_back(rel);
  }
  EXPECT_EQ(executables, std::vector<std::string>{"usr/local/bin/phigate"});
#if defined(__SANITIZE_ADDRESS__)
  // The ASan flavour puts a sanitized binary in the image; LeakSanitizer needs /proc, which the image
  // (and so the chroot) has not, and the sanitizer reads its options from /proc/self/environ.
  const bool can_run_inside = false;
#else
  const bool can_run_inside = true;
#endif
  if (::geteuid() == 0 && can_run_inside) {
    // chroot as uid 10001: the libraries ldd named are enough (no ld.so.cache in the image).
    auto version = run({"chroot", "--userspec=10001:10001", rootfs, "/usr/local/bin/phigate", "--version"},
                       {.timeout = 30s});
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_EQ(version.out.rfind("phigate ", 0), 0u) << version.out;
  }
  cmd({"umount", ctr});
  cmd({"rm", ctr});
}

// --- phigate probe ------------------------------------------------------------------------------

/// A one-connection-at-a-time HTTP stub on 127.0.0.1: answers each connection with `reply` (or
/// holds it open unanswered when `reply` is empty). Bounded: stops when destroyed.
class Stub {
 public:
  explicit Stub(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("stub: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Stub() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path = "/healthz") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_; }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      std::string request;
      char buf[1024];
      // Read the request head (bounded in bytes and time), then answer or hold.
      for (int i = 0; i < 100 && request.find("\r\n\r\n") == std::string::npos && request.size() < 8192;
           ++i) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 20) <= 0) continue;
        const auto n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      if (reply_.empty()) {
        for (int i = 0; i < 200 && !stop_; ++i) ::poll(nullptr, 0, 25);  // hold up to 5 s
      } else {
        (void)!::write(c, reply_.data(), reply_.size());
      }
      ::close(c);
    }
  }
  std::string reply_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

RunResult probe(std::vector<std::string> args) {
  args.insert(args.begin(), {bin("phigate"), "probe"});
  return run(args, {.timeout = 20s});
}

TEST(DeployProbe, ExitsZeroOnlyOn200) {
  Stub ok("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto r = probe({ok.url()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ok.connections(), 1);
  for (const char* reply :
       {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n", "HTTP/1.1 200"}) {
    Stub other(reply);
    auto o = probe({other.url()});
    EXPECT_EQ(o.exit_code, 1) << reply;
    EXPECT_NE(o.err.find("phigate probe: "), std::string::npos) << o.err;
  }
}

TEST(DeployProbe, RefusedAndSilentServersFailWithinTheTimeout) {
  std::uint16_t closed = 0;
  {
    Stub gone("x");
    closed = gone.port();
  }
  auto refused = probe({"http://127.0.0.1:" + std::to_string(closed) + "/healthz"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;

  Stub silent("");
  const auto start = std::chrono::steady_clock::now();
  auto r = probe({silent.url(), "--timeout", "1"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_LT(took, 4s);
}

TEST(DeployProbe, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"https://127.0.0.1:9901/healthz"},
                                             {"http://127.0.0.1/healthz"},
                                             {"http://127.0.0.1:9901/a b"},
                                             {"http://127.0.0.1:9901/", "--timeout", "0"},
                                             {"http://127.0.0.1:9901/", "--timeout", "x"},
                                             {"http://127.0.0.1:9901/", "http://127.0.0.1:9902/"},
                                             {"http://127.0.0.1:9901/", "--bogus"}}) {
    auto r = probe(args);
    EXPECT_EQ(r.exit_code, 2) << (args.empty() ? "" : args[0]) << " " << r.err;
  }
}

TEST(DeployProbe, ProbesARealPhigateAdminListener) {
  TempDir dir;
  const auto admin = free_port();
  const auto file = dir.write("phigate.yaml", "listeners:\n  http: [\"127.0.0.1:0\"]\n  admin: \"127.0.0.1:" +
                                                  std::to_string(admin) + "\"\n");
  auto pg = Process::start({bin("phigate"), "run", "--config", file});
  ASSERT_TRUE(wait_for_port("127.0.0.1", admin, 20s)) << pg.output();
  const auto base = "http://127.0.0.1:" + std::to_string(admin);
  auto healthy = probe({base + "/healthz"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.err;
  auto missing = probe({base + "/no-such-page"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("status 404"), std::string::npos) << missing.err;
  EXPECT_EQ(pg.terminate(), 0);
}

/// Waits until `done()` or the deadline, polling every 100 ms.
template <typename F>
bool eventually(F done, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

std::string base64_of(const std::string& file) {
  auto r = run({"openssl", "base64", "-A", "-in", file});
  if (r.exit_code != 0) throw std::runtime_error("openssl base64: " + r.err);
  return r.out;
}

TEST_F(DeployManifests, RbacMatchesWhatPhigateRequests) {
  std::vector<std::string> errors;
  const auto rules = rules_for_service_account(r_, errors);
  ASSERT_EQ(errors, std::vector<std::string>{});
  TempDir dir;
  FakeApiOptions options;
  options.identities = {{"admin", "admin-token", {}}, {"phigate", "phigate-token", rules}};
  auto api = FakeApiServer::start(dir, options);
  ASSERT_TRUE(api);

  const auto root = dir.path();
  const auto ca = make_ca(root, "deploy rbac CA");
  const auto app = make_leaf(root, ca, "app.example", {"app.example"});
  api->apply(R"(apiVersion: v1
kind: Service
metadata: {name: phigate, namespace: phigate}
spec: {type: LoadBalancer, ports: [{name: https, port: 443, targetPort: 8443}]}
status: {loadBalancer: {ingress: [{ip: 203.0.113.7}]}}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: phigate}
spec: {controller: phigate.io/ingress-controller}
---
apiVersion: v1
kind: Secret
metadata: {name: app-tls, namespace: app}
type: kubernetes.io/tls
data: {tls.crt: )" +
             base64_of(app.cert) + ", tls.key: " + base64_of(app.key) + R"(}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: app}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: app, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-upstream-headers, namespace: app}
data: {X-Env: prod}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  namespace: app
  annotations: {phigate.io/proxy-set-headers: app-upstream-headers}
spec:
  ingressClassName: phigate
  tls: [{hosts: [app.example], secretName: app-tls}]
  rules:
    - host: app.example
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad
  namespace: app
  annotations: {nginx.ingress.kubernetes.io/configuration-snippet: "return 200;"}
spec:
  ingressClassName: phigate
  rules:
    - host: bad.example
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}
)");

  // The cluster's phigate.yaml, on loopback, following the test API server as `phigate`.
  for (const char* which : {"default", "webhook"}) {
    const auto leaf = make_leaf(root, ca, std::string("phigate-") + which, {"127.0.0.1"});
    fs::create_directories(root + "/etc/phigate/tls/" + which);
    fs::copy_file(leaf.cert, root + "/etc/phigate/tls/" + which + "/tls.crt");
    fs::copy_file(leaf.key, root + "/etc/phigate/tls/" + which + "/tls.key");
  }
  auto key = run({"openssl", "rand", "-base64", "32"});
  ASSERT_EQ(key.exit_code, 0);
  dir.write("etc/phigate/audit-keys/k1.key", key.out);
  fs::create_directories(root + "/var/lib/phigate/audit");
  const auto admin = free_port();
  auto yaml = replace_all(replace_all(phigate_yaml(), "/etc/phigate/", root + "/etc/phigate/"),
                          "/var/lib/phigate/", root + "/var/lib/phigate/");
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"[\"0.0.0.0:8443\"]", "[\"127.0.0.1:0\"]"},
           {"[\"0.0.0.0:8080\"]", "[\"127.0.0.1:0\"]"},
           {"\"0.0.0.0:9901\"", "\"127.0.0.1:" + std::to_string(admin) + "\""},
           {"\"0.0.0.0:9443\"", "\"127.0.0.1:0\""},
           {"  namespaces: all\n",
            "  namespaces: all\n  kubernetes:\n    kubeconfig: " + api->kubeconfig("phigate") + "\n"}}) {
    ASSERT_NE(yaml.find(from), std::string::npos) << from;
    yaml = replace_all(yaml, from, to);
  }
  const auto file = dir.write("phigate.yaml", yaml);
  auto pg = Process::start({bin("phigate"), "run", "--config", file},
                           {.env = {{"POD_NAME", "phigate-test-0"}, {"POD_NAMESPACE", "phigate"}}});
  const auto readyz = "http://127.0.0.1:" + std::to_string(admin) + "/readyz";
  ASSERT_TRUE(eventually(
      [&] {
        return probe({readyz, "--timeout", "1"}).exit_code == 0;
      },
      30s))
      << pg.output();
  // The leader publishes status and the Event on the failing Ingress.
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& o : api->objects("Ingress", "app")) {
          if (o.find("\"app\"") != std::string::npos && o.find("203.0.113.7") != std::string::npos)
            return true;
        }
        return false;
      },
      20s))
      << pg.output();
  EXPECT_TRUE(eventually([&] { return !api->objects("Event", "app").empty(); }, 20s)) << pg.output();
  EXPECT_EQ(pg.terminate(std::chrono::milliseconds(40000)), 0) << pg.output();

  // Without the audit key (Secret phigate-audit-keys not created) it refuses to start rather than
  // serve unaudited.
  fs::remove(root + "/etc/phigate/audit-keys/k1.key");
  auto no_key = run({bin("phigate"), "run", "--config", file}, {.timeout = 30s});
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_NE(no_key.err.find("audit.keys"), std::string::npos) << no_key.err;

  // No request was refused, and every verb granted was used.
  std::map<std::string, std::set<std::string>> used;  // "group/resource[ ns]" → verbs, as in `rules`
  for (const auto& r : api->requests()) {
    if (r.user != "phigate") continue;
    EXPECT_NE(r.status, 403) << r.method << " " << r.path;
    used[r.group + "/" + r.resource].insert(r.verb);
    if (!r.ns.empty()) used[r.group + "/" + r.resource + " " + r.ns].insert(r.verb);
    if (!r.ns.empty() && !r.name.empty())
      used[r.group + "/" + r.resource + " " + r.ns + " " + r.name].insert(r.verb);
  }
  for (const auto& rule : rules) {
    const auto space = rule.find(' ');
    const auto what = rule.substr(space + 1);
    std::string verbs = rule.substr(0, space) + ",";
    for (std::size_t at = 0, comma; (comma = verbs.find(',', at)) != std::string::npos; at = comma + 1) {
      const auto verb = verbs.substr(at, comma - at);
      EXPECT_TRUE(used[what].count(verb)) << "granted but never requested: " << verb << " " << what;
    }
  }
}

}  // namespace
}  // namespace phigate::test
