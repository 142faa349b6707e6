// Deployment manifests for `phigate check` (workloads.hpp): the same libyaml tree as loader.cpp,
// its own small readers (the loader's are private to it and report into LoadResult).
#include "phigate/ingress/workloads.hpp"

#include "phigate/ingress/loader.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "yaml_tree_impl.hpp"

namespace phigate::ingress {

namespace fs = std::filesystem;
using Node = detail::YamlNode;

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [k, v] : match_labels) {
    const auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& e : match_expressions) {
    const auto it = labels.find(e.key);
    const bool has = it != labels.end();
    const bool in = has && std::find(e.values.begin(), e.values.end(), it->second) != e.values.end();
    if (e.op == "In") {
      if (!in) return false;
    } else if (e.op == "NotIn") {
      if (in) return false;
    } else if (e.op == "Exists") {
      if (!has) return false;
    } else if (e.op == "DoesNotExist") {
      if (has) return false;
    } else {
      return false;
    }
  }
  return true;
}

namespace {

/// Files larger than this are refused (a manifest set is kilobytes; the tree bounds aliases).
constexpr std::uintmax_t kMaxFileBytes = 64u << 20;

std::string join(const std::string& field, std::string_view key) {
  return field.empty() ? std::string(key) : field + "." + std::string(key);
}

std::string index(const std::string& field, std::size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

/// The first bytes of `s`, at most `max`, not cutting a UTF-8 sequence (a report stays UTF-8).
std::string_view utf8_head(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  while (max > 0 && (static_cast<unsigned char>(s[max]) & 0xC0) == 0x80) --max;
  return s.substr(0, max);
}

/// The last bytes of `s`, at most `max`, starting on a UTF-8 sequence's first byte.
std::string_view utf8_tail(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t at = s.size() - max;
  while (at < s.size() && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) ++at;
  return s.substr(at);
}

/// Field readers for one object: a wrong type is an error naming file#doc, the resource and the
/// field; the value is then treated as absent (rules report what an absent field means).
class Reader {
 public:
  Reader(const Origin& origin, config::Diagnostics& diag) : where_(origin.where()), diag_(diag) {}
  /// A name of megabytes is not repeated into every error about its object.
  void set_resource(std::string r) {
    constexpr std::size_t kMostResourceBytes = 512;
    if (r.size() > kMostResourceBytes) r = std::string(utf8_head(r, kMostResourceBytes)) + "...";
    resource_ = std::move(r);
  }

  void error(const Node& at, const std::string& field, const std::string& message) {
    diag_.error(where_, at.line(), field, message, resource_);
  }

  Node map(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = parent.get(key);
    if (!n.present()) return Node();
    if (!n.is_map()) {
      error(n, join(field, key), "expected a mapping");
      return Node();
    }
    return n;
  }
  Node seq(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = parent.get(key);
    if (!n.present()) return Node();
    if (!n.is_seq()) {
      error(n, join(field, key), "expected a list");
      return Node();
    }
    return n;
  }
  std::optional<std::string> str(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = parent.get(key);
    if (!n.present()) return std::nullopt;
    if (!n.is_scalar()) {
      error(n, join(field, key), "expected a string");
      return std::nullopt;
    }
    return std::string(n.scalar());
  }
  std::optional<bool> boolean(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = parent.get(key);
    if (!n.present()) return std::nullopt;
    if (n.is_scalar() && n.scalar() == "true") return true;
    if (n.is_scalar() && n.scalar() == "false") return false;
    error(n, join(field, key), "expected true or false");
    return std::nullopt;
  }
  std::optional<std::int64_t> integer(const Node& parent, std::string_view key, const std::string& field,
                                      std::int64_t min, std::int64_t max) {
    const Node n = parent.get(key);
    if (!n.present()) return std::nullopt;
    std::int64_t v = 0;
    const std::string_view s = n.scalar();
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < min || v > max) {
      error(n, join(field, key),
            "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return v;
  }
  std::vector<std::string> strings(const Node& parent, std::string_view key, const std::string& field) {
    std::vector<std::string> out;
    const Node n = seq(parent, key, field);
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (n[i].is_scalar()) {
        out.emplace_back(n[i].scalar());
      } else {
        error(n[i], index(join(field, key), i), "expected a string");
      }
    }
    return out;
  }
  std::map<std::string, std::string> string_map(const Node& parent, std::string_view key,
                                                const std::string& field) {
    std::map<std::string, std::string> out;
    const Node n = map(parent, key, field);
    for (std::size_t i = 0; i < n.size(); ++i) {
      const Node k = n.key(i);
      const Node v = n.value(i);
      if (!k.is_scalar() || (v.present() && !v.is_scalar())) {
        error(k, join(field, key), "expected a string to string mapping");
        continue;
      }
      out[std::string(k.scalar())] = std::string(v.scalar());
    }
    return out;
  }

  LabelSelector selector(const Node& parent, std::string_view key, const std::string& field) {
    LabelSelector s;
    const Node n = map(parent, key, field);
    const auto f = join(field, key);
    s.match_labels = string_map(n, "matchLabels", f);
    const Node exprs = seq(n, "matchExpressions", f);
    for (std::size_t i = 0; i < exprs.size(); ++i) {
      const auto ef = index(join(f, "matchExpressions"), i);
      LabelSelector::Expr e;
      e.key = str(exprs[i], "key", ef).value_or("");
      e.op = str(exprs[i], "operator", ef).value_or("");
      e.values = strings(exprs[i], "values", ef);
      if (e.op != "In" && e.op != "NotIn" && e.op != "Exists" && e.op != "DoesNotExist") {
        error(exprs[i], join(ef, "operator"), "expected In, NotIn, Exists or DoesNotExist");
      }
      s.match_expressions.push_back(std::move(e));
    }
    return s;
  }

 private:
  std::string where_;
  std::string resource_;
  config::Diagnostics& diag_;
};

bool read_meta(Reader& r, const Node& obj, const std::string& kind, bool namespaced, ObjectMeta& m) {
  const Node md = r.map(obj, "metadata", "");
  const auto name = r.str(md, "name", "metadata");
  if (auto ns = r.str(md, "namespace", "metadata"); ns && !ns->empty()) m.ns = std::move(*ns);
  if (!namespaced) m.ns.clear();
  if (!name || name->empty()) {
    r.error(md.present() ? md : obj, "metadata.name", "required");
    return false;
  }
  m.name = *name;
  r.set_resource(kind + " " + (namespaced ? m.key() : m.name));
  m.labels = r.string_map(md, "labels", "metadata");
  return true;
}

SecurityContext read_sc(Reader& r, const Node& parent, const std::string& field, bool container) {
  SecurityContext sc;
  const Node n = r.map(parent, "securityContext", field);
  if (!n.present()) return sc;
  const auto f = join(field, "securityContext");
  sc.line = n.line();
  sc.run_as_non_root = r.boolean(n, "runAsNonRoot", f);
  sc.run_as_user = r.integer(n, "runAsUser", f, 0, 2147483647);
  if (container) {
    sc.privileged = r.boolean(n, "privileged", f);
    sc.allow_privilege_escalation = r.boolean(n, "allowPrivilegeEscalation", f);
    sc.read_only_root_filesystem = r.boolean(n, "readOnlyRootFilesystem", f);
    const Node caps = r.map(n, "capabilities", f);
    sc.caps_drop = r.strings(caps, "drop", join(f, "capabilities"));
    sc.caps_add = r.strings(caps, "add", join(f, "capabilities"));
  }
  return sc;
}

void read_containers(Reader& r, const Node& pod, std::string_view key, bool init, Workload& w) {
  const std::string f = "spec.template.spec";
  const Node list = r.seq(pod, key, f);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto cf = index(join(f, key), i);
    const Node c = list[i];
    if (!c.is_map()) {
      r.error(c, cf, "expected a mapping");
      continue;
    }
    Container out;
    out.init = init;
    out.line = c.line();
    out.name = r.str(c, "name", cf).value_or("");
    out.image = r.str(c, "image", cf).value_or("");
    out.command = r.strings(c, "command", cf);
    out.args = r.strings(c, "args", cf);
    out.sc = read_sc(r, c, cf, true);
    const Node ports = r.seq(c, "ports", cf);
    for (std::size_t p = 0; p < ports.size(); ++p) {
      const auto pf = index(join(cf, "ports"), p);
      const auto number = r.integer(ports[p], "containerPort", pf, 1, 65535);
      if (number)
        out.ports.emplace_back(r.str(ports[p], "name", pf).value_or(""), static_cast<std::int32_t>(*number));
    }
    w.containers.push_back(std::move(out));
  }
}

void read_workload(Reader& r, const Node& obj, Workload& w) {
  const Node spec = r.map(obj, "spec", "");
  w.spec_line = spec.line();
  if (w.kind != "DaemonSet") {
    w.replicas = 1;  // the API default
    if (const Node rep = spec.get("replicas"); rep.present()) {
      w.replicas_line = rep.line();
      if (auto v = r.integer(spec, "replicas", "spec", 0, 2147483647))
        w.replicas = static_cast<std::int32_t>(*v);
    }
  }
  w.selector = r.selector(spec, "selector", "spec");
  const Node tmpl = r.map(spec, "template", "spec");
  const Node tmeta = r.map(tmpl, "metadata", "spec.template");
  w.pod_labels = r.string_map(tmeta, "labels", "spec.template.metadata");
  const Node pod = r.map(tmpl, "spec", "spec.template");
  w.pod_sc = read_sc(r, pod, "spec.template.spec", false);
  // serviceAccount is the deprecated alias; serviceAccountName wins when both are given.
  if (auto sa = r.str(pod, "serviceAccount", "spec.template.spec"); sa && !sa->empty())
    w.service_account = *sa;
  if (auto sa = r.str(pod, "serviceAccountName", "spec.template.spec"); sa && !sa->empty())
    w.service_account = *sa;
  w.host_network = r.boolean(pod, "hostNetwork", "spec.template.spec").value_or(false);
  w.host_pid = r.boolean(pod, "hostPID", "spec.template.spec").value_or(false);
  w.host_ipc = r.boolean(pod, "hostIPC", "spec.template.spec").value_or(false);
  read_containers(r, pod, "initContainers", true, w);
  read_containers(r, pod, "containers", false, w);
}

void read_role(Reader& r, const Node& obj, Role& role) {
  const Node rules = r.seq(obj, "rules", "");
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto f = index("rules", i);
    RbacRule rule;
    rule.line = rules[i].line();
    rule.api_groups = r.strings(rules[i], "apiGroups", f);
    rule.resources = r.strings(rules[i], "resources", f);
    rule.verbs = r.strings(rules[i], "verbs", f);
    rule.resource_names = r.strings(rules[i], "resourceNames", f);
    rule.non_resource_urls = r.strings(rules[i], "nonResourceURLs", f);
    role.rules.push_back(std::move(rule));
  }
  const Node agg = r.map(obj, "aggregationRule", "");
  const Node sels = r.seq(agg, "clusterRoleSelectors", "aggregationRule");
  for (std::size_t i = 0; i < sels.size(); ++i) {
    // Each item is a LabelSelector itself.
    const auto f = index("aggregationRule.clusterRoleSelectors", i);
    LabelSelector s;
    s.match_labels = r.string_map(sels[i], "matchLabels", f);
    const Node exprs = r.seq(sels[i], "matchExpressions", f);
    for (std::size_t j = 0; j < exprs.size(); ++j) {
      const auto ef = index(join(f, "matchExpressions"), j);
      s.match_expressions.push_back({r.str(exprs[j], "key", ef).value_or(""),
                                     r.str(exprs[j], "operator", ef).value_or(""),
                                     r.strings(exprs[j], "values", ef)});
    }
    role.aggregation.push_back(std::move(s));
  }
}

