#pragma once
// The Kubernetes objects phigate reads, as plain structs holding only the fields the translation
// uses (everything else in a manifest, such as status, is dropped). Filled on the control thread by
// the loader; read by translate(). No YAML types leak out of here.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "phigate/config/spec.hpp"

namespace phigate::ingress {

/// Where an object came from: its file, 0-based document index and, inside a `kind: List`, item index.
struct Origin {
  std::string file;
  int doc = 0;
  int item = -1;  // -1: not inside a List
  int line = 0;   // 1-based line of the object in the file; 0 when unknown

  /// "file#doc" or "file#doc.items[i]": the `file` of every diagnostic about this object.
  std::string where() const;
};

struct ObjectMeta {
  std::string name;
  std::string ns = "default";           // metadata.namespace
  std::optional<std::int64_t> created;  // metadata.creationTimestamp, seconds since the Unix epoch
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;
  int annotations_line = 0;
  std::map<std::string, int> annotation_lines{};  // line of each annotation key (manifest files)

  /// "ns/name".
  std::string key() const { return ns + "/" + name; }
};

/// `backend.service`: exactly one of `port_number` (> 0) and `port_name` is set.
struct ServiceBackend {
  std::string name;
  std::int32_t port_number = 0;
  std::string port_name;
};

struct IngressBackend {
  std::optional<ServiceBackend> service;  // nullopt: `backend.resource`, which phigate does not support
  int line = 0;
};

struct IngressPath {
  std::string path;  // as written; "" means "/" (ingress-nginx)
  config::PathType type = config::PathType::ImplementationSpecific;
  IngressBackend backend;
  int line = 0;
};

struct IngressRule {
  std::string host;  // as written; "" matches any host
  std::vector<IngressPath> paths;
  int line = 0;
};

struct IngressTls {
  std::vector<std::string> hosts;
  std::string secret_name;  // "": TLS with the default certificate
  int line = 0;
};

/// Every object kind carries `problems`: the field paths that failed to load (each already reported as
/// an error). An object with problems is not used; an Ingress with problems fails closed.
struct Ingress {
  Origin origin;
  ObjectMeta meta;
  std::optional<std::string> class_name;  // spec.ingressClassName
  std::optional<IngressBackend> default_backend;
  std::vector<IngressTls> tls;
  std::vector<IngressRule> rules;
  std::vector<std::string> problems;
  std::vector<std::string> load_balancer{};  // status.loadBalancer.ingress[]: each ip, else hostname
};

struct IngressClass {
  Origin origin;
  ObjectMeta meta;
  std::string controller;   // spec.controller
  bool is_default = false;  // annotation ingressclass.kubernetes.io/is-default-class: "true"
  std::vector<std::string> problems;
};

struct Secret {
  Origin origin;
  ObjectMeta meta;
  std::string type = "Opaque";
  std::map<std::string, std::string> data;  // decoded `data`, overlaid with `stringData`
  std::vector<std::string> problems;
};

/// A ConfigMap an Ingress refers to (custom-headers, phigate.io/proxy-set-headers). `binaryData`
/// is not read (a warning when present).
struct ConfigMap {
  Origin origin;
  ObjectMeta meta;
  std::map<std::string, std::string> data;
  std::vector<std::string> problems;
};

struct ServicePort {
  std::string name;  // "" when unnamed
  std::int32_t port = 0;
  std::string target_port;  // number or name, as written; "" when absent
};

struct Service {
  Origin origin;
  ObjectMeta meta;
  std::string type = "ClusterIP";
  std::string cluster_ip{};  // spec.clusterIP: "" when absent, "None" for a headless Service
  std::vector<ServicePort> ports;
  std::vector<std::string> problems;
  std::vector<std::string> load_balancer{};  // status.loadBalancer.ingress[]: each ip, else hostname
};

struct EndpointPort {
  std::string name;  // "" when unnamed (null in the API)
  std::optional<std::int32_t> port;
};

struct Endpoint {
  std::vector<std::string> addresses;
  bool ready = true;         // conditions.ready; absent means ready (API contract)
  bool serving = true;       // conditions.serving; absent means serving
  bool terminating = false;  // conditions.terminating; absent means not terminating
};

struct EndpointSlice {
  Origin origin;
  ObjectMeta meta;
  std::string service_name;  // label kubernetes.io/service-name
  std::string address_type;  // IPv4 | IPv6 (FQDN slices are reported and dropped by the loader)
  std::vector<EndpointPort> ports;
  std::vector<Endpoint> endpoints;
  std::vector<std::string> problems;
};

/// One consistent set of objects, in load order (sorted file paths, then document order).
struct Resources {
  std::vector<Ingress> ingresses;
  std::vector<IngressClass> ingress_classes;
  std::vector<Secret> secrets;
  std::vector<Service> services;
  std::vector<EndpointSlice> endpoint_slices;
  std::vector<ConfigMap> config_maps{};
};

}  // namespace phigate::ingress
