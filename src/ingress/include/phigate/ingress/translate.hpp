#pragma once
// Kubernetes Ingress resources → phigate route, default-backend and certificate specs, with
// ingress-nginx's semantics (class selection, precedence, backends from EndpointSlices, annotations).
// Pure function of its inputs: sans-I/O, deterministic, runs on the control thread.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/annotations.hpp"
#include "phigate/ingress/resources.hpp"

namespace phigate::ingress {

struct TranslationStats {
  std::size_t ingresses = 0;      // distinct Ingress objects seen
  std::size_t used = 0;           // ours (class selection) and translated
  std::size_t ignored = 0;        // another controller's
  std::size_t failed_closed = 0;  // ours but invalid: their routes answer 503 (a canary: not attached)
  std::size_t routes = 0;
  std::size_t paths = 0;
  std::size_t certificates = 0;
  std::size_t conflicts = 0;             // host+path (or default backend) claimed by more than one Ingress
  std::vector<std::string> used_keys{};  // "ns/name" of each Ingress used, in precedence order
};

/// The annotations of one Ingress that phigate does not fully honour (`phigate validate` lists them).
struct IngressUnhonoured {
  std::string resource;  // "Ingress ns/name"
  std::string where;     // "file#doc" of the Ingress
  std::vector<UnhonouredAnnotation> annotations;
};

struct Translation {
  /// In precedence order (oldest Ingress first, then namespace/name): where several claim the same
  /// host+path+type all are listed and the router keeps the first.
  std::vector<config::RouteSpec> routes;
  /// The catch-all: `spec.defaultBackend` of the first Ingress that has one and no rules.
  std::optional<config::PathSpec> default_backend;
  /// One per TLS Secret in use, `hosts` merged over every Ingress naming it.
  std::vector<config::CertificateSpec> certificates;
  /// "Ingress ns/name: why" for each Ingress that is not ours (debug log).
  std::vector<std::string> ignored;
  TranslationStats stats;
  /// Per Ingress translated (in the order they were, precedence order), the annotations it has that
  /// phigate does not fully honour: NoEffect, Unsupported, SupportedWithDifferences. Ingresses with
  /// none are left out.
  std::vector<IngressUnhonoured> unhonoured;
};

/// "ns/name" of every Secret `ing` refers to: spec.tls[].secretName, auth-tls-secret and
/// proxy-ssl-secret ("ns/name" or "name", in the Ingress's namespace). Sorted, unique.
std::vector<std::string> referenced_secrets(const Ingress& ing);

/// "ns/name" of every ConfigMap `ing` refers to: custom-headers and proxy-set-headers (in the
/// Ingress's namespace only; a reference to another is refused and names nothing). Sorted, unique.
std::vector<std::string> referenced_config_maps(const Ingress& ing);

/// Whether `ing` is ours under `spec` (the class selection translate() applies), given the
/// IngressClasses in `classes`.
bool is_ours(const Ingress& ing, const std::vector<IngressClass>& classes, const config::IngressSpec& spec);

/// Translates `resources` for the controller described by `spec` (class_name, controller). Every
/// problem goes to `diag` with the object's "file#doc" and "Kind ns/name"; nothing throws. An invalid
/// Ingress still claims its hosts and paths, with `policy->fail_closed` set. A canary Ingress
/// (`is_canary`) claims nothing and emits no route: its paths become `PathSpec::canary` of their
/// main paths (same host, path text and type), or get no traffic (docs/canary.md).
Translation translate(const Resources& resources, const config::IngressSpec& spec, config::Diagnostics& diag);

}  // namespace phigate::ingress
