#include "phigate/ingress/loader.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "loader_impl.hpp"
#include "names_impl.hpp"
#include "phigate/core/time.hpp"
#include "yaml_tree_impl.hpp"

namespace phigate::ingress {

namespace fs = std::filesystem;

std::string Origin::where() const {
  // doc < 0: an object from the API server, named by `file` alone ("kubernetes:Ingress ns/name").
  std::string s = doc >= 0 ? file + "#" + std::to_string(doc) : file;
  if (item >= 0) s += ".items[" + std::to_string(item) + "]";
  return s;
}

std::optional<std::string> decode_base64(std::string_view text) {
  static constexpr auto kTable = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
  }();
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t quad[4];
  std::size_t n = 0;    // sextets in the current quantum
  std::size_t pad = 0;  // '=' seen so far
  for (const char ch : text) {
    if (ch == '\r' || ch == '\n') continue;  // Go's StdEncoding skips them, so the API server does
    if (ch == '=') {
      // Padding only completes a quantum that has 2 or 3 sextets.
      if (n + pad < 2 || ++pad + n > 4) return std::nullopt;
      continue;
    }
    const auto v = kTable[static_cast<unsigned char>(ch)];
    if (v < 0 || pad > 0) return std::nullopt;  // a character outside the alphabet, or data after '='
    quad[n++] = static_cast<std::uint32_t>(v);
    if (n == 4) {
      const std::uint32_t bits = quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3];
      out += static_cast<char>(bits >> 16 & 0xff);
      out += static_cast<char>(bits >> 8 & 0xff);
      out += static_cast<char>(bits & 0xff);
      n = 0;
    }
  }
  if (n == 0 && pad == 0) return out;
  if (n + pad != 4) return std::nullopt;  // unpadded or truncated input
  const std::uint32_t bits = quad[0] << 18 | quad[1] << 12 | (n > 2 ? quad[2] << 6 : 0);
  out += static_cast<char>(bits >> 16 & 0xff);
  if (n == 3) out += static_cast<char>(bits >> 8 & 0xff);
  return out;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  // metav1.Time is always a full date-time with a zone; fractions are dropped (second precision).
  const auto t = core::parse_rfc3339(s);
  if (!t) return std::nullopt;
  return t->seconds;
}

