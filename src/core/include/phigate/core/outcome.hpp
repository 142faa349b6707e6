#pragma once
// What became of one request, classified once. Every request ends in exactly one Outcome; the
// audit record (phigate.decision, phigate.rule, event.outcome), the outcome metric and the legacy
// named counters all read this one table, so that no call site infers a decision from a status
// code or spells a rule string by hand.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "phigate/core/error.hpp"

namespace phigate::core {

/// Who ended the request.
enum class Party : std::uint8_t { Client, Phigate, Upstream };
/// How it ended.
enum class How : std::uint8_t { Served, Redirected, Refused, Invalid, Timeout, Reset, Unavailable };

enum class Outcome : std::uint8_t {
  Proxied,                    // allowed by every phase; the upstream's response was relayed
  Redirected,                 // 308 to https
  AuditUnavailable,           // 503: the audit log cannot take records (HIPAA 164.312(b))
  HostHeader,                 // 400: missing or repeated Host (RFC 9112 §3.2), or none usable for a redirect
  HostSyntax,                 // 400: Host is not a plain host[:port]
  StrictHttp,                 // 400: absolute-form authority != Host, version, h2c, repeated Upgrade
  PathNormalisation,          // 400: target refused by http::normalize_target
  Misdirected,                // 421: Host has another TLS policy than the SNI (RFC 9110 §15.5.20)
  ClientCertificate,          // 400: required client certificate missing or invalid
  ClientCertificateNeedsTls,  // 403: a host with client certificates asked over plain HTTP
  NoRoute,                    // 404
  AccessGlobal,               // 403: the global allow/deny lists
  AccessSourceRange,          // 403: the route's source-range annotations
  FailClosed,                 // 503: an invalid Ingress claims the path
  BodyTooLarge,               // 413
  ClientBadRequest,           // 400/414/431: malformed request (parser)
  ClientTimeout,              // the client was too slow (head or body)
  ClientClosed,               // the client went away mid-request
  UpstreamConnectRefused,     // 502
  UpstreamConnectTimeout,     // 504
  UpstreamTimeout,            // 504
  UpstreamReset,              // 502
  UpstreamBadResponse,        // 502
  UpstreamTls,                // 502: TLS to the backend failed (event.reason says which check)
  NoHealthyEndpoint,          // 503
  Internal,                   // a bug or resource failure on our side (also: nothing decided)
  Overloaded,                 // 503: a per-worker cap was reached
  AppRootRedirect,            // 302: app-root, for "/"
  RewriteRefused,             // 400: rewrite-target produced an unsafe path
  AnnotationRedirect,         // 301/302/303/307/308: permanent-redirect or temporal-redirect
  WwwRedirect,                // 308: from-to-www-redirect, a partner name to its host
  CorsPreflight,              // 204: enable-cors, an OPTIONS request from an allowed origin
  RateLimited,                // 503 (or 429): limit-rps / limit-rpm, per client address
  ConnectionLimited,          // 503 (or 429): limit-connections, concurrent requests per client address
  AuthRequired,  // 401: auth-type: basic, no usable Basic credentials (none, another scheme, malformed)
  AuthFailed,    // 401: auth-type: basic, an unknown user or a wrong password
  AuthExternalUnauthorized,  // 401: auth-url answered 401 (no auth-signin)
  AuthExternalSignin,        // 302: auth-url answered 401, sent to auth-signin
  AuthExternalForbidden,     // 403: auth-url answered 403
  AuthExternalError,         // 500: auth-url unreachable, too slow, or answered anything else (fail closed)
  kCount
};

inline constexpr std::size_t kOutcomeCount = static_cast<std::size_t>(Outcome::kCount);

/// Static facts about one outcome.
struct OutcomeInfo {
  std::string_view name;      // snake_case: metric label
  std::string_view decision;  // audit phigate.decision: allowed | denied | redirected | error
  std::string_view rule;      // audit phigate.rule: what decided (docs/audit-schema.md)
  Party ended_by;
  How how;
  bool success;  // audit event.outcome: success | failure
};

/// The one outcome table. Thread-safe (constant data).
const OutcomeInfo& outcome_info(Outcome o) noexcept;

/// The outcome of a request that ended with `e` (an error raised by I/O, the parser or the
/// upstream layer), from its kind and source — never from a status code or a string.
Outcome outcome_of(const Error& e) noexcept;

}  // namespace phigate::core
