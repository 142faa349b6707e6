#include "phigate/ingress/translate.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "annotations_auth_impl.hpp"
#include "annotations_rewrite.hpp"
#include "names_impl.hpp"
#include "phigate/core/host_map.hpp"
#include "phigate/ingress/annotations.hpp"
#include "translate_canary_impl.hpp"
#include "translate_headers_impl.hpp"

namespace phigate::ingress {

namespace {

constexpr std::string_view kClassAnnotation = "kubernetes.io/ingress.class";

std::string shown(const std::string& host) {
  return host.empty() ? "*" : host;
}

std::string field_index(std::string_view base, std::size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

bool looks_like_pem(const std::string& s) {
  return s.find("-----BEGIN") != std::string::npos;
}

/// What the router considers the same route (RouteTable::build): Exact paths by their text;
/// Prefix and ImplementationSpecific share one map keyed by the path without trailing slashes.
/// A regex path (use-regex, or a rewrite) is claimed by its text, as the router keys it.
std::string claim_key(const std::string& host, const config::PathSpec& p) {
  std::string key = host;
  if (p.policy != nullptr && p.policy->regex.regex_path(p.path)) {
    key += "\nR";
    key += p.path;
  } else if (p.type == config::PathType::Exact) {
    key += "\nE";
    key += p.path;
  } else {
    key += "\nP";
    std::string_view path = p.path;
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    key += path;
  }
  return key;
}

/// A request path the router can match literally: absolute, printable, no query or fragment. A
/// regex path may have '?' (a quantifier); it is checked with RE2 separately.
bool valid_path(const std::string& p, bool regex = false) {
  if (p.empty() || p.front() != '/' || p.size() > 4096) return false;
  return std::all_of(p.begin(), p.end(),
                     [&](char c) { return c > 0x20 && c < 0x7f && (c != '?' || regex) && c != '#'; });
}

/// The key of annotation `name` that is in effect (phigate.io/ wins), for diagnostics.
std::string annotation_key(const Ingress& ing, std::string_view name) {
  const auto phigate = std::string(kPhigatePrefix) + std::string(name);
  if (ing.meta.annotations.count(phigate) != 0) return phigate;
  return std::string(kNginxPrefix) + std::string(name);
}

/// Settings that ServerContexts applies per host name, from the ClientHello's SNI and the request's
/// Host (auth-tls-*, ssl-ciphers): they cannot apply to a rule without a host or to the catch-all.
bool has_host_tls(const config::RoutePolicy& p) {
  return p.verify_client != config::VerifyClient::Off || !p.ssl_ciphers.empty();
}

/// How much a client-certificate rule demands, weakest first.
int strictness(config::VerifyClient v) {
  switch (v) {
    case config::VerifyClient::On:
      return 3;
    case config::VerifyClient::Optional:
      return 2;
    case config::VerifyClient::OptionalNoCa:
      return 1;
    case config::VerifyClient::Off:
      break;
  }
  return 0;
}

/// Plain HTTP is proxied for this path (ssl-redirect "false" without force-ssl-redirect).
bool allows_plain_http(const config::RoutePolicy& p) {
  return !p.ssl_redirect && !p.force_ssl_redirect;
}

/// The annotation that asked for per-host TLS settings, for diagnostics.
std::string host_tls_annotation(const Ingress& ing, const config::RoutePolicy& p) {
  if (!p.auth_tls_secret.empty()) return annotation_key(ing, "auth-tls-secret");
  if (p.verify_client != config::VerifyClient::Off) return annotation_key(ing, "auth-tls-verify-client");
  return annotation_key(ing, "ssl-ciphers");
}

struct ResolvedBackend {
  std::vector<std::string> backends;     // sorted, distinct "ip:port" / "[ip6]:port"
  std::vector<std::string> terminating;  // terminating but serving: in-flight requests only
  std::string error;                     // "" when the Service and port exist
  std::size_t refused = 0;               // endpoint addresses never used (see never_a_backend)
};

/// An EndpointSlice address phigate never sends to: unspecified, link-local (169.254.0.0/16 holds
/// the cloud metadata service, fe80::/10), multicast, and AWS's IPv6 metadata address. Anyone who may write
/// an EndpointSlice could otherwise point a route at the node's metadata endpoint and read its credentials
/// through us.
bool never_a_backend(const std::string& a, bool v6) {
  unsigned char b[16] = {};
  if (!v6) {
    if (inet_pton(AF_INET, a.c_str(), b) != 1) return false;  // the loader checked the form
    return (b[0] == 0) || (b[0] == 169 && b[1] == 254) || (b[0] >= 224);
  }
  if (inet_pton(AF_INET6, a.c_str(), b) != 1) return false;
  const bool unspecified = std::all_of(b, b + 16, [](unsigned char c) { return c == 0; });
  const bool mapped =
      std::all_of(b, b + 10, [](unsigned char c) { return c == 0; }) && b[10] == 0xff && b[11] == 0xff;
  if (mapped) return (b[12] == 0) || (b[12] == 169 && b[13] == 254) || (b[12] >= 224);
  // fd00:ec2::254: AWS's IPv6 instance metadata service (a ULA address, so named here).
  static constexpr unsigned char kAwsMetadata[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                                     0,    0, 0,    0,    0, 0, 0x02, 0x54};
  return unspecified || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff ||
         std::equal(b, b + 16, kAwsMetadata);
}

/// ingress-nginx's class selection, shared by translate() and is_ours(): `classes` by name (the
/// first of duplicates).
class ClassSelection {
 public:
  ClassSelection(const std::unordered_map<std::string, const IngressClass*>& classes,
                 const config::IngressSpec& spec)
      : classes_(classes), spec_(spec) {
    for (const auto& [name, ic] : classes_) {
      if (ic->problems.empty() && ic->is_default && ic->controller == spec_.controller)
        default_class_ours_ = true;
    }
  }

  /// "" when the Ingress is ours; otherwise why not (for a debug log).
  std::string not_ours(const Ingress& ing) const {
    if (ing.class_name && !ing.class_name->empty()) {
      const auto& name = *ing.class_name;
      if (const auto it = classes_.find(name); it != classes_.end() && it->second->problems.empty()) {
        // The IngressClass object decides: it may name our class but hand it to another controller.
        if (it->second->controller == spec_.controller) return {};
        return "IngressClass " + name + " belongs to controller " + it->second->controller;
      }
      if (name == spec_.class_name) return {};
      return "ingressClassName " + name + " is not ours";
    }
    if (const auto it = ing.meta.annotations.find(std::string(kClassAnnotation));
        it != ing.meta.annotations.end()) {
      if (it->second == spec_.class_name) return {};
      return std::string(kClassAnnotation) + " " + it->second + " is not ours";
    }
    if (default_class_ours_) return {};
    return "no ingressClassName and no default IngressClass of ours";
  }

 private:
  const std::unordered_map<std::string, const IngressClass*>& classes_;
  const config::IngressSpec& spec_;
  bool default_class_ours_ = false;
};

struct Claim {
  std::string owner;  // "ns/name" of the Ingress that keeps it
};

/// One translation: indexes the inputs by namespace/name (hash maps, so the whole run is linear in
/// the number of objects and paths), walks our Ingresses in precedence order, and fills `out`.
class Translator {
 public:
  Translator(const Resources& res, const config::IngressSpec& spec, config::Diagnostics& diag)
      : res_(res), spec_(spec), diag_(diag) {}

  Translation run() {
    index();
    std::vector<const Ingress*> ours;
    for (const Ingress* ing : ingresses_) {
      if (auto why = not_ours(*ing); !why.empty()) {
        out_.ignored.push_back("Ingress " + ing->meta.key() + ": " + why);
        ++out_.stats.ignored;
      } else {
        ours.push_back(ing);
      }
    }
    // ingress-nginx precedence: the oldest creationTimestamp first (absent counts as the zero time,
    // the oldest), ties broken by namespace then name.
    std::stable_sort(ours.begin(), ours.end(), [](const Ingress* a, const Ingress* b) {
      const auto ta = a->meta.created.value_or(kNoTime);
      const auto tb = b->meta.created.value_or(kNoTime);
      return std::tie(ta, a->meta.ns, a->meta.name) < std::tie(tb, b->meta.ns, b->meta.name);
    });
    for (const Ingress* ing : ours) {
      out_.stats.used_keys.push_back(ing->meta.key());
      add(*ing);
    }
    add_default_roots();
    detail::attach_canaries(
        out_.routes, canaries_,
        [&](const std::string& host, const config::PathSpec& p) {
          const auto it = claims_.find(claim_key(host, p));
          return it != claims_.end() && "Ingress " + it->second.owner == p.policy->resource;
        },
        spec_.canary_cross_namespace, diag_);
    add_aliases();
    check_host_tls();
    out_.stats.ingresses = ingresses_.size();
    out_.stats.used = ours.size();
    out_.stats.routes = out_.routes.size();
    for (const auto& r : out_.routes) out_.stats.paths += r.paths.size();
    out_.stats.certificates = out_.certificates.size();
    return std::move(out_);
  }

 private:
  static constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

  /// A host's root path served by its Ingress's spec.defaultBackend (ingress-nginx: the first Ingress
  /// defining a host sets that host's default location). Added after every explicit path.
  struct DefaultRoot {
    std::string owner;
    std::string host;
    config::PathSpec path;
  };

  template <class T, class Map>
  void index_unique(const std::vector<T>& objects, std::string_view kind, Map& map,
                    bool by_name_only = false) {
    for (const auto& o : objects) {
      auto key = by_name_only ? o.meta.name : o.meta.key();
      const auto [it, inserted] = map.emplace(std::move(key), &o);
      if (!inserted) {
        diag_.warning(o.origin.where(), o.origin.line, "metadata.name",
                      "duplicate " + std::string(kind) + " (first defined in " + it->second->origin.where() +
                          "): this one is ignored",
                      std::string(kind) + " " + o.meta.key());
      }
    }
  }

  void index() {
    std::unordered_map<std::string, const Ingress*> ingresses;
    index_unique(res_.ingresses, "Ingress", ingresses);
    for (const auto& i : res_.ingresses) {
      const Ingress* kept = ingresses.at(i.meta.key());
      if (kept == &i) {
        ingresses_.push_back(&i);
      } else if (kept->meta.annotations != i.meta.annotations) {
        // Two definitions of one Ingress that disagree on its policy: keeping the first would
        // silently drop the other's (say, its auth-tls or source ranges). Which one was meant
        // is unknowable, so the Ingress fails closed until one is removed (two canaries: the
        // canary gets no traffic).
        diag_.error(i.origin.where(), i.meta.annotations_line, "metadata.annotations",
                    "duplicate Ingress (first defined in " + kept->origin.where() +
                        ") with other annotations: the Ingress fails closed (503) until one is removed",
                    "Ingress " + i.meta.key());
        ambiguous_.insert(i.meta.key());
        if (is_canary(kept->meta.annotations) && is_canary(i.meta.annotations))
          canary_dups_.insert(i.meta.key());
      }
    }
    index_unique(res_.ingress_classes, "IngressClass", classes_, true);
    index_unique(res_.secrets, "Secret", secrets_);
    index_unique(res_.services, "Service", services_);
    index_unique(res_.config_maps, "ConfigMap", config_maps_);
    std::unordered_map<std::string, const EndpointSlice*> slices;
    index_unique(res_.endpoint_slices, "EndpointSlice", slices);
    for (const auto& s : res_.endpoint_slices) {
      // A slice with load problems is not used: fewer endpoints beats wrong ones.
      if (slices.at(s.meta.key()) != &s || !s.problems.empty() || s.service_name.empty()) continue;
      slices_[s.meta.ns + "/" + s.service_name].push_back(&s);
    }
    selection_.emplace(classes_, spec_);
  }

  /// "" when the Ingress is ours; otherwise why not (for a debug log).
  std::string not_ours(const Ingress& ing) const { return selection_->not_ours(ing); }

  const ResolvedBackend& resolve(const std::string& ns, const ServiceBackend& b) {
    auto key = ns + "/" + b.name + ":" +
               (b.port_name.empty() ? std::to_string(b.port_number) : "name=" + b.port_name);
    auto [it, inserted] = resolved_.try_emplace(std::move(key));
    if (!inserted) return it->second;
    auto& r = it->second;
    const auto svc_it = services_.find(ns + "/" + b.name);
    if (svc_it == services_.end()) {
      r.error = "Service " + ns + "/" + b.name + " not found";
      return r;
    }
    const Service& svc = *svc_it->second;
    if (!svc.problems.empty()) {
      r.error = "Service " + ns + "/" + b.name + " is invalid";
      return r;
    }
    if (svc.type == "ExternalName") {
      r.error = "Service " + ns + "/" + b.name + " is of type ExternalName, which is not supported";
      return r;
    }
    const ServicePort* port = nullptr;
    for (const auto& p : svc.ports) {
      if (b.port_name.empty() ? p.port == b.port_number : p.name == b.port_name) {
        port = &p;
        break;
      }
    }
    if (port == nullptr) {
      r.error = "Service " + ns + "/" + b.name + " has no port " +
                (b.port_name.empty() ? std::to_string(b.port_number) : "named " + b.port_name);
      return r;
    }
    // The EndpointSlice controller names each slice port after the Service port it serves and gives
    // the resolved targetPort as its number.
    if (const auto s = slices_.find(ns + "/" + b.name); s != slices_.end()) {
      for (const EndpointSlice* slice : s->second) {
        const auto sp = std::find_if(slice->ports.begin(), slice->ports.end(),
                                     [&](const EndpointPort& p) { return p.name == port->name && p.port; });
        if (sp == slice->ports.end()) continue;
        const auto suffix = ":" + std::to_string(*sp->port);
        const bool v6 = slice->address_type == "IPv6";
        for (const auto& e : slice->endpoints) {
          // Ready endpoints take requests. A terminating one that still serves (its Pod got
          // SIGTERM) is listed apart: no new requests, but the ones under way may finish.
          auto* into = e.ready && !e.terminating      ? &r.backends
                       : (e.terminating && e.serving) ? &r.terminating
                                                      : nullptr;
          if (into == nullptr) continue;
          for (const auto& a : e.addresses) {
            if (never_a_backend(a, v6)) {
              ++r.refused;
              continue;
            }
            into->push_back(v6 ? "[" + a + "]" + suffix : a + suffix);
          }
        }
      }
    }
    for (auto* v : {&r.backends, &r.terminating}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    // An address ready in one slice and terminating in another (a slice being replaced) is ready.
    std::erase_if(r.terminating, [&](const std::string& t) {
      return std::binary_search(r.backends.begin(), r.backends.end(), t);
    });
    return r;
  }

  /// service-upstream: "clusterIP:port" of the Service (the port by number or name), or "" with
  /// `why` set when there is none to use (headless, or an address never_a_backend refuses); "" and
  /// no `why` when the Service or port is missing (resolve() reports that).
  std::string cluster_backend(const std::string& ns, const ServiceBackend& b, std::string& why) const {
    const auto svc_it = services_.find(ns + "/" + b.name);
    if (svc_it == services_.end() || !svc_it->second->problems.empty()) return {};
    const Service& svc = *svc_it->second;
    const auto port = std::find_if(svc.ports.begin(), svc.ports.end(), [&](const ServicePort& p) {
      return b.port_name.empty() ? p.port == b.port_number : p.name == b.port_name;
    });
    if (port == svc.ports.end() || svc.type == "ExternalName") return {};
    const auto& ip = svc.cluster_ip;
    if (ip.empty() || ip == "None") {
      why = "Service " + ns + "/" + b.name + " has no cluster IP (headless)";
      return {};
    }
    const bool v6 = ip.find(':') != std::string::npos;
    if (!detail::is_ip_address(ip) || never_a_backend(ip, v6)) {
      why = "Service " + ns + "/" + b.name + " has a cluster IP that cannot be a backend";
      return {};
    }
    return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port->port);
  }

  /// Backends for one path (or defaultBackend); a missing Service or port is reported and yields
  /// none: the route answers 503 until it appears, and the Ingress does not fail closed.
  std::vector<std::string> backends(const Ingress& ing, const IngressBackend& b, const std::string& field,
                                    std::vector<std::string>* terminating = nullptr,
                                    bool service_upstream = false) {
    if (!b.service) {
      diag_.error(ing.origin.where(), b.line, field + ".resource",
                  "resource backends are not supported: the path answers 503", "Ingress " + ing.meta.key());
      return {};
    }
    if (b.service->name.empty()) return {};  // reported by the loader
    if (service_upstream) {
      std::string why;
      auto ip = cluster_backend(ing.meta.ns, *b.service, why);
      if (!ip.empty()) {
        if (terminating != nullptr) terminating->clear();
        return {std::move(ip)};
      }
      if (!why.empty()) {
        diag_.warning(ing.origin.where(), ing.meta.annotations_line,
                      "metadata.annotations." + annotation_key(ing, "service-upstream"),
                      "backend " + b.service->name + ": " + why + ": its endpoints are used instead",
                      "Ingress " + ing.meta.key());
      }
    }
    const auto& r = resolve(ing.meta.ns, *b.service);
    if (!r.error.empty()) {
      const auto port =
          b.service->port_name.empty() ? std::to_string(b.service->port_number) : b.service->port_name;
      diag_.error(ing.origin.where(), b.line, field + ".service",
                  "backend " + b.service->name + ":" + port + ": " + r.error + " (the path answers 503)",
                  "Ingress " + ing.meta.key());
    }
    if (r.refused > 0) {
      diag_.warning(ing.origin.where(), b.line, field + ".service",
                    "backend " + b.service->name + ": " + std::to_string(r.refused) +
                        " EndpointSlice address(es) refused: unspecified, link-local or multicast",
                    "Ingress " + ing.meta.key());
    }
    if (terminating != nullptr) *terminating = r.terminating;
    return r.backends;
  }

  /// The Service's cluster DNS name, "<service>.<namespace>.svc": the name an HTTPS backend's
  /// certificate is checked against when proxy-ssl-name is not set.
  static std::string service_host(const Ingress& ing, const IngressBackend& b) {
    if (!b.service) return {};
    return b.service->name + "." + ing.meta.ns + ".svc";
  }

  /// Looks up a Secret of the Ingress's namespace; "" and `out` set when usable, else why not.
  std::string find_secret(const std::string& key, const Secret*& out) const {
    const auto it = secrets_.find(key);
    if (it == secrets_.end()) return "not found";
    if (!it->second->problems.empty()) return "is invalid";
    out = it->second;
    return {};
  }

  static const std::string* pem(const Secret& s, const char* key) {
    const auto it = s.data.find(key);
    return it != s.data.end() && looks_like_pem(it->second) ? &it->second : nullptr;
  }

  /// Fills the PEM fields of `policy` from the Secrets its annotations name; "" or a fail_closed reason.
  std::string resolve_policy_secrets(const Ingress& ing, config::RoutePolicy& policy) {
    const auto where = ing.origin.where();
    const auto resource = "Ingress " + ing.meta.key();
    std::string fail;
    const auto report = [&](std::string_view name, const std::string& ref, const std::string& why) {
      diag_.error(where, ing.meta.annotations_line, "metadata.annotations." + annotation_key(ing, name),
                  "Secret " + ref + " " + why, resource);
      if (fail.empty()) fail = std::string(name) + " " + ref + ": Secret " + why;
    };
    if (!policy.auth_tls_secret.empty()) {
      const Secret* s = nullptr;
      auto why = find_secret(policy.auth_tls_secret, s);
      if (why.empty()) {
        if (const auto* ca = pem(*s, "ca.crt")) {
          policy.auth_tls_ca_pem = *ca;
        } else {
          why = "has no PEM ca.crt";
        }
        if (s->data.count("ca.crl") != 0) {
          if (const auto* crl = pem(*s, "ca.crl")) {
            policy.auth_tls_crl_pem = *crl;
          } else {
            why = "has a ca.crl that is not PEM";
          }
        }
      }
      if (!why.empty()) report("auth-tls-secret", policy.auth_tls_secret, why);
    }
    if (!policy.proxy_ssl_secret.empty()) {
      const Secret* s = nullptr;
      auto why = find_secret(policy.proxy_ssl_secret, s);
      if (why.empty()) {
        const auto* crt = pem(*s, "tls.crt");
        const auto* key = pem(*s, "tls.key");
        const auto* ca = pem(*s, "ca.crt");
        if (crt == nullptr || key == nullptr) {
          why = "has no PEM tls.crt and tls.key";
        } else if (s->data.count("ca.crt") != 0 && ca == nullptr) {
          why = "has a ca.crt that is not PEM";
        } else {
          // Without a ca.crt, a verified backend is checked against the system trust store.
          policy.proxy_ssl_cert_pem = *crt;
          policy.proxy_ssl_key_pem = *key;
          if (ca != nullptr) policy.proxy_ssl_ca_pem = *ca;
        }
      }
      if (!why.empty()) report("proxy-ssl-secret", policy.proxy_ssl_secret, why);
    }
    if (policy.basic_auth.enabled && !policy.basic_auth.secret.empty()) resolve_basic_auth(policy, report);
    return fail;
  }

  /// auth-type: basic: the users of auth-secret (its `auth` htpasswd file, or every key under
  /// auth-secret-type: auth-map). Any problem is reported (Ingress, annotation, Secret and key) and
  /// fails the Ingress closed: its paths are never served without the check.
  template <class Report>
  void resolve_basic_auth(config::RoutePolicy& policy, Report& report) const {
    auto& auth = policy.basic_auth;
    const Secret* s = nullptr;
    auto why = find_secret(auth.secret, s);
    if (why.empty()) {
      std::vector<config::BasicAuthUser> users;
      if (auth.auth_map) {
        if (auto w = detail::parse_auth_map(s->data, users); !w.empty()) why = "(auth-map) " + w;
      } else if (const auto key = s->data.find("auth"); key == s->data.end()) {
        why = "has no key `auth` (an htpasswd file)";
      } else if (auto w = detail::parse_htpasswd(key->second, users); !w.empty()) {
        why = "key `auth`: " + w;
      }
      if (why.empty())
        auth.users = std::make_shared<const std::vector<config::BasicAuthUser>>(std::move(users));
    }
    if (!why.empty()) report("auth-secret", auth.secret, why);
  }

  /// Renders the header fields of the ConfigMaps `policy` names (custom-headers,
  /// proxy-set-headers); "" or a fail_closed reason. Each problem is an error naming the Ingress,
  /// its annotation and the ConfigMap's key.
  std::string resolve_policy_config_maps(const Ingress& ing, config::RoutePolicy& policy) {
    const auto resource = "Ingress " + ing.meta.key();
    std::string fail;
    const auto resolve = [&](std::string_view name, const std::string& ref, bool request, std::string& out) {
      if (ref.empty()) return;
      std::string why;
      const auto it = config_maps_.find(ref);
      if (it == config_maps_.end()) {
        why = "not found";
      } else if (!it->second->problems.empty()) {
        why = "is invalid";
      } else {
        why =
            detail::render_config_map_headers(it->second->data, request, spec_.allowed_response_headers, out);
      }
      if (why.empty()) return;
      out.clear();
      diag_.error(ing.origin.where(), ing.meta.annotations_line,
                  "metadata.annotations." + annotation_key(ing, name), "ConfigMap " + ref + " " + why,
                  resource);
      if (fail.empty()) fail = std::string(name) + " " + ref + ": ConfigMap " + why;
    };
    resolve("custom-headers", policy.headers.custom_headers_ref, false, policy.headers.response_fields);
    resolve("proxy-set-headers", policy.headers.proxy_set_headers_ref, true, policy.headers.request_fields);
    return fail;
  }

  /// Claims host+path for `owner`; warns when an earlier Ingress (or an earlier path of the same one)
  /// already has it. The route is emitted either way: the router keeps the first.
  void claim(const std::string& host, const config::PathSpec& p, const Ingress& ing, const std::string& owner,
             const std::string& field) {
    const auto [it, inserted] = claims_.try_emplace(claim_key(host, p), Claim{owner});
    if (inserted) return;
    const auto what = shown(host) + " " + p.path;
    if (it->second.owner == owner) {
      diag_.warning(ing.origin.where(), p.where.line, field,
                    "duplicate path " + what + " in the same Ingress: the first one wins",
                    "Ingress " + owner);
      return;
    }
    ++out_.stats.conflicts;
    diag_.warning(ing.origin.where(), p.where.line, field,
                  "conflict: " + what + " claimed by Ingress " + it->second.owner + " (kept) and " + owner +
                      " (ignored)",
                  "Ingress " + owner);
  }

  /// app-root is server level in ingress-nginx; phigate honours it only on the route that serves
  /// "/" of the host (the app-root phase reads the matched route's policy), so two Ingresses
  /// setting it on one host are reported: at most the root's owner redirects.
  void claim_app_root(const std::string& host, const std::string& root, const Ingress& ing,
                      const std::string& owner) {
    const auto [it, inserted] = app_roots_.try_emplace(host, root, owner);
    if (inserted || it->second.first == root) return;
    ++out_.stats.conflicts;
    diag_.warning(ing.origin.where(), ing.meta.annotations_line,
                  "metadata.annotations." + annotation_key(ing, "app-root"),
                  "conflict: app-root of host " + shown(host) + " set to " + quote_value(it->second.first) +
                      " by Ingress " + it->second.second + " and " + quote_value(root) + " by " + owner +
                      ": only the Ingress serving \"/\" of the host redirects it",
                  "Ingress " + owner);
  }

  /// The default-backend annotation's Service (its first port, as ingress-nginx takes it) as the
  /// paths' error backend: plain HTTP, the Ingress's timeouts, nothing else of its policy. A
  /// missing Service or port is reported and yields no endpoints: error pages are then phigate's
  /// own (an intercepted answer is never let through). Null when the annotation is not set.
  std::shared_ptr<const config::PathSpec> resolve_error_backend(const Ingress& ing,
                                                                const config::RoutePolicy& policy) {
    if (policy.default_backend.empty()) return nullptr;
    const auto field = "metadata.annotations." + annotation_key(ing, "default-backend");
    const auto resource = "Ingress " + ing.meta.key();
    // The error backend is plain HTTP and may get the original request (no ready endpoint): never
    // for a route whose backends are reached over TLS, whose requests must not leave in clear.
    if (policy.backend_protocol == config::BackendProtocol::Https ||
        policy.backend_protocol == config::BackendProtocol::Grpcs) {
      diag_.warning(ing.origin.where(), ing.meta.annotations_line, field,
                    "not used: this Ingress's backends are reached over TLS (backend-protocol) and the error "
                    "backend would be plain HTTP; error pages are phigate's own answers",
                    resource);
      return nullptr;
    }
    auto eb = std::make_shared<config::PathSpec>();
    eb->path = "/";
    eb->where = {ing.origin.where(), ing.meta.annotations_line};
    eb->service_host = policy.default_backend + "." + ing.meta.ns + ".svc";
    eb->service_name = policy.default_backend;
    auto pol = std::make_shared<config::RoutePolicy>();
    pol->resource = resource;
    pol->fail_closed = policy.fail_closed;
    pol->phi = policy.phi;
    pol->connect_timeout = policy.connect_timeout;
    pol->send_timeout = policy.send_timeout;
    pol->read_timeout = policy.read_timeout;
    pol->next_upstream = 0;  // one try: the error page is a best effort over phigate's own answer
    eb->policy = std::move(pol);
    const auto svc = services_.find(ing.meta.ns + "/" + policy.default_backend);
    if (svc == services_.end() || svc->second->ports.empty()) {
      diag_.error(ing.origin.where(), ing.meta.annotations_line, field,
                  "Service " + ing.meta.ns + "/" + policy.default_backend +
                      (svc == services_.end() ? " not found" : " has no port") +
                      ": error pages and requests without a ready endpoint get phigate's own answer",
                  resource);
      return eb;
    }
    const auto& port = svc->second->ports.front();
    eb->service_port = std::to_string(port.port);
    const auto& r = resolve(ing.meta.ns, ServiceBackend{policy.default_backend, port.port, {}});
    if (!r.error.empty()) {
      diag_.error(ing.origin.where(), ing.meta.annotations_line, field,
                  r.error + ": error pages and requests without a ready endpoint get phigate's own answer",
                  resource);
    }
    eb->backends = r.backends;
    eb->terminating_backends = r.terminating;
    return eb;
  }

  /// ingress.global_auth into `ea` (an Ingress without its own auth-url); "" or what is wrong.
  std::string apply_global_auth(config::ExternalAuthPolicy& ea) const {
    const auto& g = spec_.global_auth;
    config::ExternalAuthPolicy out;
    out.global = true;
    if (auto why = detail::parse_auth_url_value(g.url, out); !why.empty()) return "url " + why;
    if (!g.signin.empty()) {
      if (auto why = detail::parse_auth_signin_value(g.signin, out.signin); !why.empty())
        return "signin: " + why;
    }
    if (!g.signin_redirect_param.empty()) out.redirect_param = g.signin_redirect_param;
    if (!g.response_headers.empty()) {
      if (auto why = detail::parse_auth_response_headers_value(g.response_headers, out.response_headers);
          !why.empty())
        return "response_headers: " + why;
    }
    if (!g.method.empty()) {
      const bool token = g.method.size() <= 32 && std::all_of(g.method.begin(), g.method.end(), [](char c) {
                           return std::isupper(static_cast<unsigned char>(c)) != 0;
                         });
      if (!token) return "method: expected an HTTP method (GET, POST, ...)";
      out.method = g.method;
    }
    out.request_redirect = g.request_redirect;
    out.always_set_cookie = g.always_set_cookie;
    ea = std::move(out);
    return {};
  }

  /// auth-url: the Service it names, as the subrequest's cluster (docs/auth-external.md). Its
  /// namespace must be the Ingress's own or one of ingress.auth_url_namespaces, and the Service
  /// and its port must exist: anything else is an error naming the Ingress and the annotation, and
  /// fails the Ingress closed (`fail`). Under https the Service's certificate is verified against
  /// the auth-url host with the Ingress's proxy-ssl-* settings (its CA, protocols, ciphers).
  /// Null when auth-url is not set or cannot be used.
  std::shared_ptr<const config::PathSpec> resolve_external_auth(const Ingress& ing,
                                                                config::RoutePolicy& policy,
                                                                std::string& fail) {
    auto& ea = policy.external_auth;
    if (!ea.enabled && ea.global_enabled && !spec_.global_auth.url.empty()) {
      if (auto why = apply_global_auth(ea); !why.empty()) {
        diag_.error(spec_.global_auth.where.file, spec_.global_auth.where.line, "ingress.global_auth", why,
                    "Ingress " + ing.meta.key());
        if (fail.empty()) fail = "ingress.global_auth: " + why;
        return nullptr;
      }
    }
    if (!ea.enabled) return nullptr;
    const auto field = "metadata.annotations." + annotation_key(ing, "auth-url");
    const auto resource = "Ingress " + ing.meta.key();
    const auto refuse = [&](const std::string& why) {
      diag_.error(ing.origin.where(), ing.meta.annotations_line, field, why + ": the Ingress fails closed",
                  resource);
      if (fail.empty()) fail = "auth-url: " + why;
      return nullptr;
    };
    const auto& allowed = spec_.auth_url_namespaces;
    // The operator's global auth-url may name any namespace; an Ingress author's may not.
    if (!ea.global && ea.namespace_ != ing.meta.ns &&
        std::find(allowed.begin(), allowed.end(), ea.namespace_) == allowed.end()) {
      return refuse("names a Service of namespace " + ea.namespace_ +
                    ", which is neither the Ingress's own nor listed in ingress.auth_url_namespaces");
    }
    if (!ea.proxy_set_headers_ref.empty()) {
      std::string why;
      const auto it = config_maps_.find(ea.proxy_set_headers_ref);
      if (it == config_maps_.end()) {
        why = "not found";
      } else if (!it->second->problems.empty()) {
        why = "is invalid";
      } else {
        why = detail::render_config_map_headers(it->second->data, true, spec_.allowed_response_headers,
                                                ea.request_fields);
      }
      if (!why.empty()) {
        ea.request_fields.clear();
        diag_.error(ing.origin.where(), ing.meta.annotations_line,
                    "metadata.annotations." + annotation_key(ing, "auth-proxy-set-headers"),
                    "ConfigMap " + ea.proxy_set_headers_ref + " " + why + ": the Ingress fails closed",
                    resource);
        if (fail.empty()) fail = "auth-proxy-set-headers " + ea.proxy_set_headers_ref + ": ConfigMap " + why;
        return nullptr;
      }
    }
    const auto& r = resolve(ea.namespace_, ServiceBackend{ea.service, ea.port, {}});
    if (!r.error.empty())
      return refuse(r.error + " (auth-url names Service port " + std::to_string(ea.port) + ")");
    auto ab = std::make_shared<config::PathSpec>();
    ab->path = "/";
    ab->where = {ing.origin.where(), ing.meta.annotations_line};
    ab->service_host = ea.host;
    ab->service_name = ea.service;
    ab->service_port = std::to_string(ea.port);
    auto pol = std::make_shared<config::RoutePolicy>();
    pol->resource = resource;
    pol->phi = policy.phi;
    pol->next_upstream = 0;  // one try per subrequest
    if (ea.https) {
      pol->backend_protocol = config::BackendProtocol::Https;
      pol->proxy_ssl_cert_pem = policy.proxy_ssl_cert_pem;
      pol->proxy_ssl_key_pem = policy.proxy_ssl_key_pem;
      pol->proxy_ssl_ca_pem = policy.proxy_ssl_ca_pem;
      pol->proxy_ssl_verify = true;  // always: the auth service sees the client's cookies
      pol->proxy_ssl_verify_depth = policy.proxy_ssl_verify_depth;
      pol->proxy_ssl_name = ea.host;
      pol->proxy_ssl_server_name = true;
      pol->proxy_ssl_protocols = policy.proxy_ssl_protocols;
      pol->proxy_ssl_ciphers = policy.proxy_ssl_ciphers;
    }
    ab->policy = std::move(pol);
    ab->backends = r.backends;
    ab->terminating_backends = r.terminating;
    return ab;
  }

  void add(const Ingress& ing) {
    const auto key = ing.meta.key();
    const auto where = ing.origin.where();
    const auto resource = "Ingress " + key;
    std::string fail;
    const auto fail_with = [&](std::string why) {
      if (fail.empty()) fail = std::move(why);
    };
    if (!ing.problems.empty()) fail_with("invalid field " + ing.problems.front());
    if (ambiguous_.count(key) != 0) fail_with("duplicate definitions with other annotations");

    auto parsed = parse_annotations(ing.meta.annotations, ing.meta.ns,
                                    AnnotationOptions{.unsupported = spec_.unsupported_annotations});
    // A snippet is nginx configuration: it can hold credentials (proxy_set_header Authorization
    // ...), and diagnostics reach logs, Events and `phigate check` reports: its text is not echoed.
    const auto error_text = [](const AnnotationProblem& pr) {
      if (pr.unsupported) return pr.message;
      if (pr.key.ends_with("-snippet") || pr.key.ends_with("-snippets")) {
        return "invalid value (" + std::to_string(pr.value.size()) + " bytes, not shown): " + pr.message;
      }
      return "invalid value " + pr.value + ": " + pr.message;
    };
    // An ingress-nginx canary (translate_canary.cpp) emits no route and claims nothing: its paths
    // become candidates attached to their main path once every route is known. Defined twice with
    // other annotations, one of them not a canary: which is meant is unknowable, it fails closed.
    const bool canary = parsed.canary && (ambiguous_.count(key) == 0 || canary_dups_.count(key) != 0);
    for (const auto& pr : parsed.problems) {
      const auto field = "metadata.annotations." + pr.key;
      if (pr.severity == config::Severity::Error) {
        diag_.error(where, ing.meta.annotations_line, field, error_text(pr), resource);
      } else {
        diag_.warning(where, ing.meta.annotations_line, field, pr.message, resource);
      }
    }
    // A canary (returned above) is not served: nothing of it to list.
    if (!parsed.unhonoured.empty()) {
      out_.unhonoured.push_back({resource, where, std::move(parsed.unhonoured)});
    }
    for (const auto& ne : parsed.not_enforced) {
      diag_.warning(where, ing.meta.annotations_line, "metadata.annotations." + ne.key, ne.message, resource);
    }
    if (!parsed.fail_closed.empty()) fail_with(parsed.fail_closed);
    auto& policy = parsed.policy;
    policy.resource = resource;
    by_resource_.emplace(resource, &ing);
    if (auto why = resolve_policy_secrets(ing, policy); !why.empty()) fail_with(std::move(why));
    if (auto why = resolve_policy_config_maps(ing, policy); !why.empty()) fail_with(std::move(why));
    if (!policy.regex.x_forwarded_prefix.empty() && policy.regex.rewrite_target.empty()) {
      diag_.warning(where, ing.meta.annotations_line,
                    "metadata.annotations." + annotation_key(ing, "x-forwarded-prefix"),
                    "has no effect without rewrite-target (as in ingress-nginx)", resource);
    }

    // spec.tls hosts: a rule host is a TLS host when listed, or covered by a listed "*.suffix".
    std::unordered_set<std::string> tls_hosts;
    for (std::size_t i = 0; i < ing.tls.size(); ++i) {
      for (const auto& h : ing.tls[i].hosts) tls_hosts.insert(detail::to_lower(h));
    }
    const auto is_tls_host = [&](const std::string& host) {
      if (host.empty()) return false;
      if (tls_hosts.count(host) != 0) return true;
      const auto dot = host.find('.');
      return host.front() != '*' && dot != std::string::npos && tls_hosts.count("*" + host.substr(dot)) != 0;
    };

    // Group paths by host, in first-seen order (one RouteSpec per Ingress and host).
    struct HostPaths {
      std::string host;
      int line = 0;
      std::vector<config::PathSpec> paths;
      std::vector<std::string> fields;
    };
    std::vector<HostPaths> hosts;
    std::unordered_map<std::string, std::size_t> host_pos;
    for (std::size_t i = 0; i < ing.rules.size(); ++i) {
      const auto& rule = ing.rules[i];
      const auto rf = field_index("spec.rules", i);
      auto host = detail::to_lower(rule.host);
      if (!host.empty() && (!detail::is_dns_name(host, true) || detail::is_ip_address(host))) {
        // Not emitted: it could never match a valid Host, and "*" must not become the catch-all.
        diag_.error(
            where, rule.line, rf + ".host",
            "invalid host " + quote_value(rule.host) + " (a DNS name, optionally starting with \"*.\")",
            resource);
        fail_with("invalid host at " + rf + ".host");
        continue;
      }
      if (!host.empty() && !canary) host_creator_.try_emplace(host, key);
      const auto [pos, inserted] = host_pos.try_emplace(host, hosts.size());
      if (inserted) hosts.push_back({host, rule.line, {}, {}});
      auto& hp = hosts[pos->second];
      for (std::size_t j = 0; j < rule.paths.size(); ++j) {
        const auto& p = rule.paths[j];
        const auto pf = field_index(rf + ".http.paths", j);
        config::PathSpec ps;
        ps.path = p.path.empty() ? "/" : p.path;  // ingress-nginx: an empty path is the root
        ps.type = p.type;
        ps.where = {where, p.line};
        const bool regex = policy.regex.regex_path(ps.path);
        if (!valid_path(ps.path, regex)) {
          diag_.error(where, p.line, pf + ".path",
                      "invalid path " + quote_value(p.path) +
                          (regex ? " (must start with '/', no spaces or '#')"
                                 : " (must start with '/', no spaces, '?' or '#')"),
                      resource);
          fail_with("invalid path at " + pf + ".path");
        } else if (regex) {
          // use-regex or rewrite-target: the path is an RE2 pattern. One that does not compile
          // fails the Ingress closed; the router then claims its literal prefix (503 there).
          int groups = 0;
          if (auto why = detail::check_regex_path(ps.path, &groups); !why.empty()) {
            diag_.error(where, p.line, pf + ".path", "path " + quote_value(p.path) + " is " + why, resource);
            fail_with("invalid regex path at " + pf + ".path");
          } else if (const int wanted = detail::max_capture_reference(policy.regex); wanted > groups) {
            diag_.warning(where, p.line, pf + ".path",
                          "rewrite-target or x-forwarded-prefix refers to $" + std::to_string(wanted) +
                              ", but path " + quote_value(p.path) + " has " + std::to_string(groups) +
                              " capture groups: the reference expands to \"\" (as in ingress-nginx)",
                          resource);
          }
        }
        ps.backends = backends(ing, p.backend, pf + ".backend", &ps.terminating_backends,
                               policy.hosts.service_upstream);
        ps.service_host = service_host(ing, p.backend);
        if (p.backend.service) {
          ps.service_name = p.backend.service->name;
          ps.service_port = p.backend.service->port_name.empty()
                                ? std::to_string(p.backend.service->port_number)
                                : p.backend.service->port_name;
        }
        hp.paths.push_back(std::move(ps));
        hp.fields.push_back(pf);
      }
    }

    if (canary) {
      fail_with(detail::check_canary(ing, parsed, diag_));
      if (!fail.empty()) ++out_.stats.failed_closed;
      for (auto& hp : hosts) {
        for (std::size_t k = 0; k < hp.paths.size(); ++k) {
          canaries_.push_back({hp.host, std::move(hp.paths[k]), hp.fields[k], &ing, policy, fail});
        }
      }
      return;
    }

    // Client-certificate and cipher settings are chosen per host name (the ClientHello's SNI,
    // then each request's Host): a rule without a host, or the catch-all defaultBackend, has no
    // name to hang them on. Serving it anyway would hand its backend to clients without a
    // certificate (the policy skipped, failing open), so the Ingress fails closed instead.
    if (has_host_tls(policy)) {
      const auto field = "metadata.annotations." + host_tls_annotation(ing, policy);
      for (std::size_t i = 0; i < ing.rules.size(); ++i) {
        if (!ing.rules[i].host.empty() || ing.rules[i].paths.empty()) continue;
        const auto rf = field_index("spec.rules", i);
        diag_.error(where, ing.meta.annotations_line, field,
                    "client-certificate/cipher settings apply per host name (SNI and Host), and " + rf +
                        " has no host: they cannot be enforced there, so the Ingress fails closed (503)",
                    resource);
        fail_with("client-certificate/cipher settings on " + rf + ", which has no host");
      }
      if (ing.rules.empty() && ing.default_backend) {
        diag_.error(where, ing.meta.annotations_line, field,
                    "client-certificate/cipher settings apply per host name (SNI and Host), and "
                    "spec.defaultBackend without rules is the catch-all for every host: they cannot be "
                    "enforced there, so the Ingress fails closed (503)",
                    resource);
        fail_with("client-certificate/cipher settings on the catch-all spec.defaultBackend");
      }
    }
    // Annotations follow rules (ingress-nginx sets a server's client-certificate rule from the
    // rules' hosts), so a spec.tls host without a rule here gets the certificate but not these
    // settings. Said out loud: its owner may expect the host to be protected.
    if (has_host_tls(policy)) {
      for (std::size_t i = 0; i < ing.tls.size(); ++i) {
        for (std::size_t k = 0; k < ing.tls[i].hosts.size(); ++k) {
          const auto h = detail::to_lower(ing.tls[i].hosts[k]);
          const bool ruled = std::any_of(hosts.begin(), hosts.end(), [&](const HostPaths& hp) {
            // A rule host without paths is served only through this Ingress's defaultBackend.
            if ((hp.paths.empty() && !ing.default_backend) || hp.host.empty()) return false;
            // Exact, or a "*.suffix" TLS entry used by the rule hosts one label under it.
            return core::host_matches(h, hp.host);
          });
          if (ruled) continue;
          diag_.warning(
              where, ing.tls[i].line, field_index(field_index("spec.tls", i) + ".hosts", k),
              "TLS host " + quote_value(h) +
                  " has no rule with paths in this Ingress: its client-certificate/cipher settings (" +
                  host_tls_annotation(ing, policy) + ") follow rules and do not apply to that host",
              resource);
        }
      }
      for (const auto& hp : hosts) {
        if (hp.host.empty() || !hp.paths.empty() || ing.default_backend) continue;
        diag_.warning(
            where, hp.line, "spec.rules",
            "rule for host " + hp.host +
                " has no paths and the Ingress no defaultBackend: nothing is served for it here, so "
                "its client-certificate/cipher settings (" +
                host_tls_annotation(ing, policy) + ") do not apply to that host",
            resource);
      }
    }
    // A client certificate only exists inside TLS: plain HTTP to a host that requires one would
    // reach the backend without it.
    if (policy.verify_client != config::VerifyClient::Off && allows_plain_http(policy)) {
      diag_.error(where, ing.meta.annotations_line,
                  "metadata.annotations." + annotation_key(ing, "ssl-redirect"),
                  "plain HTTP (ssl-redirect \"false\") on an Ingress that verifies client certificates (" +
                      host_tls_annotation(ing, policy) + "): the Ingress fails closed (503)",
                  resource);
      fail_with("ssl-redirect \"false\" with client certificates");
    }

    const auto auth_backend = resolve_external_auth(ing, policy, fail);
    policy.fail_closed = fail;
    const auto error_backend = resolve_error_backend(ing, policy);
    const auto plain = std::make_shared<const config::RoutePolicy>(policy);
    config::RoutePolicyPtr tls;
    const auto policy_for = [&](const std::string& host) {
      if (!is_tls_host(host)) return plain;
      if (!tls) {
        auto copy = policy;
        copy.tls_host = true;
        tls = std::make_shared<const config::RoutePolicy>(std::move(copy));
      }
      return tls;
    };
    if (!fail.empty()) ++out_.stats.failed_closed;

    for (auto& hp : hosts) {
      if (hp.paths.empty()) continue;
      // The first Ingress (in precedence order) to serve a host makes its namespace the host's.
      // A regex path of another namespace would be matched before that namespace's paths (longest
      // pattern first, ingress-nginx's order) and could take their requests: not served.
      const auto [host_ns, first_on_host] = host_namespace_.try_emplace(hp.host, ing.meta.ns);
      if (!first_on_host && host_ns->second != ing.meta.ns && !spec_.regex_cross_namespace &&
          std::any_of(hp.paths.begin(), hp.paths.end(),
                      [&](const config::PathSpec& ps) { return policy.regex.regex_path(ps.path); })) {
        diag_.error(where, hp.line, "spec.rules",
                    "regex paths (use-regex or rewrite-target) on host " +
                        (hp.host.empty() ? std::string("(any host)") : hp.host) +
                        ", which an Ingress of namespace " + host_ns->second +
                        " already serves: a regex could take that namespace's requests, so this "
                        "Ingress's paths on the host are not served (ingress.regex_cross_namespace: "
                        "true allows it)",
                    resource);
        continue;
      }
      config::RouteSpec route;
      route.host = hp.host;
      route.where = {where, hp.line};
      const auto p = policy_for(hp.host);
      if (!policy.regex.app_root.empty() && fail.empty())
        claim_app_root(hp.host, policy.regex.app_root, ing, key);
      for (std::size_t k = 0; k < hp.paths.size(); ++k) {
        hp.paths[k].policy = p;
        hp.paths[k].error_backend = error_backend;
        hp.paths[k].auth_backend = auth_backend;
        claim(hp.host, hp.paths[k], ing, key, hp.fields[k]);
      }
      route.paths = std::move(hp.paths);
      out_.routes.push_back(std::move(route));
    }

    if (ing.default_backend) {
      config::PathSpec d;
      d.path = "/";
      d.type = config::PathType::Prefix;
      d.where = {where, ing.default_backend->line};
      d.backends = backends(ing, *ing.default_backend, "spec.defaultBackend", &d.terminating_backends,
                            policy.hosts.service_upstream);
      d.service_host = service_host(ing, *ing.default_backend);
      d.auth_backend = auth_backend;
      if (ing.rules.empty()) {
        // ingress-nginx: an Ingress with a backend and no rules configures the catch-all server.
        if (!out_.default_backend) {
          d.policy = plain;
          out_.default_backend = std::move(d);
          default_owner_ = key;
        } else {
          ++out_.stats.conflicts;
          diag_.warning(where, ing.default_backend->line, "spec.defaultBackend",
                        "conflict: default backend claimed by Ingress " + default_owner_ + " (kept) and " +
                            key + " (ignored)",
                        resource);
        }
      } else {
        for (const auto& hp : hosts) {
          if (hp.host.empty()) continue;  // the catch-all is not an Ingress rule's to set
          auto root = d;
          root.policy = policy_for(hp.host);
          default_roots_.push_back({key, hp.host, std::move(root)});
        }
      }
    }

    add_certificates(ing);
  }

  void add_default_roots() {
    for (auto& r : default_roots_) {
      const auto& creator = host_creator_.at(r.host);
      if (creator != r.owner) {
        diag_.warning(r.path.where.file, r.path.where.line, "spec.defaultBackend",
                      "not used for host " + r.host + ": Ingress " + creator + " defines that host first",
                      "Ingress " + r.owner);
        continue;
      }
      // An explicit root path of any Ingress replaces the default location (ingress-nginx).
      if (claims_.count(claim_key(r.host, r.path)) != 0) continue;
      claims_.try_emplace(claim_key(r.host, r.path), Claim{r.owner});
      config::RouteSpec route;
      route.host = r.host;
      route.where = r.path.where;
      route.paths.push_back(std::move(r.path));
      out_.routes.push_back(std::move(route));
    }
  }

  /// The wildcard name that covers `host` ("*.b.c" for "a.b.c"), or "" (a wildcard itself, no dot).
  static std::string wildcard_of(const std::string& host) {
    const auto dot = host.find('.');
    if (host.empty() || host.front() == '*' || dot == std::string::npos || dot == 0) return {};
    return "*" + host.substr(dot);
  }

  /// server-alias, once every route (canaries and default roots included) is known: each alias of
  /// a host serves copies of every RouteSpec of that host, from every Ingress, with the same
  /// policies, so check_host_tls and the snapshot's host TLS policies give the alias exactly the
  /// host's client-certificate and source-range policy (an alias is never a way around them).
  /// The first Ingress to serve a host (precedence order) sets its aliases. An alias that is a host
  /// of its own, the host itself or another host's alias is dropped with a warning (real hosts win).
  void add_aliases() {
    std::unordered_set<std::string> real;
    for (const auto& r : out_.routes) real.insert(r.host);
    std::map<std::string, std::vector<std::string>>
        aliases_of;                                           // host → its aliases (ordered: stable output)
    std::unordered_map<std::string, std::string> alias_host;  // alias → host
    std::unordered_set<std::string> seen;
    // Hosts (wildcards included) whose live routes carry TLS settings, as check_host_tls counts them.
    std::unordered_set<std::string> tls_owner;
    for (const auto& r : out_.routes) {
      if (r.host.empty()) continue;
      for (const auto& p : r.paths) {
        if (live(p) && has_host_tls(*p.policy)) tls_owner.insert(r.host);
      }
    }
    for (const auto& r : out_.routes) {
      if (r.host.empty() || r.paths.empty() || !seen.insert(r.host).second) continue;
      const auto& policy = r.paths.front().policy;
      if (policy == nullptr || policy->hosts.aliases.empty()) continue;
      const auto ing = by_resource_.find(policy->resource);
      const auto field = ing != by_resource_.end()
                             ? "metadata.annotations." + annotation_key(*ing->second, "server-alias")
                             : std::string("metadata.annotations.server-alias");
      for (const auto& a : policy->hosts.aliases) {
        std::string why;
        if (real.count(a) != 0) {
          why = a == r.host ? "is the host itself" : "is a host of its own (served as itself)";
        } else if (const auto it = alias_host.find(a); it != alias_host.end()) {
          why = "is already an alias of host " + it->second;
        } else if (const auto w = wildcard_of(r.host);
                   !w.empty() && tls_owner.count(w) != 0 && wildcard_of(a) != w) {
          // The host may take client-certificate or cipher settings from the wildcard over it
          // (ServerContexts falls back to it), which the alias's name is not under: copies of its
          // routes would be served without them.
          why = "would not be covered by " + w +
                ", whose TLS settings (client certificates, ciphers) apply to "
                "the host";
        }
        if (!why.empty()) {
          ++out_.stats.conflicts;
          diag_.warning(r.where.file, r.where.line, field,
                        "alias " + a + " of host " + r.host + " " + why + ": dropped", policy->resource);
          continue;
        }
        alias_host.emplace(a, r.host);
        aliases_of[r.host].push_back(a);
      }
    }
    if (aliases_of.empty()) return;
    const std::size_t n = out_.routes.size();
    for (std::size_t i = 0; i < n; ++i) {
      const auto it = aliases_of.find(out_.routes[i].host);
      if (it == aliases_of.end()) continue;
      for (const auto& a : it->second) {
        config::RouteSpec copy = out_.routes[i];  // same PathSpecs: policies, canaries, backends
        copy.host = a;
        out_.routes.push_back(std::move(copy));
      }
    }
    // The host's certificate serves its aliases too, unless a Secret lists the alias itself.
    for (const auto& [host, list] : aliases_of) {
      const auto cert = cert_host_.find(host);
      if (cert == cert_host_.end()) continue;
      for (const auto& a : list) {
        if (cert_host_.try_emplace(a, cert->second).second)
          out_.certificates[cert->second].hosts.push_back(a);
      }
    }
  }

  /// Per-host TLS settings across Ingresses, once every route is known. The first live policy
  /// with such settings on a host (precedence order) is the one the snapshot build compiles for it;
  /// "*.suffix" covers one label, as in ServerContexts::policy_for.
  void check_host_tls() {
    const auto owners = [&] {
      std::unordered_map<std::string, const config::RoutePolicy*> out;
      for (const auto& r : out_.routes) {
        if (r.host.empty()) continue;
        for (const auto& p : r.paths) {
          if (live(p) && has_host_tls(*p.policy)) out.try_emplace(r.host, p.policy.get());
        }
      }
      return out;
    };
    const auto find = [](const auto& map, const std::string& host) -> const config::RoutePolicy* {
      const auto it = map.find(host);
      return it == map.end() ? nullptr : it->second;
    };
    // Before anything below fails a path: the hosts on which an invalid Ingress (failed closed in
    // add()) asks for client certificates, with the strictest rule asked for each.
    std::unordered_map<std::string, const config::RoutePolicy*> invalid;
    for (const auto& r : out_.routes) {
      if (r.host.empty()) continue;
      for (const auto& p : r.paths) {
        if (p.policy == nullptr || p.policy->fail_closed.empty()) continue;
        if (p.policy->verify_client == config::VerifyClient::Off) continue;
        const auto [it, inserted] = invalid.try_emplace(r.host, p.policy.get());
        if (!inserted && strictness(p.policy->verify_client) > strictness(it->second->verify_client)) {
          it->second = p.policy.get();
        }
      }
    }
    // A host under a wildcard that verifies client certificates inherits that rule when it sets no
    // TLS settings of its own (ServerContexts falls back to the wildcard). One that sets weaker
    // ones (no client certificate, optional, or only ssl-ciphers) would quietly open what the
    // wildcard's owner closed for every name under it: fail closed. Equal or stricter rules (with
    // their own CA) stand.
    auto own = owners();
    for (auto& r : out_.routes) {
      const auto* wild = find(own, r.host.empty() ? std::string() : wildcard_of(r.host));
      if (wild == nullptr || wild->verify_client == config::VerifyClient::Off) continue;
      for (auto& p : r.paths) {
        if (!live(p) || !has_host_tls(*p.policy)) continue;
        if (strictness(p.policy->verify_client) >= strictness(wild->verify_client)) continue;
        const auto* ing = by_resource_.at(p.policy->resource);
        diag_.error(p.where.file, p.where.line,
                    "metadata.annotations." + host_tls_annotation(*ing, *p.policy),
                    "host " + r.host + " is covered by " + wildcard_of(r.host) + ", whose " + wild->resource +
                        " verifies client certificates; weaker client-certificate/cipher settings for it "
                        "would open it: failing closed (503)",
                    p.policy->resource);
        fail_path(p, "weaker client-certificate settings than " + wildcard_of(r.host));
      }
    }
    // Plain HTTP (ssl-redirect "false") on a host that verifies client certificates, asked for by
    // another Ingress sharing the host (or the wildcard over it): the certificate only exists
    // inside TLS, so that path would reach its backend without one.
    own = owners();
    for (auto& r : out_.routes) {
      if (r.host.empty()) continue;
      const auto* eff = find(own, r.host);
      if (eff == nullptr) eff = find(own, wildcard_of(r.host));
      if (eff == nullptr || eff->verify_client == config::VerifyClient::Off) continue;
      for (auto& p : r.paths) {
        if (!live(p) || !allows_plain_http(*p.policy)) continue;
        const auto* ing = by_resource_.at(p.policy->resource);
        diag_.error(p.where.file, p.where.line,
                    "metadata.annotations." + annotation_key(*ing, "ssl-redirect"),
                    "plain HTTP (ssl-redirect \"false\") on host " + r.host +
                        ", which verifies client certificates (" + eff->resource + "): failing closed (503)",
                    p.policy->resource);
        fail_path(p, "plain HTTP on host " + r.host + ", which verifies client certificates");
      }
    }
    // Only live policies are compiled into host policies, so an invalid Ingress asking for client
    // certificates on a host (or on the wildcard over it) leaves that host without them: another
    // Ingress's paths there would be served to clients without a certificate, skipping the
    // policy. They fail closed too, unless a live rule at least as strict protects the host.
    if (invalid.empty()) return;
    own = owners();
    for (auto& r : out_.routes) {
      if (r.host.empty()) continue;
      const auto* asked = find(invalid, r.host);
      if (const auto* w = find(invalid, wildcard_of(r.host));
          w != nullptr &&
          (asked == nullptr || strictness(w->verify_client) > strictness(asked->verify_client))) {
        asked = w;
      }
      if (asked == nullptr) continue;
      const auto* eff = find(own, r.host);
      if (eff == nullptr) eff = find(own, wildcard_of(r.host));
      if (eff != nullptr && strictness(eff->verify_client) >= strictness(asked->verify_client)) continue;
      for (auto& p : r.paths) {
        if (!live(p)) continue;
        diag_.error(p.where.file, p.where.line, "host",
                    "host " + r.host + ": " + asked->resource +
                        " asks for client certificates there but is invalid (failing closed); served "
                        "without them, this path would skip that policy: failing closed (503)",
                    p.policy->resource);
        fail_path(p, "client certificates asked for host " + r.host + " by invalid " + asked->resource);
      }
    }
  }

  static bool live(const config::PathSpec& p) { return p.policy != nullptr && p.policy->fail_closed.empty(); }

  /// Replaces `p`'s policy by a fail-closed copy (shared by the paths of one policy and reason).
  void fail_path(config::PathSpec& p, const std::string& why) {
    auto& slot = failed_copies_[{p.policy.get(), why}];
    if (!slot) {
      if (failed_resources_.insert(p.policy->resource).second) ++out_.stats.failed_closed;
      auto copy = *p.policy;
      copy.fail_closed = why;
      slot = std::make_shared<const config::RoutePolicy>(std::move(copy));
    }
    p.policy = slot;
  }

  void add_certificates(const Ingress& ing) {
    const auto where = ing.origin.where();
    const auto resource = "Ingress " + ing.meta.key();
    for (std::size_t i = 0; i < ing.tls.size(); ++i) {
      const auto& t = ing.tls[i];
      const auto tf = field_index("spec.tls", i);
      std::vector<std::string> hosts;
      for (std::size_t k = 0; k < t.hosts.size(); ++k) {
        auto h = detail::to_lower(t.hosts[k]);
        if (!detail::is_dns_name(h, true) || detail::is_ip_address(h)) {
          diag_.error(where, t.line, field_index(tf + ".hosts", k), "invalid host " + quote_value(t.hosts[k]),
                      resource);
          continue;
        }
        hosts.push_back(std::move(h));
      }
      if (t.secret_name.empty()) continue;  // TLS with the default certificate (ingress-nginx)
      const auto skey = ing.meta.ns + "/" + t.secret_name;
      const Secret* s = nullptr;
      auto why = find_secret(skey, s);
      const std::string* crt = nullptr;
      const std::string* key = nullptr;
      if (why.empty() && s->type != "kubernetes.io/tls") {
        why = "has type " + s->type + ", not kubernetes.io/tls";
      } else if (why.empty()) {
        crt = pem(*s, "tls.crt");
        key = pem(*s, "tls.key");
        if (crt == nullptr || key == nullptr) why = "has no PEM tls.crt and tls.key";
      }
      if (!why.empty()) {
        std::string served;
        for (const auto& h : hosts) served += (served.empty() ? "" : ", ") + h;
        diag_.error(where, t.line, tf + ".secretName",
                    "Secret " + skey + " " + why +
                        (served.empty() ? "" : ": " + served + " get the default certificate"),
                    resource);
        continue;
      }
      auto [pos, inserted] = cert_pos_.try_emplace(skey, out_.certificates.size());
      if (inserted) {
        config::CertificateSpec c;
        c.cert_pem = *crt;
        c.key_pem = *key;
        c.resource = "Secret " + skey;
        c.where = {s->origin.where(), s->origin.line};
        out_.certificates.push_back(std::move(c));
      }
      auto& cert = out_.certificates[pos->second];
      for (auto& h : hosts) {
        const auto [owner, first] = cert_host_.try_emplace(h, pos->second);
        if (first) {
          cert.hosts.push_back(std::move(h));
        } else if (owner->second != pos->second) {
          ++out_.stats.conflicts;
          diag_.warning(where, t.line, tf + ".hosts",
                        "conflict: TLS host " + h + " claimed by " +
                            out_.certificates[owner->second].resource + " (kept) and " + cert.resource +
                            " (ignored)",
                        resource);
        }
      }
    }
  }

  const Resources& res_;
  const config::IngressSpec& spec_;
  config::Diagnostics& diag_;
  Translation out_;

  std::vector<const Ingress*> ingresses_;          // distinct by namespace/name, in load order
  std::unordered_set<std::string> ambiguous_;      // "ns/name" defined twice with different annotations
  std::unordered_set<std::string> canary_dups_;    // of those, both definitions canaries
  std::vector<detail::CanaryCandidate> canaries_;  // canary paths, in precedence order
  std::unordered_map<std::string, const IngressClass*> classes_;
  std::unordered_map<std::string, const Secret*> secrets_;
  std::unordered_map<std::string, const Service*> services_;
  std::unordered_map<std::string, const ConfigMap*> config_maps_;
  std::unordered_map<std::string, std::vector<const EndpointSlice*>> slices_;  // "ns/service"
  std::optional<ClassSelection> selection_;                                    // set by index()

  std::unordered_map<std::string, ResolvedBackend> resolved_;    // "ns/service:port"
  std::unordered_map<std::string, std::string> host_namespace_;  // host → namespace of its first Ingress
  std::unordered_map<std::string, Claim> claims_;                // claim_key → owner
  std::unordered_map<std::string, std::string> host_creator_;    // host → first Ingress with a rule for it
  std::unordered_map<std::string, std::pair<std::string, std::string>>
      app_roots_;  // host → (app-root, owner)
  std::vector<DefaultRoot> default_roots_;
  std::string default_owner_;
  std::unordered_map<std::string, std::size_t> cert_pos_;   // "ns/secret" → index in certificates
  std::unordered_map<std::string, std::size_t> cert_host_;  // TLS host → index of the certificate serving it
  std::unordered_map<std::string, const Ingress*> by_resource_;  // "Ingress ns/name" → the Ingress
  std::map<std::pair<const config::RoutePolicy*, std::string>, config::RoutePolicyPtr> failed_copies_;
  std::unordered_set<std::string> failed_resources_;  // Ingresses failed closed by check_host_tls()
};

}  // namespace

std::vector<std::string> referenced_secrets(const Ingress& ing) {
  std::vector<std::string> out;
  for (const auto& t : ing.tls) {
    if (!t.secret_name.empty()) out.push_back(ing.meta.ns + "/" + t.secret_name);
  }
  // The annotations as translate() reads them: an invalid or cross-namespace reference is refused
  // there (and fails the Ingress closed), so it names no Secret to fetch here either.
  const auto parsed = parse_annotations(ing.meta.annotations, ing.meta.ns);
  if (!parsed.policy.auth_tls_secret.empty()) out.push_back(parsed.policy.auth_tls_secret);
  if (!parsed.policy.proxy_ssl_secret.empty()) out.push_back(parsed.policy.proxy_ssl_secret);
  if (!parsed.policy.basic_auth.secret.empty()) out.push_back(parsed.policy.basic_auth.secret);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> referenced_config_maps(const Ingress& ing) {
  // As translate() reads them: an invalid or cross-namespace reference names nothing to fetch.
  const auto parsed = parse_annotations(ing.meta.annotations, ing.meta.ns);
  std::vector<std::string> out;
  if (!parsed.policy.headers.custom_headers_ref.empty())
    out.push_back(parsed.policy.headers.custom_headers_ref);
  if (!parsed.policy.headers.proxy_set_headers_ref.empty())
    out.push_back(parsed.policy.headers.proxy_set_headers_ref);
  if (!parsed.policy.external_auth.proxy_set_headers_ref.empty())
    out.push_back(parsed.policy.external_auth.proxy_set_headers_ref);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool is_ours(const Ingress& ing, const std::vector<IngressClass>& classes, const config::IngressSpec& spec) {
  std::unordered_map<std::string, const IngressClass*> by_name;
  for (const auto& c : classes) by_name.emplace(c.meta.name, &c);  // the first of duplicates, as translate()
  return ClassSelection(by_name, spec).not_ours(ing).empty();
}

Translation translate(const Resources& resources, const config::IngressSpec& spec,
                      config::Diagnostics& diag) {
  return Translator(resources, spec, diag).run();
}

}  // namespace phigate::ingress
