#pragma once
// Plain configuration structs: what the operator asked for, validated but not compiled.
// Built on the control thread by the loaders; compiled into a snapshot by server.
// Defaults here are the documented defaults (config/README.md).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "phigate/config/policy_auth.hpp"
#include "phigate/config/policy_canary.hpp"
#include "phigate/config/policy_cors.hpp"
#include "phigate/config/policy_headers.hpp"
#include "phigate/config/policy_ratelimit.hpp"
#include "phigate/config/policy_redirect.hpp"
#include "phigate/config/policy_regex.hpp"

namespace phigate::config {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

/// Where a value came from, for error messages later in the pipeline.
struct SourceRef {
  std::string file;
  int line = 0;
};

struct CertificateSpec {
  std::string cert;  // absolute path (resolved against the config file's folder)
  std::string key;
  std::string cert_pem;  // in-memory PEM (from a Kubernetes Secret); used instead of the files when set
  std::string key_pem;
  std::vector<std::string>
      hosts;             // SNI names served with it besides the certificate's own (spec.tls[].hosts)
  std::string resource;  // "Secret ns/name" when it came from Kubernetes
  SourceRef where;
};

inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kDefaultCipherSuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* kDefaultGroups = "X25519:P-256:P-384";

/// Strict-Transport-Security on HTTPS responses (RFC 6797).
struct HstsSpec {
  bool enabled = true;
  std::uint64_t max_age = 31536000;  // seconds (one year)
  bool include_subdomains = true;
  bool preload = false;
  std::vector<std::string> disabled_hosts;  // hosts (lower-case, "*.x" wildcards) served without it
};

struct TlsSpec {
  /// default: TLS 1.2+1.3, ECDHE+AEAD (AES-GCM, CHACHA20-POLY1305), X25519/P-256/P-384.
  /// nist-800-52r2: what NIST SP 800-52 Rev. 2 approves (AES-GCM only, P-256/P-384).
  /// modern: TLS 1.3 only. Explicit min_version/ciphers/ciphersuites/groups override the profile.
  std::string profile = "default";
  /// Lets min_version go below TLS 1.2 and ciphers admit non-AEAD or non-forward-secret suites
  /// (`phigate check` flags it). Off: such settings are load errors.
  bool allow_insecure_tls = false;
  std::string min_version = "TLSv1.2";    // TLSv1.2 | TLSv1.3 (TLSv1 | TLSv1.1 with allow_insecure_tls)
  std::string ciphers = kDefaultCiphers;  // TLS 1.2 (OpenSSL cipher list)
  std::string ciphersuites = kDefaultCipherSuites;  // TLS 1.3
  std::string groups = kDefaultGroups;
  bool session_tickets = true;
  Duration ticket_key_rotation = 1h;
  std::optional<CertificateSpec> default_certificate;
  std::vector<CertificateSpec> certificates;
  HstsSpec hsts;
};

struct ListenersSpec {
  std::vector<std::string> https;  // "ip:port" or "[v6]:port"; port 0 lets the kernel choose
  std::vector<std::string> http;   // plain HTTP: redirects only, never proxies
  std::string admin = "127.0.0.1:9901";
  int https_redirect_port = 0;  // port put in redirects; 0: the first https listener's port
  /// Every connection starts with a PROXY protocol v1 or v2 header (from a load balancer), which
  /// names the client; one without a valid header is closed.
  bool proxy_protocol = false;
  /// Ingresses with `ssl-passthrough: "true"` are served: a TLS connection whose ClientHello names
  /// one of their hosts is spliced, undecrypted, to that host's backend (ingress-nginx's
  /// --enable-ssl-passthrough). Off: such an Ingress fails closed.
  bool tls_passthrough = false;
};

struct TimeoutsSpec {
  Duration tls_handshake = 10s;
  Duration request_header = 10s;  // from the first byte of a request to the end of its head
  Duration keepalive_idle = 60s;  // between requests on a client connection
  Duration body_idle = 60s;       // between two reads of a request body
  Duration upstream_connect = 5s;
  Duration upstream_read = 60s;  // between two reads from the upstream (nginx proxy_read_timeout)
  Duration upstream_send = 60s;
  Duration drain = 30s;  // SIGTERM: how long in-flight requests may take
};

struct LimitsSpec {
  std::size_t max_connections_per_worker = 10000;
  std::size_t request_line_bytes = 8192;
  std::size_t request_header_bytes = 32768;  // all header fields together
  std::size_t header_count = 100;
  std::uint64_t request_body_bytes = 0;  // 0: unlimited
  /// Slow uploads: a body must arrive within timeouts.body_idle plus one second per this many
  /// bytes (Apache mod_reqtimeout's MinRate). 0: only body_idle between reads applies.
  std::uint64_t min_body_rate = 500;
  /// proxy-request-buffering: "on": the most body one request may hold in memory (the cap on
  /// client-body-buffer-size; a larger body → 413).
  std::uint64_t request_buffer_bytes = 1ULL << 20;
  /// Buffered request bodies held at once by one worker; a request that would go over → 503 (shed).
  std::uint64_t request_buffer_worker_bytes = 64ULL << 20;
  /// limit-rps / limit-rpm / limit-connections refusals: 503 (ingress-nginx's limit-req-status-code
  /// default) or 429 with Retry-After. docs/rate-limits.md.
  int rate_limit_status = 503;
  /// Client addresses the process-wide rate-limit table holds, all Ingresses together; the least
  /// recently seen is evicted beyond it (memory stays bounded under a flood of addresses).
  std::size_t rate_limit_keys = 100000;
  /// Response bandwidth per request for routes without limit-rate (ingress-nginx's ConfigMap
  /// limit-rate): bytes per second sent to the client, 0: none; the first response_rate_after bytes
  /// go at full speed. docs/rate-limits.md.
  std::uint64_t response_rate = 0;
  std::uint64_t response_rate_after = 0;
  /// auth-url: the whole external-authentication subrequest (connect, send, answer) must end within
  /// this, else the request is refused (500, fail closed). docs/auth-external.md.
  Duration auth_timeout = std::chrono::seconds(5);
};

/// nginx's proxy_next_upstream conditions (the same bits as upstream::NextUpstream).
inline constexpr std::uint16_t kNextUpstreamError = 1 << 0;
inline constexpr std::uint16_t kNextUpstreamTimeout = 1 << 1;
inline constexpr std::uint16_t kNextUpstreamHttp500 = 1 << 2;
inline constexpr std::uint16_t kNextUpstreamHttp502 = 1 << 3;
inline constexpr std::uint16_t kNextUpstreamHttp503 = 1 << 4;
inline constexpr std::uint16_t kNextUpstreamHttp504 = 1 << 5;
inline constexpr std::uint16_t kNextUpstreamHttp403 = 1 << 6;
inline constexpr std::uint16_t kNextUpstreamHttp404 = 1 << 7;
inline constexpr std::uint16_t kNextUpstreamHttp429 = 1 << 8;
inline constexpr std::uint16_t kNextUpstreamDefault = kNextUpstreamError | kNextUpstreamTimeout;
enum class LoadBalance;  // below, with RoutePolicy

/// `http2:` HTTP/2 to clients (ALPN h2 over TLS; never cleartext h2c) and its protections against
/// the HTTP/2 attacks. Budgets are token buckets per connection: `*_budget` tokens at most, refilled
/// at `*_refill` per second; a frame that finds the bucket empty ends the connection with GOAWAY
/// (ENHANCE_YOUR_CALM).
struct Http2Spec {
  bool enabled = true;                      // ALPN offers h2, preferred over http/1.1
  std::vector<std::string> disabled_hosts;  // SNI names (lower-case, "*.x" wildcards) offered http/1.1 only
  std::uint32_t max_concurrent_streams = 100;  // SETTINGS_MAX_CONCURRENT_STREAMS
  std::size_t max_header_list_bytes = 32768;   // decoded fields of one header block (name+value+32 each)
  std::uint32_t header_table_bytes = 4096;     // HPACK dynamic table we let the client use
  std::size_t max_continuation_frames = 8;     // CONTINUATION frames in one header block (CVE-2024-27316)
  std::uint32_t initial_window_bytes = 65535;  // per-stream receive window: request body buffered per stream
  std::uint32_t connection_window_bytes = 1048576;  // connection receive window
  std::uint32_t max_frame_bytes = 16384;            // SETTINGS_MAX_FRAME_SIZE we accept
  std::uint32_t reset_budget = 100;     // streams the client resets or that fail (CVE-2023-44487 rapid reset)
  std::uint32_t reset_refill = 10;      // per second
  std::uint32_t control_budget = 1000;  // SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty DATA frames
  std::uint32_t control_refill = 100;   // per second
  std::size_t connection_memory_bytes = 8u << 20;  // nghttp2's allocations plus the connection's buffers
  /// RFC 8441 WebSocket over HTTP/2 (extended CONNECT, SETTINGS_ENABLE_CONNECT_PROTOCOL): offered
  /// when true, `max_websockets_per_connection` is not 0 and `upstream.upgrades` lists websocket.
  bool websocket = true;
  /// Extended-CONNECT tunnels open at once on one client connection (each holds a backend
  /// connection for as long as it lives); streams over it are answered 429. 0: not offered.
  std::uint32_t max_websockets_per_connection = 32;
};

struct UpstreamSpec {
  std::size_t keepalive_connections = 64;  // idle connections kept per endpoint per worker
  Duration keepalive_timeout = 60s;        // an idle pooled connection is closed after this
  std::size_t keepalive_requests = 10000;  // requests on one upstream connection before closing it

