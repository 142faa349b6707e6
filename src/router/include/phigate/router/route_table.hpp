#pragma once
// Compiled routing: host bucket by hash (exact, then one-label wildcard, then default), then
// Exact path by hash, then the longest Prefix by walking the path's segments from the longest
// (one hash lookup per segment). A host bucket where any route is a regex (ingress-nginx
// `use-regex`, or a `rewrite-target`) is matched as ingress-nginx matches it instead: every
// route of the bucket as a case-insensitive regex anchored at the start, in ingress-nginx's order
// (longest path text first), with one RE2::Set match (linear time); other routes' literal paths
// are quoted, never read as regexes. Sans-I/O; immutable once built, shared by all workers
// through the snapshot.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/core/host_map.hpp"
#include "phigate/core/strings.hpp"
#include "phigate/router/canary.hpp"
#include "phigate/router/regex.hpp"

namespace phigate::router {

struct Route {
  std::string host;  // as configured; "" for the default host
  std::string path;  // as configured
  config::PathType type = config::PathType::Prefix;
  std::size_t target = 0;                    // index of the PathSpec in the flattened spec list (→ cluster)
  std::string name;                          // "host path" for logs and metrics-free diagnostics
  config::RoutePolicyPtr policy;             // null: defaults (static routes)
  std::shared_ptr<const Rewrite> rewrite{};  // rewrite-target of a regex route; null: none
  /// An attached canary (PathSpec::canary): its rules and cluster index (after every path and the
  /// fallback, in route order). Null: none.
  std::shared_ptr<const CanaryRule> canary{};
  std::size_t canary_target{};
  /// The error backend (PathSpec::error_backend, default-backend): its cluster index, after every
  /// canary, in route order. False: none.
  bool has_error_backend = false;
  std::size_t error_target{};
  std::string service_name{};  // the path's Service and port (X-Service-Name, X-Service-Port)
  std::string service_port{};
  std::string cookie_path{};  // Path of an affinity cookie when not `path` (a regex route's literal prefix)

  std::string_view affinity_cookie_path() const noexcept { return cookie_path.empty() ? path : cookie_path; }
};

class RouteTable {
 public:
  /// Compiles `routes`. Every PathSpec gets `target` = its position when all routes' paths are
  /// listed in order. Duplicates (same host, path and type) keep the first and warn in `diag`.
  /// `fallback` (an Ingress defaultBackend) answers what nothing else matches; its target is the
  /// number of PathSpecs in `routes` (it comes last).
  static RouteTable build(const std::vector<config::RouteSpec>& routes, config::Diagnostics& diag,
                          const std::optional<config::PathSpec>& fallback = std::nullopt);

  /// Route for `host` (a Host header value: case, port and trailing dot are ignored) and `path`
  /// (the target's path, without query); else the fallback; else nullptr. The pointer lives as
  /// long as the table.
  const Route* match(std::string_view host, std::string_view path) const;
  /// The same for a host already normalised (normalize_host_into): no allocation. Worker threads.
  const Route* match_normalized(std::string_view host, std::string_view path) const;

  std::size_t size() const noexcept { return routes_.size(); }

  /// ingress-nginx from-to-www-redirect: the host to redirect `host` (normalised) to, when a
  /// live route of that host asked for it, `host` is its www/non-www partner ("www.a.example" ↔
  /// "a.example"), and `host` has no bucket of its own (exact or wildcard: real hosts win); ""
  /// otherwise.
  std::string_view www_redirect(std::string_view host) const;

  /// Lower-cases and strips the port and a trailing dot: "App.Example.:8443" → "app.example".
  static std::string normalize_host(std::string_view host);
  /// The same into `out`, reusing its capacity (the hot path keeps one per connection).
  static void normalize_host_into(std::string_view host, std::string& out);

 private:
  struct RegexBucket;  // route_table.cpp: the order and the RE2::Set of a regex bucket
  struct HostRoutes {
    core::StringMap<std::uint32_t> exact;
    core::StringMap<std::uint32_t> prefix;          // key: prefix without trailing '/' ("" is the root)
    core::StringMap<std::uint32_t> regex;           // regex paths, by their text
    std::vector<std::uint32_t> members;             // every route of the bucket, in definition order
    std::shared_ptr<const RegexBucket> regex_mode;  // set: the bucket is matched by regex
  };
  static void finish_bucket(HostRoutes& h, const std::vector<Route>& routes, config::Diagnostics& diag);
  const Route* match_in(const HostRoutes& h, std::string_view path) const;
  const Route* match_regex(const RegexBucket& b, std::string_view path) const;
  const HostRoutes* bucket_of(std::string_view host) const;
  const Route* match_host(std::string_view host, std::string_view path) const;

  std::vector<Route> routes_;
  core::HostMap<HostRoutes> hosts_;  // exact names and "*.suffix" (one label)
  HostRoutes default_host_;
  bool has_default_ = false;
  std::optional<Route> fallback_;
  core::StringMap<std::string> www_redirect_;  // partner name → the host that asked for it
};

}  // namespace phigate::router
