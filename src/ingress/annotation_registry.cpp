#include "phigate/ingress/annotation_registry.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "annotations_auth_impl.hpp"
#include "annotations_canary_impl.hpp"
#include "annotations_cors_impl.hpp"
#include "annotations_impl.hpp"
#include "annotations_ratelimit_impl.hpp"
#include "annotations_redirect.hpp"
#include "annotations_rewrite.hpp"
#include "phigate/config/loader.hpp"

namespace phigate::ingress {
namespace {

using namespace detail;  // the value parsers and their Context
using Parser = AnnotationParser;

/// A canary annotation's parser (annotations_canary.cpp) as a registry row's parser.
template <std::string (*F)(std::string_view, config::CanaryPolicy&)>
std::string canary(std::string_view v, Context& c) {
  return F(v, c.policy.canary);
}

/// A response-header annotation's parser (annotations_cors.cpp) as a registry row's parser.
template <std::string (*F)(std::string_view, config::HeaderPolicy&)>
std::string headers(std::string_view v, Context& c) {
  return F(v, c.policy.headers);
}

/// A rate-limit annotation's parser (annotations_ratelimit.cpp) as a registry row's parser.
template <std::string (*F)(std::string_view, config::RateLimitPolicy&)>
std::string rate_limit(std::string_view v, Context& c) {
  return F(v, c.policy.rate_limit);
}

/// A CORS annotation's parser (annotations_cors.cpp) as a registry row's parser.
template <std::string (*F)(std::string_view, config::CorsPolicy&)>
std::string cors(std::string_view v, Context& c) {
  return F(v, c.policy.cors);
}

// Row builders: every field of AnnotationInfo set (GCC's -Wmissing-field-initializers), rows short.

/// Supported; with a `difference`, SupportedWithDifferences.
constexpr AnnotationInfo supported(std::string_view name, Parser parse, std::string_view group,
                                   std::string_view behaviour, std::string_view difference = {},
                                   AnnotationOrigin origin = AnnotationOrigin::IngressNginx) {
  return {name,       difference.empty() ? Support::Supported : Support::SupportedWithDifferences,
          parse,      {},
          group,      behaviour,
          difference, origin,
          {}};
}
constexpr AnnotationInfo own(std::string_view name, Parser parse, std::string_view group,
                             std::string_view behaviour) {
  return supported(name, parse, group, behaviour, {}, AnnotationOrigin::Phigate);
}
/// Accepted, nothing to do: `behaviour` says why (a warning "has no effect: <behaviour>").
constexpr AnnotationInfo no_effect(std::string_view name, std::string_view group, std::string_view behaviour,
                                   std::string_view planned = {},
                                   AnnotationOrigin origin = AnnotationOrigin::IngressNginx) {
  return {name, Support::NoEffect, nullptr, {}, group, behaviour, {}, origin, planned};
}
/// The Ingress fails closed, unless the value is `off` (then a warning): `behaviour` is the error,
/// read after `<key>="<value>": `.
constexpr AnnotationInfo refused(std::string_view name, std::string_view off, std::string_view group,
                                 std::string_view behaviour, std::string_view planned = {},
                                 AnnotationOrigin origin = AnnotationOrigin::IngressNginx) {
  return {name, Support::Refused, nullptr, off, group, behaviour, {}, origin, planned};
}
/// Ignored, or an error under ingress.unsupported_annotations: fail_closed: `behaviour` says what
/// does not happen.
constexpr AnnotationInfo unsupported(std::string_view name, std::string_view group,
                                     std::string_view behaviour, std::string_view planned = {},
                                     AnnotationOrigin origin = AnnotationOrigin::IngressNginx) {
  return {name, Support::Unsupported, nullptr, {}, group, behaviour, {}, origin, planned};
}
constexpr AnnotationInfo code_only(AnnotationInfo row) {
  row.origin = AnnotationOrigin::IngressNginxCodeOnly;
  return row;
}
constexpr AnnotationInfo removed(AnnotationInfo row) {
  row.origin = AnnotationOrigin::IngressNginxRemoved;
  return row;
}

constexpr std::string_view kAuth =
    "this external authentication setting is not implemented by phigate: the Ingress fails closed (it must "
    "not be served without the restriction its owner asked for)";
constexpr std::string_view kAuthPlanned = "authentication (part 2)";
constexpr std::string_view kSnippet =
    "snippet annotations are not supported (raw configuration injection, CVE-2025-1974)";
constexpr std::string_view kRateLimit = "rate limits are not enforced by phigate: the Ingress fails closed";
constexpr std::string_view kLimitInvalid =
    "an invalid value fails the Ingress closed (ingress-nginx uses its default silently)";
constexpr std::string_view kLimitDifference =
    "one table for all workers of the process (not per replica, as nginx's zone); the client address is "
    "the PROXY header's or a trusted proxy's X-Forwarded-For; an invalid value fails the Ingress closed "
    "(ingress-nginx: no limit); at most limits.rate_limit_keys addresses are tracked (the least recently "
    "seen is forgotten); docs/rate-limits.md";
constexpr std::string_view kBandwidthDifference =
    "applies whatever proxy-buffering says (nginx ignores limit_rate with proxy_buffering off, "
    "ingress-nginx's default); the pacing clock starts once limit-rate-after is sent (nginx counts from the "
    "request's start, so it may burst); HTTP/2 counts DATA bytes per stream, HTTP/1.1 every response byte; "
    "WebSocket tunnels and phigate's own replies are not paced; an invalid value fails the Ingress closed; "
    "docs/rate-limits.md";
constexpr std::string_view kLimitsPlanned = "rate limits (part 2)";
constexpr std::string_view kNoWaf =
    "phigate has no web application firewall (ModSecurity): the Ingress must not be served as if it "
    "were protected, so it fails closed";
constexpr std::string_view kRedirectDifference =
    "codes 301, 302, 303, 307 and 308 only (others are an error, not silently defaulted); answered after "
    "the access checks (a refused client gets 403, not the redirect); a path is made absolute with the "
    "request's scheme and Host; no `$variables`";
constexpr std::string_view kRedirectCodeDifference =
    "301, 302, 303, 307 or 308 (anything else is an error: ingress-nginx silently uses the default, or "
    "sends the URL as a body)";
constexpr std::string_view kCorsInvalid =
    "an invalid value fails the Ingress closed (ingress-nginx used its default silently)";
constexpr std::string_view kRangeDifference =
    "a CIDR with host bits set (\"10.0.0.1/8\") is refused as a likely typo";
constexpr std::string_view kSecretDifference =
    "the Secret must be in the Ingress's own namespace (as allow-cross-namespace-resources: false)";
constexpr std::string_view kCustomErrors =
    "a backend answer with a listed status (400 to 599) is dropped unseen and replaced by the "
    "default-backend Service's answer to GET / (HEAD stays HEAD) with X-Code, X-Format, X-Original-URI, "
    "X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port and X-Request-ID; phigate's own "
    "upstream errors (502, 503, 504) with a listed code too";
constexpr std::string_view kCustomErrorsDifference =
    "needs default-backend (there is no global error backend: without it errors pass through, with a "
    "warning); phigate's refusals (403, 413, 421, a failed-closed 503) are never replaced; gRPC answers "
    "are never replaced; the error backend never switches protocols: a 101 (or any 1xx but 100) to the "
    "page's "
    "GET / gets phigate's own answer instead";
constexpr std::string_view kTimeoutDifference = "1ms to 1h; a unit is accepted too (\"500ms\", \"2m\")";

// Sorted by name (binary search; checked below). One row per name: a new ingress-nginx name or a
// phigate one gets a row here, and docs/annotations.md is regenerated from this table.
constexpr auto kRegistry = std::to_array<AnnotationInfo>({
    supported("affinity", parse_affinity, "affinity", "\"cookie\": sticky sessions with a cookie"),
    supported("affinity-canary-behavior", canary<parse_affinity_canary_behavior>, "canary",
              "sticky (default): a client with an affinity cookie stays on the side that served it; legacy: "
              "the canary's own affinity settings apply to it"),
    supported("affinity-mode", parse_affinity_mode, "affinity",
              "balanced (default) or persistent, with affinity: cookie"),
    code_only(supported(
        "allowlist-source-range", [](std::string_view v, Context& c) { return parse_ranges(v, c.allowlist); },
        "access", "client addresses allowed (merged with whitelist-source-range); others get 403",
        kRangeDifference)),
    supported(
        "app-root", [](std::string_view v, Context& c) { return parse_app_root(v, c.policy.regex); }, "rewrite",
        "a request for \"/\" of the host gets 302 to this path, when this Ingress's path is the one \"/\" "
        "matches",
        "answered after the access checks (a refused client gets 403, not the redirect); ingress-nginx applies "
        "it at server level, whichever Ingress serves \"/\"; here another Ingress's deeper path cannot "
        "redirect a root it does not serve"),
    supported("auth-always-set-cookie", parse_auth_always_set_cookie, "auth",
              "\"true\": the auth answer's Set-Cookie fields go to the client with every answer (else only with an allowed request's backend answer)"),
    supported("auth-cache-duration", parse_auth_cache_duration, "auth",
              "with auth-cache-key: how long answers of each status are cached (default \"200 202 401 5m\")",
              "statuses 200 to 599, 1s to 24h; an invalid value fails the Ingress closed"),
    supported("auth-cache-key", parse_auth_cache_key, "auth",
              "auth answers are cached per worker under this key's expansion (with the auth-url, method and "
              "Ingress), for auth-cache-duration",
              "variables $http_<name>, $cookie_<name>, $remote_user, $host, $request_uri only (any other fails "
              "the Ingress closed); per worker, at most 1024 answers, in memory"),
    own("auth-forward-authorization", parse_auth_forward_authorization, "auth",
        "\"true\": the client's Authorization reaches the backend after basic authentication succeeded "
        "(default false: removed)"),
    supported("auth-keepalive", parse_auth_keepalive, "auth",
              "0: each auth connection is closed after its answer; else (and by default) auth connections "
              "are kept in the worker's upstream pool (upstream.keepalive_*), not a separate pool of N"),
    supported("auth-keepalive-requests", parse_auth_keepalive_requests, "auth",
              "validated (1 to 1000000); the upstream pool's own per-connection settings apply"),
    supported("auth-keepalive-share-vars", parse_auth_keepalive_share_vars, "auth",
              "validated (a boolean); no effect: phigate's subrequest shares no variables with the request"),
    supported("auth-keepalive-timeout", parse_auth_keepalive_timeout, "auth",
              "validated (1 to 3600 seconds); the upstream pool's idle timeout applies"),
    supported("auth-method", parse_auth_method, "auth",
              "the method of the auth subrequest (default GET); with it X-Original-URI and X-Scheme are sent too"),
    supported("auth-proxy-set-headers", parse_auth_proxy_set_headers, "auth",
              "a ConfigMap of the Ingress's namespace whose keys and values are added to the auth subrequest",
              "static values only (a value with a variable fails the Ingress closed)"),
    supported("auth-realm", parse_auth_realm, "auth",
              "the realm of WWW-Authenticate: Basic realm=\"...\" in a 401 (default \"\"), with auth-type: basic",
              "printable ASCII, at most 256 characters"),
    supported("auth-request-redirect", parse_auth_request_redirect, "auth",
              "X-Auth-Request-Redirect of the auth subrequest (default: the request URI)", "no variables"),
    supported("auth-response-headers", parse_auth_response_headers, "auth",
              "fields copied from an allowing auth answer to the backend request",
              "the client's own fields of these names are always removed (ingress-nginx keeps them when the auth "
              "answer lacks them); framing fields are refused"),
    supported("auth-secret", parse_auth_secret, "auth",
              "the Secret with the users (htpasswd file in key `auth`, or auth-map); needs auth-type: basic. A "
              "missing Secret or key, or an unreadable line, fails the Ingress closed (503)",
              kSecretDifference),
    supported("auth-secret-type", parse_auth_secret_type, "auth",
              "auth-file (default: key `auth` is an htpasswd file) or auth-map (each key a user, its value the "
              "hash)"),
    supported("auth-signin", parse_auth_signin, "auth",
              "a 401 of the auth service becomes 302 to this URL with rd=<scheme>://<host><request URI>",
              "an absolute http(s) URL; variables $host, $scheme, $escaped_request_uri only; the whole rd value "
              "is percent-encoded"),
    supported("auth-signin-redirect-param", parse_auth_signin_redirect_param, "auth",
              "the query parameter of auth-signin that carries the original URL (default rd)"),
    refused("auth-snippet", {}, "snippet", kSnippet),
    no_effect("auth-tls-error-page", "client-certificates",
              "a client without a valid certificate is refused (400) either way; only the page differs"),
    refused("auth-tls-match-cn", {}, "client-certificates",
            "client-certificate CN matching is not implemented by phigate: the Ingress fails closed",
            kAuthPlanned),
    supported("auth-tls-pass-certificate-to-upstream",
              [](std::string_view v, Context& c) { return parse_bool(v, c.policy.auth_tls_pass_certificate); },
              "client-certificates", "\"true\": the client certificate goes to the backend in ssl-client-cert"),
    supported(
        "auth-tls-secret",
        [](std::string_view v, Context& c) { return parse_secret_ref(v, c.ns, c.policy.auth_tls_secret); },
        "client-certificates", "the CA (ca.crt of a Secret) client certificates are verified against",
        kSecretDifference),
    supported("auth-tls-verify-client", parse_verify_client, "client-certificates",
              "on, off, optional or optional_no_ca (default on with auth-tls-secret)"),
    supported("auth-tls-verify-depth",
              [](std::string_view v, Context& c) { return parse_depth(v, c.policy.auth_tls_verify_depth); },
              "client-certificates", "verification depth, 1 to 10"),
    supported("auth-type", parse_auth_type, "auth",
              "basic: requests need a user of auth-secret (bcrypt, $apr1$, {SHA}, crypt hashes; verified off the "
              "event loop, docs/auth-basic.md); others get 401; Authorization is not sent to the backend",
              "digest is refused (the Ingress fails closed); Authorization is removed before the backend unless "
              "phigate.io/auth-forward-authorization: \"true\"; plain-text htpasswd entries never match"),
    supported("auth-url", parse_auth_url, "auth",
              "every request is first sent, without its body, to this URL (2xx allowed, 401 sign in, 403 denied, "
              "anything else or no answer within limits.auth_timeout: 500); docs/auth-external.md",
              "must be a Service of the cluster, http(s)://<svc>.<ns>.svc[.cluster.local][:port]/path, of the "
              "Ingress's own namespace or ingress.auth_url_namespaces (an external URL, an IP or a variable "
              "fails the Ingress closed); https is verified against the Service name"),
    supported("backend-protocol", parse_backend_protocol, "backend", "HTTP, HTTPS, GRPC or GRPCS",
              "AJP, FCGI and AUTO_HTTP are invalid values (the Ingress fails closed)"),
    supported("canary", canary<parse_canary>, "canary",
              "true (as Go's ParseBool reads it): the Ingress serves no route of its own; each path is a "
              "canary of the main Ingress's path with the same host, path and type (docs/canary.md)",
              "split per route (host and path), not per Service; a main in another namespace is refused "
              "unless ingress.canary_cross_namespace is true; an invalid canary gets no traffic"),
    supported("canary-by-cookie", canary<parse_canary_cookie>, "canary",
              "cookie named so: \"always\" sends to the canary, \"never\" to the main, else the next rule"),
    supported("canary-by-header", canary<parse_canary_header>, "canary",
              "header named so: \"always\" sends to the canary, \"never\" to the main (unless -value or -pattern is set), else the next rule"),
    supported("canary-by-header-pattern", canary<parse_canary_header_pattern>, "canary",
              "the header value matching this regular expression (RE2, unanchored) sends to the canary", "RE2 instead of PCRE (no backreferences or lookaround)"),
    supported("canary-by-header-value", canary<parse_canary_header_value>, "canary",
              "the header with exactly this value sends to the canary"),
    supported("canary-weight", canary<parse_canary_weight>, "canary",
              "share of the remaining requests sent to the canary, out of canary-weight-total"),
    supported("canary-weight-total", canary<parse_canary_weight_total>, "canary",
              "the total canary-weight is out of (default 100)", "a total below 100 acts as 100, as in ingress-nginx (a warning says so)"),
    supported("client-body-buffer-size", parse_client_body_buffer_size, "buffering",
              "with proxy-request-buffering: \"on\", the largest request body held in memory (nginx size: "
              "8192, 16k, 1m); a larger one gets 413",
              "capped by limits.request_buffer_bytes (its default; a warning when capped), never spilled to "
              "disk; without proxy-request-buffering: \"on\" it has no effect (a warning says so)"),
    refused("configuration-snippet", {}, "snippet", kSnippet),
    supported("connection-proxy-header", parse_connection_proxy_header, "backend",
              "close: Connection: close to the backend, and that backend connection is not reused; "
              "keep-alive: no change (phigate keeps backend connections alive anyway)",
              "never applied to WebSocket upgrades, which keep Connection: upgrade (a warning says so); "
              "other values are an error"),
    supported("cors-allow-credentials", cors<parse_cors_allow_credentials>, "cors",
              "Access-Control-Allow-Credentials: true unless \"false\" (default true)", kCorsInvalid),
    supported("cors-allow-headers", cors<parse_cors_allow_headers>, "cors",
              "Access-Control-Allow-Headers (default DNT,Keep-Alive,User-Agent,X-Requested-With,"
              "If-Modified-Since,Cache-Control,Content-Type,Range,Authorization)",
              kCorsInvalid),
    supported("cors-allow-methods", cors<parse_cors_allow_methods>, "cors",
              "Access-Control-Allow-Methods (default GET, PUT, POST, DELETE, PATCH, OPTIONS)", kCorsInvalid),
    supported("cors-allow-origin", cors<parse_cors_allow_origin>, "cors",
              "origins answered with CORS fields: \"*\" (default), or a list of scheme://host[:port], "
              "scheme://*.domain[:port] and null; a listed Origin is sent back in "
              "Access-Control-Allow-Origin; with a list, every response carries Vary: Origin",
              "the Origin must equal an entry (scheme and host case-insensitively, the port exactly, * as "
              "exactly one label), where ingress-nginx also matched any Origin ending in an entry; an "
              "invalid entry fails the Ingress closed instead of being skipped"),
    supported("cors-expose-headers", cors<parse_cors_expose_headers>, "cors",
              "Access-Control-Expose-Headers (default none)", kCorsInvalid),
    supported("cors-max-age", cors<parse_cors_max_age>, "cors",
              "Access-Control-Max-Age in seconds (default 1728000)", kCorsInvalid),
    supported(
        "custom-headers",
        [](std::string_view v, Context& c) {
          return parse_config_map_ref(v, c.ns, c.policy.headers.custom_headers_ref);
        },
        "headers",
        "a ConfigMap (\"namespace/name\" or \"name\", the Ingress's own namespace) whose data are response "
        "fields set on the answers of the Ingress's paths, replacing the backend's of those names; each name "
        "must be listed in ingress.allowed_response_headers (empty by default); a missing ConfigMap, an "
        "unlisted or refused name or a bad value fails the Ingress closed",
        "names phigate owns are refused whatever the allowlist: Set-Cookie, Set-Cookie2, "
        "Strict-Transport-Security, Access-Control-*, Location, Refresh, Alt-Svc, Connection, Content-Length, "
        "Content-Encoding, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade; values are "
        "literal, visible ASCII, at most 4096 bytes, 64 fields at most; phigate's own answers (redirects, "
        "errors, preflights) do not get them"),
    supported("custom-http-errors", parse_custom_http_errors, "errors", kCustomErrors, kCustomErrorsDifference),
    supported("default-backend", parse_default_backend, "errors",
              "a Service of the Ingress's namespace (its first port): the error backend of custom-http-errors, "
              "and where a request goes, with X-Code: 503, when its path has no ready endpoint",
              "WebSocket over HTTP/2 (extended CONNECT) whose path has no ready endpoint gets 503; the error "
              "backend is plain HTTP, so it is not used (a warning) on an Ingress whose backend-protocol is HTTPS "
              "or GRPCS"),
    supported("denylist-source-range",
              [](std::string_view v, Context& c) { return parse_ranges(v, c.policy.deny_source_ranges); },
              "access", "client addresses refused (403)", kRangeDifference),
    code_only(supported("disable-proxy-intercept-errors", parse_disable_intercept_errors, "errors",
                        "\"true\": backend answers pass unchanged; phigate's own upstream errors (502, 503, 504) "
                        "with a listed code still get the error page")),
    no_effect("enable-access-log", "logging",
              "the audit log records every request; it cannot be turned off per Ingress"),
    supported("enable-cors", cors<parse_enable_cors>, "cors",
              "\"true\": an OPTIONS request from an allowed origin is answered 204 with the CORS fields "
              "(never reaching the backend); other requests from it get the CORS fields in the response; "
              "the backend's own Access-Control-* fields are always removed",
              "the preflight is answered after the source-range and client-certificate checks (a refused "
              "client gets 403, not 204); Vary: Origin whenever the origins are a list; the backend's "
              "Access-Control-* fields are removed even when phigate sends none (ingress-nginx passes them "
              "through); the fields are not added to phigate's own error replies"),
    supported(
        "enable-global-auth",
        [](std::string_view v, Context& c) { return parse_bool(v, c.policy.external_auth.global_enabled); }, "auth",
        "\"false\": the operator's ingress.global_auth does not apply to this Ingress (it does by default, "
        "unless the Ingress has its own auth-url)",
        "the global auth-url is phigate configuration (ingress.global_auth), not the controller ConfigMap"),
    refused("enable-modsecurity", "false", "waf", kNoWaf),
    no_effect("enable-opentelemetry", "logging", "phigate does not export traces"),
    refused("enable-owasp-core-rules", "false", "waf", kNoWaf),
    no_effect("enable-rewrite-log", "logging", "phigate has no rewrite log"),
    code_only(no_effect("fastcgi-index", "backend", "FCGI backends are refused, so it never applies")),
    code_only(no_effect("fastcgi-params-configmap", "backend", "FCGI backends are refused, so it never applies")),
    supported("force-ssl-redirect",
              [](std::string_view v, Context& c) { return parse_bool(v, c.policy.force_ssl_redirect); },
              "https", "\"true\": plain-HTTP requests are redirected to HTTPS (308) even without TLS hosts"),
    supported(
        "from-to-www-redirect",
        [](std::string_view v, Context& c) { return parse_bool(v, c.policy.redirect.from_to_www); }, "redirect",
        "\"true\": requests for the host's www/non-www partner name (www.a.example ↔ a.example) get 308 to "
        "https on the host, with the path and query; only while the partner has no routes of its own",
        "always to https, the port written only when not 443, the path kept as sent (ingress-nginx drops one "
        "trailing '/'); the partner name is answered with the default certificate unless a Secret lists it"),
    removed(refused("global-rate-limit", "0", "rate-limit", kRateLimit, kLimitsPlanned)),
    removed(refused("global-rate-limit-ignored-cidrs", "0", "rate-limit", kRateLimit, kLimitsPlanned)),
    removed(refused("global-rate-limit-key", "0", "rate-limit", kRateLimit, kLimitsPlanned)),
    removed(refused("global-rate-limit-window", "0", "rate-limit", kRateLimit, kLimitsPlanned)),
    own("health-check-healthy-threshold",
        [](std::string_view v, Context& c) {
          return parse_health_threshold(v, c.policy.health_check_healthy_threshold);
        },
        "health-check", "passed probes before an endpoint takes traffic again, 1 to 100"),
    own("health-check-interval",
        [](std::string_view v, Context& c) {
          return parse_health_duration(v, std::chrono::milliseconds(100), c.policy.health_check_interval);
        },
        "health-check", "active health checks of the backends, every 100ms to 1h"),
    own("health-check-path", parse_health_path, "health-check", "the path active health checks GET"),
    own("health-check-port", parse_health_port, "health-check", "the port active health checks probe"),
    own("health-check-timeout",
        [](std::string_view v, Context& c) {
          // At most 60 s: every probe holds a socket on the checker thread until its timeout, and an
          // Ingress author must not be able to park thousands of them for an hour.
          return parse_health_duration(v, std::chrono::milliseconds(10), c.policy.health_check_timeout,
                                       std::chrono::seconds(60));
        },
        "health-check", "timeout of one probe, 10ms to 60s"),
    own("health-check-unhealthy-threshold",
        [](std::string_view v, Context& c) {
          return parse_health_threshold(v, c.policy.health_check_unhealthy_threshold);
        },
        "health-check", "failed probes before an endpoint stops taking traffic, 1 to 100"),
    own("hsts", [](std::string_view v, Context& c) { return parse_bool(v, c.policy.hsts); }, "https",
        "\"false\": no Strict-Transport-Security on this Ingress's responses (default: tls.hsts)"),
    no_effect("http2-push-preload", "https", "phigate does not offer HTTP/2 server push"),
    code_only(supported("limit-allowlist", rate_limit<parse_limit_allowlist>, "rate-limit",
                        "client addresses (CIDRs) never limited by this Ingress's limit-rps, limit-rpm and "
                        "limit-connections (merged with limit-whitelist)",
                        kRangeDifference)),
    supported("limit-burst-multiplier", rate_limit<parse_limit_burst_multiplier>, "rate-limit",
              "burst = limit-rps (and limit-rpm) x this, default 5: that many requests over the rate are "
              "served at once (nginx limit_req burst with nodelay), the rest refused",
              kLimitInvalid),
    supported("limit-connections", rate_limit<parse_limit_connections>, "rate-limit",
              "concurrent requests per client address to the Ingress (each HTTP/2 stream counts, as nginx "
              "limit_conn); more are refused (503, or 429 under limits.rate_limit_status)",
              kLimitDifference),
    supported("limit-rate", rate_limit<parse_limit_rate>, "rate-limit",
              "KiB per second of response sent to the client, per request (nginx limit_rate Nk: two "
              "requests get twice); 0: no limit; unset: limits.response_rate",
              kBandwidthDifference),
    supported("limit-rate-after", rate_limit<parse_limit_rate_after>, "rate-limit",
              "KiB of each response sent at full speed before limit-rate applies (nginx limit_rate_after "
              "Nk); unset: limits.response_rate_after",
              kBandwidthDifference),
    supported("limit-rpm", rate_limit<parse_limit_rpm>, "rate-limit",
              "requests per minute per client address to the Ingress (nginx limit_req, burst "
              "limit-rpm x limit-burst-multiplier, nodelay); more are refused (503, or 429 with Retry-After "
              "under limits.rate_limit_status); with limit-rps both apply",
              kLimitDifference),
    supported("limit-rps", rate_limit<parse_limit_rps>, "rate-limit",
              "requests per second per client address to the Ingress (nginx limit_req, burst "
              "limit-rps x limit-burst-multiplier, nodelay); more are refused (503, or 429 with Retry-After "
              "under limits.rate_limit_status)",
              kLimitDifference),
    supported("limit-whitelist", rate_limit<parse_limit_allowlist>, "rate-limit",
              "old name of limit-allowlist (both lists merged)", kRangeDifference),
    supported("load-balance", parse_load_balance, "backend", "round_robin, least_request or ewma"),
    unsupported("mirror-host", "mirror", "requests are not mirrored"),
    unsupported("mirror-request-body", "mirror", "requests are not mirrored"),
    unsupported("mirror-target", "mirror", "requests are not mirrored"),
    refused("modsecurity-snippet", {}, "snippet", kSnippet),
    no_effect("modsecurity-transaction-id", "waf", "phigate has no web application firewall (ModSecurity)"),
    code_only(no_effect("opentelemetry-operation-name", "logging", "phigate does not export traces")),
    no_effect("opentelemetry-trust-incoming-span", "logging", "phigate does not export traces"),
    supported(
        "permanent-redirect",
        [](std::string_view v, Context& c) { return parse_redirect_url(v, c.policy.redirect.permanent_url); },
        "redirect", "every request of the Ingress's paths is answered with this URL (301 unless "
        "permanent-redirect-code), empty body", kRedirectDifference),
    supported(
        "permanent-redirect-code",
        [](std::string_view v, Context& c) { return parse_redirect_code(v, c.policy.redirect.permanent_code); },
        "redirect", "the status of permanent-redirect", kRedirectCodeDifference),
    supported("phi", [](std::string_view v, Context& c) { return parse_bool(v, c.policy.phi); }, "audit",
              "\"true\": requests carry protected health information (audit records say so)", {},
              AnnotationOrigin::Phigate),
    no_effect("preserve-trailing-slash", "https", "the HTTPS redirect always keeps the path as sent"),
    supported("proxy-body-size", parse_body_size, "buffering",
              "largest request body (0: unlimited); larger ones get 413"),
    no_effect("proxy-buffer-size", "buffering", "responses stream through fixed buffers"),
    no_effect("proxy-buffering", "buffering", "responses stream through fixed buffers (as with \"off\")"),
    no_effect("proxy-buffers-number", "buffering", "responses stream through fixed buffers"),
    no_effect("proxy-busy-buffers-size", "buffering", "responses stream through fixed buffers"),
    supported("proxy-connect-timeout",
              [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.connect_timeout); },
              "timeouts", "time to connect to a backend", kTimeoutDifference),
    supported("proxy-cookie-domain", headers<parse_proxy_cookie_domain>, "headers",
              "\"FROM TO\": a backend Set-Cookie Domain equal to FROM (any case, a leading dot ignored and "
              "kept) becomes TO; \"off\" (default): unchanged",
              "literal domains only (nginx's ~regex and $variables fail the Ingress closed)"),
    supported("proxy-cookie-path", headers<parse_proxy_cookie_path>, "headers",
              "\"FROM TO\": a backend Set-Cookie Path starting with FROM (case-sensitive) gets TO instead of "
              "that prefix; \"off\" (default): unchanged",
              "literal paths only (nginx's ~regex and $variables fail the Ingress closed)"),
    supported("proxy-http-version", parse_proxy_http_version, "backend",
              "\"1.1\": what phigate speaks to HTTP backends (no change); \"1.0\" is handled as an unsupported "
              "annotation (a warning, or the Ingress fails closed under ingress.unsupported_annotations: "
              "fail_closed); other values are an error"),
    no_effect("proxy-max-temp-file-size", "buffering", "responses stream through fixed buffers"),
    supported("proxy-next-upstream",
              [](std::string_view v, Context& c) {
                std::uint16_t bits = 0;
                auto why = config::parse_next_upstream(v, bits);
                if (why.empty()) c.policy.next_upstream = bits;
                return why;
              },
              "retries", "which failures are retried on another endpoint"),
    supported("proxy-next-upstream-timeout",
              [](std::string_view v, Context& c) {
                // ingress-nginx: seconds, "0" = no limit.
                if (v == "0") {
                  c.policy.next_upstream_timeout = config::Duration{0};
                  return std::string();
                }
                return parse_timeout(v, c.policy.next_upstream_timeout);
              },
              "retries", "time limit for retries (0: none)", kTimeoutDifference),
    supported("proxy-next-upstream-tries",
              [](std::string_view v, Context& c) {
                unsigned n = 0;
                if (!parse_digits(v, n) || n > 100)
                  return std::string("expected an integer from 0 (as many as endpoints) to 100");
                c.policy.next_upstream_tries = n;
                return std::string();
              },
              "retries", "attempts in all (0: as many as endpoints), at most 100"),
    supported("proxy-read-timeout",
              [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.read_timeout); },
              "timeouts", "time between two reads from a backend", kTimeoutDifference),
    supported("proxy-redirect-from", headers<parse_proxy_redirect_from>, "headers",
              "a backend Location (and Refresh after url=) starting with this prefix (case-sensitive) gets "
              "proxy-redirect-to instead of it; \"off\" (default) or \"default\": unchanged",
              "\"default\" is \"off\" (phigate has no proxy_pass URL to derive it from); without "
              "proxy-redirect-to the Ingress fails closed; literal prefixes only"),
    supported("proxy-redirect-to", headers<parse_proxy_redirect_to>, "headers",
              "what replaces the proxy-redirect-from prefix (no effect without it)"),
    supported("proxy-request-buffering", parse_proxy_request_buffering, "buffering",
              "\"on\": the whole request body is read into memory before the backend is connected and sent "
              "with Content-Length (chunked uploads too); a body over client-body-buffer-size gets 413, one "
              "over the worker's limits.request_buffer_worker_bytes 503; \"off\": streamed (no change)",
              "phigate streams unless \"on\" is given (ingress-nginx buffers by default); no disk spill; "
              "chunked trailers are dropped; gRPC backends are never buffered (a warning says so); the "
              "request is decided again, under the configuration current then, once its body is whole; as "
              "in nginx, a buffered idempotent request (PUT, DELETE) is resent to the next endpoint after "
              "an error or timeout (proxy-next-upstream), where a streamed one never is"),
    supported("proxy-send-timeout",
              [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.send_timeout); },
              "timeouts", "time between two writes to a backend", kTimeoutDifference),
    own("proxy-set-headers",
        [](std::string_view v, Context& c) {
          return parse_config_map_ref(v, c.ns, c.policy.headers.proxy_set_headers_ref);
        },
        "headers",
        "a ConfigMap (\"namespace/name\" or \"name\", the Ingress's own namespace) whose data are request "
        "fields sent to the backend, replacing the client's of those names (the per-Ingress, static "
        "equivalent of ingress-nginx's global proxy-set-headers); a missing ConfigMap, a `$` in a value "
        "(no nginx variables), a refused name (Host, framing and hop-by-hop fields, Forwarded, X-Forwarded-*, "
        "X-Real-IP, X-Request-Id, X-Original-*, X-Rewrite-URL, ssl-client-*, Authorization, "
        "Proxy-Authorization, Cookie) or a bad value fails the Ingress closed"),
    supported("proxy-ssl-ciphers", parse_proxy_ssl_ciphers, "backend-tls",
              "OpenSSL cipher list towards an HTTPS backend"),
    supported("proxy-ssl-name", parse_proxy_ssl_name, "backend-tls",
              "the name the backend certificate is verified against (and SNI)"),
    supported("proxy-ssl-protocols", parse_proxy_ssl_protocols, "backend-tls",
              "TLS versions towards an HTTPS backend", "TLSv1.2 and TLSv1.3 only"),
    supported(
        "proxy-ssl-secret",
        [](std::string_view v, Context& c) { return parse_secret_ref(v, c.ns, c.policy.proxy_ssl_secret); },
        "backend-tls", "client certificate and CA (a Secret) for HTTPS backends", kSecretDifference),
    supported("proxy-ssl-server-name",
              [](std::string_view v, Context& c) { return parse_on_off(v, c.policy.proxy_ssl_server_name); },
              "backend-tls", "\"on\": send SNI to an HTTPS backend"),
    supported("proxy-ssl-verify",
              [](std::string_view v, Context& c) { return parse_on_off(v, c.policy.proxy_ssl_verify); },
              "backend-tls", "\"on\": verify an HTTPS backend's certificate"),
    supported("proxy-ssl-verify-depth",
              [](std::string_view v, Context& c) { return parse_depth(v, c.policy.proxy_ssl_verify_depth); },
              "backend-tls", "verification depth of the backend certificate, 1 to 10"),
    code_only(no_effect("relative-redirects", "redirect", "only the form of a Location header")),
    supported(
        "rewrite-target", [](std::string_view v, Context& c) { return parse_rewrite_target(v, c.policy.regex); },
        "rewrite",
        "the path sent to the backend is this template with $1..$9 from the path's regex captures, plus the "
        "query; implies use-regex",
        "RE2 instead of PCRE; applied to the normalised path without ;params; a URL target is an error; an "
        "unsafe result (dot segments, encoded slash) gets 400; leading slashes collapse to one"),
    supported("satisfy", parse_satisfy, "auth",
              "any: a client in the path's allowlist (whitelist-/allowlist-source-range) is served without "
              "authentication (auth-type, auth-url), one outside it is not refused by the allowlist but must "
              "authenticate; all (default): every check must pass (docs/auth-basic.md)",
              "the denylist, global access lists, client certificates and other policies are never relaxed by "
              "any (nginx's deny would be); without an allowlist or authentication any is all; another value "
              "fails the Ingress closed (ingress-nginx ignores it)"),
    supported(
        "server-alias", [](std::string_view v, Context& c) { return parse_server_alias(v, c.policy.hosts); },
        "hosts",
        "more names for the Ingress's hosts: every path of the host, from every Ingress, is served under each "
        "with the host's policies (client certificates, source ranges) and its certificate; the first Ingress "
        "defining the host sets them",
        "DNS names and \"*.suffix\" only (nginx `~regex` names are an error); an alias that is a host of its own "
        "or another host's alias is dropped with a warning"),
    refused("server-snippet", {}, "snippet", kSnippet),
    supported(
        "service-upstream",
        [](std::string_view v, Context& c) { return parse_bool(v, c.policy.hosts.service_upstream); }, "hosts",
        "\"true\": the Service's cluster IP and port is the one backend (kube-proxy balances), not its endpoints",
        "a headless Service (no cluster IP), or a cluster IP that can never be a backend (link-local, metadata, "
        "multicast), falls back to the endpoints with a warning; affinity and retries across endpoints have no "
        "effect"),
    unsupported("session-cookie-change-on-failure", "affinity", "the cookie is kept when its endpoint fails"),
    unsupported("session-cookie-conditional-samesite-none", "affinity",
                "SameSite=None is sent to every client"),
    unsupported("session-cookie-domain", "affinity", "the affinity cookie has no Domain attribute"),
    supported("session-cookie-expires",
              [](std::string_view v, Context& c) {
                return parse_cookie_seconds(v, c.policy.session_cookie_expires);
              },
              "affinity", "the cookie's Expires, in seconds from now (1 s to 10 years)"),
    supported("session-cookie-max-age",
              [](std::string_view v, Context& c) {
                return parse_cookie_seconds(v, c.policy.session_cookie_max_age);
              },
              "affinity", "the cookie's Max-Age, in seconds (1 s to 10 years)"),
    supported("session-cookie-name", parse_cookie_name, "affinity", "the cookie's name (a token)"),
    supported("session-cookie-path", parse_cookie_path, "affinity",
              "the cookie's Path (default: the route's path; for a regex path, its literal prefix)"),
    supported("session-cookie-samesite", parse_cookie_samesite, "affinity", "Strict, Lax or None"),
    supported("session-cookie-secure",
              [](std::string_view v, Context& c) { return parse_bool(v, c.policy.session_cookie_secure); },
              "affinity", "\"true\": the cookie is Secure"),
    supported("ssl-ciphers",
              [](std::string_view v, Context& c) { return parse_cipher_list(v, c.policy.ssl_ciphers); },
              "https", "OpenSSL cipher list for the Ingress's TLS hosts"),
    supported("ssl-passthrough",
              [](std::string_view v, Context& c) { return parse_bool(v, c.policy.ssl_passthrough); },
              "passthrough",
              "\"true\": a TLS connection whose ClientHello names one of the Ingress's hosts is not "
              "decrypted: its bytes (the ClientHello included) are spliced to a ready endpoint of that host's "
              "`/` backend (else its first path's); every other name is terminated as usual. Needs "
              "listeners.tls_passthrough: true (else the Ingress fails closed)",
              "refused (the Ingress fails closed) while listeners.tls_passthrough is false, on a wildcard or "
              "missing host, with auth-tls-* or ssl-ciphers, on a host another Ingress (or the configuration "
              "file) also serves, and under a wildcard host with client-certificate or cipher settings; refused "
              "per connection while the audit log fails; tls.profile/min_version/ciphers do not apply (the "
              "client and the backend negotiate); the source ranges are enforced per connection (ingress-nginx "
              "drops them); the backend is the Service's endpoints, not its cluster IP; other annotations "
              "have no effect on passthrough connections (a warning)"),
    no_effect("ssl-prefer-server-ciphers", "https", "the server's cipher order is always preferred"),
    supported("ssl-redirect",
              [](std::string_view v, Context& c) { return parse_bool(v, c.policy.ssl_redirect); }, "https",
              "\"false\": plain HTTP is served instead of redirected to HTTPS"),
    refused("stream-snippet", {}, "snippet", kSnippet),
    supported(
        "temporal-redirect",
        [](std::string_view v, Context& c) { return parse_redirect_url(v, c.policy.redirect.temporal_url); },
        "redirect", "every request of the Ingress's paths is answered with this URL (302 unless "
        "temporal-redirect-code), empty body; wins over permanent-redirect", kRedirectDifference),
    supported(
        "temporal-redirect-code",
        [](std::string_view v, Context& c) { return parse_redirect_code(v, c.policy.redirect.temporal_code); },
        "redirect", "the status of temporal-redirect", kRedirectCodeDifference),
    supported("upstream-hash-by", parse_hash_by, "backend", "consistent hashing of requests to endpoints",
              "one variable from a closed list ($request_uri, $uri, $host, $remote_addr, "
              "$binary_remote_addr, $http_*, $cookie_*, $arg_*), no combinations"),
    unsupported("upstream-hash-by-subset", "backend", "hashing picks one endpoint, not a subset"),
    unsupported("upstream-hash-by-subset-size", "backend", "hashing picks one endpoint, not a subset"),
    supported(
        "upstream-vhost", [](std::string_view v, Context& c) { return parse_upstream_vhost(v, c.policy.hosts); },
        "hosts",
        "the Host (HTTP/2 and gRPC: :authority) sent to the backend; X-Forwarded-Host stays the client's. "
        "Without it the client's Host is sent unchanged (ingress-nginx's default; it has no preserve-host)",
        "host[:port] only: nginx `$variables` are an error"),
    code_only(no_effect("use-port-in-redirects", "redirect", "only the form of a Location header")),
    supported(
        "use-regex", [](std::string_view v, Context& c) { return parse_use_regex(v, c.policy.regex); }, "rewrite",
        "the Ingress's paths are regular expressions; the host's paths are then matched case-insensitively, "
        "anchored at the start, longest first",
        "RE2 (linear time: no backreferences or lookaround) instead of PCRE; other Ingresses' literal paths on "
        "the host stay literal and keep their bounds; not served on a host an older Ingress of another "
        "namespace serves (unless ingress.regex_cross_namespace)"),
    supported(
        "whitelist-source-range", [](std::string_view v, Context& c) { return parse_ranges(v, c.whitelist); },
        "access", "client addresses allowed (merged with allowlist-source-range); others get 403",
        kRangeDifference),
    supported(
        "x-forwarded-prefix",
        [](std::string_view v, Context& c) { return parse_x_forwarded_prefix(v, c.policy.regex); }, "rewrite",
        "with an active rewrite-target: X-Forwarded-Prefix set to this value ($1..$9 expanded), replacing any "
        "the client sent"),
});