  // --- balancing (global default) ---
  /// upstream.balance.load_balance: what a route without a load-balance annotation uses
  /// (0: RoundRobin; the enum is defined further down).
  LoadBalance load_balance{};

  // --- health checks (global defaults, passive checks) ---
  /// Active checks (`upstream.health.active`): off unless configured here or by an Ingress's
  /// phigate.io/health-check-* annotations.
  struct ActiveHealthSpec {
    bool enabled = false;
    std::string path;  // HTTP GET of this path; empty: TCP connect only
    std::string host;  // Host header of the probe; empty: the endpoint's address
    int port = 0;      // 0: the endpoint's port
    Duration interval = 10s;
    Duration timeout = 2s;
    unsigned healthy_threshold = 2;
    unsigned unhealthy_threshold = 3;
    int status_min = 200, status_max = 399;  // expected_status "200-399"
  };
  /// Passive checks (`upstream.health.passive`): outlier ejection.
  struct PassiveHealthSpec {
    bool enabled = true;
    unsigned consecutive_failures = 5;
    Duration base_ejection = 30s;
    Duration max_ejection = 300s;
    unsigned max_ejected_percent = 50;
  };
  ActiveHealthSpec health_active;
  PassiveHealthSpec health_passive;
  bool health_initial_healthy = true;  // upstream.health.initial: healthy | unhealthy

