#pragma once
// Private to proxy: external authentication (auth-url; docs/auth-external.md), for HTTP/1, HTTP/2
// and WebSocket upgrades alike. Two steps, as basic auth:
//  1. the phase `auth-external` (pure, right after `auth-basic`): a route with auth-url marks the
//     request (Request::auth_external_pending) and names the auth Service's cluster; a buffered
//     request decided again under the same policy keeps the first answer (no second subrequest);
//  2. run_external_auth(), which the codec's authorize() co_awaits after basic verification and
//     before anything of the request (its body included) goes to a backend or is buffered: one
//     HTTP/1.1 subrequest without a body over upstream::Link (pooled; verified TLS under https),
//     bounded in time (limits.auth_timeout, the whole exchange) and size (kAuthHeadBytes head,
//     kAuthBodyBytes body, read and dropped). 2xx allows (auth-response-headers copied to the
//     backend request, the client's own fields of those names always removed), 401 is 401 or a
//     302 to auth-signin, 403 is 403, anything else (no endpoint, connect failure, timeout, a
//     malformed or oversized answer, another status) is 500: fail closed.
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "client_stream.hpp"
#include "phases.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/link.hpp"

namespace phigate::proxy::detail {

class WorkerImpl;

/// The most an auth answer's head may be (status line and fields); more is a failed check (500).
inline constexpr std::size_t kAuthHeadBytes = 16 * 1024;
/// Fields an auth answer may have.
inline constexpr std::size_t kAuthHeadFields = 64;
/// The most body an auth answer may have (read and dropped, so the connection can be pooled).
inline constexpr std::size_t kAuthBodyBytes = 64 * 1024;
/// user.name and user.email from the auth answer are cut to this many bytes in the audit record.
inline constexpr std::size_t kAuthIdentityBytes = 64;

/// auth-cache-key: answers one worker remembers; the oldest go first.
inline constexpr std::size_t kAuthCacheEntries = 1024;
/// An expanded key longer than this, or an answer whose kept fields are larger, is not cached.
inline constexpr std::size_t kAuthCacheKeyBytes = 2048;
inline constexpr std::size_t kAuthCacheFieldBytes = 4096;

/// auth-cache-key: the cache key of this request, "" when it is not cached (no key, or the
/// expansion is over kAuthCacheKeyBytes). It names the Ingress, the auth-url and method, then the
/// expansion, each part length-prefixed (no two requests with other values share a key). Pure.
std::string auth_cache_key(const Request& r, const config::ExternalAuthPolicy& p);

/// The cached answers of one worker (single thread, no lock), keyed by the whole key (no hash
/// collision can hand one user's answer to another). Bounded; time passed in (unit tests).
class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    int status = 0;
    http::HeaderList fields;  // the answer's fields the request needs (auth_cache_fields)
    Clock::time_point expiry{};
  };
  explicit AuthCache(std::size_t max_entries = kAuthCacheEntries) : max_(max_entries) {}
  const Entry* find(const std::string& key, Clock::time_point now) const;
  void insert(const std::string& key, Entry e);
  std::size_t size() const noexcept { return map_.size(); }

 private:
  std::size_t max_;
  std::unordered_map<std::string, Entry> map_;
  std::deque<std::string> order_;  // insertion order, same keys
};

/// The fields of an answer a cached answer keeps: auth-response-headers, Set-Cookie, the identity.
http::HeaderList auth_cache_fields(const config::ExternalAuthPolicy& p, const http::HeaderList& answer);
/// Whether an answer may be cached at all (nginx's proxy_cache rules): not with Set-Cookie (someone's
/// session), Cache-Control no-store/no-cache/private, or Vary: *.
bool auth_answer_cacheable(const http::HeaderList& answer);

/// How long an answer with `status` is cached under `p` (auth-cache-duration; default "200 202
/// 401 5m"); zero: not cached.
std::chrono::seconds auth_cache_ttl(const config::ExternalAuthPolicy& p, int status);

/// What the connection knows that the subrequest's head carries.
struct AuthRequestInfo {
  bool tls = false;             // the client's scheme (X-Original-URL, X-Scheme, rd)
  std::string_view request_id;  // X-Request-ID
  std::string_view client_ip;   // X-Real-IP, X-Forwarded-For (the address phigate determined)
  /// HTTP/2: the client's stream; once it is reset (or its connection went) the subrequest ends as
  /// client_closed without a retry and without counting against the auth endpoint's health.
  const ClientStream* stream = nullptr;
};

/// The subrequest's head (HTTP/1.1, no body): the client's fields minus hop-by-hop, framing and
/// what phigate sets itself, then Host (the auth-url host), X-Original-URL/-Method, X-Sent-From,
/// X-Real-IP, X-Forwarded-For, X-Auth-Request-Redirect, X-Request-ID (and X-Original-URI, X-Scheme
/// under auth-method), then the auth-proxy-set-headers fields. Pure (unit-tested).
std::string external_auth_head(const Request& r, const config::ExternalAuthPolicy& p,
                               const AuthRequestInfo& info);

/// "<signin>[?&]<param>=<percent-encoded scheme://host/uri>" (not appended when auth-signin has
/// that parameter already), with $host, $scheme and $escaped_request_uri expanded; "" when the
/// Host cannot go into a Location (the host phase refused those already). Pure.
std::string external_auth_signin(const config::ExternalAuthPolicy& p, bool tls, std::string_view host,
                                 std::string_view target);

/// How a subrequest ended.
enum class AuthVerdict { Allowed, Unauthorized, Forbidden, Error };

/// Applies an auth answer's fields to the request (pure, unit-tested): the client's fields named
/// by auth-response-headers are removed, the answer's are added; the identity (X-Auth-Request-User
/// or X-Forwarded-User, X-Auth-Request-Email or X-Forwarded-Email) and Set-Cookie lines are kept
/// in r.rare().auth_external.
void apply_auth_answer(Request& r, const config::ExternalAuthPolicy& p, const http::HeaderList& answer,
                       bool allowed);

/// Step 2. nullopt: allowed (the request edited by apply_auth_answer); else the refusal. `link`
/// is idle (nothing of the request went upstream yet); `deadline` is the codec's (its expiry
/// cancels `link`). Counts phigate_auth_external_checks_total.
net::awaitable<std::optional<Decision>> run_external_auth(WorkerImpl& worker, upstream::Link& link,
                                                          upstream::Deadline& deadline, Request& r,
                                                          const Snapshot& snap, const AuthRequestInfo& info);

namespace phase {
PhaseResult auth_external(Request& r, const Snapshot& s, const ConnectionView& c);
}  // namespace phase

}  // namespace phigate::proxy::detail
