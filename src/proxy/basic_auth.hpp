#pragma once
// Private to proxy: basic authentication (auth-type: basic; docs/auth-basic.md). Two steps, for
// HTTP/1, HTTP/2 and gRPC alike:
//  1. the phase `auth-basic` (pure, in request_phases()): a route with basic auth needs one
//     well-formed `Authorization: Basic` field, else 401 (outcome auth_required); the user and
//     password are kept in the Request for step 2;
//  2. verify_basic_auth(), which the connection co_awaits right after the phases: the user is
//     looked up without revealing whether it exists, the hash checked by APR's
//     apr_password_validate on a small process-wide thread pool (bcrypt is slow by design: never
//     on the event loop), the worker resumed by a post to its own executor. A success is cached
//     per worker for kCacheTtl. A mismatch is 401 (auth_failed), a full pool 503 (overloaded).
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "phases.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::proxy::detail {

/// Verifications running or queued on the pool, process-wide; one more is refused (503).
inline constexpr std::size_t kVerifyQueueMax = 64;
/// Threads of the verification pool (bcrypt cost 10 is about 50-80 ms of one core).
inline constexpr unsigned kVerifyThreads = 2;
/// A verified (hash, user, password) is not verified again for this long, per worker.
inline constexpr std::chrono::seconds kCacheTtl{60};
/// Successful verifications a worker remembers; the oldest go first.
inline constexpr std::size_t kCacheMaxEntries = 4096;
/// Decoded credentials longer than this are refused (401) before any work.
inline constexpr std::size_t kMaxCredentials = 1024;

enum class CredentialsParse { Ok, Missing, Malformed };

/// The request's one `Authorization: Basic <base64(user:password)>` field. Missing: none, or
/// another scheme (Bearer, Digest); Malformed: repeated, bad base64, no ':', an empty user, a
/// control character (NUL included), or longer than kMaxCredentials.
CredentialsParse parse_basic_authorization(const http::HeaderList& headers, std::string& user,
                                           std::string& password);

/// `WWW-Authenticate: Basic realm="<realm>"\r\n`, '"' and '\' escaped.
std::string www_authenticate_field(std::string_view realm);

/// Whether the Decision is a basic-auth refusal (401 with WWW-Authenticate).
inline bool is_auth_challenge(const Decision& d) noexcept {
  return d.outcome == core::Outcome::AuthRequired || d.outcome == core::Outcome::AuthFailed;
}

using CacheKey = std::array<unsigned char, 32>;

/// SHA-256 over the stored hash, the user and the password (each length-prefixed): a changed
/// Secret changes the hash, so its old entries are never hit again (they age out).
CacheKey cache_key(std::string_view stored_hash, std::string_view user, std::string_view password);

/// Successful verifications of one worker (single thread, no lock). Bounded: at kCacheMaxEntries
/// the oldest inserted goes. Time is passed in (unit tests drive it).
class VerifyCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit VerifyCache(std::size_t max_entries = kCacheMaxEntries, Clock::duration ttl = kCacheTtl)
      : max_(max_entries), ttl_(ttl) {}
  /// Whether `k` was verified less than the TTL ago.
  bool hit(const CacheKey& k, Clock::time_point now) const;
  void insert(const CacheKey& k, Clock::time_point now);
  std::size_t size() const noexcept { return map_.size(); }

 private:
  struct KeyHash {
    std::size_t operator()(const CacheKey& k) const noexcept;
  };
  std::size_t max_;
  Clock::duration ttl_;
  std::unordered_map<CacheKey, Clock::time_point, KeyHash> map_;  // key -> expiry
  std::deque<CacheKey> order_;                                    // insertion order, same keys
};

/// Step 2: nullopt when the credentials the phase kept match (Authorization then removed from the
/// request unless auth-forward-authorization), else the refusal. Worker thread; the password is
/// wiped from the Request either way.
net::awaitable<std::optional<Decision>> verify_basic_auth(Request& r, metrics::WorkerShard& stats);

namespace phase {
PhaseResult auth_basic(Request& r, const Snapshot& s, const ConnectionView& c);
}  // namespace phase

}  // namespace phigate::proxy::detail
