#include <algorithm>
#include <chrono>

#include "phigate/access/cidr.hpp"
#include "phigate/compile/policy.hpp"
#include "phigate/http/forwarding.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/server/server.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::server {

// The proxy_next_upstream bits are spelled twice (config cannot see upstream): keep them equal.
static_assert(config::kNextUpstreamError == upstream::kNextError &&
              config::kNextUpstreamTimeout == upstream::kNextTimeout &&
              config::kNextUpstreamHttp500 == upstream::kNextHttp500 &&
              config::kNextUpstreamHttp502 == upstream::kNextHttp502 &&
              config::kNextUpstreamHttp503 == upstream::kNextHttp503 &&
              config::kNextUpstreamHttp504 == upstream::kNextHttp504 &&
              config::kNextUpstreamHttp403 == upstream::kNextHttp403 &&
              config::kNextUpstreamHttp404 == upstream::kNextHttp404 &&
              config::kNextUpstreamHttp429 == upstream::kNextHttp429);

std::size_t fatal_errors(const config::Diagnostics& diag) {
  std::size_t n = 0;
  for (const auto& d : diag.entries())
    n += (d.severity == config::Severity::Error && d.resource.empty()) ? 1 : 0;
  return n;
}

proxy::SnapshotPtr build_snapshot(config::Config config, std::shared_ptr<tls::TicketKeyRing> keys,
                                  std::uint64_t generation, config::Diagnostics& diag,
                                  ingress::DirectoryLoader* loader, upstream::HealthRegistry* health) {
  BuildInputs in;
  in.loader = loader;
  in.health = health;
  return build_snapshot(std::move(config), std::move(keys), generation, diag, in);
}

