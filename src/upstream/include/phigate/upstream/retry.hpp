#pragma once
// When a failed attempt may be sent to another endpoint (nginx's proxy_next_upstream, with the
// safety rules HTTP sets on re-sending requests), and the per-worker retry budget that keeps
// retries from multiplying an overload. Pure; worker thread only for the budget.
#include <chrono>
#include <cstdint>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/upstream/cluster.hpp"

namespace phigate::upstream {

/// How an attempt failed, as far as re-sending the request is concerned.
enum class Failure {
  ConnectError,    // refused, unreachable, reset during connect: the request never left
  ConnectTimeout,  // the connect deadline passed: the request never left
  NotSent,         // connected, but the connection failed before any request byte was written
  Reset,    // the request (or part of it) was sent; reset, EOF or malformed answer before any response byte
  Timeout,  // the request was sent; the read deadline passed before any response byte
  Status,   // a complete response head whose status is in the retry set (not yet sent to the client)
  Late,     // a response byte reached the client, or the client failed: never retried
};

/// RFC 9110 §9.2.2: methods whose effect does not depend on how many times they are sent. POST,
/// PATCH and unknown methods are not: a second copy may create a second record.
bool is_idempotent(std::string_view method) noexcept;

/// The retry bit of a response status (kNextHttp5xx...), or 0 when no condition names it.
std::uint16_t status_condition(int status) noexcept;

struct AttemptEnd {
  Failure failure = Failure::Late;
  int status = 0;              // Failure::Status
  bool idempotent = false;     // is_idempotent(method)
  bool body_consumed = false;  // a request body byte was read from the client (it cannot be replayed)
  bool reused = false;         // the attempt used a pooled connection
};

/// May the request go to another endpoint after `e`, as far as the conditions and the request go?
/// (Tries, the retry timeout, the budget and whether an untried endpoint exists are the caller's.)
/// - nothing of the request left (ConnectError, ConnectTimeout, NotSent): any method, when the
///   condition (error / timeout) is on — for NotSent only when no body byte was consumed (it may
///   sit in the failed write);
/// - the request left (Reset, Timeout, Status): only idempotent requests whose body was not
///   consumed — the upstream may have acted on the first copy;
/// - Late: never.
bool next_upstream_allows(const RetrySettings& s, const AttemptEnd& e) noexcept;

/// A pooled connection the upstream had closed as we reused it (RFC 9112 §9.3.1): the request may
/// be sent once more on a new connection whatever the conditions say (an idle-close race, not a
/// failing endpoint), when idempotent and without a consumed body. Does not count as a try.
bool stale_connection_retry(const AttemptEnd& e) noexcept;

/// Failure class of an attempt that ended with upstream error `err` (connect or exchange).
/// `request_bytes_sent`: bytes of the request written on this attempt; `response_byte`: a
/// response byte arrived.
Failure classify(const core::Error& err, std::uint64_t request_bytes_sent, bool response_byte) noexcept;

/// Per worker: retries may add at most `percent`% to the requests sent upstream, plus
/// `min_per_second` retries a second so a quiet worker can still retry (the retry budgets of
/// Envoy and Finagle). A token bucket: each request deposits percent/100 of a token, the worker
/// tick deposits min_per_second per second, each retry withdraws one; the bucket holds at most
/// `kCapSeconds` seconds of the floor plus 100 tokens, so a long quiet spell cannot save up a storm.
class RetryBudget {
 public:
  static constexpr double kCapSeconds = 10;
  void configure(unsigned percent, unsigned min_per_second) noexcept;
  void on_request() noexcept { add(per_request_); }
  void on_tick(std::chrono::milliseconds elapsed) noexcept {
    add(floor_per_second_ * static_cast<double>(elapsed.count()) / 1000.0);
  }
  /// Takes one token when there is one (true), else false: the retry is not made.
  bool try_spend() noexcept;
  double tokens() const noexcept { return tokens_; }

 private:
  void add(double t) noexcept { tokens_ = tokens_ + t > cap_ ? cap_ : tokens_ + t; }
  double per_request_ = 0.2;
  double floor_per_second_ = 3;
  double cap_ = 130;
  double tokens_ = 10;
};

}  // namespace phigate::upstream