void read_binding(Reader& r, const Node& obj, RoleBinding& b) {
  const Node ref = r.map(obj, "roleRef", "");
  b.role_ref_line = ref.line();
  b.role_kind = r.str(ref, "kind", "roleRef").value_or("");
  b.role_name = r.str(ref, "name", "roleRef").value_or("");
  if (b.role_kind.empty() || b.role_name.empty())
    r.error(ref.present() ? ref : obj, "roleRef", "kind and name required");
  const Node subjects = r.seq(obj, "subjects", "");
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const auto f = index("subjects", i);
    const auto kind = r.str(subjects[i], "kind", f).value_or("");
    const auto name = r.str(subjects[i], "name", f).value_or("");
    if (kind == "ServiceAccount") {
      // A RoleBinding's ServiceAccount subject without namespace means the binding's namespace.
      auto ns = r.str(subjects[i], "namespace", f).value_or("");
      if (ns.empty()) ns = b.cluster ? "" : b.meta.ns;
      b.service_accounts.emplace_back(std::move(ns), name);
    } else if (kind == "Group") {
      b.groups.push_back(name);
    } else if (kind == "User") {
      b.users.push_back(name);
    } else {
      r.error(subjects[i], join(f, "kind"), "expected ServiceAccount, Group or User");
    }
  }
}

