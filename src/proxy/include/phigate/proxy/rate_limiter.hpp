#pragma once
// The process-wide table behind ingress-nginx's limit-rps, limit-rpm and limit-connections
// (docs/rate-limits.md): nginx's shared-memory zone for a process whose workers are threads.
// Every worker reads and writes it; it is sharded by (zone, client address), each shard under its
// own mutex, so two requests contend only when their keys fall in the same shard. Memory is
// bounded: at most `capacity` keys in all (capacity / kShards per shard); a new key beyond that
// replaces the shard's least recently seen one. Time comes from the caller (milliseconds of a
// monotonic clock): no clock read here, so tests drive it event by event.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace phigate::proxy {

class RateLimiter : public std::enable_shared_from_this<RateLimiter> {
 public:
  static constexpr std::size_t kShards = 64;
  using Address = std::array<std::uint8_t, 16>;  // access::Address (IPv4 as IPv4-mapped IPv6)

  /// One client address in one zone. `zone` names an Ingress's limit (zone_id below).
  struct Key {
    std::uint64_t zone = 0;
    Address addr{};
    bool operator==(const Key&) const = default;
  };

  /// The id of one limit: the Ingress (`resource`, "Ingress ns/name"), which limit (`kind`: "rps",
  /// "rpm", "conn") and its numbers. A reload that keeps them keeps the counters; one that changes
  /// the rate starts a new zone (the old keys age out), as ingress-nginx's zone names do.
  static std::uint64_t zone_id(std::string_view resource, std::string_view kind, std::uint64_t a,
                               std::uint64_t b) noexcept;

  /// `capacity`: keys in all (at least kShards). Allocates lazily up to it.
  explicit RateLimiter(std::size_t capacity);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  struct Verdict {
    bool allowed = false;
    std::int64_t retry_after_ms = 0;  // refused: when one more request would fit
  };

  /// nginx limit_req with `nodelay`: `rate_milli` requests per 1000 seconds (r/s x 1000, or r/m x
  /// 1000 / 60 as nginx rounds it), `burst` requests of excess allowed. The request is counted
  /// only when allowed (a refused one leaves the bucket as it was, as nginx's). Thread-safe.
  Verdict take(const Key& k, std::uint64_t rate_milli, std::uint64_t burst, std::int64_t now_ms);

  /// limit-connections: one more request in flight for the key, if fewer than `limit` are.
  /// The returned slot gives it back when destroyed (empty: refused). Thread-safe.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : table_(std::move(o.table_)), key_(o.key_) {}
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    explicit operator bool() const noexcept { return table_ != nullptr; }
    void release() noexcept;

   private:
    friend class RateLimiter;
    std::shared_ptr<RateLimiter> table_;
    Key key_{};
  };
  Slot acquire(const Key& k, std::uint32_t limit, std::int64_t now_ms);

  std::size_t capacity() const noexcept { return per_shard_ * kShards; }
  /// The capacity a table made for `keys` has (whole shards).
  static constexpr std::size_t capacity_for(std::size_t keys) noexcept {
    return (keys < kShards ? 1 : (keys + kShards - 1) / kShards) * kShards;
  }
  /// Keys held now (all shards; each shard's count is read under its lock).
  std::size_t entries() const;
  /// Bytes the table holds now, allocator overhead estimated (entries, index nodes, buckets).
  std::size_t bytes() const;
  /// Keys replaced by a newer one because their shard was full (monotonic).
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }
  /// Evictions of every table of this process, tables a reload replaced included (monotonic:
  /// phigate_rate_limit_evictions_total, copied by the server's housekeeping every second).
  static std::uint64_t evictions_total() noexcept;
  /// Requests refused because no slot could be freed (every candidate had requests in flight).
  std::uint64_t full_refusals() const noexcept { return full_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint32_t kNone = 0xffffffffu;
  struct Entry {
    Key key{};
    std::int64_t excess = 0;  // milli-requests over the rate (nginx's excess)
    std::int64_t last = 0;    // ms of the last counted request
    std::uint32_t in_flight = 0;
    std::uint32_t prev = kNone, next = kNone;  // LRU list: head = most recently seen
  };
  struct KeyHash {
    std::uint64_t seed;
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct alignas(64) Shard {
    explicit Shard(std::uint64_t seed) : index(0, KeyHash{seed}) {}
    mutable std::mutex mu;
    std::vector<Entry> slab;  // grows to per_shard_, then slots are reused
    std::unordered_map<Key, std::uint32_t, KeyHash> index;
    std::uint32_t head = kNone, tail = kNone;
  };

  Shard& shard_of(const Key& k) noexcept;
  /// The entry for k, found or made (evicting the least recently seen entry without requests in
  /// flight when the shard is full), moved to the LRU head; nullptr when none could be freed.
  Entry* touch(Shard& s, const Key& k, std::int64_t now_ms, bool& created);
  void unlink(Shard& s, std::uint32_t i) noexcept;
  void push_front(Shard& s, std::uint32_t i) noexcept;
  void release(const Key& k) noexcept;

  std::uint64_t seed_;
  std::size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::uint64_t> evictions_{0}, full_{0};
};

}  // namespace phigate::proxy
