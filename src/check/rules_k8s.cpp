// Deployment-manifest rules (K8S001-K8S009) and AC004 (admin listener beyond loopback). They read
// View::workloads (`phigate check --manifests`), so they run from the CLI only (runtime = false).
//
// Safeguards: RBAC, NetworkPolicy and what a process may do on its node (root, privileged,
// capabilities) limit which software holds which rights: 164.312(a)(1) access control ("allow
// access only to those persons or software programs that have been granted access rights"). A
// read-only root filesystem keeps the running proxy (binary, trust stores) from being altered:
// 164.312(c)(1) integrity. Replicas and PodDisruptionBudgets are about availability, which 164.312
// does not cover (it is 164.308(a)(7), contingency plan); they are filed under (c)(1), the nearest
// technical safeguard, as warnings, and their titles say so.
#include <algorithm>
#include <cstdlib>
#include <set>
#include <utility>

#include "phigate/access/cidr.hpp"
#include "phigate/check/check.hpp"
#include "phigate/core/host_port.hpp"

namespace phigate::check {
namespace {

using ingress::Container;
using ingress::Workload;
using ingress::Workloads;

Location at(const ingress::Origin& o, int line, std::string resource, std::string field) {
  Location loc;
  loc.file = o.file;
  loc.doc = o.doc;
  loc.item = o.item;
  loc.line = line > 0 ? line : o.line;
  loc.resource = std::move(resource);
  loc.field = std::move(field);
  return loc;
}

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

/// "spec.template.spec.containers[1]" / "initContainers[0]" of container `c` of `w`.
std::string container_field(const Workload& w, const Container& c) {
  std::size_t i = 0;
  for (const auto& o : w.containers) {
    if (&o == &c) break;
    if (o.init == c.init) ++i;
  }
  return std::string("spec.template.spec.") + (c.init ? "initContainers[" : "containers[") +
         std::to_string(i) + "]";
}

std::string container_label(const Workload& w, const Container& c) {
  return std::string(c.init ? "init container " : "container ") + (c.name.empty() ? "?" : c.name) + " of " +
         w.resource();
}

/// A finding about container `c`: placed at its securityContext when it has one.
Finding container_finding(const RuleInfo& info, const Workload& w, const Container& c, std::string message,
                          std::string_view field) {
  const int line = c.sc.line > 0 ? c.sc.line : c.line;
  return make_finding(
      info, std::move(message),
      at(w.origin, line, w.resource(),
         container_field(w, c) + ".securityContext" + (field.empty() ? "" : "." + std::string(field))));
}

/// The phigate pods: an image named phigate (any registry, tag or digest), or `run --config`.
bool is_phigate(const Workload& w) {
  for (const auto& c : w.containers) {
    if (c.init) continue;
    std::string_view image = c.image;
    if (const auto slash = image.rfind('/'); slash != std::string_view::npos) image.remove_prefix(slash + 1);
    image = image.substr(0, image.find_first_of(":@"));
    if (image == "phigate") return true;
    if (has(c.args, "run") && has(c.args, "--config")) return true;
  }
  return false;
}

// ---- K8S001 wildcard RBAC -------------------------------------------------------------------

void wildcard_rbac(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& role : v.workloads->roles) {
    for (std::size_t i = 0; i < role.rules.size(); ++i) {
      const auto& r = role.rules[i];
      std::vector<std::string_view> what;
      if (has(r.verbs, "*")) what.push_back("verbs");
      if (has(r.resources, "*")) what.push_back("resources");
      if (has(r.api_groups, "*")) what.push_back("apiGroups");
      if (has(r.non_resource_urls, "*")) what.push_back("nonResourceURLs");
      if (what.empty()) continue;
      std::string list;
      for (auto w : what) list += (list.empty() ? "" : ", ") + std::string(w);
      out.push_back(
          make_finding(info, role.resource() + " rule " + std::to_string(i) + " grants \"*\" in " + list,
                       at(role.origin, r.line, role.resource(), "rules[" + std::to_string(i) + "]")));
    }
  }
  // A binding to cluster-admin grants "*" on everything, whatever the manifests define.
  for (const auto& b : v.workloads->bindings) {
    if (b.role_kind == "ClusterRole" && b.role_name == "cluster-admin") {
      out.push_back(make_finding(
          info, b.resource() + " grants ClusterRole cluster-admin (every verb on every resource)",
          at(b.origin, b.role_ref_line, b.resource(), "roleRef")));
    }
  }
}

// ---- K8S002 cluster-wide Secret read --------------------------------------------------------

bool reads_all_secrets(const ingress::RbacRule& r) {
  const bool core = has(r.api_groups, "") || has(r.api_groups, "*");
  const bool secrets = has(r.resources, "secrets") || has(r.resources, "*");
  const bool read = has(r.verbs, "get") || has(r.verbs, "list") || has(r.verbs, "watch") || has(r.verbs, "*");
  return core && secrets && read && r.resource_names.empty();
}

/// Whether ClusterRole `name` (with the ClusterRoles it aggregates, in the manifests) lets its
/// holder read every Secret; `line` gets the granting rule's line. Built-in roles by name.
bool cluster_role_reads_secrets(const Workloads& wl, const std::string& name, std::set<std::string>& seen,
                                int& line, const ingress::Role*& where) {
  if (!seen.insert(name).second || seen.size() > 256) return false;
  const ingress::Role* role = nullptr;
  for (const auto& r : wl.roles) {
    if (r.cluster && r.meta.name == name) role = &r;
  }
  if (!role) return name == "cluster-admin" || name == "admin" || name == "edit";
  for (const auto& r : role->rules) {
    if (reads_all_secrets(r)) {
      line = r.line;
      where = role;
      return true;
    }
  }
  for (const auto& sel : role->aggregation) {
    for (const auto& other : wl.roles) {
      if (other.cluster && &other != role && sel.matches(other.meta.labels) &&
          cluster_role_reads_secrets(wl, other.meta.name, seen, line, where))
        return true;
    }
  }
  return false;
}

bool binds(const ingress::RoleBinding& b, const std::string& ns, const std::string& sa) {
  for (const auto& [sns, name] : b.service_accounts) {
    if (sns == ns && name == sa) return true;
  }
  for (const auto& g : b.groups) {
    if (g == "system:serviceaccounts" || g == "system:serviceaccounts:" + ns || g == "system:authenticated")
      return true;
  }
  return false;
}

void cluster_secret_read(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  const auto& ing = v.config.ingress;
  std::string why;
  if (ing.source != config::IngressSource::Kubernetes) {
    why = "the configuration does not read the Kubernetes API";
  } else if (!ing.kubernetes.namespaces.empty()) {
    why =
        "the configuration reads " + std::to_string(ing.kubernetes.namespaces.size()) + " namespace(s) only";
  } else {
    return;  // namespaces: all needs Secrets cluster-wide
  }
  std::vector<const Workload*> pods;
  for (const auto& w : v.workloads->workloads) {
    if (is_phigate(w)) pods.push_back(&w);
  }
  if (pods.empty()) {
    for (const auto& w : v.workloads->workloads) pods.push_back(&w);
  }
  std::set<std::string> reported;
  for (const auto* w : pods) {
    for (const auto& b : v.workloads->bindings) {
      if (!b.cluster || b.role_kind != "ClusterRole" || !binds(b, w->meta.ns, w->service_account)) continue;
      std::set<std::string> seen;
      int line = 0;
      const ingress::Role* role = nullptr;
      if (!cluster_role_reads_secrets(*v.workloads, b.role_name, seen, line, role)) continue;
      if (!reported.insert(b.resource()).second) continue;
      const auto loc = role ? at(role->origin, line, role->resource(), "rules")
                            : at(b.origin, b.role_ref_line, b.resource(), "roleRef");
      out.push_back(make_finding(info,
                                 b.resource() + " lets ServiceAccount " + w->meta.ns + "/" +
                                     w->service_account + " read every Secret of the cluster (ClusterRole " +
                                     b.role_name + ") while " + why,
                                 loc));
    }
  }
}

// ---- K8S003-K8S006 pod security -------------------------------------------------------------

void runs_as_root(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    for (const auto& c : w.containers) {
      // The container's securityContext wins over the pod's, field by field.
      const auto non_root = c.sc.run_as_non_root ? c.sc.run_as_non_root : w.pod_sc.run_as_non_root;
      const auto uid = c.sc.run_as_user ? c.sc.run_as_user : w.pod_sc.run_as_user;
      if (uid && *uid == 0) {
        out.push_back(
            container_finding(info, w, c, container_label(w, c) + " runs as user 0 (root)", "runAsUser"));
      } else if (!non_root || !*non_root) {
        out.push_back(container_finding(
            info, w, c, container_label(w, c) + " does not set runAsNonRoot: true", "runAsNonRoot"));
      }
    }
  }
}