void read_network_policy(Reader& r, const Node& obj, NetworkPolicy& np) {
  const Node spec = r.map(obj, "spec", "");
  np.pod_selector = r.selector(spec, "podSelector", "spec");
  const Node types = spec.get("policyTypes");
  if (types.present()) {
    for (const auto& t : r.strings(spec, "policyTypes", "spec"))
      np.ingress_type = np.ingress_type || t == "Ingress";
  } else {
    np.ingress_type = true;  // the API default: Ingress always, Egress when egress rules exist
  }
  const Node rules = r.seq(spec, "ingress", "spec");
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto f = index("spec.ingress", i);
    NetworkPolicy::Rule rule;
    rule.line = rules[i].line();
    const Node from = r.seq(rules[i], "from", f);
    for (std::size_t j = 0; j < from.size(); ++j) {
      const auto pf = index(join(f, "from"), j);
      NetworkPolicy::Peer peer;
      const Node block = r.map(from[j], "ipBlock", pf);
      const Node ns = r.map(from[j], "namespaceSelector", pf);
      const Node pods = r.map(from[j], "podSelector", pf);
      if (block.present()) {
        peer.cidr = r.str(block, "cidr", join(pf, "ipBlock")).value_or("");
        if (peer.cidr.empty()) {
          r.error(block, join(pf, "ipBlock.cidr"), "required");
          peer.cidr = "0.0.0.0/0";  // unreadable: assume it admits everyone
        }
      } else if (ns.present() || pods.present() || from[j].get("namespaceSelector").defined() ||
                 from[j].get("podSelector").defined()) {
        peer.selector = true;
        const auto nsel = r.selector(from[j], "namespaceSelector", pf);
        const auto psel = r.selector(from[j], "podSelector", pf);
        peer.whole_cluster = from[j].get("namespaceSelector").defined() && nsel.empty() && psel.empty();
      } else {
        r.error(from[j], pf, "expected ipBlock, namespaceSelector or podSelector");
        peer.cidr = "0.0.0.0/0";
      }
      rule.from.push_back(std::move(peer));
    }
    const Node ports = r.seq(rules[i], "ports", f);
    for (std::size_t j = 0; j < ports.size(); ++j) {
      const auto pf = index(join(f, "ports"), j);
      const auto port = r.str(ports[j], "port", pf);
      const auto end = r.integer(ports[j], "endPort", pf, 1, 65535);
      // A ports entry without port means every port of its protocol.
      rule.ports.push_back(!port ? "*" : end ? *port + "-" + std::to_string(*end) : *port);
    }
    np.ingress.push_back(std::move(rule));
  }
}

