#pragma once
// Errors on the hot path: a kind, a source, whether a retry is safe, and a short context.
// One table (kind_info) maps each kind to its HTTP status and its audit/metric reason, so that
// call sites never pick a status themselves.
#include <cstdint>
#include <string>
#include <string_view>

namespace phigate::core {

enum class ErrorKind : std::uint8_t {
  BadRequest,           // malformed HTTP from the client
  UriTooLong,           // request line over the limit
  HeaderTooLarge,       // a header, all headers or the header count over the limit
  BodyTooLarge,         // body over the limit
  NoRoute,              // no host/path matched
  Denied,               // access policy
  ClientCertificate,    // the host requires a valid client certificate and got none or a bad one
  Misdirected,          // Host names a host with another TLS policy than the connection's SNI
  AuditUnavailable,     // the audit log cannot take records (disk failing, queue full): fail closed
  ClientClosed,         // the client went away mid-request
  ClientTimeout,        // the client was too slow (handshake, head, body)
  TlsHandshake,         // the TLS handshake failed
  ConnectRefused,       // upstream refused or unreachable
  ConnectTimeout,       // upstream connect deadline
  UpstreamReset,        // upstream closed or reset before a complete response
  UpstreamTimeout,      // upstream read/write deadline
  UpstreamBadResponse,  // upstream sent malformed HTTP
  UpstreamTls,          // TLS to the backend failed (verification, handshake, a TLS alert)
  NoHealthyEndpoint,    // the cluster has no endpoint to try
  Overloaded,           // a per-worker cap was reached
  Unavailable,          // the route exists but is configured to fail closed
  LimitExceeded,        // limit-rps/-rpm/-connections (limits.rate_limit_status 503, the default)
  TooManyRequests,      // the same under limits.rate_limit_status: 429 (with Retry-After)
  Internal,             // a bug or resource failure on our side
  Config,               // configuration problem (control plane only)
  Unauthorized,         // 401: the route asks for credentials (auth-type: basic) and got none that match
};

enum class ErrorSource : std::uint8_t { Downstream, Upstream, Internal, Config };
enum class Retryable : std::uint8_t { No, Yes, OnlyIfReused };

/// Static facts about one error kind. `status` is 0 when no response can be sent.
struct KindInfo {
  int status;
  std::string_view reason;  // stable snake_case name: audit event.reason and metric label
};

/// The single kind → status/reason table. Thread-safe (constant data).
const KindInfo& kind_info(ErrorKind kind) noexcept;

struct Error {
  ErrorKind kind = ErrorKind::Internal;
  ErrorSource source = ErrorSource::Internal;
  Retryable retryable = Retryable::No;
  std::string context;  // short, never PHI (no header values, bodies, query strings)
  /// A static snake_case refinement of the kind's reason (which check failed, e.g.
  /// "upstream_tls_name_mismatch"), bounded like the table's; empty: the kind's reason.
  std::string_view reason_detail{};

  int status() const noexcept { return kind_info(kind).status; }
  std::string_view reason() const noexcept {
    return reason_detail.empty() ? kind_info(kind).reason : reason_detail;
  }
  std::string to_string() const;

  static Error downstream(ErrorKind k, std::string ctx = {}) {
    return {k, ErrorSource::Downstream, Retryable::No, std::move(ctx)};
  }
  static Error upstream(ErrorKind k, Retryable r, std::string ctx = {}) {
    return {k, ErrorSource::Upstream, r, std::move(ctx)};
  }
  static Error internal(std::string ctx) {
    return {ErrorKind::Internal, ErrorSource::Internal, Retryable::No, std::move(ctx)};
  }
};

}  // namespace phigate::core
