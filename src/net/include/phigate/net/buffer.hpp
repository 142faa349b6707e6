#pragma once
// A fixed-capacity byte buffer with a read window [begin, end): bodies stream through one of
// these per direction, so a 1 GiB body uses the same memory as 1 KiB.
#include <cstddef>
#include <cstring>
#include <memory>

namespace phigate::net {

class Buffer {
 public:
  explicit Buffer(std::size_t capacity) : cap_(capacity) {}

  char* data() {
    ensure();
    return data_.get() + begin_;
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
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return data_.get() + end_;
  }
  std::size_t space_size() const noexcept { return cap_ - end_; }
  void commit(std::size_t n) noexcept { end_ += n; }
  /// Frees the storage while empty (idle connections hold no buffer).
  void release() noexcept {
    if (empty()) data_.reset();
  }

 private:
  void ensure() {
    if (!data_) data_ = std::make_unique_for_overwrite<char[]>(cap_);
  }
  std::unique_ptr<char[]> data_;
  std::size_t cap_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace phigate::net
