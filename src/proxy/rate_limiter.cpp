#include "phigate/proxy/rate_limiter.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

namespace phigate::proxy {

namespace {

std::atomic<std::uint64_t> g_evictions{0};  // all tables of the process (evictions_total)

constexpr std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::uint64_t RateLimiter::zone_id(std::string_view resource, std::string_view kind, std::uint64_t a,
                                   std::uint64_t b) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the names, then the numbers mixed in
  const auto feed = [&](std::string_view s) {
    for (const unsigned char ch : s) {
      h ^= ch;
      h *= 0x100000001b3ULL;
    }
    h ^= 0xff;  // separator: ("ab","c") and ("a","bc") differ
    h *= 0x100000001b3ULL;
  };
  feed(resource);
  feed(kind);
  return mix(h ^ mix(a * 0x9e3779b97f4a7c15ULL + b));
}

std::size_t RateLimiter::KeyHash::operator()(const Key& k) const noexcept {
  std::uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, k.addr.data(), 8);
  std::memcpy(&hi, k.addr.data() + 8, 8);
  // Seeded per process: a client choosing its addresses (an IPv6 /64) cannot aim them all at
  // one bucket chain.
  return static_cast<std::size_t>(mix(mix(lo ^ seed) ^ hi) ^ k.zone);
}

std::uint64_t RateLimiter::evictions_total() noexcept {
  return g_evictions.load(std::memory_order_relaxed);
}

RateLimiter::RateLimiter(std::size_t capacity)
    : seed_(mix((static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}())),
      per_shard_(capacity_for(capacity) / kShards) {
  shards_.reserve(kShards);
  for (std::size_t i = 0; i < kShards; ++i) shards_.push_back(std::make_unique<Shard>(seed_));
}

RateLimiter::Shard& RateLimiter::shard_of(const Key& k) noexcept {
  // Another mix of the same hash than the one inside the shard, so a shard's keys still spread
  // over its buckets.
  return *shards_[mix(KeyHash{seed_ ^ 0x5bd1e995}(k)) % kShards];
}

void RateLimiter::unlink(Shard& s, std::uint32_t i) noexcept {
  auto& e = s.slab[i];
  if (e.prev != kNone)
    s.slab[e.prev].next = e.next;
  else
    s.head = e.next;
  if (e.next != kNone)
    s.slab[e.next].prev = e.prev;
  else
    s.tail = e.prev;
  e.prev = e.next = kNone;
}

void RateLimiter::push_front(Shard& s, std::uint32_t i) noexcept {
  auto& e = s.slab[i];
  e.prev = kNone;
  e.next = s.head;
  if (s.head != kNone) s.slab[s.head].prev = i;
  s.head = i;
  if (s.tail == kNone) s.tail = i;
}