  // --- retries (global defaults, retry budget) ---
  std::uint16_t next_upstream = kNextUpstreamDefault;  // proxy-next-upstream bits (kNextUpstream*)
  unsigned next_upstream_tries = 3;                    // attempts in all; 0: as many as endpoints
  Duration next_upstream_timeout{0};                   // 0: no limit
  unsigned retry_budget_percent = 20;        // retries may add this share to the requests of a worker
  unsigned retry_budget_min_per_second = 3;  // ... plus this many per second per worker

  // --- TLS to backends (require encryption) ---
  /// upstream.tls.require: which paths must reach their backends over verified TLS. A path that
  /// would not fails closed (503) with an error naming its Ingress and field.
  enum class RequireTls { None, Phi, All };
  RequireTls require_tls = RequireTls::None;  // phi: paths marked phigate.io/phi / phi: true

  // --- upgrades ---
  /// Upgrade protocols (RFC 9110 §7.8) tunnelled after a 101, compared without case; any other
  /// upgrade request is refused (400). `h2c` is never accepted (HTTP/2 is not tunnelled).
  std::vector<std::string> upgrades{"websocket"};
};

enum class PathType { Exact, Prefix, ImplementationSpecific };

enum class VerifyClient { Off, On, Optional, OptionalNoCa };
/// backend-protocol: HTTP/1.1 (Http), HTTP/1.1 over verified TLS (Https), HTTP/2 with prior
/// knowledge for gRPC (Grpc), HTTP/2 over verified TLS with ALPN h2 (Grpcs).
enum class BackendProtocol { Http, Https, Grpc, Grpcs };
enum class LoadBalance { RoundRobin, LeastRequest, Ewma };

/// Per-path behaviour set by Ingress annotations (ingress-nginx names, `nginx.ingress.kubernetes.io/`
/// or `phigate.io/` prefix). Every value is parsed strictly into a typed field; nothing is ever
/// pasted into text that is interpreted later. Defaults are what no annotation means.
struct RoutePolicy {
  std::string resource;     // "Ingress ns/name"; empty for static routes
  std::string fail_closed;  // non-empty: the Ingress is invalid, answer 503; says why (no PHI)
  bool tls_host = false;    // the host is listed in the Ingress's spec.tls
  bool ssl_redirect = true;
  bool force_ssl_redirect = false;
  std::vector<std::string> allow_source_ranges;  // CIDRs (whitelist-/allowlist-source-range)
  std::vector<std::string> deny_source_ranges;   // CIDRs (denylist-source-range)
  VerifyClient verify_client = VerifyClient::Off;
  std::string auth_tls_secret;   // "ns/name"
  std::string auth_tls_ca_pem;   // ca.crt of that secret
  std::string auth_tls_crl_pem;  // ca.crl of that secret, if any
  int auth_tls_verify_depth = 1;
  bool auth_tls_pass_certificate = false;
  std::string ssl_ciphers;  // TLS <= 1.2 cipher list for the host (ssl-ciphers); empty: global
  bool hsts = true;         // phigate.io/hsts: "false" turns Strict-Transport-Security off for the paths
  BackendProtocol backend_protocol = BackendProtocol::Http;
  std::string proxy_ssl_secret;  // "ns/name"
  std::string proxy_ssl_cert_pem, proxy_ssl_key_pem, proxy_ssl_ca_pem;
  bool proxy_ssl_verify = true;  // phigate verifies by default (ingress-nginx does not)
  int proxy_ssl_verify_depth = 1;
  std::string proxy_ssl_name;
  bool proxy_ssl_server_name = false;
  std::string proxy_ssl_protocols;  // e.g. "TLSv1.2 TLSv1.3"
  std::string proxy_ssl_ciphers;
  bool phi = false;                        // phigate.io/phi: the paths carry PHI (upstream.tls.require: phi)
  std::optional<std::uint64_t> body_size;  // proxy-body-size; 0 = unlimited
  std::optional<Duration> connect_timeout;
  std::optional<Duration> send_timeout;
  std::optional<Duration> read_timeout;
  LoadBalance load_balance = LoadBalance::RoundRobin;
  std::string upstream_hash_by;  // one validated variable, e.g. "$remote_addr"; empty: off