void privileged(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    // The node's network, PID or IPC namespace: as good as privileged for what the pod can reach.
    for (const auto& [on, field] : {std::pair{w.host_network, "hostNetwork"},
                                    std::pair{w.host_pid, "hostPID"}, std::pair{w.host_ipc, "hostIPC"}}) {
      if (on) {
        out.push_back(make_finding(
            info, w.resource() + " shares the node's namespace (" + field + ": true)",
            at(w.origin, w.spec_line, w.resource(), std::string("spec.template.spec.") + field)));
      }
    }
    for (const auto& c : w.containers) {
      if (c.sc.privileged.value_or(false)) {
        out.push_back(container_finding(info, w, c, container_label(w, c) + " is privileged", "privileged"));
      } else if (c.sc.allow_privilege_escalation.value_or(true)) {
        out.push_back(container_finding(
            info, w, c, container_label(w, c) + " does not set allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation"));
      }
    }
  }
}

void capabilities(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    for (const auto& c : w.containers) {
      std::vector<std::string> added;
      for (const auto& cap : c.sc.caps_add) {
        // Pod Security "restricted" allows NET_BIND_SERVICE only.
        if (cap != "NET_BIND_SERVICE" && cap != "CAP_NET_BIND_SERVICE") added.push_back(cap);
      }
      if (!added.empty()) {
        std::string list;
        for (const auto& a : added) list += (list.empty() ? "" : ", ") + a;
        out.push_back(container_finding(info, w, c, container_label(w, c) + " adds capabilities " + list,
                                        "capabilities.add"));
      } else if (!has(c.sc.caps_drop, "ALL")) {
        out.push_back(container_finding(info, w, c, container_label(w, c) + " does not drop ALL capabilities",
                                        "capabilities.drop"));
      }
    }
  }
}

