#pragma once
// A cluster: the endpoints one route forwards to, and how it picks among them, checks them,
// retries and encrypts. Immutable, part of the snapshot; the mutable state it points to (health,
// shared by every worker) is made of atomics only.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "phigate/net/asio.hpp"

namespace phigate::upstream {

class EndpointHealth;  // upstream/health.hpp: shared by all workers, survives reloads
class HealthGroup;     // upstream/health.hpp: per cluster (ejection cap)
struct BackendTls;     // upstream/backend_tls.hpp: client context to an HTTPS backend

struct Endpoint {
  net::tcp::endpoint address;
  std::string key;  // "ip:port": stable identity across reloads (pool, health)
  std::uint32_t weight = 1;
  /// EndpointSlice conditions.terminating (or serving=false): no new requests; requests in
  /// flight finish.
  bool terminating = false;

  // --- health (active + passive) ---
  std::shared_ptr<EndpointHealth> health;  // never null in a built snapshot

  // --- balancing: cookie affinity ---
  /// The affinity cookie's value for this endpoint: 32 hex digits of HMAC-SHA256(process secret,
  /// key), so a cookie never reveals the backend's address (balancer.hpp `affinity_id`). Set at
  /// snapshot build; empty when the cluster has no cookie affinity.
  std::string affinity_id;
};

/// How a cluster picks an endpoint (RoutePolicy load-balance / upstream-hash-by / affinity).
enum class BalanceKind { RoundRobin, LeastRequest, Ewma, Hash };
/// What upstream-hash-by hashes: $remote_addr / $binary_remote_addr, $request_uri (the target with
/// its query), $uri (the path), $host, $http_<name>, $cookie_<name>, $arg_<name>.
enum class HashSource { None, RemoteAddr, RequestUri, Uri, Host, Header, Cookie, Arg };

/// One virtual node of the consistent-hash ring.
struct RingPoint {
  std::uint64_t hash = 0;
  std::uint32_t endpoint = 0;  // index into Cluster::endpoints
};

/// An endpoint's affinity id and index, sorted by id: a cookie is found by binary search.
struct AffinityEntry {
  std::string id;
  std::uint32_t endpoint = 0;
};

struct BalanceSettings {
  BalanceKind kind = BalanceKind::RoundRobin;
  HashSource hash_source = HashSource::None;
  std::string hash_name;  // header name (lower case, '-'), cookie or query argument name

  // --- cookie affinity ---
  bool affinity_cookie = false;
  bool affinity_persistent = false;  // affinity-mode: persistent (else balanced)
  std::string cookie_name = "INGRESSCOOKIE";
  std::string cookie_path;           // empty: the route's path
  std::uint64_t cookie_max_age = 0;  // seconds, 0: none
  std::uint64_t cookie_expires = 0;  // seconds from now, 0: none
  bool cookie_secure = false;
  std::string cookie_samesite;  // "", Strict, Lax, None

  // Built once per cluster at snapshot build (balancer.hpp `build_balancing`), read-only after.
  std::vector<RingPoint> ring;          // sorted by hash; empty unless kind == Hash
  std::vector<AffinityEntry> affinity;  // sorted by id; empty unless affinity_cookie
};

/// proxy-next-upstream conditions (nginx's names), the bits of RetrySettings::when.
inline constexpr std::uint16_t kNextError =
    1 << 0;  // connect failure, reset or malformed response before a response byte
inline constexpr std::uint16_t kNextTimeout = 1 << 1;  // connect timeout, read timeout before a response byte
inline constexpr std::uint16_t kNextHttp500 = 1 << 2;
inline constexpr std::uint16_t kNextHttp502 = 1 << 3;
inline constexpr std::uint16_t kNextHttp503 = 1 << 4;
inline constexpr std::uint16_t kNextHttp504 = 1 << 5;
inline constexpr std::uint16_t kNextHttp403 = 1 << 6;
inline constexpr std::uint16_t kNextHttp404 = 1 << 7;
inline constexpr std::uint16_t kNextHttp429 = 1 << 8;

/// proxy-next-upstream and friends (RoutePolicy over the global config).
struct RetrySettings {
  std::uint16_t when = kNextError | kNextTimeout;  // 0: off
  unsigned tries = 3;                              // attempts in all; 0: as many as endpoints
  std::chrono::milliseconds timeout{0};            // no new attempt after this since the first (0: none)
};

struct Cluster {
  std::string name;  // route name, for logs
  std::vector<Endpoint> endpoints;
  BalanceSettings balance;
  RetrySettings retry;

  // --- health ---
  std::shared_ptr<HealthGroup> health;  // never null in a built snapshot

  // --- TLS to the backend ---
  std::shared_ptr<const BackendTls> tls;  // null: plain HTTP to the backend

  // --- HTTP/2 to the backend (backend-protocol GRPC / GRPCS) ---
  /// Requests go as streams on the worker's H2Pool (h2_pool.hpp): prior knowledge when `tls` is
  /// null (GRPC), ALPN h2 over TLS otherwise (GRPCS). False: HTTP/1.1 through Link.
  bool grpc = false;
};

}  // namespace phigate::upstream