  // --- balancing and affinity (affinity, session-cookie-*) ---
  bool load_balance_set = false;             // a load-balance annotation was given (else the global default)
  bool affinity_cookie = false;              // affinity: cookie
  bool affinity_persistent = false;          // affinity-mode: persistent (default balanced)
  std::string session_cookie_name;           // validated RFC 6265 token; empty: INGRESSCOOKIE
  std::string session_cookie_path;           // validated; empty: the path of the rule
  std::uint64_t session_cookie_max_age = 0;  // seconds; 0: no Max-Age
  std::uint64_t session_cookie_expires = 0;  // seconds from the response; 0: no Expires
  bool session_cookie_secure = false;
  std::string session_cookie_samesite;  // "", "Strict", "Lax" or "None"

  // --- health checks (phigate.io/health-check-*) ---
  std::optional<std::string> health_check_path;  // "/..." (turns active checks on)
  std::optional<Duration> health_check_interval, health_check_timeout;
  std::optional<unsigned> health_check_healthy_threshold, health_check_unhealthy_threshold;
  std::optional<int> health_check_port;

  // --- retries (proxy-next-upstream*) ---
  std::optional<std::uint16_t> next_upstream;  // kNextUpstream* bits; 0: off
  std::optional<unsigned> next_upstream_tries;
  std::optional<Duration> next_upstream_timeout;