constexpr bool sorted_and_unique() {
  for (std::size_t i = 1; i < kRegistry.size(); ++i) {
    if (!(kRegistry[i - 1].name < kRegistry[i].name)) return false;
  }
  return true;
}
static_assert(sorted_and_unique(), "kRegistry: rows must be sorted by name, each name once");

// Only supported rows have a parser: checked by a unit test (AnnotationRegistry.OnlySupportedRowsParse),
// since comparing a function's address with nullptr is no constant expression under the sanitizers.
constexpr bool rows_consistent() {
  for (const auto& r : kRegistry) {
    if (!r.off.empty() && r.support != Support::Refused) return false;  // only refused rows turn off
    if (!r.difference.empty() && r.support != Support::SupportedWithDifferences) return false;
    if (r.behaviour.empty() || r.group.empty()) return false;
  }
  return true;
}
static_assert(rows_consistent(), "kRegistry: a row's fields contradict its state");

void json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  out += '"';
}

/// Markdown table cells: '|' would end the cell.
std::string cell(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

std::span<const AnnotationInfo> annotation_registry() noexcept {
  return kRegistry;
}

const AnnotationInfo* find_annotation(std::string_view name) noexcept {
  const auto* it = std::lower_bound(kRegistry.begin(), kRegistry.end(), name,
                                    [](const AnnotationInfo& r, std::string_view n) { return r.name < n; });
  return it != kRegistry.end() && it->name == name ? &*it : nullptr;
}

std::string_view to_string(Support s) noexcept {
  switch (s) {
    case Support::Supported:
      return "supported";
    case Support::SupportedWithDifferences:
      return "supported, with differences";
    case Support::NoEffect:
      return "no effect";
    case Support::Refused:
      return "refused";
    case Support::Unsupported:
      return "unsupported";
  }
  return "unsupported";
}

std::string_view to_string(AnnotationOrigin o) noexcept {
  switch (o) {
    case AnnotationOrigin::IngressNginx:
      return "ingress-nginx";
    case AnnotationOrigin::IngressNginxCodeOnly:
      return "ingress-nginx (code only)";
    case AnnotationOrigin::IngressNginxRemoved:
      return "ingress-nginx (older releases)";
    case AnnotationOrigin::Phigate:
      return "phigate";
  }
  return "phigate";
}

std::string annotations_markdown() {
  std::string out =
      "<!-- Generated by `phigate annotations` from src/ingress/annotation_registry.cpp: do not edit.\n"
      "     Regenerate with scripts/gen-annotations.sh (the annotations_doc test fails when it is stale). "
      "-->\n"
      "# Ingress annotations\n\n"
      "Every ingress-nginx annotation name, and phigate's own, with what phigate does with it. This page\n"
      "is generated from the annotation registry (`src/ingress/annotation_registry.cpp`), the table the\n"
      "annotation parser itself reads, so it cannot drift from what phigate does.\n\n"
      "- **Prefixes**: `nginx.ingress.kubernetes.io/<name>` and `phigate.io/<name>`. When both are set, the\n"
      "  `phigate.io/` one wins, except that it cannot switch off what the nginx key asks for (a limit,\n"
      "  a WAF, `ssl-passthrough`, `canary`): the two must agree, or the Ingress fails closed. Keys under\n"
      "  other prefixes are ignored, unless they look like access control (`auth-tls-secret`,\n"
      "  `whitelist-source-range`, … under a misspelled prefix): those fail the Ingress closed.\n"
      "- **Fails closed** means the Ingress's hosts and paths stay claimed and answer 503; an error (a\n"
      "  log line, a Kubernetes Event, `phigate validate`, the admission webhook) names the annotation.\n"
      "- Any name containing `snippet` fails closed (raw configuration injection, CVE-2025-1974).\n"
      "- An unknown name under our prefixes is handled as **unsupported**, unless it looks like access\n"
      "  control (`auth*`, `satisfy`, `*source-range*`, `*allowlist*`, `*whitelist*`, `*denylist*`,\n"
      "  `*blacklist*`, in any case, `_` for `-`): then it fails closed, so a misspelled restriction is\n"
      "  never ignored.\n"
      "- **Order**: `app-root` redirects and CORS preflights are answered only after the source-range,\n"
      "  client-certificate and fail-closed checks, so a refused client gets its 403 or 503, never a\n"
      "  redirect target or a 204 (nginx answers them in its rewrite phase, before `allow`/`deny`).\n"
      "- `phigate validate` prints, per Ingress, every annotation that is not fully honoured (no effect,\n"
      "  unsupported, and supported ones with a difference, with that difference).\n\n"
      "States:\n\n"
      "| state | what phigate does |\n"
      "|---|---|\n"
      "| supported | applied, with ingress-nginx's semantics |\n"
      "| supported, with differences | applied; the difference column says how it differs (no warning; "
      "`phigate validate` lists it) |\n"
      "| no effect | accepted, nothing to do in phigate: a warning, never an error |\n"
      "| refused | the Ingress fails closed, unless its value is the one shown as `off` (that only warns) |\n"
      "| unsupported | ignored with a warning; an error (the Ingress fails closed) under "
      "`ingress.unsupported_annotations: fail_closed` |\n\n"
      "\"Not yet\" names the planned work that will change a row "
      "(docs/design/ingress-nginx-annotations-plan.md).\n";

  std::map<std::string_view, std::vector<const AnnotationInfo*>> groups;
  for (const auto& r : kRegistry) groups[r.group].push_back(&r);
  for (const auto& [group, rows] : groups) {
    out += "\n## " + std::string(group) + "\n\n";
    out += "| name | state | phigate | difference from ingress-nginx | not yet | origin |\n";
    out += "|---|---|---|---|---|---|\n";
    for (const auto* r : rows) {
      std::string state(to_string(r->support));
      if (!r->off.empty()) state += " (off: `\"" + std::string(r->off) + "\"`)";
      out += "| `" + std::string(r->name) + "` | " + state + " | " + cell(r->behaviour) + " | " +
             cell(r->difference) + " | " + cell(r->planned) + " | " + std::string(to_string(r->origin)) +
             " |\n";
    }
  }
  std::size_t counts[5] = {};
  for (const auto& r : kRegistry) ++counts[static_cast<std::size_t>(r.support)];
  out += "\n## Totals\n\n" + std::to_string(kRegistry.size()) + " names: ";
  for (std::size_t i = 0; i < 5; ++i) {
    out += std::to_string(counts[i]) + " " + std::string(to_string(static_cast<Support>(i)));
    out += i + 1 < 5 ? "; " : ".\n";
  }
  return out;
}

std::string annotations_json() {
  std::string out = "[\n";
  for (std::size_t i = 0; i < kRegistry.size(); ++i) {
    const auto& r = kRegistry[i];
    out += "  {\"name\": ";
    json_string(out, r.name);
    out += ", \"state\": ";
    json_string(out, to_string(r.support));
    out += ", \"off\": ";
    json_string(out, r.off);
    out += ", \"group\": ";
    json_string(out, r.group);
    out += ", \"behaviour\": ";
    json_string(out, r.behaviour);
    out += ", \"difference\": ";
    json_string(out, r.difference);
    out += ", \"origin\": ";
    json_string(out, to_string(r.origin));
    out += ", \"planned\": ";
    json_string(out, r.planned);
    out += i + 1 < kRegistry.size() ? "},\n" : "}\n";
  }
  out += "]\n";
  return out;
}

}  // namespace phigate::ingress
