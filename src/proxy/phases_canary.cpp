// Phase `canary`: the route's attached ingress-nginx canary (router/canary.hpp) decides which
// cluster the request goes to. After access and fail-closed: a canary request passes the main's
// checks first. Pure: the weight's random number comes from the connection (ConnectionView).
#include <algorithm>

#include "balance_input.hpp"
#include "phases.hpp"

namespace phigate::proxy::detail {

namespace {

/// Whether the request's affinity cookie for `c` names one of `c`'s endpoints.
bool pinned_to(const Request& r, const upstream::Cluster& c) {
  const auto& b = c.balance;
  if (!b.affinity_cookie) return false;
  const auto v = affinity_cookie_value(r, b);
  if (v.empty()) return false;
  const auto it =
      std::lower_bound(b.affinity.begin(), b.affinity.end(), v,
                       [](const upstream::AffinityEntry& e, std::string_view id) { return e.id < id; });
  return it != b.affinity.end() && it->id == v;
}

}  // namespace

namespace phase {

PhaseResult canary(Request& r, const Snapshot& s, const ConnectionView& c) {
  r.canary = false;
  if (r.route == nullptr) return std::nullopt;
  r.cluster = r.route->target;
  const auto* rule = r.route->canary.get();
  const auto to = r.route->canary_target;
  if (rule == nullptr || to >= s.clusters.size() || r.route->target >= s.clusters.size()) return std::nullopt;
  // (1) A client pinned by affinity to one side stays there (ingress-nginx's sticky behaviour).
  if (pinned_to(r, s.clusters[r.route->target])) return std::nullopt;
  bool choose = pinned_to(r, s.clusters[to]);
  if (!choose) {
    const std::string* header = rule->header.empty() ? nullptr : r.head.headers.find(rule->header);
    const auto cookie =
        rule->cookie.empty() ? std::string_view{} : cookie_value(r.head.headers, rule->cookie);
    choose = router::decide_canary(*rule, header, cookie, c.random) == router::CanaryChoice::Canary;
  }
  if (choose) {
    r.cluster = to;
    r.canary = true;
  }
  return std::nullopt;
}

}  // namespace phase

}  // namespace phigate::proxy::detail
