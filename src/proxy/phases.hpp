#pragma once
// Private to proxy: the checks every request passes between its complete head and the upstream,
// as an ordered list of phases (ARCHITECTURE.md "Life of a request", step 5). Each phase is a
// pure function of the request, the pinned snapshot and what the connection knows: no I/O, no
// clock, no metrics, no logs. The connection (HTTP/1 now, HTTP/2 later) runs the list, writes the
// reply a Decision names and counts its outcome (count_outcome).
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/core/outcome.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/proxy/snapshot.hpp"
#include "phigate/tls/host_policy.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// What the phases may know about the connection (filled by the connection before the phases run).
struct ConnectionView {
  bool tls = false;
  std::string_view peer_ip;  // socket peer or PROXY-protocol source
  const std::optional<access::Address>* peer_addr = nullptr;
  bool peer_trusted = false;                            // peer is in snapshot.trusted_proxies
  const tls::HostPolicy* conn_policy = nullptr;         // negotiated at handshake (TLS only)
  const tls::ClientCertificate* client_cert = nullptr;  // described when conn_policy requires/asks one
  bool audit_on = false, audit_healthy = true;
  std::uint16_t https_port = 443;  // redirect target when the snapshot names none
  std::uint32_t random = 0;  // drawn by the connection from the worker's RNG per request (canary weight)
  std::chrono::steady_clock::time_point now{};  // read by the connection per request (rate limits)
  /// The request's second decision, once its buffered body is whole (proxy-request-buffering): its
  /// rate was charged by the first one, and is not charged again.
  bool again = false;
  /// With `again`: the user table that verified the request's Basic credentials the first time, and
  /// the user (the field itself is not forwarded, so it may be gone). The same table verifies it
  /// again without the field; any other table (the Secret changed meanwhile) needs the field.
  const void* auth_verified = nullptr;
  std::string_view auth_verified_user;
  /// With `again`: the first decision's auth-url answer. Under the same policy it stands (the
  /// buffered request is not sent to the auth service twice); otherwise the request is asked again.
  const ExternalAuthResult* auth_external_prev = nullptr;
};

/// How a request ends before reaching the upstream.
struct Decision {
  core::Outcome outcome;
  core::Error error;        // status and reason come from error.kind (core::kind_info); context never PHI
  bool must_close = false;  // close after the reply even if the codec would keep the connection
  int status = 0;           // a redirect's status (3xx, Location in Request::location); 0: the error's
};

using PhaseResult = std::optional<Decision>;  // nullopt: continue with the next phase
using PhaseFn = PhaseResult (*)(Request&, const Snapshot&, const ConnectionView&);
struct PhaseEntry {
  std::string_view name;
  PhaseFn run;
};

/// The order is data: the same list for HTTP/1 and, later, HTTP/2.
std::span<const PhaseEntry> request_phases() noexcept;

/// Runs the phases in order; the first Decision ends the request (outcome Proxied is never
/// returned: nullopt means proxy it).
PhaseResult run_phases(Request& r, const Snapshot& s, const ConnectionView& c);

/// The status a Decision is answered with: its own `status` when set (a redirect: no ErrorKind
/// carries one, it is not an error, and its Location is in Request::location), else the error's.
int decision_status(const Decision& d) noexcept;

/// Whether the Decision is a redirect (a 3xx with Request::location), answered with
/// redirect_body() rather than as an error.
bool is_redirect(const Decision& d) noexcept;
/// The body of a redirect reply: "302 Found\n", "308 Permanent Redirect\n", ...
std::string redirect_body(int status);
/// The body of the reply to a redirect Decision: redirect_body(status), or empty for the
/// annotation redirects (as nginx's `return`).
std::string redirect_body(const Decision& d);

/// "<scheme>://<Host as sent><path>" for a local redirect that keeps the client's Host (app-root,
/// a relative permanent/temporal-redirect), or "" when the Host is not a plain hostname/IP[:port]
/// (the host phase refused those already; checked again because the value goes into a header).
std::string same_host_location(bool tls, std::string_view host, std::string_view path);

/// "https://host[:port]target" for a Host value and a request target, or "" when the Host is
/// not a plain hostname/IP (which would let a client inject into the Location header).
std::string https_location(std::string_view host, std::string_view target, std::uint16_t https_port);

/// Counts one ended request: phigate_request_outcomes_total{outcome,decision}, and the legacy
/// named counter of the outcomes that have one (misdirected, client certificate refusals, audit
/// fail-closed, redirects). Worker thread (the shard's one writer).
void count_outcome(metrics::WorkerShard& stats, core::Outcome o) noexcept;

/// Whether `origin` (one Origin field's value) gets CORS fields under `p`: "*" admits any; else it
/// must equal a listed origin (scheme and host case-insensitively, the port exactly, a wildcard as
/// exactly one DNS label), or be "null" when null is listed. phases_cors.cpp.
bool cors_origin_allowed(const config::CorsPolicy& p, std::string_view origin);
/// Whether the Decision is a CORS preflight: 204 with RequestRare::response_fields, no body.
inline bool is_preflight(const Decision& d) noexcept {
  return d.outcome == core::Outcome::CorsPreflight;
}
/// The phases, each callable alone (tests; a codec that needs one of them early). Names as in
/// request_phases().
namespace phase {
PhaseResult client_address(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult audit_healthy(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult host(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult target(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult tls_policy(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult route(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult plain_redirect(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult client_cert_needs_tls(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult no_route(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult access(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult fail_closed(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult limits(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult body_size(Request& r, const Snapshot& s, const ConnectionView& c);
// phases_rewrite.cpp
PhaseResult app_root(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult rewrite(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult canary(Request& r, const Snapshot& s, const ConnectionView& c);  // phases_canary.cpp
// phases_ratelimit.cpp: limit-rps, limit-rpm, limit-connections (docs/rate-limits.md)
PhaseResult rate_limit(Request& r, const Snapshot& s, const ConnectionView& c);
// phases_redirect.cpp
PhaseResult www_redirect(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult annotation_redirect(Request& r, const Snapshot& s, const ConnectionView& c);
PhaseResult cors(Request& r, const Snapshot& s, const ConnectionView& c);              // phases_cors.cpp
PhaseResult response_headers(Request& r, const Snapshot& s, const ConnectionView& c);  // phases_cors.cpp
}  // namespace phase

}  // namespace phigate::proxy::detail
