#include "phigate/upstream/balancer.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <random>

#include "phigate/core/assert.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::upstream {

namespace {

/// Weight of a new latency sample in the EWMA (the rest is the decayed previous average).
constexpr double kEwmaAlpha = 0.25;

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit, so FNV's weak low
/// bits and neighbouring virtual-node numbers still spread over the whole ring.
constexpr std::uint64_t mix64(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/// The per-process affinity secret: random, drawn once (thread-safe static initialisation), the
/// same for every worker and every snapshot of this process.
const std::array<unsigned char, 32>& affinity_secret() {
  static const std::array<unsigned char, 32> secret = [] {
    std::array<unsigned char, 32> s{};
    PHI_CHECK(RAND_bytes(s.data(), static_cast<int>(s.size())) == 1);
    return s;
  }();
  return secret;
}

std::uint32_t ring_weight(const Endpoint& e) noexcept {
  return std::clamp<std::uint32_t>(e.weight, 1, kMaxRingWeight);
}

bool is_tried(const PickInput& in, std::size_t i) noexcept {
  return std::find(in.tried.begin(), in.tried.end(), i) != in.tried.end();
}

/// Which endpoints one choice may take: usable, and untried unless `relaxed`.
struct Eligible {
  const Cluster& c;
  const PickInput& in;
  bool relaxed;
  bool operator()(std::size_t i) const noexcept {
    return endpoint_usable(c, i, in.now) && (relaxed || !is_tried(in, i));
  }
};

/// The first eligible endpoint at or after `start` (wrapping), skipping `except`.
std::size_t first_eligible(const Eligible& ok, std::size_t n, std::size_t start,
                           std::size_t except) noexcept {
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (i != except && ok(i)) return i;
  }
  return kNoEndpoint;
}

void append_imf_fixdate(std::string& out, std::chrono::system_clock::time_point t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  // RFC 9110 §5.6.7 IMF-fixdate, built by hand: strftime's %a and %b follow the locale.
  char buf[32];
  const int len =
      std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7], tm.tm_mday,
                    kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (len > 0) out.append(buf, static_cast<std::size_t>(std::min(len, static_cast<int>(sizeof buf) - 1)));
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// State

BalancerState::BalancerState() {
  // Seeded once per state from the OS (a state lives as long as its worker's cluster slot); the
  // choices need to differ between workers, not to be unpredictable.
  std::random_device rd;
  rng_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ reinterpret_cast<std::uintptr_t>(this);
}

std::uint64_t BalancerState::next() noexcept {
  // splitmix64: one add and a finaliser; no lock, no global state.
  rng_ += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = rng_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void BalancerState::fit(std::size_t n) {
  if (slots_.size() == n) return;
  // Another cluster size: a request pinned to an older snapshot, or the first use. Start afresh.
  slots_.assign(n, Slot{});
  fingerprint_ = 0;
}

void BalancerState::reset(const Cluster& c) {
  std::uint64_t fp = mix64(c.endpoints.size() + 1);
  for (const auto& e : c.endpoints) fp = mix64(fp ^ ring_hash(e.key) ^ e.weight);
  if (fp == fingerprint_ && slots_.size() == c.endpoints.size()) return;
  slots_.assign(c.endpoints.size(), Slot{});
  fingerprint_ = fp;
  cursor_ = 0;
}

// ----------------------------------------------------------------------------------------------
// Choosing

namespace {

/// nginx's smooth weighted round robin: every eligible endpoint gains its weight, the highest
/// is chosen and loses the total. Weights {5,1,1} give a a b a c a a. No allocation.
std::size_t choose_round_robin(const Cluster& c, std::span<BalancerState::Slot> slots,
                               const Eligible& ok) noexcept;

}  // namespace

Pick pick(const Cluster& c, BalancerState& s, const PickInput& in) noexcept {
  const std::size_t n = c.endpoints.size();
  if (n == 0) return {};
  s.fit(n);
  if (n == 1 && !c.balance.affinity_cookie) {
    // Nothing to choose (the common single-Service-endpoint route): skip the algorithms. A tried
    // endpoint is still a fallback when no other is left, as below.
    s.now_ = in.now;
    return endpoint_usable(c, 0, in.now) ? Pick{0, false} : Pick{};
  }
  s.now_ = in.now;
  const auto& b = c.balance;

  bool set_cookie = false;
  std::size_t sticky = kNoEndpoint;
  if (b.affinity_cookie) {
    if (valid_cookie_value(in.affinity_value)) {
      const auto it = std::lower_bound(b.affinity.begin(), b.affinity.end(), in.affinity_value,
                                       [](const AffinityEntry& e, std::string_view v) { return e.id < v; });
      if (it != b.affinity.end() && it->id == in.affinity_value && it->endpoint < n) sticky = it->endpoint;
    }
    if (sticky != kNoEndpoint && endpoint_usable(c, sticky, in.now) && !is_tried(in, sticky)) {
      return {sticky, false};
    }
    // No cookie, an unknown one (an endpoint that left, another process's secret, a forgery) or
    // one whose endpoint cannot take this attempt: balance normally. Balanced mode re-pins the
    // client; persistent mode keeps the cookie of an endpoint that still exists (unhealthy or
    // failed this time), so the client goes back to it once it recovers.
    set_cookie = !(b.affinity_persistent && sticky != kNoEndpoint);
  }

  for (const bool relaxed : {false, true}) {
    const Eligible ok{c, in, relaxed};
    std::size_t chosen = kNoEndpoint;
    switch (b.kind) {
      case BalanceKind::Hash:
        if (!in.hash_key.empty() && !b.ring.empty()) {
          const std::uint64_t h = ring_hash(in.hash_key);
          auto it = std::lower_bound(b.ring.begin(), b.ring.end(), h,
                                     [](const RingPoint& p, std::uint64_t v) { return p.hash < v; });
          // Walk clockwise to the next eligible endpoint: only the keys of an unusable endpoint
          // move, and they spread over the others.
          std::size_t start = static_cast<std::size_t>(it - b.ring.begin());
          for (std::size_t k = 0; k < b.ring.size(); ++k) {
            const auto e = b.ring[(start + k) % b.ring.size()].endpoint;
            if (e < n && ok(e)) {
              chosen = e;
              break;
            }
          }
          break;
        }
        // No key (the header, cookie or argument is absent): nothing to be consistent about, so
        // spread those requests instead of sending them all to the endpoint of "".
        chosen = choose_round_robin(c, s.slots_, ok);
        break;
      case BalanceKind::LeastRequest:
      case BalanceKind::Ewma: {
        // Power of two random choices (Mitzenmacher): the better of two, so a stale view from
        // another worker never herds every request onto one endpoint.
        const std::size_t a = first_eligible(ok, n, static_cast<std::size_t>(s.next() % n), kNoEndpoint);
        if (a == kNoEndpoint) break;
        std::size_t d = first_eligible(ok, n, static_cast<std::size_t>(s.next() % n), kNoEndpoint);
        if (d == a) d = first_eligible(ok, n, a + 1, a);
        chosen = a;
        if (d == kNoEndpoint) break;
        if (b.kind == BalanceKind::LeastRequest) {
          // In flight per unit of weight, compared without division.
          const auto load = [&](std::size_t i) {
            return static_cast<std::uint64_t>(s.slots_[i].in_flight) *
                   std::max<std::uint32_t>(1, c.endpoints[i == a ? d : a].weight);
          };
          if (load(d) < load(a)) chosen = d;
        } else {
          const auto score = [&](std::size_t i) {
            const auto& sl = s.slots_[i];
            double e = sl.ewma_ns;
            if (in.now > sl.ewma_at) {
              const double idle = std::chrono::duration<double>(in.now - sl.ewma_at).count();
              e *= std::exp(-idle / std::chrono::duration<double>(kEwmaDecay).count());
            }
            return e * (static_cast<double>(sl.in_flight) + 1.0);
          };
          if (score(d) < score(a)) chosen = d;
        }
        break;
      }
      case BalanceKind::RoundRobin:
        chosen = choose_round_robin(c, s.slots_, ok);
        break;
    }
    if (chosen != kNoEndpoint) return {chosen, set_cookie && chosen != sticky};
  }
  return {};
}

namespace {

std::size_t choose_round_robin(const Cluster& c, std::span<BalancerState::Slot> slots,
                               const Eligible& ok) noexcept {
  std::int64_t total = 0;
  std::size_t best = kNoEndpoint;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (!ok(i)) continue;
    const auto w = static_cast<std::int64_t>(std::max<std::uint32_t>(1, c.endpoints[i].weight));
    slots[i].current_weight += w;
    total += w;
    if (best == kNoEndpoint || slots[i].current_weight > slots[best].current_weight) best = i;
  }
  if (best != kNoEndpoint) slots[best].current_weight -= total;
  return best;
}

}  // namespace

void attempt_started(BalancerState& s, std::size_t index) noexcept {
  if (index >= s.slots_.size()) return;
  auto& in_flight = s.slots_[index].in_flight;
  if (in_flight < std::numeric_limits<std::uint32_t>::max()) ++in_flight;
}

void attempt_ended(BalancerState& s, std::size_t index, Clock::duration latency, bool ok) noexcept {
  if (index >= s.slots_.size()) return;  // the state was resized for another cluster meanwhile
  auto& sl = s.slots_[index];
  // Saturating: an attempt started before the state was reset for other endpoints ends here too.
  if (sl.in_flight > 0) --sl.in_flight;
  if (latency < Clock::duration::zero()) return;  // not measured: the cluster does not balance by latency
  if (!ok && latency < kEwmaFailurePenalty) latency = kEwmaFailurePenalty;
  const double sample =
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
  if (sl.ewma_at == Clock::time_point{}) {
    sl.ewma_ns = sample;
  } else {
    double prior = sl.ewma_ns;
    if (s.now_ > sl.ewma_at) {
      const double idle = std::chrono::duration<double>(s.now_ - sl.ewma_at).count();
      prior *= std::exp(-idle / std::chrono::duration<double>(kEwmaDecay).count());
    }
    sl.ewma_ns = prior + kEwmaAlpha * (sample - prior);
  }
  sl.ewma_at = s.now_ == Clock::time_point{} ? Clock::time_point{} + std::chrono::nanoseconds(1) : s.now_;
}

// ----------------------------------------------------------------------------------------------
// Snapshot build

std::uint64_t ring_hash(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (const char ch : bytes) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ bytes.size());
}