/// Every mapping under an object with a key written twice is an error: Kubernetes keeps one of
/// them, so `privileged: false` followed by `privileged: true` must not read as false. Hostile
/// input may nest a thousand mappings under kilobyte keys: the field path is a stack of views into
/// the tree, made into text only for a report (each key and the whole path shortened there), and
/// one object's reports are bounded. Bounded by `budget` visits (aliases share nodes).
class DuplicateKeys {
 public:
  /// Bytes of one key, and of a whole field path, in a report (a Kubernetes key is at most 317).
  static constexpr std::size_t kMostKeyBytes = 320;
  static constexpr std::size_t kMostPathBytes = 1024;
  /// Keys given twice reported per object; one more error then says that there are more.
  static constexpr std::size_t kMostReports = 100;

  DuplicateKeys(Reader& r, std::size_t budget) : r_(r), budget_(budget) {}

  void walk(const Node& n) {
    if (budget_ == 0 || stopped_) return;
    --budget_;
    if (n.is_map()) {
      std::set<std::string_view> keys;
      for (std::size_t i = 0; i < n.size() && !stopped_; ++i) {
        const Node k = n.key(i);
        path_.push_back(Step{k.scalar(), 0, false});
        if (k.is_scalar() && !keys.insert(k.scalar()).second) report(k);
        walk(n.value(i));
        path_.pop_back();
      }
    } else if (n.is_seq()) {
      for (std::size_t i = 0; i < n.size(); ++i) {
        path_.push_back(Step{{}, i, true});
        walk(n[i]);
        path_.pop_back();
      }
    }
  }

