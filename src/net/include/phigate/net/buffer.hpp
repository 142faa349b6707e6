#pragma once
// A fixed-capacity byte buffer with a read window [begin, end): bodies stream through one of
// these per direction, so a 1 GiB body uses the same memory as 1 KiB.
//
// Storage of the usual size (kBlockBytes: every client connection's and upstream link's input)
// comes from a small per-thread cache of free blocks: an HTTP/2 connection at 100 streams starts
// and ends a link, hence a buffer, per request, and at that rate malloc/free of 16 KiB blocks
// (glibc grows and trims the worker's arena around them, with page faults) was the largest single
// cost of the worker (docs/perf-h2-many-streams.md, round 4). The cache is bounded
// (kCachedBlocks per thread) and sized for a burst (1,600 streams waiting on their backends hold a
// block each: below that, tcmalloc's central lists took the overflow, touching every cold block;
// round 7); the worker's tick trims what a whole second did not use down to kKeptBlocks, so idle
// memory stays small.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory>

namespace phigate::net {

namespace detail {

/// Free blocks of Buffer::kBlockBytes, for this thread's buffers. Not thread-safe by design: a
/// buffer is used on one thread (a worker's); one freed on another thread returns there.
class BlockCache {
 public:
  static constexpr std::size_t kBlockBytes = 16 * 1024;
  static constexpr std::size_t kCachedBlocks = 2048;  // 32 MiB per thread at most, during a burst
  static constexpr std::size_t kKeptBlocks = 128;     // what trim() leaves: 2 MiB per thread

  explicit BlockCache(bool& gone) noexcept : gone_(gone) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  ~BlockCache() {
    for (std::size_t i = 0; i < count_; ++i) delete[] free_[i];
    gone_ = true;
  }

  char* take() {
    if (count_ == 0) {
      low_ = 0;
      return new char[kBlockBytes];
    }
    char* p = free_[--count_];
    low_ = std::min(low_, count_);
    return p;
  }
  void give(char* p) noexcept {
    if (count_ < kCachedBlocks) {
      free_[count_++] = p;
    } else {
      delete[] p;
    }
  }
  std::size_t cached() const noexcept { return count_; }
  /// Frees the blocks no take() reached since the last trim() (the bottom of the stack, coldest
  /// first), keeping at least kKeptBlocks. Returns how many went back to the allocator.
  std::size_t trim() noexcept {
    const std::size_t n = std::min(low_, count_ > kKeptBlocks ? count_ - kKeptBlocks : 0);
    if (n == 0) {
      low_ = count_;
      return 0;
    }
    for (std::size_t i = 0; i < n; ++i) delete[] free_[i];
    std::copy(free_.begin() + static_cast<std::ptrdiff_t>(n),
              free_.begin() + static_cast<std::ptrdiff_t>(count_), free_.begin());
    count_ -= n;
    low_ = count_;
    return n;
  }

  /// This thread's cache; null while the thread exits after it was destroyed (a buffer freed
  /// by a later thread_local or static destructor then goes straight to the allocator).
  static BlockCache* local() noexcept {
    static thread_local bool gone = false;  // trivially destructible: still readable at exit
    if (gone) return nullptr;
    static thread_local BlockCache cache(gone);
    return &cache;
  }

 private:
  bool& gone_;
  std::array<char*, kCachedBlocks> free_{};
  std::size_t count_ = 0;
  std::size_t low_ = 0;  // the fewest blocks cached since the last trim(): [0, low_) went unused
};

}  // namespace detail

/// The worker's tick (once a second): this thread's cached blocks that went unused since the last
/// call go back to the allocator (BlockCache::trim); how many.
inline std::size_t trim_block_cache() noexcept {
  auto* cache = detail::BlockCache::local();
  return cache != nullptr ? cache->trim() : 0;
}

class Buffer {
 public:
  static constexpr std::size_t kBlockBytes = detail::BlockCache::kBlockBytes;

  explicit Buffer(std::size_t capacity) : cap_(capacity) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { free_storage(); }

  char* data() {
    ensure();
    return data_ + begin_;
  }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Space to read into (compacts first when the tail is full).
  char* space() {
    ensure();
    if (end_ == cap_ && begin_ > 0) {
      std::memmove(data_, data_ + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return data_ + end_;
  }
  /// The room space() gives, asked before or after it: `read(b.space(), b.space_size())` leaves
  /// the order to the compiler (GCC 12 asks the size first), so a full tail about to be compacted
  /// counts as compacted.
  std::size_t space_size() const noexcept {
    return end_ == cap_ && begin_ > 0 ? cap_ - (end_ - begin_) : cap_ - end_;
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  /// Frees the storage while empty (idle connections hold no buffer).
  void release() noexcept {
    if (empty()) free_storage();
  }
  /// Holds storage now (tests).
  bool has_storage() const noexcept { return data_ != nullptr; }

 private:
  void ensure() {
    if (data_ != nullptr) return;
    auto* cache = cap_ == kBlockBytes ? detail::BlockCache::local() : nullptr;
    data_ = cache != nullptr ? cache->take() : new char[cap_];
  }
  void free_storage() noexcept {
    if (data_ == nullptr) return;
    auto* cache = cap_ == kBlockBytes ? detail::BlockCache::local() : nullptr;
    if (cache != nullptr) {
      cache->give(data_);
    } else {
      delete[] data_;
    }
    data_ = nullptr;
  }
  char* data_ = nullptr;
  std::size_t cap_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace phigate::net