std::string affinity_id(std::string_view endpoint_key) {
  const auto& secret = affinity_secret();
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  const auto* ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                        reinterpret_cast<const unsigned char*>(endpoint_key.data()), endpoint_key.size(),
                        mac.data(), &len);
  PHI_CHECK(ok != nullptr && len >= 16);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 0xf];
  }
  return out;
}

void build_balancing(Cluster& c) {
  auto& b = c.balance;
  b.ring.clear();
  b.affinity.clear();
  if (b.kind == BalanceKind::Hash) {
    std::size_t points = 0;
    for (const auto& e : c.endpoints) points += kRingPointsPerWeight * ring_weight(e);
    b.ring.reserve(points);
    for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
      const auto& e = c.endpoints[i];
      // Points depend on the endpoint's key only, never on its index or the other endpoints:
      // when one leaves, only its own keys move.
      const std::uint64_t base = ring_hash(e.key);
      for (std::size_t v = 0; v < kRingPointsPerWeight * ring_weight(e); ++v) {
        b.ring.push_back({mix64(base + (v + 1) * 0x9e3779b97f4a7c15ULL), static_cast<std::uint32_t>(i)});
      }
    }
    // Ties (astronomically rare) broken by key so that the order does not depend on indices.
    std::sort(b.ring.begin(), b.ring.end(), [&](const RingPoint& x, const RingPoint& y) {
      if (x.hash != y.hash) return x.hash < y.hash;
      return c.endpoints[x.endpoint].key < c.endpoints[y.endpoint].key;
    });
  }
  for (auto& e : c.endpoints) e.affinity_id.clear();
  if (b.affinity_cookie) {
    for (std::size_t i = 0; i < c.endpoints.size(); ++i) {
      auto& e = c.endpoints[i];
      e.affinity_id = affinity_id(e.key);
      b.affinity.push_back({e.affinity_id, static_cast<std::uint32_t>(i)});
    }
    // The same key twice (one backend listed twice) gives the same id: the first index wins.
    std::stable_sort(b.affinity.begin(), b.affinity.end(),
                     [](const AffinityEntry& x, const AffinityEntry& y) { return x.id < y.id; });
  }
}

