#pragma once
// Private to proxy: proxy-request-buffering's per-worker byte budget. Sans-I/O (no Asio): the
// budget is the worker's gauge of bytes held (metrics::WorkerShard::request_buffer_bytes, single
// writer: the worker's thread), and a BodyHold is one request's share of it, given back when the
// hold is destroyed. The hold lives in the request's state (InFlight, or an HTTP/2 stream's frame),
// which every path that ends the request destroys: nothing is released by hand.
#include <cstdint>
#include <utility>

#include "phigate/metrics/worker_shard.hpp"

namespace phigate::proxy::detail {

class BodyHold {
 public:
  BodyHold() = default;
  BodyHold(const BodyHold&) = delete;
  BodyHold& operator=(const BodyHold&) = delete;
  BodyHold(BodyHold&& o) noexcept
      : held_(std::exchange(o.held_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  BodyHold& operator=(BodyHold&& o) noexcept {
    if (this != &o) {
      release();
      held_ = std::exchange(o.held_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~BodyHold() { release(); }

  /// Grows this hold to `total` bytes of `held` (the worker's gauge), unless that takes the gauge
  /// over `limit`: false then, and nothing changes (the request is shed, never queued). A hold is
  /// tied to the first gauge it takes from. Shrinking is release()'s job.
  bool grow_to(metrics::Gauge& held, std::uint64_t total, std::uint64_t limit) noexcept {
    if (held_ != nullptr && held_ != &held) return false;
    if (total <= bytes_) return true;
    const auto more = total - bytes_;
    const auto now = static_cast<std::uint64_t>(held.get());
    if (now > limit || more > limit - now) return false;
    held.add(static_cast<std::int64_t>(more));
    held_ = &held;
    bytes_ = total;
    return true;
  }
  /// Gives every byte back (also done by the destructor).
  void release() noexcept {
    if (held_ != nullptr && bytes_ != 0) held_->add(-static_cast<std::int64_t>(bytes_));
    bytes_ = 0;
    held_ = nullptr;
  }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  metrics::Gauge* held_ = nullptr;
  std::uint64_t bytes_ = 0;
};

}  // namespace phigate::proxy::detail
