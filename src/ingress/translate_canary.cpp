// ingress-nginx canaries, per route: the annotation report of a canary Ingress and the attach pass.
#include <algorithm>
#include <memory>

#include "annotations_canary_impl.hpp"
#include "names_impl.hpp"
#include "translate_canary_impl.hpp"

namespace phigate::ingress::detail {

namespace {

/// What restricts who may reach a backend, as annotations.cpp's heuristic reads names (folded:
/// lower case, '_' as '-').
bool access_control_name(std::string name) {
  name = to_lower(name);
  std::replace(name.begin(), name.end(), '_', '-');
  if (name.rfind("auth", 0) == 0 || name == "satisfy") return true;
  for (const auto* word : {"source-range", "allowlist", "whitelist", "denylist", "blacklist"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

/// Applied from a canary Ingress (ingress-nginx: canary, balancing and affinity annotations).
bool canary_applies(std::string_view name) {
  return name == "canary" || is_canary_tuning(name) || name == "load-balance" || name == "upstream-hash-by";
}

bool affinity_name(std::string_view name) {
  return name == "affinity" || name == "affinity-mode" || name.rfind("session-cookie-", 0) == 0;
}

std::string namespace_of(const std::string& resource) {
  // "Ingress ns/name"
  constexpr std::string_view kPrefix = "Ingress ";
  if (resource.rfind(kPrefix, 0) != 0) return {};
  const auto rest = resource.substr(kPrefix.size());
  return rest.substr(0, rest.find('/'));
}

/// ingress-nginx splits every location whose backend is the main's Service (it attaches the canary
/// to the upstream); phigate splits only the matched path. Said out loud when they differ.
void warn_other_uses(const std::vector<config::RouteSpec>& routes, const config::PathSpec& main,
                     const CanaryCandidate& c, const std::string& what, config::Diagnostics& diag) {
  if (main.service_host.empty()) return;
  std::vector<std::string> others;
  for (const auto& r : routes) {
    for (const auto& p : r.paths) {
      if (&p == &main || p.service_host != main.service_host || p.backends != main.backends) continue;
      others.push_back((r.host.empty() ? std::string("*") : r.host) + " " + p.path);
    }
  }
  if (others.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < others.size() && i < 3; ++i) list += (i == 0 ? "" : ", ") + others[i];
  if (others.size() > 3) list += " and " + std::to_string(others.size() - 3) + " more";
  diag.warning(c.path.where.file, c.path.where.line, c.field,
               "canary " + what + " splits this path only; ingress-nginx would also split " + list +
                   " (same Service): see docs/canary.md",
               "Ingress " + c.ing->meta.key());
}

}  // namespace

std::string check_canary(const Ingress& ing, const ParsedAnnotations& parsed, config::Diagnostics& diag) {
  const auto where = ing.origin.where();
  const auto resource = "Ingress " + ing.meta.key();
  const auto& canary = parsed.policy.canary;
  std::string fail;
  // name → the key in effect (phigate.io/ wins), as parse_annotations reads them.
  std::map<std::string, std::string> effective;
  for (const auto& [key, value] : ing.meta.annotations) {
    const bool phigate = key.rfind(kPhigatePrefix, 0) == 0;
    const bool nginx = key.rfind(kNginxPrefix, 0) == 0;
    if (!phigate && !nginx) continue;
    auto name = key.substr(phigate ? kPhigatePrefix.size() : kNginxPrefix.size());
    auto [it, inserted] = effective.emplace(std::move(name), key);
    if (!inserted && phigate) it->second = key;
  }
  for (const auto& [name, key] : effective) {
    const auto field = "metadata.annotations." + key;
    if (canary_applies(name)) continue;
    if (name.find("snippet") != std::string::npos) continue;  // an error already
    if (access_control_name(name)) {
      diag.error(where, ing.meta.annotations_line, field,
                 "access-control annotation on a canary Ingress: it cannot hold (requests routed to the "
                 "canary pass the main Ingress's access rules only), so the canary gets no traffic",
                 resource);
      if (fail.empty()) fail = "access-control annotation " + key + " on a canary Ingress";
      continue;
    }
    if (affinity_name(name)) {
      if (!canary.legacy_affinity) {
        diag.warning(where, ing.meta.annotations_line, field,
                     "ignored on a canary Ingress under affinity-canary-behavior sticky: the main "
                     "Ingress's affinity applies",
                     resource);
      }
      continue;
    }
    diag.warning(where, ing.meta.annotations_line, field,
                 "ignored on a canary Ingress: the main Ingress's policy applies", resource);
  }
  if (canary.weight_total < 100) {
    const auto it = effective.find("canary-weight-total");
    diag.warning(
        where, ing.meta.annotations_line,
        "metadata.annotations." + (it != effective.end() ? it->second : std::string("canary-weight-total")),
        "below 100 is read as 100 (as ingress-nginx does): canary-weight is out of 100", resource);
  }
  const std::uint32_t total = canary.weight_total > 100 ? canary.weight_total : 100;
  if (canary.weight > total) {
    const auto it = effective.find("canary-weight");
    diag.warning(
        where, ing.meta.annotations_line,
        "metadata.annotations." + (it != effective.end() ? it->second : std::string("canary-weight")),
        "above the total (" + std::to_string(total) +
            "): every request not decided by header or "
            "cookie goes to the canary",
        resource);
  }
  if (!canary.header_value.empty() || !canary.header_pattern.empty()) {
    if (canary.header.empty()) {
      const auto it =
          effective.find(canary.header_value.empty() ? "canary-by-header-pattern" : "canary-by-header-value");
      diag.warning(where, ing.meta.annotations_line, "metadata.annotations." + it->second,
                   "has no effect without canary-by-header", resource);
    }
  }
  if (ing.default_backend) {
    diag.warning(where, ing.default_backend->line, "spec.defaultBackend",
                 "not used on a canary Ingress: a canary splits the paths of its rules only", resource);
  }
  if (!ing.tls.empty()) {
    diag.warning(where, ing.tls.front().line, "spec.tls",
                 "not used on a canary Ingress: the main Ingress's hosts and certificates apply", resource);
  }
  return fail;
}

void attach_canaries(std::vector<config::RouteSpec>& routes, const std::vector<CanaryCandidate>& candidates,
                     const LiveMain& live, bool cross_namespace, config::Diagnostics& diag) {
  for (const auto& c : candidates) {
    const auto resource = "Ingress " + c.ing->meta.key();
    const auto what = (c.host.empty() ? std::string("*") : c.host) + " " + c.path.path;
    if (!c.fail.empty()) continue;  // reported where it was found: gets no traffic
    config::PathSpec* main = nullptr;
    for (auto& r : routes) {
      if (r.host != c.host) continue;
      for (auto& p : r.paths) {
        if (p.path != c.path.path || p.type != c.path.type || !p.policy || p.policy->resource.empty())
          continue;
        if (!live(r.host, p)) continue;
        main = &p;
        break;
      }
      if (main != nullptr) break;
    }
    if (main == nullptr) {
      diag.warning(
          c.path.where.file, c.path.where.line, c.field,
          "canary " + what +
              " has no main path (an Ingress with the same host, path and pathType): it gets no traffic",
          resource);
      continue;
    }
    const auto& main_resource = main->policy->resource;
    if (!main->policy->fail_closed.empty()) {
      diag.warning(
          c.path.where.file, c.path.where.line, c.field,
          "canary " + what + ": its main " + main_resource + " fails closed: the canary gets no traffic",
          resource);
      continue;
    }
    if (namespace_of(main_resource) != c.ing->meta.ns && !cross_namespace) {
      diag.error(
          c.path.where.file, c.path.where.line, c.field,
          "canary " + what + " would split the traffic of " + main_resource +
              ", in another namespace (ingress.canary_cross_namespace is false): the canary gets no traffic",
          resource);
      continue;
    }
    if (main->canary) {
      diag.warning(c.path.where.file, c.path.where.line, c.field,
                   "canary " + what + ": " + main_resource + " already has canary " +
                       main->canary->policy->resource + " (one canary per path): this one gets no traffic",
                   resource);
      continue;
    }
    // The main's policy (access, TLS, timeouts, retries...) with the canary's balancing; affinity
    // from the main (sticky) or from the canary (legacy).
    auto pol = *main->policy;
    const auto& own = c.policy;
    pol.resource = resource;
    pol.load_balance = own.load_balance;
    pol.load_balance_set = own.load_balance_set;
    pol.upstream_hash_by = own.upstream_hash_by;
    if (own.canary.legacy_affinity) {
      pol.affinity_cookie = own.affinity_cookie;
      pol.affinity_persistent = own.affinity_persistent;
      pol.session_cookie_name = own.session_cookie_name;
      pol.session_cookie_path = own.session_cookie_path;
      pol.session_cookie_max_age = own.session_cookie_max_age;
      pol.session_cookie_expires = own.session_cookie_expires;
      pol.session_cookie_secure = own.session_cookie_secure;
      pol.session_cookie_samesite = own.session_cookie_samesite;
    }
    pol.canary = own.canary;
    auto spec = c.path;
    spec.policy = std::make_shared<const config::RoutePolicy>(std::move(pol));
    spec.canary = nullptr;
    main->canary = std::make_shared<const config::PathSpec>(std::move(spec));
    warn_other_uses(routes, *main, c, what, diag);
  }
}

}  // namespace phigate::ingress::detail