namespace {

using Node = detail::YamlNode;

int line_of(const Node& n) {
  return n.line();
}

bool present(const Node& n) {
  return n.present();
}

/// parent[key]: an absent Node when `parent` is not a mapping or has no such key.
Node child(const Node& parent, std::string_view key) {
  return parent.get(key);
}

std::string join(const std::string& field, std::string_view key) {
  return field.empty() ? std::string(key) : field + "." + std::string(key);
}

std::string index(const std::string& field, std::size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

/// Reads the fields of one object: each wrong type is an error naming file#doc, the resource and
/// the field path, and is recorded in the object's `problems`. Absent and null are the same.
class ObjectReader {
 public:
  ObjectReader(const Origin& origin, std::string resource, config::Diagnostics& diag,
               std::vector<std::string>& problems)
      : where_(origin.where()), resource_(std::move(resource)), diag_(diag), problems_(problems) {}

  void set_resource(std::string resource) { resource_ = std::move(resource); }

  void error(const Node& at, const std::string& field, const std::string& message) {
    diag_.error(where_, line_of(at), field, message, resource_);
    problems_.push_back(field);
  }
  void warning(const Node& at, const std::string& field, const std::string& message) {
    diag_.warning(where_, line_of(at), field, message, resource_);
  }

  /// The child mapping, or an absent Node when absent, null or of another type (reported).
  Node map(const Node& parent, std::string_view key, const std::string& field) {
    return typed(parent, key, field, &Node::is_map, "expected a mapping");
  }
  Node seq(const Node& parent, std::string_view key, const std::string& field) {
    return typed(parent, key, field, &Node::is_seq, "expected a list");
  }

  std::optional<std::string> str(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = child(parent, key);
    return present(n) ? scalar(n, join(field, key)) : std::nullopt;
  }

  std::optional<std::string> scalar(const Node& n, const std::string& field) {
    if (!n.is_scalar()) {
      error(n, field, "expected a string");
      return std::nullopt;
    }
    return std::string(n.scalar());
  }

  std::optional<std::int64_t> integer(const Node& parent, std::string_view key, const std::string& field,
                                      std::int64_t min, std::int64_t max) {
    const Node n = child(parent, key);
    if (!present(n)) return std::nullopt;
    std::int64_t v = 0;
    const std::string_view s = n.scalar();  // "" unless a scalar
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < min || v > max) {
      error(n, join(field, key),
            "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const Node& parent, std::string_view key, const std::string& field) {
    const Node n = child(parent, key);
    if (!present(n)) return std::nullopt;
    if (n.is_scalar() && n.scalar() == "true") return true;
    if (n.is_scalar() && n.scalar() == "false") return false;
    error(n, join(field, key), "expected true or false");
    return std::nullopt;
  }

  /// A string → string mapping (annotations, labels, stringData); null values read as "".
  std::map<std::string, std::string> string_map(const Node& n, const std::string& field) {
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
      const Node value = n.value(i);
      const auto key = scalar(n.key(i), field);
      if (!key) continue;
      if (!present(value)) {
        out[*key];
      } else if (auto v = scalar(value, join(field, *key))) {
        out[*key] = std::move(*v);
      }
    }
    return out;
  }

  std::vector<std::string> string_list(const Node& parent, std::string_view key, const std::string& field) {
    std::vector<std::string> out;
    const auto f = join(field, key);
    const Node n = seq(parent, key, field);
    for (std::size_t i = 0; present(n) && i < n.size(); ++i) {
      if (auto s = scalar(n[i], index(f, i))) out.push_back(std::move(*s));
    }
    return out;
  }

 private:
  Node typed(const Node& parent, std::string_view key, const std::string& field,
             bool (Node::*is_type)() const noexcept, const char* what) {
    const Node n = child(parent, key);
    if (!present(n)) return Node();
    if (!(n.*is_type)()) {
      error(n, join(field, key), what);
      return Node();
    }
    return n;
  }

  std::string where_;
  std::string resource_;
  config::Diagnostics& diag_;
  std::vector<std::string>& problems_;
};

/// Reads metadata; false (reported) when the object has no usable name.
bool read_meta(ObjectReader& r, const Node& obj, std::string_view kind, ObjectMeta& m) {
  const Node md = r.map(obj, "metadata", "");
  const auto name = r.str(md, "name", "metadata");
  if (auto ns = r.str(md, "namespace", "metadata"); ns && !ns->empty()) m.ns = std::move(*ns);
  if (!name || name->empty()) {
    if (name) r.error(child(md, "name"), "metadata.name", "must not be empty");
    if (!present(child(md, "name"))) r.error(md.defined() ? md : obj, "metadata.name", "required");
    return false;
  }
  m.name = *name;
  r.set_resource(std::string(kind) + " " + m.key());
  if (const auto ts = r.str(md, "creationTimestamp", "metadata")) {
    m.created = parse_rfc3339(*ts);
    if (!m.created) {
      r.error(child(md, "creationTimestamp"), "metadata.creationTimestamp",
              "expected an RFC 3339 time such as 2024-05-01T10:00:00Z");
    }
  }
  if (const Node a = r.map(md, "annotations", "metadata"); present(a)) {
    m.annotations = r.string_map(a, "metadata.annotations");
    m.annotations_line = line_of(a);
    // Where each annotation is written (`phigate check` places its findings there); objects from
    // the API server have no lines and leave it empty.
    for (std::size_t i = 0; i < a.size(); ++i) {
      const Node k = a.key(i);
      if (k.is_scalar() && line_of(k) > 0) m.annotation_lines.emplace(std::string(k.scalar()), line_of(k));
    }
  }
  if (const Node l = r.map(md, "labels", "metadata"); present(l))
    m.labels = r.string_map(l, "metadata.labels");
  return true;
}

void read_backend(ObjectReader& r, const Node& n, const std::string& field, IngressBackend& b) {
  b.line = line_of(n);
  const Node svc = r.map(n, "service", field);
  const bool resource = present(child(n, "resource"));
  if (present(svc) && resource) {
    r.error(n, field, "service and resource are mutually exclusive");
    return;
  }
  if (resource) return;  // b.service stays empty: unsupported, reported by translate() for that path
  if (!present(svc)) {
    r.error(n, join(field, "service"), "required");
    return;
  }
  const auto sf = join(field, "service");
  ServiceBackend s;
  if (auto name = r.str(svc, "name", sf); name && !name->empty()) {
    s.name = std::move(*name);
  } else if (name || !present(child(svc, "name"))) {
    r.error(svc, join(sf, "name"), "required");
  }
  const Node port = r.map(svc, "port", sf);
  const auto pf = join(sf, "port");
  const auto number = r.integer(port, "number", pf, 1, 65535);
  auto port_name = r.str(port, "name", pf);
  if (number.has_value() == (port_name && !port_name->empty())) {
    r.error(present(port) ? port : svc, pf, "exactly one of number and name is required");
  }
  s.port_number = static_cast<std::int32_t>(number.value_or(0));
  s.port_name = port_name.value_or("");
  b.service = std::move(s);
}

/// status.loadBalancer.ingress[]: each entry's ip, else its hostname. Status is written by
/// controllers, not by the Ingress's author, so a malformed entry is a warning and skipped: it must
/// not make the object fail closed.
std::vector<std::string> read_load_balancer(ObjectReader& r, const Node& obj) {
  std::vector<std::string> out;
  const Node lb = child(child(child(obj, "status"), "loadBalancer"), "ingress");
  if (!present(lb)) return out;
  if (!lb.is_seq()) {
    r.warning(lb, "status.loadBalancer.ingress", "expected a list: ignored");
    return out;
  }
  for (std::size_t i = 0; i < lb.size(); ++i) {
    const Node ip = child(lb[i], "ip");
    const Node host = child(lb[i], "hostname");
    if (ip.is_scalar() && !ip.scalar().empty()) {
      out.emplace_back(ip.scalar());
    } else if (host.is_scalar() && !host.scalar().empty()) {
      out.emplace_back(host.scalar());
    } else {
      r.warning(lb[i], index("status.loadBalancer.ingress", i), "expected an ip or a hostname: ignored");
    }
  }
  return out;
}

void read_ingress(ObjectReader& r, const Node& obj, Ingress& ing) {
  ing.load_balancer = read_load_balancer(r, obj);
  const Node spec = r.map(obj, "spec", "");
  ing.class_name = r.str(spec, "ingressClassName", "spec");
  if (const Node db = r.map(spec, "defaultBackend", "spec"); present(db)) {
    ing.default_backend.emplace();
    read_backend(r, db, "spec.defaultBackend", *ing.default_backend);
  }
  const Node tls = r.seq(spec, "tls", "spec");
  for (std::size_t i = 0; present(tls) && i < tls.size(); ++i) {
    const auto f = index("spec.tls", i);
    if (!tls[i].is_map()) {
      r.error(tls[i], f, "expected a mapping");
      continue;
    }
    IngressTls t;
    t.line = line_of(tls[i]);
    t.hosts = r.string_list(tls[i], "hosts", f);
    t.secret_name = r.str(tls[i], "secretName", f).value_or("");
    ing.tls.push_back(std::move(t));
  }
  const Node rules = r.seq(spec, "rules", "spec");
  for (std::size_t i = 0; present(rules) && i < rules.size(); ++i) {
    const auto f = index("spec.rules", i);
    const Node rn = rules[i];
    if (!rn.is_map()) {
      r.error(rn, f, "expected a mapping");
      continue;
    }
    IngressRule rule;
    rule.line = line_of(rn);
    rule.host = r.str(rn, "host", f).value_or("");
    const Node http = r.map(rn, "http", f);
    const auto hf = join(f, "http");
    const Node paths = r.seq(http, "paths", hf);
    for (std::size_t j = 0; present(paths) && j < paths.size(); ++j) {
      const auto pf = index(join(hf, "paths"), j);
      const Node pn = paths[j];
      if (!pn.is_map()) {
        r.error(pn, pf, "expected a mapping");
        continue;
      }
      IngressPath p;
      p.line = line_of(pn);
      p.path = r.str(pn, "path", pf).value_or("");
      if (const auto type = r.str(pn, "pathType", pf)) {
        if (*type == "Exact") {
          p.type = config::PathType::Exact;
        } else if (*type == "Prefix") {
          p.type = config::PathType::Prefix;
        } else if (*type == "ImplementationSpecific") {
          p.type = config::PathType::ImplementationSpecific;
        } else {
          r.error(child(pn, "pathType"), join(pf, "pathType"),
                  "expected Exact, Prefix or ImplementationSpecific");
        }
      } else if (!present(child(pn, "pathType"))) {
        r.warning(pn, join(pf, "pathType"),
                  "missing (required by networking.k8s.io/v1): ImplementationSpecific");
      }
      if (const Node b = r.map(pn, "backend", pf); present(b)) {
        read_backend(r, b, join(pf, "backend"), p.backend);
      } else if (!present(child(pn, "backend"))) {
        r.error(pn, join(pf, "backend"), "required");
      }
      rule.paths.push_back(std::move(p));
    }
    ing.rules.push_back(std::move(rule));
  }
}

void read_ingress_class(ObjectReader& r, const Node& obj, IngressClass& ic) {
  const Node spec = r.map(obj, "spec", "");
  ic.controller = r.str(spec, "controller", "spec").value_or("");
  const auto it = ic.meta.annotations.find("ingressclass.kubernetes.io/is-default-class");
  ic.is_default = it != ic.meta.annotations.end() && it->second == "true";
}

void read_secret(ObjectReader& r, const Node& obj, Secret& s) {
  if (auto type = r.str(obj, "type", ""); type && !type->empty()) s.type = std::move(*type);
  if (const Node data = r.map(obj, "data", ""); present(data)) {
    for (auto& [key, value] : r.string_map(data, "data")) {
      auto decoded = decode_base64(value);
      if (!decoded) {
        // Name the key only: the value is secret material.
        r.error(child(data, key), "data." + key, "invalid base64");
        continue;
      }
      s.data[key] = std::move(*decoded);
    }
  }
  // The API server merges stringData over data on write; do the same.
  if (const Node sd = r.map(obj, "stringData", ""); present(sd)) {
    for (auto& [key, value] : r.string_map(sd, "stringData")) s.data[key] = std::move(value);
  }
}

void read_config_map(ObjectReader& r, const Node& obj, ConfigMap& m) {
  if (const Node data = r.map(obj, "data", ""); present(data)) {
    for (auto& [key, value] : r.string_map(data, "data")) m.data[key] = std::move(value);
  }
  if (present(child(obj, "binaryData"))) {
    r.warning(child(obj, "binaryData"), "binaryData", "not read (only data is used)");
  }
}

bool valid_target_port(const std::string& t) {
  if (!t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return t.size() <= 5 && std::stoi(t) >= 1 && std::stoi(t) <= 65535;
  }
  return detail::is_dns_label(t) && t.size() <= 15;  // IANA_SVC_NAME
}

void read_service(ObjectReader& r, const Node& obj, Service& s) {
  s.load_balancer = read_load_balancer(r, obj);
  const Node spec = r.map(obj, "spec", "");
  if (auto type = r.str(spec, "type", "spec"); type && !type->empty()) s.type = std::move(*type);
  s.cluster_ip = r.str(spec, "clusterIP", "spec").value_or("");
  const Node ports = r.seq(spec, "ports", "spec");
  for (std::size_t i = 0; present(ports) && i < ports.size(); ++i) {
    const auto f = index("spec.ports", i);
    if (!ports[i].is_map()) {
      r.error(ports[i], f, "expected a mapping");
      continue;
    }
    ServicePort p;
    p.name = r.str(ports[i], "name", f).value_or("");
    if (const auto port = r.integer(ports[i], "port", f, 1, 65535)) {
      p.port = static_cast<std::int32_t>(*port);
    } else if (!present(child(ports[i], "port"))) {
      r.error(ports[i], join(f, "port"), "required");
    }
    p.target_port = r.str(ports[i], "targetPort", f).value_or("");
    if (!p.target_port.empty() && !valid_target_port(p.target_port)) {
      r.error(child(ports[i], "targetPort"), join(f, "targetPort"), "expected a port number or a port name");
    }
    s.ports.push_back(std::move(p));
  }
}

/// False when the slice is of a type phigate does not use (FQDN): reported, not stored.
bool read_endpoint_slice(ObjectReader& r, const Node& obj, EndpointSlice& s) {
  const auto it = s.meta.labels.find("kubernetes.io/service-name");
  if (it != s.meta.labels.end()) s.service_name = it->second;
  s.address_type = r.str(obj, "addressType", "").value_or("");
  if (s.address_type == "FQDN") {
    r.warning(child(obj, "addressType"), "addressType", "FQDN EndpointSlices are not supported: ignored");
    return false;
  }
  if (s.address_type != "IPv4" && s.address_type != "IPv6") {
    r.error(present(child(obj, "addressType")) ? child(obj, "addressType") : obj, "addressType",
            "expected IPv4 or IPv6");
  }
  const Node ports = r.seq(obj, "ports", "");
  for (std::size_t i = 0; present(ports) && i < ports.size(); ++i) {
    const auto f = index("ports", i);
    if (!ports[i].is_map()) {
      r.error(ports[i], f, "expected a mapping");
      continue;
    }
    EndpointPort p;
    p.name = r.str(ports[i], "name", f).value_or("");
    if (const auto port = r.integer(ports[i], "port", f, 1, 65535)) p.port = static_cast<std::int32_t>(*port);
    s.ports.push_back(std::move(p));
  }
  const Node endpoints = r.seq(obj, "endpoints", "");
  const bool v6 = s.address_type == "IPv6";
  for (std::size_t i = 0; present(endpoints) && i < endpoints.size(); ++i) {
    const auto f = index("endpoints", i);
    const Node en = endpoints[i];
    if (!en.is_map()) {
      r.error(en, f, "expected a mapping");
      continue;
    }
    Endpoint e;
    e.addresses = r.string_list(en, "addresses", f);
    const Node addresses = child(en, "addresses");
    for (std::size_t k = 0; k < e.addresses.size(); ++k) {
      const auto& a = e.addresses[k];
      const bool is_v6 = a.find(':') != std::string::npos;
      if (!detail::is_ip_address(a) || is_v6 != v6) {
        r.error(addresses[k], index(join(f, "addresses"), k),
                std::string("expected an ") + (v6 ? "IPv6" : "IPv4") + " address");
      }
    }
    const Node cond = r.map(en, "conditions", f);
    e.ready = r.boolean(cond, "ready", join(f, "conditions")).value_or(true);
    // Kubernetes API: a nil serving is true, a nil terminating is false.
    e.serving = r.boolean(cond, "serving", join(f, "conditions")).value_or(true);
    e.terminating = r.boolean(cond, "terminating", join(f, "conditions")).value_or(false);
    s.endpoints.push_back(std::move(e));
  }
  return true;
}

constexpr std::string_view kIngressApi = "networking.k8s.io/v1";
constexpr std::string_view kSliceApi = "discovery.k8s.io/v1";

/// Reads one object (or a List's items) into `into`.
void load_object(const Node& obj, Origin origin, LoadResult& into, const std::string& list_api,
                 const std::string& list_item_kind) {
  auto& diag = into.diagnostics;
  if (!obj.is_map()) {
    diag.error(origin.where(), origin.line, "", "expected a Kubernetes object (a mapping)");
    return;
  }
  std::vector<std::string> scratch;
  ObjectReader head(origin, "", diag, scratch);
  std::string api = head.str(obj, "apiVersion", "").value_or(list_api);
  std::string kind = head.str(obj, "kind", "").value_or(list_item_kind);
  if (api.empty()) api = list_api;
  if (kind.empty()) kind = list_item_kind;

  const bool is_list = kind == "List" || (kind.size() > 4 && kind.ends_with("List"));
  if (is_list && origin.item < 0) {
    const Node items = head.seq(obj, "items", "");
    // A typed list from the API ("IngressList") omits kind and apiVersion on its items.
    const std::string item_kind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
    const std::string item_api = kind == "List" ? "" : api;
    for (std::size_t i = 0; present(items) && i < items.size(); ++i) {
      Origin o = origin;
      o.item = static_cast<int>(i);
      o.line = line_of(items[i]);
      load_object(items[i], o, into, item_api, item_kind);
    }
    return;
  }

  const auto ignore = [&] {
    const Node md = child(obj, "metadata");
    const Node name = child(md, "name");
    const Node ns = child(md, "namespace");
    std::string n(name.scalar());  // "" unless a scalar
    if (!n.empty()) n = (ns.is_scalar() ? std::string(ns.scalar()) : "default") + "/" + n;
    into.ignored.push_back({origin, api, kind, std::move(n)});
  };
  static constexpr std::array<std::string_view, 6> kKnownKinds = {"Ingress", "IngressClass",  "Secret",
                                                                  "Service", "EndpointSlice", "ConfigMap"};
  const bool known_kind = std::find(kKnownKinds.begin(), kKnownKinds.end(), kind) != kKnownKinds.end();
  const bool supported = (api == kIngressApi && (kind == "Ingress" || kind == "IngressClass")) ||
                         (api == "v1" && (kind == "Secret" || kind == "Service" || kind == "ConfigMap")) ||
                         (api == kSliceApi && kind == "EndpointSlice");
  if (!supported) {
    if (known_kind) {
      // e.g. extensions/v1beta1 Ingress: silently skipping it would unpublish routes the user expects.
      diag.warning(origin.where(), origin.line, "apiVersion",
                   "apiVersion " + api + " of " + kind + " is not supported: object ignored");
    }
    ignore();
    return;
  }

  auto& res = into.resources;
  const auto read = [&](auto& object, auto&& body) {
    object.origin = origin;
    ObjectReader r(origin, kind, diag, object.problems);
    if (!read_meta(r, obj, kind, object.meta)) return false;
    return body(r);
  };
  if (kind == "Ingress") {
    Ingress ing;
    if (read(ing, [&](ObjectReader& r) {
          read_ingress(r, obj, ing);
          return true;
        })) {
      res.ingresses.push_back(std::move(ing));
    }
  } else if (kind == "IngressClass") {
    IngressClass ic;
    if (read(ic, [&](ObjectReader& r) {
          read_ingress_class(r, obj, ic);
          return true;
        })) {
      res.ingress_classes.push_back(std::move(ic));
    }
  } else if (kind == "Secret") {
    Secret s;
    if (read(s, [&](ObjectReader& r) {
          read_secret(r, obj, s);
          return true;
        })) {
      res.secrets.push_back(std::move(s));
    }
  } else if (kind == "ConfigMap") {
    ConfigMap m;
    if (read(m, [&](ObjectReader& r) {
          read_config_map(r, obj, m);
          return true;
        })) {
      res.config_maps.push_back(std::move(m));
    }
  } else if (kind == "Service") {
    Service s;
    if (read(s, [&](ObjectReader& r) {
          read_service(r, obj, s);
          return true;
        })) {
      res.services.push_back(std::move(s));
    }
  } else {
    EndpointSlice s;
    if (read(s, [&](ObjectReader& r) { return read_endpoint_slice(r, obj, s); })) {
      res.endpoint_slices.push_back(std::move(s));
    }
  }
}

bool is_manifest(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";  // as kubectl apply -f <dir>
}

/// Collects manifest paths under `dir`. Names starting with '.' are skipped: a mounted ConfigMap
/// holds each file twice (the visible symlink and the `..data/` target). Symlinked folders are
/// followed once each (by canonical path), so a symlink loop ends.
void collect(const fs::path& dir, std::set<fs::path>& seen, std::vector<std::string>& files,
             config::Diagnostics& diag, int depth) {
  std::error_code ec;
  const auto canonical = fs::canonical(dir, ec);
  if (ec || !seen.insert(canonical).second) return;
  if (depth > 32) {
    diag.error(dir.string(), 0, "", "folders nested too deep: not read");
    return;
  }
  fs::directory_iterator it(dir, ec);
  if (ec) {
    diag.error(dir.string(), 0, "", "cannot list the folder: " + ec.message());
    return;
  }
  for (const auto& entry : it) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.front() == '.') continue;
    std::error_code sec;
    const auto st = fs::status(entry.path(), sec);  // follows symlinks
    if (sec) continue;                              // dangling symlink: nothing to read
    if (fs::is_directory(st)) {
      collect(entry.path(), seen, files, diag, depth + 1);
    } else if (fs::is_regular_file(st) && is_manifest(entry.path())) {
      files.push_back(entry.path().string());
    }
  }
}

