#include "phigate/compile/review.hpp"

#include <algorithm>

#include "phigate/compile/policy.hpp"
#include "phigate/ingress/translate.hpp"

namespace phigate::compile {

namespace {

bool from_kubernetes(const config::PathSpec& p) {
  return p.policy && !p.policy->resource.empty();
}

/// The configuration as the config file wrote it: a running snapshot's configuration already holds
/// the routes, default backend and certificates of the Ingresses it was built from, and merging a
/// fresh translation on top would set every Ingress against its own previous version (an update
/// changing a host's client-certificate settings would "conflict" with itself and be refused).
void strip_kubernetes(config::Config& config) {
  for (auto& r : config.routes) {
    std::erase_if(r.paths, from_kubernetes);
  }
  std::erase_if(config.routes, [](const config::RouteSpec& r) { return r.paths.empty(); });
  if (config.default_backend && from_kubernetes(*config.default_backend)) config.default_backend.reset();
  std::erase_if(config.tls.certificates,
                [](const config::CertificateSpec& c) { return !c.resource.empty(); });
}

/// An error that only says another object is not there yet: a backend Service, or a Secret or
/// ConfigMap named by spec.tls or an annotation. Those paths answer 503 (or get the default certificate)
/// until it appears, which is safe; refusing them would break the usual orders of creation (`kubectl apply`
/// of a folder in name order, cert-manager's ingress-shim, which creates the TLS Secret only after
/// the Ingress exists). They are returned as warnings, with the same text.
bool missing_reference(const config::Diagnostic& d) {
  if (!d.message.ends_with(" not found") &&
      d.message.find(" not found (the path answers 503)") == std::string::npos &&
      d.message.find(" not found: ") == std::string::npos) {
    return false;
  }
  // A ConfigMap (custom-headers, proxy-set-headers) is followed only once an Ingress names it: at
  // admission it is not in the provider's store yet even when it exists.
  return d.message.starts_with("Secret ") || d.message.starts_with("ConfigMap ") ||
         d.message.starts_with("backend ");
}

/// Whether a conflict warning about another Ingress names `key` (the candidate kept or ignored).
bool names_in_conflict(const config::Diagnostic& d, const std::string& key) {
  return d.message.starts_with("conflict:") && d.message.find(" " + key + " (") != std::string::npos;
}

}  // namespace

Review review_ingress(const config::Config& config, const ingress::LoadResult& current,
                      std::string_view ingress_json) {
  Review out;
  ingress::LoadResult candidate;
  ingress::load_json(ingress_json, "admission", candidate);
  if (candidate.resources.ingresses.size() != 1) {
    out.ours = true;  // unknown: a body that is not one Ingress is refused, never let through
    out.allowed = false;
    for (const auto& d : candidate.diagnostics.entries()) {
      (d.severity == config::Severity::Error ? out.errors : out.warnings).push_back(d.to_string());
    }
    if (out.errors.empty())
      out.errors.push_back("admission: the object is not a networking.k8s.io/v1 Ingress");
    return out;
  }
  ingress::Ingress ing = std::move(candidate.resources.ingresses.front());
  const std::string key = ing.meta.key();
  const std::string resource = "Ingress " + key;
  // Named like a manifest in `phigate validate` output: "admission:Ingress ns/name".
  ing.origin.file = "admission:" + resource;

  ingress::Resources resources = current.resources;
  std::erase_if(resources.ingresses, [&](const ingress::Ingress& i) { return i.meta.key() == key; });

  // Class selection alone, with the cluster's IngressClasses: is this Ingress phigate's? Another
  // controller's Ingress is allowed whatever it holds (it is not ours to judge).
  out.ours = ingress::is_ours(ing, resources.ingress_classes, config.ingress);
  if (!out.ours) return out;

  // What the loader said about the candidate's fields (a field that does not load fails it closed).
  config::Diagnostics diag;
  for (auto d : candidate.diagnostics.entries()) {
    d.file = ing.origin.where();
    if (d.resource.empty()) d.resource = resource;
    diag.add(std::move(d));
  }
  resources.ingresses.push_back(std::move(ing));
  config::Config cfg = config;
  strip_kubernetes(cfg);
  auto translation = ingress::translate(resources, cfg.ingress, diag);
  const auto stats = translation.stats;
  merge(cfg, std::move(translation));
  (void)compile(std::move(cfg), diag, stats, {.resources = &resources});

  for (const auto& d : diag.entries()) {
    const bool mine = d.resource == resource;
    if (d.severity == config::Severity::Error && mine && !missing_reference(d)) {
      out.errors.push_back(d.to_string());
    } else if (mine || names_in_conflict(d, key)) {
      out.warnings.push_back(d.to_string());
    }
  }
  out.allowed = out.errors.empty();
  return out;
}

}  // namespace phigate::compile