void writable_root(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    for (const auto& c : w.containers) {
      if (!c.sc.read_only_root_filesystem.value_or(false)) {
        out.push_back(container_finding(info, w, c, container_label(w, c) + " has a writable root filesystem",
                                        "readOnlyRootFilesystem"));
      }
    }
  }
}

// ---- K8S007 NetworkPolicy, K8S008 replicas, K8S009 PDB --------------------------------------

/// The NetworkPolicies (Ingress type, same namespace) that select `w`'s pods.
std::vector<const ingress::NetworkPolicy*> policies_of(const Workloads& wl, const Workload& w) {
  std::vector<const ingress::NetworkPolicy*> out;
  for (const auto& np : wl.network_policies) {
    if (np.ingress_type && np.meta.ns == w.meta.ns && np.pod_selector.matches(w.pod_labels))
      out.push_back(&np);
  }
  return out;
}

Location workload_meta(const Workload& w) {
  return at(w.origin, 0, w.resource(), "metadata");
}

void network_policy(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    if (policies_of(*v.workloads, w).empty()) {
      out.push_back(make_finding(
          info,
          "no NetworkPolicy of namespace " + w.meta.ns + " restricts ingress to the pods of " + w.resource(),
          workload_meta(w)));
    }
  }
}

void single_replica(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    if (!w.replicas || *w.replicas > 1) continue;  // DaemonSet: one per node
    out.push_back(make_finding(
        info, w.resource() + " runs " + std::to_string(*w.replicas) + " replica(s)",
        at(w.origin, w.replicas_line > 0 ? w.replicas_line : w.spec_line, w.resource(), "spec.replicas")));
  }
}

