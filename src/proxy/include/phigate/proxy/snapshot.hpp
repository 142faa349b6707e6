#pragma once
// The immutable configuration snapshot the hot path reads. Built and published by server;
// pinned by a connection at accept (TLS) and again per request head (routes, clusters).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "phigate/access/cidr.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/proxy/rate_limiter.hpp"
#include "phigate/router/route_table.hpp"
#include "phigate/tls/server_contexts.hpp"
#include "phigate/upstream/cluster.hpp"

namespace phigate::check {
struct Finding;  // phigate/check/check.hpp: opaque here
}  // namespace phigate::check

namespace phigate::proxy {

struct Snapshot {
  std::uint64_t generation = 0;
  std::shared_ptr<const config::Config> config;
  router::RouteTable routes;
  std::vector<upstream::Cluster> clusters;  // index: Route::target
  std::shared_ptr<const tls::ServerContexts> tls;
  access::CidrSet trusted_proxies;
  access::AccessList global_access;  // `access:` in the config: applies to every route
  /// Per-route source allow/deny lists (Ingress *-source-range annotations), index Route::target;
  /// null when the route has none.
  std::vector<std::shared_ptr<const access::AccessList>> route_access;
  /// TLS passthrough (listeners.tls_passthrough, ssl-passthrough): the ClientHello's server name
  /// (normalised) → the index of the cluster (and of route_access) its connections are spliced to.
  /// Empty: no ClientHello is read before the handshake.
  struct Passthrough {
    std::size_t cluster = 0;
    std::string ingress;  // "namespace/name", for the audit record
  };
  std::unordered_map<std::string, Passthrough> passthrough;
  /// limit-rps/-rpm/-connections counters of the process (docs/rate-limits.md): the same table
  /// from one snapshot to the next while limits.rate_limit_keys stays; null: no route limits.
  std::shared_ptr<RateLimiter> rate_limiter;
  /// limit-allowlist of each route policy that has one, compiled (keyed by the policy, which the
  /// snapshot's config keeps alive).
  std::unordered_map<const config::RoutePolicy*, access::CidrSet> limit_allowlists;
  /// auth-url: the cluster of the external-authentication Service of each policy that has one
  /// (clusters after the error backends; docs/auth-external.md).
  std::unordered_map<const config::RoutePolicy*, std::size_t> auth_clusters;
  std::string hsts_field;  // "Strict-Transport-Security: ...\r\n" for HTTPS responses, or empty
  std::string hsts_value;  // its value alone ("max-age=N[; includeSubDomains][; preload]")
  std::uint16_t https_redirect_port = 0;  // 0: the port the first https listener bound
  /// audit.headers names a field phigate's forwarding sets (http::is_forwarding_field): the
  /// HTTP/1.1 upstream head then gets them as request fields (set_forwarding_headers), which the
  /// audit record reads, not as the faster lines (forwarding_lines), which it cannot.
  bool audit_reads_forwarding = false;
  // How it was built (logs and metrics on the control thread).
  std::size_t resource_errors = 0;  // errors confined to one Kubernetes resource (it fails closed)
  std::chrono::milliseconds build_time{0};
  /// The check engine's findings in this configuration (docs/check.md): carried, never read, by
  /// the proxy; the server logs the new ones and counts them (phigate_check_findings).
  std::shared_ptr<const std::vector<check::Finding>> check{};
  std::size_t check_enforced = 0;  // Ingresses failed closed by check.enforce
  struct IngressStats {
    std::size_t ingresses = 0, used = 0, ignored = 0, failed_closed = 0, routes = 0, paths = 0,
                certificates = 0, conflicts = 0;
    std::vector<std::string> used_keys{};  // "ns/name" of each Ingress served (status is written for these)
  } ingress;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace phigate::proxy
