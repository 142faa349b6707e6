#pragma once
// Deployment manifests `phigate check --manifests` reads besides Ingresses and Secrets: workloads
// (Deployment, StatefulSet, DaemonSet), RBAC, NetworkPolicy, PodDisruptionBudget. Plain structs
// with 1-based lines; no YAML types leak out. CLI only (never read at run time).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/ingress/resources.hpp"

namespace phigate::ingress {

/// metav1.LabelSelector. An empty selector (no labels, no expressions) selects everything.
struct LabelSelector {
  struct Expr {
    std::string key, op;  // op: In | NotIn | Exists | DoesNotExist
    std::vector<std::string> values;
  };
  std::map<std::string, std::string> match_labels;
  std::vector<Expr> match_expressions;

  bool empty() const noexcept { return match_labels.empty() && match_expressions.empty(); }
  /// Kubernetes semantics; an unknown operator matches nothing (fail closed: the object then
  /// protects nothing, so a rule reports the gap).
  bool matches(const std::map<std::string, std::string>& labels) const;
};

/// Pod or container securityContext (only the fields the checks read).
struct SecurityContext {
  std::optional<bool> run_as_non_root, privileged, allow_privilege_escalation, read_only_root_filesystem;
  std::optional<std::int64_t> run_as_user;
  std::vector<std::string> caps_drop, caps_add;
  int line = 0;  // the securityContext mapping; 0 when absent
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command, args;
  bool init = false;  // from initContainers
  SecurityContext sc;
  std::vector<std::pair<std::string, std::int32_t>> ports;  // name ("" unnamed), containerPort
  int line = 0;
};

struct Workload {
  Origin origin;
  ObjectMeta meta;
  std::string kind;                      // Deployment | StatefulSet | DaemonSet
  std::optional<std::int32_t> replicas;  // absent: 1 (DaemonSet: none, one per node)
  int replicas_line = 0;
  LabelSelector selector;
  std::map<std::string, std::string> pod_labels;
  SecurityContext pod_sc;
  std::string service_account = "default";                        // spec.template.spec.serviceAccountName
  bool host_network = false, host_pid = false, host_ipc = false;  // the node's namespaces
  std::vector<Container> containers;                              // initContainers included (Container::init)
  int spec_line = 0;

  /// "Deployment ns/name".
  std::string resource() const { return kind + " " + meta.key(); }
};

struct RbacRule {
  std::vector<std::string> api_groups, resources, verbs, resource_names, non_resource_urls;
  int line = 0;
};

struct Role {
  Origin origin;
  ObjectMeta meta;
  bool cluster = false;  // ClusterRole
  std::vector<RbacRule> rules;
  std::vector<LabelSelector> aggregation;  // aggregationRule.clusterRoleSelectors (ClusterRole)

  /// "ClusterRole name" or "Role ns/name".
  std::string resource() const { return cluster ? "ClusterRole " + meta.name : "Role " + meta.key(); }
};

struct RoleBinding {
  Origin origin;
  ObjectMeta meta;
  bool cluster = false;  // ClusterRoleBinding
  std::string role_kind, role_name;
  std::vector<std::pair<std::string, std::string>> service_accounts;  // ns, name
  std::vector<std::string> groups, users;
  int role_ref_line = 0;

  std::string resource() const {
    return cluster ? "ClusterRoleBinding " + meta.name : "RoleBinding " + meta.key();
  }
};

struct NetworkPolicy {
  struct Peer {
    std::string cidr;       // ipBlock.cidr; "" = a pod/namespace selector
    bool selector = false;  // podSelector and/or namespaceSelector
    /// A selector admitting every pod of the cluster: namespaceSelector {} with no or an empty
    /// podSelector.
    bool whole_cluster = false;
  };
  struct Rule {
    std::vector<Peer> from;  // empty: every source
    /// Port number or name as written, "first-last" with endPort, "*" for an entry without
    /// port (every port); empty list: every port.
    std::vector<std::string> ports;
    int line = 0;
  };
  Origin origin;
  ObjectMeta meta;
  LabelSelector pod_selector;
  bool ingress_type = false;  // policyTypes contains Ingress (absent policyTypes: always)
  std::vector<Rule> ingress;

  std::string resource() const { return "NetworkPolicy " + meta.key(); }
};

struct PodDisruptionBudget {
  Origin origin;
  ObjectMeta meta;
  LabelSelector selector;
};

struct Workloads {
  std::vector<Workload> workloads;
  std::vector<Role> roles;
  std::vector<RoleBinding> bindings;
  std::vector<NetworkPolicy> network_policies;
  std::vector<PodDisruptionBudget> pdbs;
  config::Diagnostics diagnostics;
  std::size_t broken_files = 0;
};

/// Reads every manifest under `paths` (folders walked as load_directory does: *.yaml, *.yml and
/// *.json, sorted, names starting with '.' skipped; or single files). Objects of other kinds are
/// ignored silently; a file that is not YAML is an error and contributes nothing. A field of the
/// wrong type, or a key written twice in one mapping (the API server keeps one of them, so what
/// this reads might not be what runs), is an error naming file#doc, resource and field; the
/// object is kept with that field absent.
Workloads load_workloads(const std::vector<std::string>& paths);

/// Reads manifests from `text` as if it were the file `file` (tests; load_workloads per file).
void load_workloads_text(const std::string& text, const std::string& file, Workloads& into);

}  // namespace phigate::ingress