void disruption_budget(const View& v, const RuleInfo& info, const Context&, Sink& out) {
  if (!v.workloads) return;
  for (const auto& w : v.workloads->workloads) {
    if (w.kind == "DaemonSet") continue;  // drains do not evict DaemonSet pods
    const bool covered = std::any_of(v.workloads->pdbs.begin(), v.workloads->pdbs.end(), [&](const auto& p) {
      return p.meta.ns == w.meta.ns && p.selector.matches(w.pod_labels);
    });
    if (!covered) {
      out.push_back(make_finding(
          info, "no PodDisruptionBudget of namespace " + w.meta.ns + " selects the pods of " + w.resource(),
          workload_meta(w)));
    }
  }
}

// ---- AC004 admin listener -------------------------------------------------------------------

bool loopback(const std::string& host) {
  if (host == "localhost") return true;
  const auto a = access::parse_address(host);
  if (!a) return false;
  static constexpr access::Address kV6Loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const bool mapped = std::all_of(a->begin(), a->begin() + 10, [](auto b) { return b == 0; }) &&
                      (*a)[10] == 0xff && (*a)[11] == 0xff;
  return *a == kV6Loopback || (mapped && (*a)[12] == 127);
}

/// Why the admin port of `w` is reachable beyond its pod ("" when every NetworkPolicy rule that
/// admits it names selectors of a namespace or pods, or narrower CIDRs).
std::string admin_exposure(const Workloads& wl, const Workload& w, std::uint16_t port) {
  if (w.host_network) return "hostNetwork: true (NetworkPolicies do not apply to the node's network)";
  const auto policies = policies_of(wl, w);
  if (policies.empty()) return "no NetworkPolicy of namespace " + w.meta.ns + " selects its pods";
  std::set<std::string> names;  // the container ports with the admin port's number
  for (const auto& c : w.containers) {
    for (const auto& [name, number] : c.ports) {
      if (number == port && !name.empty()) names.insert(name);
    }
  }
  const auto covers = [&](const ingress::NetworkPolicy::Rule& r) {
    if (r.ports.empty()) return true;
    return std::any_of(r.ports.begin(), r.ports.end(), [&](const std::string& p) {
      if (const auto dash = p.find('-'); dash != std::string::npos) {  // port-endPort
        const int first = std::atoi(p.c_str()), last = std::atoi(p.c_str() + dash + 1);
        return first <= port && port <= last;
      }
      return p == "*" || p == std::to_string(port) || names.contains(p);
    });
  };
  for (const auto* np : policies) {
    for (const auto& r : np->ingress) {
      if (!covers(r)) continue;
      if (r.from.empty()) return np->resource() + " admits it from every source";
      for (const auto& peer : r.from) {
        if (peer.whole_cluster) return np->resource() + " admits it from every namespace";
        if (!peer.selector) {
          const auto cidr = access::parse_cidr(peer.cidr);
          if (!cidr || cidr->prefix == 0 || (cidr->prefix == 96 && peer.cidr.find('.') != std::string::npos))
            return np->resource() + " admits it from " + peer.cidr;
        }
      }
    }
  }
  return {};
}

void admin_listener(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& admin = v.config.listeners.admin;
  std::string host;
  std::uint16_t port = 0;
  if (admin.empty() || !core::split_host_port(admin, host, port) || loopback(host)) return;
  const auto where = ctx.config_key("listeners.admin");
  const std::string head = "admin listener " + admin + " (/metrics, /healthz) is beyond loopback";
  if (!v.workloads) {
    auto f = make_finding(
        info, head + "; no manifests show a NetworkPolicy restricting it (check with --manifests)", where);
    f.severity = Severity::Warning;
    out.push_back(std::move(f));
    return;
  }
  bool found = false;
  for (const auto& w : v.workloads->workloads) {
    if (!is_phigate(w)) continue;
    found = true;
    if (auto why = admin_exposure(*v.workloads, w, port); !why.empty())
      out.push_back(
          make_finding(info, head + " and open to the pod network for " + w.resource() + ": " + why, where));
  }
  if (!found) {
    auto f = make_finding(
        info, head + "; the manifests hold no phigate Deployment to check a NetworkPolicy against", where);
    f.severity = Severity::Warning;
    out.push_back(std::move(f));
  }
}

