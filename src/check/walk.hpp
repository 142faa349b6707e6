#pragma once
// What the rule groups share: the one walk over every path that serves requests (route paths and
// the default backend), so a policy a rule should see is never skipped because it sits on the
// catch-all. Private to the check library.
#include <string>

#include "phigate/check/check.hpp"

namespace phigate::check::walk {

inline const config::RoutePolicy& policy_of(const config::PathSpec& p) {
  static const config::RoutePolicy kDefaults;
  return p.policy ? *p.policy : kDefaults;
}

/// A path that serves requests: not failed closed (a failed-closed path answers 503 only).
inline bool serves(const config::PathSpec& p) {
  return !p.policy || p.policy->fail_closed.empty();
}

inline std::string host_name(const std::string& host) {
  return host.empty() ? std::string("*") : host;
}

/// The Ingress a path comes from, or "a static route".
inline std::string owner(const config::PathSpec& p) {
  const auto& pol = policy_of(p);
  return pol.resource.empty() ? std::string("a static route") : pol.resource;
}

/// f(host, path, field) for every path that serves: each route path ("routes[i].paths[j]") and the
/// catch-all default backend last (host "", field ""). Attached canaries are not visited: a
/// canary serves with a copy of its main's policy (ingress/translate_canary.cpp: only balancing
/// and affinity are its own), so a finding there would be the main's, blamed on the canary.
template <class F>
void for_each_path(const View& v, F&& f) {
  for (std::size_t i = 0; i < v.config.routes.size(); ++i) {
    const auto& r = v.config.routes[i];
    for (std::size_t j = 0; j < r.paths.size(); ++j) {
      const auto& p = r.paths[j];
      const std::string field = "routes[" + std::to_string(i) + "].paths[" + std::to_string(j) + "]";
      if (serves(p)) f(r.host, p, field);
    }
  }
  if (v.config.default_backend && serves(*v.config.default_backend)) {
    f(std::string(), *v.config.default_backend, std::string());
  }
}

}  // namespace phigate::check::walk