  // --- upstream flows (connection-proxy-header, custom-http-errors, default-backend) ---
  bool connection_close = false;  // connection-proxy-header: close (never on upgrades)
  /// proxy-request-buffering: "on" (explicit only; phigate streams by default): the whole body is
  /// read into memory before the upstream is connected and sent with Content-Length.
  bool request_buffering = false;
  /// client-body-buffer-size: the bound for request_buffering (capped by limits.request_buffer_bytes;
  /// unset: that limit).
  std::optional<std::uint64_t> body_buffer_bytes;
  /// custom-http-errors: sorted, distinct, each 400 to 599; empty: no error pages.
  std::vector<std::uint16_t> custom_http_errors;
  bool intercept_errors = true;  // false: disable-proxy-intercept-errors (only phigate's own errors)
  std::string default_backend;   // default-backend: a Service of the Ingress's namespace; "": none

  // --- TLS passthrough (ssl-passthrough; compile step: listeners.tls_passthrough) ---
  bool ssl_passthrough = false;

  // --- upgrades (WebSocket) ---

  RegexPolicy regex;             // use-regex, rewrite-target, app-root, x-forwarded-prefix
  CanaryPolicy canary{};         // canary-* (policy_canary.hpp)
  RedirectPolicy redirect{};     // permanent/temporal redirects, from-to-www-redirect (policy_redirect.hpp)
  HostsPolicy hosts{};           // upstream-vhost, server-alias, service-upstream (policy_redirect.hpp)
  CorsPolicy cors{};             // enable-cors, cors-* (policy_cors.hpp)
  HeaderPolicy headers{};        // proxy-redirect-*, proxy-cookie-* (policy_headers.hpp)
  RateLimitPolicy rate_limit{};  // limit-rps, limit-rpm, limit-connections, ... (policy_ratelimit.hpp)
  BasicAuthPolicy basic_auth{};  // auth-type: basic, auth-secret, auth-realm (policy_auth.hpp)
  ExternalAuthPolicy external_auth{};  // auth-url, auth-signin, auth-response-headers, ... (policy_auth.hpp)
  Satisfy satisfy = Satisfy::All;      // satisfy: any | all (policy_auth.hpp)
};
using RoutePolicyPtr = std::shared_ptr<const RoutePolicy>;

struct PathSpec {
  std::string path;
  PathType type = PathType::Prefix;
  std::vector<std::string> backends;  // "host:port"
  RoutePolicyPtr policy;              // null: defaults (static routes)
  SourceRef where;
  /// EndpointSlice endpoints that are terminating but still serving: kept so requests in flight
  /// to them finish, but they get no new requests (sorted, distinct, none also in `backends`).
  std::vector<std::string> terminating_backends{};
  std::string service_host{};  // Ingress: "<service>.<namespace>.svc", the default proxy-ssl-name
  /// The canary attached to this path (translate: same host, path text and type): its backends,
  /// with the main's policy plus the canary's balancing and `canary` rules. Null: none.
  std::shared_ptr<const PathSpec> canary{};
  /// The error backend (default-backend annotation): where custom-http-errors fetch their page and
  /// where requests go when this path has no ready endpoint. Null: none.
  std::shared_ptr<const PathSpec> error_backend{};
  /// The external-authentication Service (auth-url): the subrequest's cluster. Null: none.
  std::shared_ptr<const PathSpec> auth_backend{};
  std::string service_name{};  // Ingress: the path's Service and port (X-Service-Name/-Port)
  std::string service_port{};
};

struct RouteSpec {
  std::string host;  // "" or "*": any host (the default)
  std::vector<PathSpec> paths;
  SourceRef where;
};

/// What the audit log keeps of a query string (PHI often hides there).
enum class AuditQuery { Redact, Keep, Hash, Drop };

/// The encrypted, tamper-evident audit log (`audit:`). Off when `dir` is empty.
struct AuditSpec {
  std::string dir;          // absolute; segments are written here (0700)
  std::string keys;         // absolute; folder of <id>.key files (32 random bytes, base64)
  std::string active_key;   // id of the key new segments use
  std::string archive_dir;  // absolute or empty: sealed segments are moved here
  std::uint64_t segment_max_bytes = 64ull << 20;
  Duration segment_max_age = 1h;
  Duration flush_interval = 100ms;         // fsync at least this often
  std::size_t batch_records = 512;         // ... or after this many records
  std::uint64_t queue_bytes = 4ull << 20;  // per worker
  bool block_on_overflow = false;          // overflow: fail_closed (503) | block (the worker waits)
  AuditQuery query = AuditQuery::Redact;
  std::vector<std::string> headers;  // request header names (lower-case) whose values are recorded
  SourceRef where;
};

/// `check:`: the HIPAA rule engine (`phigate check`, and every snapshot build; docs/check.md).
struct CheckSpec {
  bool enforce = false;        // an Ingress with an enforceable error finding fails closed
  bool phi_hosts_all = false;  // phi_hosts: all (every host carries PHI) | annotated (phigate.io/phi)
  int min_cert_days = 21;      // a certificate expiring sooner is a finding
  int audit_key_max_age_days = 365;
  std::string system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";  // public web CAs (PA002)
  std::size_t public_ca_count = 20;  // a client CA bundle with more CAs looks like a web bundle
};

enum class IngressSource { None, Directory, Kubernetes };

/// `ingress.kubernetes`: how phigate reaches and follows the API server (source: kubernetes).
struct KubernetesSpec {
  std::string kubeconfig;               // absolute; empty: in-cluster credentials (service account)
  std::string context;                  // kubeconfig context; empty: its current-context
  std::vector<std::string> namespaces;  // empty: all namespaces (`namespaces: all`)
  /// Secrets: only those Ingresses reference (each followed by name), or, when set, those
  /// carrying this label selector (one list/watch per namespace scope). Never every Secret.
  std::string secrets_label_selector;
  std::int64_t page_size = 500;      // LIST `limit`
  Duration watch_timeout = 290s;     // `timeoutSeconds` asked of each WATCH (renewed before the server's end)
  Duration backoff_initial = 500ms;  // reconnect back-off, doubled per failure with jitter ...
  Duration backoff_max = 30s;        // ... up to this
  Duration request_timeout = 30s;    // LIST, GET and writes
  // Status (`ingress.status`): status.loadBalancer.ingress of the Ingresses phigate serves.
  bool status = false;
  std::string publish_service;  // "ns/name": copy that Service's load-balancer addresses
  std::string publish_address;  // or a fixed IP address or host name (comma-separated list allowed)
  // Leader election (`ingress.leader_election`): only the Lease holder writes status and Events.
  bool leader_election = true;
  std::string lease_name = "phigate-leader";
  std::string lease_namespace;  // empty: $POD_NAMESPACE, else the service account's namespace, else "default"
  std::string identity;         // empty: $POD_NAME, else the host name, plus the process id
  Duration lease_duration = 15s;
  Duration renew_deadline = 10s;
  Duration retry_period = 2s;
  bool events = true;  // Kubernetes Events on Ingresses that fail closed
  /// In-cluster credentials' folder (token, ca.crt, namespace); tests point it at their own.
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

/// `ingress.webhook`: the validating admission webhook (AdmissionReview v1, POST /validate).
struct WebhookSpec {
  std::string listen;  // "host:port"; empty: off
  std::string cert;    // absolute paths (PEM)
  std::string key;
};

/// Where Kubernetes resources come from (the `ingress:` key).
/// `ingress.unsupported_annotations`: what an Ingress annotation phigate does not support (and
/// whose absence does not change who can reach what) is. NoEffect ones always only warn.
enum class UnsupportedAnnotations : std::uint8_t {
  Warn,        // a warning; the Ingress is served without it (default)
  FailClosed,  // an error: the Ingress fails closed (503), the message names the annotation
};

struct IngressSpec {
  IngressSource source = IngressSource::None;  // `source:`, default `directory` when `dir` is set
  std::string dir;                             // absolute; empty: no Ingress folder
  std::string class_name = "phigate";
  std::string controller = "phigate.io/ingress-controller";
  bool watch = true;          // inotify + periodic rescan
  Duration debounce = 200ms;  // changes closer than this are loaded together
  Duration rescan = 60s;      // fallback full rescan period
  KubernetesSpec kubernetes{};
  WebhookSpec webhook{};
  UnsupportedAnnotations unsupported_annotations = UnsupportedAnnotations::Warn;
  /// A canary Ingress may attach to a main Ingress in another namespace (ingress-nginx does);
  /// off by default: a namespace could otherwise take another's traffic.
  bool canary_cross_namespace = false;
  /// An Ingress with regex paths (use-regex, rewrite-target) may serve a host whose paths an older
  /// Ingress of another namespace already serves; off by default: in a regex host every path is
  /// matched longest pattern first, so a regex could take the other namespace's requests.
  bool regex_cross_namespace = false;
  /// Response header names (lower-cased) that custom-headers ConfigMaps may set (ingress-nginx's
  /// global-allowed-response-headers); empty by default: custom-headers then sets nothing and an
  /// Ingress naming a header not listed fails closed.
  std::vector<std::string> allowed_response_headers{};
  /// auth-url may name a Service of these namespaces besides the Ingress's own (a shared
  /// oauth2-proxy). Empty: only the Ingress's own namespace. docs/auth-external.md.
  std::vector<std::string> auth_url_namespaces{};
  /// ingress.global_auth: external authentication for every Ingress without its own auth-url,
  /// unless it says enable-global-auth: "false" (ingress-nginx's global-auth-* ConfigMap keys).
  /// Values as the annotations (checked by translate); url "": none. docs/auth-external.md.
  struct GlobalAuth {
    std::string url, signin, signin_redirect_param, response_headers, method, request_redirect;
    bool always_set_cookie = false;
    SourceRef where{};
  };
  GlobalAuth global_auth{};
};

struct Config {
  std::string file;  // the config file, as given
  std::string dir;   // its folder (relative paths resolve against it)
  ListenersSpec listeners;
  unsigned workers = 0;  // 0 in the file means: number of hardware threads (resolved at load)
  TlsSpec tls;
  TimeoutsSpec timeouts;
  LimitsSpec limits;
  UpstreamSpec upstream;
  Http2Spec http2;
  std::vector<std::string> trusted_proxies;      // CIDRs
  std::vector<std::string> allow_source_ranges;  // `access.allow`: only these clients (empty: all)
  std::vector<std::string> deny_source_ranges;   // `access.deny`: never these clients
  std::string log_level = "info";
  std::vector<RouteSpec> routes;
  IngressSpec ingress;
  AuditSpec audit;
  CheckSpec check;
  /// Line of every key the loader visited, by dotted field as Diagnostics names it
  /// ("tls.hsts.max_age", "trusted_proxies[1]"); `phigate check` places findings with it.
  std::shared_ptr<const std::map<std::string, int>> key_lines{};
  /// Catch-all backends for requests no route matches (Ingress spec.defaultBackend). Empty: 404.
  std::optional<PathSpec> default_backend;
};

}  // namespace phigate::config