void parse_text(const std::string& text, const std::string& file, LoadResult& into) {
  ++into.files;
  detail::YamlTree tree;
  // The whole file parses before any object is read: a broken file contributes no objects at all
  // (half a file could drop the Ingress that claims a host while keeping the others).
  if (const auto err = tree.parse(text)) {
    ++into.broken_files;
    into.diagnostics.error(file, err->line, "", "invalid YAML: " + err->message);
    return;
  }
  const auto& docs = tree.documents();
  for (std::size_t d = 0; d < docs.size(); ++d) {
    if (!present(docs[d])) continue;  // an empty document ("---" at the start or end)
    const Origin origin{file, static_cast<int>(d), -1, line_of(docs[d])};
    load_object(docs[d], origin, into, "", "");
  }
}

}  // namespace

void detail::load_document(const YamlNode& obj, const Origin& origin, LoadResult& into) {
  load_object(obj, origin, into, "", "");
}

void load_text(const std::string& text, const std::string& file, LoadResult& into) {
  ++into.parsed_files;
  parse_text(text, file, into);
}

void append(LoadResult& into, const LoadResult& part) {
  const auto add = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
  add(into.resources.ingresses, part.resources.ingresses);
  add(into.resources.ingress_classes, part.resources.ingress_classes);
  add(into.resources.secrets, part.resources.secrets);
  add(into.resources.services, part.resources.services);
  add(into.resources.endpoint_slices, part.resources.endpoint_slices);
  add(into.resources.config_maps, part.resources.config_maps);
  add(into.ignored, part.ignored);
  // Not Diagnostics::add(): it does not count errors.
  for (const auto& d : part.diagnostics.entries()) {
    if (d.severity == config::Severity::Error) {
      into.diagnostics.error(d.file, d.line, d.field, d.message, d.resource);
    } else {
      into.diagnostics.warning(d.file, d.line, d.field, d.message, d.resource);
    }
  }
  into.files += part.files;
  into.broken_files += part.broken_files;
  into.parsed_files += part.parsed_files;
}