proxy::SnapshotPtr build_snapshot(config::Config config, std::shared_ptr<tls::TicketKeyRing> keys,
                                  std::uint64_t generation, config::Diagnostics& diag,
                                  const BuildInputs& in) {
  auto* const health = in.health;
  const auto started = std::chrono::steady_clock::now();
  upstream::HealthRegistry scratch;  // no registry (validate, tests): every endpoint starts afresh
  auto& registry = health != nullptr ? *health : scratch;
  registry.abandon();  // what an earlier failed build asked for
  auto snap = std::make_shared<proxy::Snapshot>();
  snap->generation = generation;
  // Every policy decision (Ingress translation, fail-closed marks, per-host TLS policies, access
  // lists) is made by the compile step that `phigate validate` runs too; what follows only
  // assembles runtime objects from it.
  auto compiled = in.resources != nullptr ? compile::load_and_compile(std::move(config), *in.resources, diag)
                                          : compile::load_and_compile(std::move(config), diag, in.loader);
  if (!compiled) return nullptr;  // a manifest file that does not load as a whole
  const auto& st = compiled->ingress;
  snap->ingress = {st.ingresses, st.used,         st.ignored,   st.failed_closed, st.routes,
                   st.paths,     st.certificates, st.conflicts, st.used_keys};
  snap->check_enforced = compiled->enforced_ingresses;
  snap->check = std::make_shared<const std::vector<check::Finding>>(std::move(compiled->findings));
  auto cfg = std::make_shared<const config::Config>(std::move(compiled->config));
  if (!cfg->listeners.https.empty()) {
    // Building every SSL_CTX costs milliseconds per certificate: when nothing they are built from
    // changed (an EndpointSlice or a route moved), the running contexts serve the new snapshot.
    const auto* prev = in.previous != nullptr ? in.previous->tls.get() : nullptr;
    if (prev != nullptr &&
        prev->inputs() ==
            tls::ServerContexts::fingerprint(cfg->tls, keys.get(), compiled->host_policies, &cfg->http2) &&
        !prev->inputs().empty()) {
      for (const auto& d : prev->diagnostics()) diag.add(d);
      snap->tls = in.previous->tls;
    } else {
      snap->tls = tls::ServerContexts::build(cfg->tls, std::move(keys), diag,
                                             std::move(compiled->host_policies), &cfg->http2);
    }
  }
  snap->routes = router::RouteTable::build(cfg->routes, diag, cfg->default_backend);
  // Health settings of a path: the global ones under the Ingress's health-check-* annotations.
  const auto active_settings = [&](const config::PathSpec& p) {
    const auto& g = cfg->upstream.health_active;
    upstream::ActiveCheckSettings a;
    a.enabled = g.enabled;
    a.path = g.path;
    a.host = g.host;
    a.port = static_cast<std::uint16_t>(g.port);
    a.interval = g.interval;
    a.timeout = g.timeout;
    a.healthy_threshold = g.healthy_threshold;
    a.unhealthy_threshold = g.unhealthy_threshold;
    a.status_min = g.status_min;
    a.status_max = g.status_max;
    a.initial_healthy = cfg->upstream.health_initial_healthy;
    if (const auto* pol = p.policy.get()) {
      // Any health-check annotation turns active checks on for the Ingress's paths.
      if (pol->health_check_path || pol->health_check_interval || pol->health_check_timeout ||
          pol->health_check_healthy_threshold || pol->health_check_unhealthy_threshold ||
          pol->health_check_port)
        a.enabled = true;
      if (pol->health_check_path) a.path = *pol->health_check_path;
      if (pol->health_check_interval) a.interval = *pol->health_check_interval;
      if (pol->health_check_timeout) a.timeout = *pol->health_check_timeout;
      if (pol->health_check_healthy_threshold) a.healthy_threshold = *pol->health_check_healthy_threshold;
      if (pol->health_check_unhealthy_threshold)
        a.unhealthy_threshold = *pol->health_check_unhealthy_threshold;
      if (pol->health_check_port) a.port = static_cast<std::uint16_t>(*pol->health_check_port);
    }
    a.timeout = std::min(a.timeout, a.interval);  // a probe never outlives its interval
    return a;
  };
  const auto passive_settings = [&] {
    const auto& g = cfg->upstream.health_passive;
    upstream::PassiveSettings s;
    s.enabled = g.enabled;
    s.consecutive_failures = g.consecutive_failures;
    s.base_ejection = g.base_ejection;
    s.max_ejection = g.max_ejection;
    s.max_ejected_percent = g.max_ejected_percent;
    return s;
  }();
  // HTTPS backends are probed over TLS with the cluster's own context (same verification as
  // requests). An HTTPS path without one has failed closed: nothing to probe, and never in plain.
  const auto probe_settings = [&](const config::PathSpec& p, const upstream::Cluster& c) {
    auto a = active_settings(p);
    const auto proto = p.policy != nullptr ? p.policy->backend_protocol : config::BackendProtocol::Http;
    const bool https = proto == config::BackendProtocol::Https || proto == config::BackendProtocol::Grpcs;
    if (https && c.tls == nullptr) a.enabled = false;
    // A gRPC backend speaks HTTP/2 only: an HTTP/1.1 GET probe would fail on every healthy
    // endpoint. Its probes are connects (and the TLS handshake for GRPCS); passive health applies.
    if (c.grpc) a.path.clear();
    // A passthrough backend speaks TLS to its clients, and phigate holds no context for it: probes
    // are TCP connects (an HTTP GET would fail on every healthy endpoint).
    if (p.policy != nullptr && p.policy->ssl_passthrough) a.path.clear();
    return a;
  };
  auto add_cluster = [&](const std::string& name, const config::PathSpec& p) {
    upstream::Cluster c;
    c.name = name;
    // Health state is kept per route across reloads: the key must tell apart routes that share a
    // display name (an Exact and a Prefix /api on one host, from different Ingresses), or one
    // tenant's failures would eject another's endpoints under a cap computed for its own route.
    const std::string health_key = name + "\n" + std::to_string(static_cast<int>(p.type)) + "\n" +
                                   (p.policy ? p.policy->resource : std::string());
    // TLS before health: the probes of an HTTPS backend use the cluster's context.
    c.tls = compiled->backend_tls.at(snap->clusters.size());  // compiled in the same path order
    // GRPC / GRPCS: streams on the worker's H2Pool (prior knowledge, or TLS with ALPN h2).
    c.grpc = p.policy != nullptr && (p.policy->backend_protocol == config::BackendProtocol::Grpc ||
                                     p.policy->backend_protocol == config::BackendProtocol::Grpcs);
    for (const auto& b : p.backends) {
      auto ep = net::resolve_endpoint(b);
      if (!ep) {
        diag.error(p.where.file, p.where.line, "backends", ep.error().context,
                   p.policy ? p.policy->resource : "");
        continue;
      }
      upstream::Endpoint e;
      e.address = *ep;
      e.key = net::to_string(*ep);
      // --- health: state shared by every worker ---
      e.health = registry.endpoint(health_key, e, probe_settings(p, c), c.tls,
                                   registry.group(health_key, passive_settings));

      c.endpoints.push_back(std::move(e));
    }
    // --- health ---
    c.health = registry.group(health_key, passive_settings);
    // Terminating endpoints (EndpointSlice): part of the cluster so that nothing about them is
    // forgotten, never picked for a new request (endpoint_usable).
    for (const auto& b : p.terminating_backends) {
      auto ep = net::resolve_endpoint(b);
      if (!ep) continue;  // from an EndpointSlice: always an IP address
      upstream::Endpoint e;
      e.address = *ep;
      e.key = net::to_string(*ep);
      e.terminating = true;
      e.health = registry.endpoint(health_key, e, probe_settings(p, c), c.tls, c.health);
      c.endpoints.push_back(std::move(e));
    }

    // --- balancing ---
    {
      // RoutePolicy (an Ingress's annotations) over upstream.balance; static routes use the global
      // default. upstream-hash-by wins over load-balance, as in ingress-nginx.
      const auto* pol = p.policy.get();
      auto& b = c.balance;
      const auto lb =
          pol != nullptr && pol->load_balance_set ? pol->load_balance : cfg->upstream.load_balance;
      b.kind = lb == config::LoadBalance::LeastRequest ? upstream::BalanceKind::LeastRequest
               : lb == config::LoadBalance::Ewma       ? upstream::BalanceKind::Ewma
                                                       : upstream::BalanceKind::RoundRobin;
      if (pol != nullptr && !pol->upstream_hash_by.empty()) {
        // One variable from the annotation parser's closed list (parse_hash_by).
        const std::string_view v = pol->upstream_hash_by;
        const auto named = [&](std::string_view prefix, upstream::HashSource src) {
          if (v.substr(0, prefix.size()) != prefix) return false;
          b.hash_source = src;
          b.hash_name = std::string(v.substr(prefix.size()));
          return true;
        };
        b.kind = upstream::BalanceKind::Hash;
        if (v == "$remote_addr" || v == "$binary_remote_addr") {
          b.hash_source = upstream::HashSource::RemoteAddr;
        } else if (v == "$request_uri") {
          b.hash_source = upstream::HashSource::RequestUri;
        } else if (v == "$uri") {
          b.hash_source = upstream::HashSource::Uri;
        } else if (v == "$host") {
          b.hash_source = upstream::HashSource::Host;
        } else if (named("$http_", upstream::HashSource::Header)) {
          // nginx's $http_x_user_id is the field X-User-Id.
          std::replace(b.hash_name.begin(), b.hash_name.end(), '_', '-');
        } else if (!named("$cookie_", upstream::HashSource::Cookie) &&
                   !named("$arg_", upstream::HashSource::Arg)) {
          b.kind = upstream::BalanceKind::RoundRobin;  // unreachable: the parser refuses anything else
        }
      }
      if (pol != nullptr && pol->affinity_cookie) {
        b.affinity_cookie = true;
        b.affinity_persistent = pol->affinity_persistent;
        if (!pol->session_cookie_name.empty()) b.cookie_name = pol->session_cookie_name;
        b.cookie_path = pol->session_cookie_path;
        b.cookie_max_age = pol->session_cookie_max_age;
        b.cookie_expires = pol->session_cookie_expires;
        b.cookie_secure = pol->session_cookie_secure;
        b.cookie_samesite = pol->session_cookie_samesite;
      }
      upstream::build_balancing(c);  // the ring and the endpoints' affinity ids
    }

    // --- retries ---
    {
      const auto& u = cfg->upstream;
      const auto* pol = p.policy.get();
      c.retry.when = pol && pol->next_upstream ? *pol->next_upstream : u.next_upstream;
      c.retry.tries = pol && pol->next_upstream_tries ? *pol->next_upstream_tries : u.next_upstream_tries;
      c.retry.timeout =
          pol && pol->next_upstream_timeout ? *pol->next_upstream_timeout : u.next_upstream_timeout;
    }

    // --- TLS to the backend ---
    // c.tls: set first (above), health registration needs it.

    snap->clusters.push_back(std::move(c));
  };
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      add_cluster((r.host.empty() ? "*" : r.host) + " " + p.path, p);
    }
  }
  if (cfg->default_backend) {
    add_cluster("default backend", *cfg->default_backend);
  }
  // Attached canaries after the default backend, in route order (Route::canary_target).
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      if (p.canary)
        add_cluster("canary " + (r.host.empty() ? std::string("*") : r.host) + " " + p.path, *p.canary);
    }
  }
  // Error backends (default-backend) after the canaries, in route order (Route::error_target).
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) {
      if (p.error_backend)
        add_cluster("error backend " + (r.host.empty() ? std::string("*") : r.host) + " " + p.path,
                    *p.error_backend);
    }
  }
  // External-authentication Services (auth-url) after the error backends, in route order then
  // the default backend (compile: the same order), each known by the policy of its path.
  const auto add_auth = [&](const std::string& name, const config::PathSpec& p) {
    if (!p.auth_backend) return;
    const auto index = snap->clusters.size();
    add_cluster("auth " + name, *p.auth_backend);
    if (p.policy != nullptr) snap->auth_clusters.emplace(p.policy.get(), index);
  };
  for (const auto& r : cfg->routes) {
    for (const auto& p : r.paths) add_auth((r.host.empty() ? std::string("*") : r.host) + " " + p.path, p);
  }
  if (cfg->default_backend) add_auth("default backend", *cfg->default_backend);
  snap->route_access = std::move(compiled->route_access);  // same order as the clusters
  for (auto& pt : compiled->passthrough) {
    // The audit record's phigate.ingress is "namespace/name", as a request's.
    std::string_view key = pt.resource;
    if (key.rfind("Ingress ", 0) == 0) key.remove_prefix(8);
    snap->passthrough.emplace(std::move(pt.host), proxy::Snapshot::Passthrough{pt.path, std::string(key)});
  }
  snap->global_access = std::move(compiled->global_access);
  snap->trusted_proxies = std::move(compiled->trusted_proxies);
  snap->https_redirect_port = static_cast<std::uint16_t>(cfg->listeners.https_redirect_port);
  snap->audit_reads_forwarding =
      std::any_of(cfg->audit.headers.begin(), cfg->audit.headers.end(), http::is_forwarding_field);
  if (const auto& h = cfg->tls.hsts; h.enabled) {
    snap->hsts_value = "max-age=" + std::to_string(h.max_age) +
                       (h.include_subdomains ? "; includeSubDomains" : "") + (h.preload ? "; preload" : "");
    snap->hsts_field = "Strict-Transport-Security: " + snap->hsts_value + "\r\n";
  }
  // --- rate limits (limit-rps/-rpm/-connections; docs/rate-limits.md) ---
  {
    bool any_limit = false;
    const auto add_policy = [&](const config::RoutePolicy* pol) {
      if (pol == nullptr || !pol->rate_limit.any()) return;
      any_limit = true;
      if (pol->rate_limit.allowlist.empty() || snap->limit_allowlists.contains(pol)) return;
      access::CidrSet set;
      for (const auto& text : pol->rate_limit.allowlist) {
        // The annotation parser checked each one: an unparsable one now is a bug, and the
        // policy gets no allowlist entry (the phase fails such a route closed).
        const auto cidr = access::parse_cidr(text);
        if (!cidr) return;
        set.add(*cidr);
      }
      snap->limit_allowlists.emplace(pol, std::move(set));
    };
    for (const auto& r : cfg->routes) {
      for (const auto& p : r.paths) {
        add_policy(p.policy.get());
        if (p.canary) add_policy(p.canary->policy.get());
        if (p.error_backend) add_policy(p.error_backend->policy.get());
      }
    }
    if (cfg->default_backend) add_policy(cfg->default_backend->policy.get());
    if (any_limit) {
      // The counters outlive the reload (a client cannot reset its bucket by waiting for one);
      // a changed capacity starts a new table.
      const auto* prev = in.previous != nullptr ? in.previous->rate_limiter.get() : nullptr;
      snap->rate_limiter =
          prev != nullptr && prev->capacity() == proxy::RateLimiter::capacity_for(cfg->limits.rate_limit_keys)
              ? in.previous->rate_limiter
              : std::make_shared<proxy::RateLimiter>(cfg->limits.rate_limit_keys);
    }
  }
  const bool tls_missing = !cfg->listeners.https.empty() && !snap->tls;
  snap->config = std::move(cfg);
  if (fatal_errors(diag) > 0 || tls_missing) return nullptr;
  snap->resource_errors = diag.error_count();
  snap->build_time =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return snap;
}

}  // namespace phigate::server
