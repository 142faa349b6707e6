#pragma once
// Private to proxy: proxy-request-buffering's per-worker byte budget. Sans-I/O (no Asio): the
// budget is the worker's gauge of bytes held (metrics::WorkerShard::request_buffer_bytes, single
// writer: the worker's thread), and a BodyHold is one request's share of it, given back when the
// hold is destroyed. The hold lives in the request's state (InFlight, or an HTTP/2 stream's frame),
// which every path that ends the request destroys: nothing is released by hand.
//
// What is charged is memory actually allocated for the body (its capacity), as bytes arrive:
// never an announced length (a Content-Length costs the client nothing to send, review F1). An
// HTTP/2 connection's streams also share a per-connection cap (ConnShare), so that one connection
// cannot take the worker's whole budget.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "phigate/metrics/worker_shard.hpp"

namespace phigate::proxy::detail {

/// The bytes a connection's requests hold together, and the most they may (HTTP/2: its streams).
struct ConnShare {
  std::uint64_t held = 0;
  std::uint64_t limit = 0;  // 0: no cap of its own
};

class BodyHold {
 public:
  BodyHold() = default;
  BodyHold(const BodyHold&) = delete;
  BodyHold& operator=(const BodyHold&) = delete;
  BodyHold(BodyHold&& o) noexcept
      : held_(std::exchange(o.held_, nullptr)),
        share_(std::exchange(o.share_, nullptr)),
        bytes_(std::exchange(o.bytes_, 0)) {}
  BodyHold& operator=(BodyHold&& o) noexcept {
    if (this != &o) {
      release();
      held_ = std::exchange(o.held_, nullptr);
      share_ = std::exchange(o.share_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~BodyHold() { release(); }

  /// Grows this hold to `total` bytes of `held` (the worker's gauge), unless that takes the gauge
  /// over `limit`, or `share` (when given) over its own limit: false then, and nothing changes (the
  /// request is shed, never queued). A hold is tied to the first gauge and share it takes from.
  /// Shrinking is release()'s job.
  bool grow_to(metrics::Gauge& held, std::uint64_t total, std::uint64_t limit,
               ConnShare* share = nullptr) noexcept {
    if (held_ != nullptr && (held_ != &held || share_ != share)) return false;
    if (total <= bytes_) return true;
    const auto more = total - bytes_;
    const auto now = static_cast<std::uint64_t>(held.get());
    if (now > limit || more > limit - now) return false;
    if (share != nullptr && share->limit != 0 &&
        (share->held > share->limit || more > share->limit - share->held)) {
      return false;
    }
    held.add(static_cast<std::int64_t>(more));
    if (share != nullptr) share->held += more;
    held_ = &held;
    share_ = share;
    bytes_ = total;
    return true;
  }
  /// Gives every byte back (also done by the destructor).
  void release() noexcept {
    if (held_ != nullptr && bytes_ != 0) held_->add(-static_cast<std::int64_t>(bytes_));
    if (share_ != nullptr) share_->held -= std::min(share_->held, bytes_);
    bytes_ = 0;
    held_ = nullptr;
    share_ = nullptr;
  }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  metrics::Gauge* held_ = nullptr;
  ConnShare* share_ = nullptr;
  std::uint64_t bytes_ = 0;
};

inline bool make_body_room(std::string& body, std::uint64_t want, std::uint64_t most, BodyHold& hold,
                           metrics::Gauge& held, std::uint64_t limit, ConnShare* share = nullptr) {
  want = std::min(want, most);
  if (want <= body.capacity() && hold.bytes() >= body.capacity()) return true;
  const auto step = std::max<std::uint64_t>(want, 2 * static_cast<std::uint64_t>(body.capacity()));
  const auto cap = std::max<std::uint64_t>(std::min(step, most), body.size());
  if (!hold.grow_to(held, cap, limit, share)) return false;
  std::string fresh;
  fresh.reserve(static_cast<std::size_t>(cap));  // from empty: exactly `cap` (beyond the short-string size)
  fresh.append(body);
  body.swap(fresh);
  // Below the short-string size the capacity is a few bytes more than asked: charged when it fits.
  if (body.capacity() > cap) static_cast<void>(hold.grow_to(held, body.capacity(), limit, share));
  return true;
}

}  // namespace phigate::proxy::detail