 private:
  struct Step {
    std::string_view key;  // a mapping's key ...
    std::size_t index;     // ... or a list's index
    bool is_index;
  };

  void report(const Node& k) {
    if (reports_ == kMostReports) {
      r_.error(k, field(),
               "more keys given twice: only the first " + std::to_string(kMostReports) + " are reported");
      stopped_ = true;
      return;
    }
    ++reports_;
    r_.error(k, field(), "key given twice: the API server keeps only one of them");
  }

  /// The path as join() and index() write it; a longer key ends in "...", a longer path keeps both
  /// ends (where in the object, and the key given twice) around a "...".
  std::string field() const {
    std::string out;
    for (const auto& s : path_) {
      if (s.is_index) {
        out += "[" + std::to_string(s.index) + "]";
        continue;
      }
      if (!out.empty()) out += '.';
      const auto head = utf8_head(s.key, kMostKeyBytes);
      out += head;
      if (head.size() < s.key.size()) out += "...";
    }
    if (out.size() <= kMostPathBytes) return out;
    return std::string(utf8_head(out, kMostPathBytes / 2 - 3)) + "..." +
           std::string(utf8_tail(out, kMostPathBytes / 2));
  }

  Reader& r_;
  std::size_t budget_;
  std::vector<Step> path_;
  std::size_t reports_ = 0;
  bool stopped_ = false;
};

