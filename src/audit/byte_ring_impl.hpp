#pragma once
// Private: a single-producer single-consumer ring of length-prefixed records in one preallocated
// buffer. Lock-free: the producer owns tail_, the consumer owns head_; each publishes with release
// and reads the other's with acquire. Nothing allocates after construction.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace phigate::audit::detail {

class ByteRing {
 public:
  /// `capacity_bytes` is rounded down to a multiple of 4 (every entry is 4-aligned).
  explicit ByteRing(std::size_t capacity_bytes)
      : cap_(capacity_bytes & ~std::size_t{3}), buf_(new unsigned char[cap_]) {}

  /// Largest record push() can ever take.
  std::size_t max_record() const noexcept { return cap_ / 4; }

  /// Producer thread only. False if the ring lacks room now (or the record is over max_record()).
  bool push(std::string_view rec) noexcept {
    if (rec.size() > max_record()) return false;
    const std::size_t need = 4 + ((rec.size() + 3) & ~std::size_t{3});
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t off = static_cast<std::size_t>(tail % cap_);
    const std::size_t to_end = cap_ - off;
    const std::size_t total = to_end < need ? to_end + need : need;  // wrap: skip the end piece
    if (total > cap_ - (tail - head_cache_)) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (total > cap_ - (tail - head_cache_)) return false;
    }
    if (to_end < need) {
      put_len(off, kWrap);
      tail += to_end;
    }
    const std::size_t at = static_cast<std::size_t>(tail % cap_);
    put_len(at, static_cast<std::uint32_t>(rec.size()));
    std::memcpy(buf_.get() + at + 4, rec.data(), rec.size());
    tail_.store(tail + need, std::memory_order_release);
    return true;
  }

  /// Producer thread: bytes in use (may lag the consumer).
  std::size_t used_by_producer() const noexcept {
    return static_cast<std::size_t>(tail_.load(std::memory_order_relaxed) - head_cache_);
  }

  /// Consumer thread only. Calls `fn(std::string_view)` for each record present when called, then
  /// frees their space. The views are valid only during the call.
  template <class Fn>
  std::size_t drain(Fn&& fn) {
    const std::uint64_t tail = tail_.load(std::memory_order_acquire);
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    std::size_t n = 0;
    while (head != tail) {
      const std::size_t off = static_cast<std::size_t>(head % cap_);
      std::uint32_t len;
      std::memcpy(&len, buf_.get() + off, 4);
      if (len == kWrap) {
        head += cap_ - off;
        continue;
      }
      fn(std::string_view(reinterpret_cast<const char*>(buf_.get()) + off + 4, len));
      head += 4 + ((len + 3) & ~std::uint32_t{3});
      ++n;
    }
    head_.store(head, std::memory_order_release);
    return n;
  }

  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  static constexpr std::uint32_t kWrap = 0xFFFFFFFFu;
  void put_len(std::size_t off, std::uint32_t len) noexcept { std::memcpy(buf_.get() + off, &len, 4); }

  const std::size_t cap_;
  std::unique_ptr<unsigned char[]> buf_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // consumer: bytes consumed
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // producer: bytes published
  std::uint64_t head_cache_ = 0;                    // producer's last view of head_
};

}  // namespace phigate::audit::detail