std::vector<std::string> manifest_files(const std::string& dir, config::Diagnostics& diag) {
  std::set<fs::path> seen;
  std::vector<std::string> files;
  collect(dir, seen, files, diag, 0);
  std::sort(files.begin(), files.end());
  return files;
}

LoadResult DirectoryLoader::load(const std::string& dir) {
  LoadResult out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    out.diagnostics.error(dir, 0, "", "not a readable folder");
    cache_.clear();
    return out;
  }
  const auto files = manifest_files(dir, out.diagnostics);
  std::unordered_map<std::string, CachedFile> next;  // files gone since the last load drop out
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    if (in) ss << in.rdbuf();
    if (!in) {
      ++out.files;
      ++out.broken_files;
      out.diagnostics.error(f, 0, "", "cannot read the file");
      continue;
    }
    auto text = std::move(ss).str();
    // Compare the bytes, not size and mtime: a same-size rewrite within the timestamp granularity
    // must not serve stale routes.
    if (auto it = cache_.find(f); it != cache_.end() && it->second.text == text) {
      it->second.parsed.parsed_files = 0;
      append(out, it->second.parsed);
      next.emplace(f, std::move(it->second));
      continue;
    }
    CachedFile c{std::move(text), {}};
    load_text(c.text, f, c.parsed);
    append(out, c.parsed);
    next.emplace(f, std::move(c));
  }
  cache_ = std::move(next);
  return out;
}

LoadResult load_directory(const std::string& dir) {
  return DirectoryLoader{}.load(dir);
}

}  // namespace phigate::ingress
