#pragma once
// Per-worker metric shards. Each counter has exactly one writer (its worker thread), which
// updates it with a plain relaxed load+store (no locked RMW, no shared cache line between
// workers). The admin scrape reads all shards and merges them into prometheus-cpp families.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "phigate/core/outcome.hpp"

namespace phigate::metrics {

/// A single-writer counter: inc() only from the owning thread; get() from any thread.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// A single-writer gauge.
class Gauge {
 public:
  void add(std::int64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::int64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

struct alignas(64) WorkerShard {
  Counter connections_accepted;
  Counter connections_shed;
  Gauge connections_open;
  Counter tls_handshake_failures;
  Counter tls_resumed;
  Counter client_cert_refusals;   // 400: required client certificate missing or invalid
  Counter misdirected;            // 421: Host's TLS policy differs from the SNI's
  Counter proxy_protocol_errors;  // connections closed for a missing or malformed PROXY header
  Counter audit_records;          // records handed to the audit writer
  Counter audit_rejected;         // records the writer refused (queue full, disk failing)
  Counter audit_fail_closed;      // requests answered 503 because the audit log could not take records
  std::array<Counter, 6> responses_by_class;  // index: status / 100 (0 for "no response")
  Counter redirects;
  Counter upstream_connects;
  Counter upstream_reuses;
  Counter upstream_connect_failures;
  Counter upstream_timeouts;
  Counter upstream_retries;
  Counter upstream_unsolicited;  // upstream connections closed for bytes nobody asked for

  // --- health (passive checks, no healthy endpoint) ---
  Counter upstream_ejections;  // endpoints this worker's reports ejected (passive checks)

  // --- balancing and affinity ---

  // --- retries ---
  Counter upstream_retry_budget_exhausted;  // a retry everything else allowed, refused by the budget

  // --- TLS to backends ---
  Counter backend_tls_handshakes;           // TLS handshakes started with backends
  Counter backend_tls_resumed;              // ... that resumed a cached session
  Counter backend_tls_failures;             // ... that failed (the request's outcome says why)
  Counter backend_tls_unverified_requests;  // requests sent over TLS whose certificate was not verified

  // --- upgrades (WebSocket tunnels) ---
  /// Why a tunnel ended: phigate_tunnels_closed_total{reason} (kTunnelCloseNames, same order).
  enum class TunnelClose : std::uint8_t { Client, Upstream, ClientError, UpstreamError, Idle, Drain, Count };
  static constexpr const char* kTunnelCloseNames[] = {"client",         "upstream", "client_error",
                                                      "upstream_error", "idle",     "drain"};
  Counter tunnels_opened;  // 101 relayed, splice started
  Gauge tunnels_open;      // splicing now
  // --- request buffering (proxy-request-buffering: "on") ---
  Gauge request_buffer_bytes;   // request body bytes held in memory now (limits.request_buffer_worker_bytes)
  Counter request_buffer_shed;  // buffered requests shed with 503: the worker's budget was spent
  Counter tunnel_bytes_to_upstream;  // after the 101, client -> upstream
  Counter tunnel_bytes_to_client;    // after the 101, upstream -> client
  std::array<Counter, static_cast<std::size_t>(TunnelClose::Count)> tunnels_closed;

  // --- TLS passthrough (ssl-passthrough: spliced undecrypted) ---
  /// How a passthrough connection went: phigate_passthrough_connections_total{result}
  /// (kPassthroughResultNames, same order). One per connection whose ClientHello named a
  /// passthrough host.
  enum class PassthroughResult : std::uint8_t {
    Spliced,
    Denied,
    NoEndpoint,
    ConnectFailed,
    AuditUnavailable,
    Count
  };
  static constexpr const char* kPassthroughResultNames[] = {"spliced", "denied", "no_endpoint",
                                                            "connect_failed", "audit_unavailable"};
  std::array<Counter, static_cast<std::size_t>(PassthroughResult::Count)> passthrough;
  Counter passthrough_bytes_to_upstream;
  Counter passthrough_bytes_to_client;

  // --- basic authentication (auth-type: basic) ---
  /// Verifications of Basic credentials: phigate_auth_basic_checks_total{result} (kAuthBasicNames,
  /// same order); `failed` is also phigate_auth_basic_failures_total. Requests without usable
  /// credentials are phigate_request_outcomes_total{outcome="auth_required"}.
  enum class AuthBasic : std::uint8_t { Verified, Cached, Failed, Overloaded, Count };
  static constexpr const char* kAuthBasicNames[] = {"verified", "cached", "failed", "overloaded"};
  std::array<Counter, static_cast<std::size_t>(AuthBasic::Count)> auth_basic;

  // --- external authentication (auth-url) ---
  /// Auth subrequests by verdict: phigate_auth_external_checks_total{result} (kAuthExternalNames,
  /// same order). `error`: no endpoint, connect failure, timeout, a malformed, oversized or
  /// unexpected answer (the request got 500). `cached`: answered from the auth-cache-key cache (its
  /// verdict is counted too).
  enum class AuthExternal : std::uint8_t { Allowed, Unauthorized, Forbidden, Error, Cached, Count };
  static constexpr const char* kAuthExternalNames[] = {"allowed", "unauthorized", "forbidden", "error",
                                                       "cached"};
  std::array<Counter, static_cast<std::size_t>(AuthExternal::Count)> auth_external;

  // --- HTTP/2 (clients) and gRPC (HTTP/2 to backends) ---
  /// Requests by client protocol: phigate_requests_total{protocol="http/1.1"|"h2"} (HTTP/1.0 counts
  /// as http/1.1). Incremented once per request whose head completed.
  Counter requests_http1;
  Counter requests_h2;
  Counter h2_connections;  // client connections that negotiated h2
  Gauge h2_streams_open;   // client streams open now
  /// Why phigate ended an HTTP/2 connection with a GOAWAY other than NO_ERROR:
  /// phigate_h2_connection_errors_total{reason} (kH2ErrorNames, same order).
  enum class H2Error : std::uint8_t { Protocol, RapidReset, ControlFlood, ContinuationFlood, Memory, Count };
  static constexpr const char* kH2ErrorNames[] = {"protocol_error", "rapid_reset", "control_flood",
                                                  "continuation_flood", "memory"};
  std::array<Counter, static_cast<std::size_t>(H2Error::Count)> h2_connection_errors;
  Counter h2_streams_rejected;     // streams refused by the codec (malformed, too large headers)
  Counter grpc_upstream_connects;  // HTTP/2 connections opened to gRPC backends
  Counter grpc_upstream_streams;   // streams opened on them

  /// Requests by how they ended (core::outcome_info): phigate_request_outcomes_total.
  std::array<Counter, core::kOutcomeCount> outcomes;

  void count_outcome(core::Outcome o) noexcept {
    const auto i = static_cast<std::size_t>(o);
    outcomes[i < outcomes.size() ? i : static_cast<std::size_t>(core::Outcome::Internal)].inc();
  }

  void count_response(int status) noexcept {
    const int cls = status / 100;
    responses_by_class[(cls >= 1 && cls <= 5) ? cls : 0].inc();
  }
};

/// Process-wide values the control thread owns.
struct ControlStats {
  std::atomic<std::uint64_t> reload_ok{0};
  std::atomic<std::uint64_t> reload_error{0};
  std::atomic<std::uint64_t> snapshot_generation{0};
  std::atomic<std::int64_t> draining{0};
  std::atomic<std::int64_t> resource_errors{0};  // in the snapshot being served
  std::atomic<std::int64_t> build_ms{0};         // time to build that snapshot
  std::atomic<std::int64_t> ingresses_used{0};
  std::atomic<std::int64_t> ingresses_failed_closed{0};
  // Audit writer, refreshed by the control thread every second.
  std::atomic<std::int64_t> audit_enabled{0};
  std::atomic<std::int64_t> audit_healthy{0};
  std::atomic<std::uint64_t> audit_records_written{0};  // durable (fsynced)
  std::atomic<std::uint64_t> audit_bytes_written{0};
  std::atomic<std::uint64_t> audit_segments_sealed{0};
  std::atomic<std::uint64_t> audit_write_errors{0};
  std::atomic<std::uint64_t> audit_chain_tamper_events{0};  // found by the writer at start
  // TLS to backends: paths of the snapshot served whose backend certificate is not verified.
  std::atomic<std::int64_t> backend_tls_unverified_routes{0};

  // --- active health checks (checker thread) ---
  std::atomic<std::uint64_t> health_probes{0};              // probes run
  std::atomic<std::uint64_t> health_probe_failures{0};      // probes that failed (connect, timeout, status)
  std::atomic<std::int64_t> health_endpoints_healthy{0};    // actively checked endpoints passing
  std::atomic<std::int64_t> health_endpoints_unhealthy{0};  // ... and failing

  // --- TLS contexts (control thread): builds, not reuses (an endpoint change must not build) ---
  std::atomic<std::uint64_t> tls_context_builds{0};

  // --- check engine (control thread, per published snapshot): findings in the configuration served ---
  struct CheckCount {
    std::string rule, severity, safeguard;  // "TX005", "error", "164.312(e)(1)"
    std::int64_t n = 0;
  };
  void set_check(std::vector<CheckCount> counts, std::int64_t enforced) {
    const std::lock_guard lock(check_mu_);
    check_counts_ = std::move(counts);
    check_enforced_ = enforced;
  }
  std::vector<CheckCount> check_counts(std::int64_t& enforced) const {
    const std::lock_guard lock(check_mu_);
    enforced = check_enforced_;
    return check_counts_;
  }

  // --- rate-limit table (proxy::RateLimiter::evictions_total, copied every second) ---
  std::atomic<std::uint64_t> rate_limit_evictions{0};

  // --- Kubernetes source (control thread, copied from kube::Provider/StatusWriter stats) ---
  std::atomic<std::int64_t> kube_enabled{0};  // ingress.source is kubernetes: the series below mean something
  std::atomic<std::int64_t> kube_synced{0};   // 1 once every reflector completed its first LIST
  std::atomic<std::uint64_t> kube_lists{0};
  std::atomic<std::uint64_t> kube_relists_gone{0};  // LISTs again after 410 Gone
  std::atomic<std::uint64_t> kube_watches{0};
  std::atomic<std::uint64_t> kube_events{0};  // watch events applied (BOOKMARKs not included)
  std::atomic<std::uint64_t> kube_failures{0};
  std::atomic<std::int64_t> kube_reflectors{0};
  std::atomic<std::int64_t> kube_secrets_followed{0};
  std::atomic<std::int64_t> kube_leading{0};  // 1 while this process holds the Lease
  std::atomic<std::uint64_t> kube_status_updates{0};
  std::atomic<std::uint64_t> kube_status_failures{0};
  std::atomic<std::uint64_t> kube_events_written{0};  // Kubernetes Events created
  std::atomic<std::uint64_t> kube_event_failures{0};

 private:
  mutable std::mutex check_mu_;
  std::vector<CheckCount> check_counts_;
  std::int64_t check_enforced_ = 0;
};

/// Prometheus text exposition of all shards merged, plus control stats. Admin (control) thread.
std::string render(std::span<const WorkerShard* const> shards, const ControlStats& control);

}  // namespace phigate::metrics