// ----------------------------------------------------------------------------------------------
// The cookie

bool valid_cookie_name(std::string_view name) noexcept {
  // RFC 6265 §4.1.1 cookie-name = token (RFC 9110 §5.6.2 tchar).
  static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           kTchar.find(ch) != std::string_view::npos;
  });
}

bool valid_cookie_path(std::string_view path) noexcept {
  // RFC 6265 path-value: any CHAR except CTLs or ';'. Stricter here: no space or ',' either (some
  // parsers split Set-Cookie on commas), and it must be absolute.
  return !path.empty() && path.size() <= 1024 && path.front() == '/' &&
         std::all_of(path.begin(), path.end(),
                     [](char ch) { return ch > 0x20 && ch < 0x7f && ch != ';' && ch != ','; });
}

bool valid_cookie_value(std::string_view v) noexcept {
  return v.size() == 32 && std::all_of(v.begin(), v.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
         });
}

void append_affinity_cookie(std::string& out, const Cluster& c, std::size_t index,
                            std::string_view route_path, std::chrono::system_clock::time_point now) {
  const auto& b = c.balance;
  if (!b.affinity_cookie || index >= c.endpoints.size()) return;
  const auto& id = c.endpoints[index].affinity_id;
  // Everything here was validated by the annotation parser; checked again because this line is
  // the response header an injected CR/LF or ';' would forge (defence in depth).
  if (!valid_cookie_value(id) || !valid_cookie_name(b.cookie_name)) return;
  std::string_view path = b.cookie_path.empty() ? route_path : std::string_view(b.cookie_path);
  if (!valid_cookie_path(path)) path = "/";
  out += "Set-Cookie: ";
  out += b.cookie_name;
  out += '=';
  out += id;
  out += "; Path=";
  out += path;
  if (b.cookie_max_age != 0) {
    out += "; Max-Age=";
    out += std::to_string(b.cookie_max_age);
  }
  if (b.cookie_expires != 0) {
    out += "; Expires=";
    append_imf_fixdate(out, now + std::chrono::seconds(b.cookie_expires));
  }
  const bool samesite_ok =
      b.cookie_samesite == "Strict" || b.cookie_samesite == "Lax" || b.cookie_samesite == "None";
  // Browsers drop "SameSite=None" without Secure (RFC 6265bis §4.1.2.7), so None implies Secure.
  if (b.cookie_secure || (samesite_ok && b.cookie_samesite == "None")) out += "; Secure";
  if (samesite_ok) {
    out += "; SameSite=";
    out += b.cookie_samesite;
  }
  // Scripts have no use for it: HttpOnly keeps an XSS from reading which backend a client uses.
  out += "; HttpOnly\r\n";
}

}  // namespace phigate::upstream