/// Reads one object (or a List's items) into `into`. Unknown kinds are skipped silently.
void load_object(const Node& obj, Origin origin, Workloads& into, const std::string& list_api = {},
                 const std::string& list_kind = {}) {
  if (!obj.is_map()) return;  // not an object: the Ingress loader reports it
  Reader r(origin, into.diagnostics);
  std::string api(obj.get("apiVersion").scalar());
  std::string kind(obj.get("kind").scalar());
  if (api.empty()) api = list_api;
  if (kind.empty()) kind = list_kind;
  if (kind.size() >= 4 && kind.ends_with("List") && origin.item < 0) {
    // A typed list from the API ("DeploymentList") omits kind and apiVersion on its items.
    const std::string item_kind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
    const std::string item_api = kind == "List" ? "" : api;
    const Node items = obj.get("items");
    for (std::size_t i = 0; i < items.size(); ++i) {
      Origin o = origin;
      o.item = static_cast<int>(i);
      o.line = items[i].line();
      load_object(items[i], o, into, item_api, item_kind);
    }
    return;
  }
  const auto read_meta_checked = [&](bool namespaced, ObjectMeta& m) {
    if (!read_meta(r, obj, kind, namespaced, m)) return false;
    DuplicateKeys(r, 1u << 20).walk(obj);
    return true;
  };
  if (api == "apps/v1" && (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet")) {
    Workload w;
    w.origin = origin;
    w.kind = kind;
    if (!read_meta_checked(true, w.meta)) return;
    read_workload(r, obj, w);
    into.workloads.push_back(std::move(w));
  } else if (api == "rbac.authorization.k8s.io/v1" && (kind == "Role" || kind == "ClusterRole")) {
    Role role;
    role.origin = origin;
    role.cluster = kind == "ClusterRole";
    if (!read_meta_checked(!role.cluster, role.meta)) return;
    read_role(r, obj, role);
    into.roles.push_back(std::move(role));
  } else if (api == "rbac.authorization.k8s.io/v1" &&
             (kind == "RoleBinding" || kind == "ClusterRoleBinding")) {
    RoleBinding b;
    b.origin = origin;
    b.cluster = kind == "ClusterRoleBinding";
    if (!read_meta_checked(!b.cluster, b.meta)) return;
    read_binding(r, obj, b);
    into.bindings.push_back(std::move(b));
  } else if (api == "networking.k8s.io/v1" && kind == "NetworkPolicy") {
    NetworkPolicy np;
    np.origin = origin;
    if (!read_meta_checked(true, np.meta)) return;
    read_network_policy(r, obj, np);
    into.network_policies.push_back(std::move(np));
  } else if (api == "policy/v1" && kind == "PodDisruptionBudget") {
    PodDisruptionBudget pdb;
    pdb.origin = origin;
    if (!read_meta_checked(true, pdb.meta)) return;
    const Node spec = r.map(obj, "spec", "");
    pdb.selector = r.selector(spec, "selector", "spec");
    // A PDB without selector selects no pod (policy/v1): keep it, it protects nothing.
    if (!spec.get("selector").present()) pdb.selector.match_expressions.push_back({"", "Never", {}});
    into.pdbs.push_back(std::move(pdb));
  }
}

}  // namespace

void load_workloads_text(const std::string& text, const std::string& file, Workloads& into) {
  detail::YamlTree tree;
  if (const auto err = tree.parse(text)) {
    ++into.broken_files;
    into.diagnostics.error(file, err->line, "", "invalid YAML: " + err->message);
    return;
  }
  const auto& docs = tree.documents();
  for (std::size_t d = 0; d < docs.size(); ++d) {
    if (!docs[d].present()) continue;
    load_object(docs[d], Origin{file, static_cast<int>(d), -1, docs[d].line()}, into);
  }
}

Workloads load_workloads(const std::vector<std::string>& paths) {
  Workloads out;
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      const auto found = manifest_files(p, out.diagnostics);
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      ++out.broken_files;
      out.diagnostics.error(p, 0, "", "not a readable file or folder");
    }
  }
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    std::ifstream in(f, std::ios::binary);
    if (ec || !in || size > kMaxFileBytes) {
      ++out.broken_files;
      out.diagnostics.error(
          f, 0, "",
          size > kMaxFileBytes && !ec ? "file larger than 64 MiB: not read" : "cannot read the file");
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    load_workloads_text(std::move(ss).str(), f, out);
  }
  return out;
}

}  // namespace phigate::ingress
