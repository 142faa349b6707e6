#pragma once
// Private to ingress: ingress-nginx canaries in translate() (translate_canary.cpp). A canary
// Ingress emits no routes and claims nothing; each of its paths becomes a candidate, attached
// after every main route is known to the first live main path with the same host, path text and
// type (PathSpec::canary). A canary never disturbs its main: an invalid one is only not attached.
#include <functional>
#include <string>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/annotations.hpp"
#include "phigate/ingress/resources.hpp"

namespace phigate::ingress::detail {

struct CanaryCandidate {
  std::string host;       // lower-case; "" for a rule without host
  config::PathSpec path;  // the canary's backends, path text, type and manifest position
  std::string field;      // "spec.rules[i].http.paths[j]"
  const Ingress* ing = nullptr;
  config::RoutePolicy policy;  // the canary Ingress's own parsed policy (canary rules, balancing)
  std::string fail;            // non-empty: the canary is invalid and never attached (why)
};

/// Reports what the annotations of canary Ingress `ing` do here: canary-*, load-balance,
/// upstream-hash-by (and affinity under affinity-canary-behavior legacy) apply; an access-control
/// annotation is an error (it cannot hold: the main's access rules apply); any other is a warning
/// "ignored on a canary Ingress". Returns why the canary must get no traffic, or "".
std::string check_canary(const Ingress& ing, const ParsedAnnotations& parsed, config::Diagnostics& diag);

/// Whether `p` of `host` in `routes` is the path the router serves (its Ingress holds the claim).
using LiveMain = std::function<bool(const std::string& host, const config::PathSpec& p)>;

/// Attaches each candidate, in precedence order, to the first live main path of `routes` with the
/// same host, path text and type. No main, a main that already has a canary (the first keeps it),
/// a failed-closed main: a warning and no traffic. A main in another namespace without
/// `cross_namespace`: an error on the canary, not attached.
void attach_canaries(std::vector<config::RouteSpec>& routes, const std::vector<CanaryCandidate>& candidates,
                     const LiveMain& live, bool cross_namespace, config::Diagnostics& diag);

}  // namespace phigate::ingress::detail