constexpr Rule kRules[] = {
    {{.id = "AC004",
      .name = "AdminListenerExposed",
      .title = "Admin listener beyond loopback without a NetworkPolicy restricting its port",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "Bind listeners.admin to 127.0.0.1, or admit its port only from selected pods or namespaces "
                "in a NetworkPolicy selecting the phigate pods",
      .runtime = false},
     admin_listener},
    {{.id = "K8S001",
      .name = "RbacWildcard",
      .title = "RBAC role with wildcard verbs, resources or API groups (or a binding to cluster-admin)",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.3.1; SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "List the exact apiGroups, resources and verbs the workload uses (docker/base/rbac.yaml)",
      .runtime = false},
     wildcard_rbac},
    {{.id = "K8S002",
      .name = "ClusterWideSecretRead",
      .title = "Every Secret of the cluster readable where namespaced access would do",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.3.1; SP 800-66r2 5.3.1",
      .severity = Severity::Warning,
      .remedy =
          "Grant Secret list/watch with a RoleBinding in each namespace of ingress.namespaces instead of a "
          "ClusterRoleBinding",
      .runtime = false},
     cluster_secret_read},
    {{.id = "K8S003",
      .name = "ContainerRunsAsRoot",
      .title = "Container may run as root",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.4.3; SP 800-66r2 5.3.1",
      .severity = Severity::Warning,
      .remedy = "Set securityContext.runAsNonRoot: true and a non-zero runAsUser on the pod or container",
      .runtime = false},
     runs_as_root},
    {{.id = "K8S004",
      .name = "PrivilegedContainer",
      .title = "Container privileged or allowed to escalate privileges, or pod in the node's namespaces",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.4.3; SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy =
          "Set securityContext.privileged: false and allowPrivilegeEscalation: false on every container; "
          "no hostNetwork, hostPID or hostIPC",
      .runtime = false},
     privileged},
    {{.id = "K8S005",
      .name = "CapabilitiesNotDropped",
      .title = "Container capabilities not dropped",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.4.3; SP 800-66r2 5.3.1",
      .severity = Severity::Warning,
      .remedy = "Set securityContext.capabilities.drop: [\"ALL\"] and add none (NET_BIND_SERVICE at most)",
      .runtime = false},
     capabilities},
    {{.id = "K8S006",
      .name = "WritableRootFilesystem",
      .title = "Container root filesystem writable",
      .safeguard = Safeguard::Integrity,
      .hipaa = "164.312(c)(1)",
      .nist = "SP 800-190 4.4.4; SP 800-66r2 5.3.3",
      .severity = Severity::Warning,
      .remedy = "Set securityContext.readOnlyRootFilesystem: true; mount writable volumes only where needed",
      .runtime = false},
     writable_root},
    {{.id = "K8S007",
      .name = "NoNetworkPolicy",
      .title = "No NetworkPolicy restricts ingress to the pods",
      .safeguard = Safeguard::AccessControl,
      .hipaa = "164.312(a)(1)",
      .nist = "SP 800-190 4.3.3; SP 800-66r2 5.3.1",
      .severity = Severity::Warning,
      .remedy =
          "Add a NetworkPolicy in the workload's namespace selecting its pods with policyTypes [Ingress]",
      .runtime = false},
     network_policy},
    {{.id = "K8S008",
      .name = "SingleReplica",
      .title = "Single replica (availability: 164.308(a)(7), filed under integrity)",
      .safeguard = Safeguard::Integrity,
      .hipaa = "164.312(c)(1)",
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Warning,
      .remedy = "Run at least 2 replicas (spec.replicas) spread over nodes",
      .runtime = false},
     single_replica},
    {{.id = "K8S009",
      .name = "NoPodDisruptionBudget",
      .title = "No PodDisruptionBudget (availability: 164.308(a)(7), filed under integrity)",
      .safeguard = Safeguard::Integrity,
      .hipaa = "164.312(c)(1)",
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Warning,
      .remedy = "Add a policy/v1 PodDisruptionBudget selecting the pods (minAvailable: 1)",
      .runtime = false},
     disruption_budget},
};

}  // namespace

std::span<const Rule> kubernetes_rules() {
  return kRules;
}

}  // namespace phigate::check
