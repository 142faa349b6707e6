#pragma once
// Private to proxy: one request, from its complete head to its end, as the phases see it. Sans-I/O
// (no Asio here): the phases and their unit tests include this without the connection.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/access/cidr.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/http/message.hpp"
#include "phigate/http/response_edits.hpp"
#include "phigate/proxy/rate_limiter.hpp"
#include "phigate/router/route_table.hpp"

namespace phigate::proxy::detail {

/// Per-request limits after the route's policy has overridden the global ones.
struct RequestLimits {
  std::chrono::milliseconds connect{};
  std::chrono::milliseconds send{};
  std::chrono::milliseconds read{};
  std::uint64_t body_bytes = 0;  // 0: unlimited
  /// proxy-request-buffering: "on": the body is read whole into memory before the upstream is
  /// connected, at most buffer_bytes (min(client-body-buffer-size, limits.request_buffer_bytes)).
  bool buffer_body = false;
  std::uint64_t buffer_bytes = 0;
  /// limit-rate / limit-rate-after (else limits.response_rate / _after): response bytes per
  /// second to the client, 0: not paced; and the bytes first sent at full speed (pacer.hpp).
  std::uint64_t response_rate = 0;
  std::uint64_t response_rate_after = 0;
};

/// auth-url: what an allowing auth answer left for the rest of the request (auth_external.hpp).
struct ExternalAuthResult {
  const void* by = nullptr;  // the policy whose auth service allowed the request; null: none did
  std::string user;          // X-Auth-Request-User / X-Forwarded-User of the answer (audit user.name)
  std::string email;         // X-Auth-Request-Email / X-Forwarded-Email (audit user.email)
  std::string set_cookie;    // "Set-Cookie: ...\r\n" lines of the answer, for the client's response
};

/// What a minority of requests carry (a redirect, a rewrite, CORS fields, a refusal's fields, Basic
/// credentials, auth-url's answer): out of line, so that a plain proxied request neither writes
/// nor destroys these ~400 bytes of empty strings, cold again by its end when many streams are in
/// flight (docs/perf-h2-many-streams.md, round 10).
struct RequestRare {
  RequestRare() = default;
  ~RequestRare();  // wipes auth_password, whether or not verify_basic_auth ran (basic_auth.cpp)
  RequestRare(const RequestRare&) = delete;
  RequestRare& operator=(const RequestRare&) = delete;
  std::string location;  // Redirected: where to
  // The rewrite phase (rewrite-target): the target sent upstream ("" when not rewritten: `target`)
  // and the X-Forwarded-Prefix value ("" when none). Audit records keep the client's `target`.
  std::string upstream_target;
  std::string forwarded_prefix;
  // Response fields this request sets ("Name: value\r\n" lines; the cors phase): they replace the
  // backend's fields of those names (http::apply_response_edits), or go with a 204 preflight.
  std::string response_fields;
  // Fields of phigate's own refusal ("Name: value\r\n" lines; Retry-After of a 429 rate limit).
  std::string reply_fields;
  // auth-type: basic (phase auth-basic): the credentials verify_basic_auth() checks; the user stays
  // for the audit record, the password is wiped.
  std::string auth_user;
  std::string auth_password;
  ExternalAuthResult auth_external;  // auth-url's allowing answer
  // The route's Location/Refresh/Set-Cookie rewrites and custom-headers (phase response-headers),
  // CORS's removal of the backend's Access-Control-* fields (views into the route's policy, which
  // the pinned snapshot keeps alive).
  http::ResponseEdits edits;
};

/// One request, created when its head is complete and destroyed when it ends: no hand reset, so
/// nothing of one request (route, client, limits) can leak into the next on a kept-alive connection.
struct Request {
  explicit Request(http::MessageHead& h) : head(h) {}
  http::MessageHead& head;
  std::string host;        // the Host value as sent ("" when none)
  std::string host_norm;   // lower-case, without port (router::RouteTable::normalize_host_into)
  std::string target;      // normalised origin-form target (http::normalize_target)
  std::string route_path;  // scratch for http::routing_path
  std::string_view path;   // what is routed: target's path without ;parameters (into target or route_path)
  std::string client_ip;   // after trusted proxies / X-Forwarded-For
  std::optional<access::Address> client_addr;
  const router::Route* route = nullptr;
  const config::RoutePolicy* policy = nullptr;
  RequestLimits limits;
  bool hsts = false;        // HTTPS responses carry the snapshot's HSTS field
  std::size_t cluster = 0;  // the cluster proxied to: route->target, or its canary's (phase canary)
  bool canary = false;      // the canary phase chose the route's canary
  // limit-connections: this request's place among its client's in-flight requests on the Ingress,
  // given back when the request ends (phase rate-limit).
  RateLimiter::Slot limit_slot;
  // satisfy: any (phase access): the client is in the path's allowlist, so the auth-basic and
  // auth-external phases ask for nothing (no credentials, no subrequest); the audit record says so.
  bool satisfied_by_allowlist = false;
  // auth-type: basic (phase auth-basic): verify_basic_auth() checks the credentials (rare().auth_user
  // and auth_password) after the phases (basic_auth.hpp).
  bool auth_pending = false;
  // The user table that verified these credentials (verify_basic_auth), for a second decision once
  // a buffered body is whole: the Authorization field may be gone from the head by then.
  const void* auth_verified = nullptr;
  // auth-url (phase auth-external): run_external_auth() sends the subrequest to the cluster
  // `auth_cluster` after the phases; its allowing answer's identity and cookies stay in
  // rare().auth_external.
  bool auth_external_pending = false;
  std::size_t auth_cluster = 0;

  /// The rare fields, to write: allocated by the first phase that sets one.
  RequestRare& rare() {
    if (!rare_) rare_ = std::make_unique<RequestRare>();
    return *rare_;
  }
  /// The rare fields, to read: all empty when no phase set one (never allocates).
  const RequestRare& rare_or_empty() const noexcept { return rare_ ? *rare_ : kNoRare; }
  bool has_rare() const noexcept { return rare_ != nullptr; }
  /// The response edits to apply, or null when there are none.
  const http::ResponseEdits* response_edits() const noexcept {
    return rare_ && rare_->edits.any() ? &rare_->edits : nullptr;
  }

 private:
  static inline const RequestRare kNoRare{};
  std::unique_ptr<RequestRare> rare_;
};

}  // namespace phigate::proxy::detail
