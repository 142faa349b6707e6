#pragma once
// Private to proxy: the facts a connection gathers about one request or one failed connection,
// and their rendering as one audit record (ECS field names; schema in docs/audit-schema.md).
// Worker thread only; the JsonLine is the worker's.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "phigate/audit/json_line.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/core/outcome.hpp"
#include "phigate/http/message.hpp"
#include "phigate/tls/host_policy.hpp"

namespace phigate::proxy::detail {

inline constexpr std::string_view kAuditSchema = "phigate.audit/1";

/// Who and how: constant for a connection (client may change per request behind proxies).
struct ConnectionFacts {
  std::string_view source_ip;  // socket peer
  std::uint16_t source_port = 0;
  std::string_view client_ip;    // after PROXY protocol / trusted X-Forwarded-For
  std::string_view tls_version;  // "1.3", "" for plain HTTP
  std::string_view tls_cipher;
  std::string_view server_name;                  // SNI
  const tls::ClientCertificate* cert = nullptr;  // null: none presented or not asked
  unsigned worker = 0;
  std::uint64_t connection = 0;
};

/// One failed attempt of a request that was then sent again (or given up on).
struct FailedAttempt {
  std::string_view endpoint;  // "ip:port", into the pinned snapshot
  std::string_view reason;    // core::Error::reason(), or "http_status" for a dropped answer
  int status = 0;             // the dropped answer's status (proxy_next_upstream http_<status>)
};

/// What became of one request. Views must outlive render_request (they point into the
/// connection and its pinned snapshot).
struct RequestFacts {
  std::chrono::system_clock::time_point start{};
  std::chrono::steady_clock::duration total{};
  std::chrono::steady_clock::duration upstream_connect{-1};     // -1: not measured
  std::chrono::steady_clock::duration upstream_first_byte{-1};  // -1: not measured
  int status = 0;                                               // 0: no response was sent
  std::uint64_t request_bytes = 0;
  std::uint64_t response_bytes = 0;
  core::Outcome outcome = core::Outcome::Internal;  // decision, rule, event.outcome (core::outcome_info)
  std::string_view reason;                          // error reason (core::Error::reason()), "" on success
  std::string_view host;                            // normalised, no port
  std::string_view target;                          // normalised origin-form target (path and query)
  std::string_view route;                           // "host path" of the route, "" when none matched
  std::string_view ingress;                         // "ns/name" or ""
  std::string_view canary;                          // the canary Ingress "ns/name" that served it, or ""
  std::string_view upstream;                        // endpoint "ip:port" or ""
  unsigned upstream_attempts = 0;                   // times the request was sent upstream (2: retried once)
  std::span<const FailedAttempt> failed_attempts;   // in order; the last one may be the final failure
  std::string_view request_id;
  /// After a 101 (tunnel.cpp): the protocol, bytes each way after the 101 head, how long the
  /// splice lasted and what ended it. Empty protocol: no tunnel (nothing rendered).
  std::string_view tunnel_protocol;
  std::uint64_t tunnel_to_upstream = 0;
  std::uint64_t tunnel_to_client = 0;
  std::chrono::steady_clock::duration tunnel_duration{};
  std::string_view tunnel_closed_by;  // metrics::WorkerShard::kTunnelCloseNames
  /// HTTP/2: the client stream that carried the request (http.version "2"); 0 for HTTP/1.x.
  std::int32_t h2_stream = 0;
  /// gRPC: the grpc-status the client received (from the backend's trailers or phigate's own
  /// trailers-only reply); -1 when none.
  int grpc_status = -1;
  /// rewrite-target changed the target sent upstream (`target` stays the client's).
  bool rewritten = false;
  /// satisfy: any: the client's address was in the path's allowlist, so no authentication was asked
  /// (phigate.satisfied_by: "allowlist").
  bool satisfied_by_allowlist = false;
  /// custom-http-errors / default-backend: the status the error backend was asked a page for (the
  /// backend's or phigate's own; 503 when the path had no ready endpoint), 0 when none.
  int error_page = 0;
  /// auth-type: basic: the user name the client sent (user.name), "" when none; never the password.
  std::string_view user_name{};
  /// auth-url: the e-mail the auth service's allowing answer named (user.email), "" when none.
  std::string_view user_email{};
};

/// Renders a request record into `j` (cleared first) and returns the line.
std::string_view render_request(audit::JsonLine& j, const ConnectionFacts& c, const RequestFacts& r,
                                const http::MessageHead* head, const config::AuditSpec& spec);

/// Renders the start of a tunnel (a 101 was relayed, or an RFC 8441 stream answered 200):
/// event.action "tunnel-start". The request's own record, written when the tunnel ends, carries
/// the status (101; 200 over HTTP/2), duration and bytes. `h2_stream`: the HTTP/2 stream (0: none).
std::string_view render_tunnel_start(audit::JsonLine& j, const ConnectionFacts& c,
                                     std::chrono::system_clock::time_point when, std::string_view request_id,
                                     std::string_view protocol, std::string_view route,
                                     std::string_view upstream, std::int32_t h2_stream = 0);

/// A TLS passthrough connection (ssl-passthrough): the bytes were never decrypted, so the record
/// has no request; `end` false is the start of the splice ("passthrough-start"), true its end or
/// its refusal ("passthrough").
struct PassthroughFacts {
  std::string_view server_name;           // the ClientHello's, normalised
  std::string_view ingress;               // "namespace/name"
  std::string_view upstream;              // endpoint "ip:port", "" when none was reached
  std::string_view decision = "allowed";  // allowed | denied | error
  std::string_view reason;                // "" when spliced
  bool end = false;
  std::uint64_t to_upstream = 0;  // bytes, the ClientHello included
  std::uint64_t to_client = 0;
  std::chrono::steady_clock::duration duration{};
  std::string_view closed_by;  // metrics::WorkerShard::kTunnelCloseNames
};
std::string_view render_passthrough(audit::JsonLine& j, const ConnectionFacts& c,
                                    std::chrono::system_clock::time_point when, const PassthroughFacts& p);

/// Renders a connection-level event (TLS handshake failure, PROXY header refused, shed).
std::string_view render_connection_event(audit::JsonLine& j, const ConnectionFacts& c,
                                         std::chrono::system_clock::time_point when, std::string_view action,
                                         std::string_view decision, std::string_view rule,
                                         std::string_view reason, std::string_view detail);

}  // namespace phigate::proxy::detail