RateLimiter::Entry* RateLimiter::touch(Shard& s, const Key& k, std::int64_t now_ms, bool& created) {
  created = false;
  if (const auto it = s.index.find(k); it != s.index.end()) {
    if (s.slab[it->second].in_flight == 0) {  // on the recency list only while idle
      unlink(s, it->second);
      push_front(s, it->second);
    }
    return &s.slab[it->second];
  }
  std::uint32_t slot = kNone;
  if (s.slab.size() < per_shard_) {
    // Grown by hand so that the slab never holds more than per_shard_ entries' worth.
    if (s.slab.size() == s.slab.capacity()) {
      s.slab.reserve(std::min(per_shard_, std::max<std::size_t>(16, s.slab.capacity() * 2)));
    }
    slot = static_cast<std::uint32_t>(s.slab.size());
    s.slab.emplace_back();
  } else {
    // Full: replace the least recently seen entry. Only idle entries are on the list (an entry
    // with requests in flight leaves it: acquire/release), so held requests can never gather at
    // its end and refuse every new address (review); only a shard wholly in flight refuses.
    const std::uint32_t i = s.tail;
    if (i == kNone) {
      full_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    slot = i;
    unlink(s, slot);
    s.index.erase(s.slab[slot].key);
    evictions_.fetch_add(1, std::memory_order_relaxed);
    g_evictions.fetch_add(1, std::memory_order_relaxed);
  }
  auto& e = s.slab[slot];
  e = Entry{};
  e.key = k;
  e.last = now_ms;
  s.index.emplace(k, slot);
  push_front(s, slot);
  created = true;
  return &e;
}

RateLimiter::Verdict RateLimiter::take(const Key& k, std::uint64_t rate_milli, std::uint64_t burst,
                                       std::int64_t now_ms) {
  auto& s = shard_of(k);
  const std::lock_guard lock(s.mu);
  bool created = false;
  Entry* e = touch(s, k, now_ms, created);
  if (e == nullptr) return {false, 1000};  // nginx: "could not allocate node" is a refusal too
  if (created) return {true, 0};           // a new key starts with an empty bucket (excess 0)
  // nginx ngx_http_limit_req_lookup: the bucket leaks rate_milli per second since the last
  // counted request; this request adds 1000; more than burst * 1000 is refused.
  const auto rate = static_cast<std::int64_t>(std::max<std::uint64_t>(rate_milli, 1));
  // A clock never runs back; and past the time the bucket takes to empty, more idle time changes
  // nothing (capped: rate * elapsed cannot overflow after months of silence).
  const std::int64_t elapsed =
      std::min(std::max<std::int64_t>(0, now_ms - e->last), (e->excess + 1000) * 1000 / rate + 1);
  std::int64_t excess = e->excess - rate * elapsed / 1000 + 1000;
  if (excess < 0) excess = 0;
  const auto limit = static_cast<std::int64_t>(burst) * 1000;
  if (excess > limit) {
    // Until excess - rate * t / 1000 <= limit.
    const std::int64_t ms = ((excess - limit) * 1000 + rate - 1) / rate;
    return {false, std::max<std::int64_t>(ms, 1)};
  }
  e->excess = excess;
  e->last = std::max(e->last, now_ms);  // `now` was read before the lock: another worker's may be later
  return {true, 0};
}

RateLimiter::Slot RateLimiter::acquire(const Key& k, std::uint32_t limit, std::int64_t now_ms) {
  Slot slot;
  auto& s = shard_of(k);
  const std::lock_guard lock(s.mu);
  bool created = false;
  Entry* e = touch(s, k, now_ms, created);
  if (e == nullptr || e->in_flight >= limit) return slot;
  if (e->in_flight++ == 0)
    unlink(s, static_cast<std::uint32_t>(e - s.slab.data()));  // off the list: never evicted
  slot.table_ = shared_from_this();
  slot.key_ = k;
  return slot;
}

void RateLimiter::release(const Key& k) noexcept {
  auto& s = shard_of(k);
  const std::lock_guard lock(s.mu);
  // An entry with requests in flight is never evicted, so it is still here.
  if (const auto it = s.index.find(k); it != s.index.end() && s.slab[it->second].in_flight > 0) {
    if (--s.slab[it->second].in_flight == 0) push_front(s, it->second);  // idle again: evictable
  }
}

RateLimiter::Slot& RateLimiter::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    release();
    table_ = std::move(o.table_);
    key_ = o.key_;
  }
  return *this;
}

void RateLimiter::Slot::release() noexcept {
  if (table_ != nullptr) {
    table_->release(key_);
    table_.reset();
  }
}

std::size_t RateLimiter::entries() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    const std::lock_guard lock(s->mu);
    n += s->index.size();
  }
  return n;
}

std::size_t RateLimiter::bytes() const {
  // An unordered_map node holds the value and a next pointer (libstdc++ also caches the hash);
  // each bucket is a pointer.
  constexpr std::size_t kNode = sizeof(std::pair<const Key, std::uint32_t>) + 2 * sizeof(void*);
  std::size_t n = sizeof(*this) + shards_.size() * sizeof(Shard);
  for (const auto& s : shards_) {
    const std::lock_guard lock(s->mu);
    n += s->slab.capacity() * sizeof(Entry) + s->index.size() * kNode +
         s->index.bucket_count() * sizeof(void*);
  }
  return n;
}

}  // namespace phigate::proxy
