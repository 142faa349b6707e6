// The retry rules (upstream/retry.hpp), case by case: what may be sent again, and the budget.
#include "phigate/upstream/retry.hpp"

#include <gtest/gtest.h>

namespace phigate::upstream {
namespace {

using core::Error;
using core::ErrorKind;
using core::Retryable;

AttemptEnd end(Failure f, bool idempotent = true, bool body = false, int status = 0) {
  AttemptEnd e;
  e.failure = f;
  e.idempotent = idempotent;
  e.body_consumed = body;
  e.status = status;
  return e;
}

TEST(Retry, IdempotentMethodsAreRfc9110s) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
    EXPECT_TRUE(is_idempotent(m)) << m;
  for (const char* m : {"POST", "PATCH", "CONNECT", "LOCK", "get", "PROPFIND"})
    EXPECT_FALSE(is_idempotent(m)) << m;
}

TEST(Retry, NothingLeftMeansAnyMethodMayGoElsewhere) {
  RetrySettings s;  // error timeout
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::ConnectError, false, true)));
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::ConnectTimeout, false, true)));
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::NotSent, false, false)));
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::NotSent, false, true)))
      << "body bytes may sit in the failed write: a retry would carry a truncated body";
  s.when = kNextTimeout;
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::ConnectError)));
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::ConnectTimeout)));
  s.when = 0;  // off
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::ConnectError)));
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::ConnectTimeout)));
}

TEST(Retry, SentRequestsOnlyWhenIdempotentWithoutABody) {
  RetrySettings s;
  s.when = kNextError | kNextTimeout | kNextHttp502;
  for (auto f : {Failure::Reset, Failure::Timeout}) {
    EXPECT_TRUE(next_upstream_allows(s, end(f)));
    EXPECT_FALSE(next_upstream_allows(s, end(f, false))) << "POST/PATCH once sent: never";
    EXPECT_FALSE(next_upstream_allows(s, end(f, true, true))) << "a consumed body cannot be replayed";
  }
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::Status, true, false, 502)));
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::Status, true, false, 503))) << "not listed";
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::Status, false, false, 502)));
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::Late)));
  s.when = kNextTimeout;
  EXPECT_FALSE(next_upstream_allows(s, end(Failure::Reset)));
  EXPECT_TRUE(next_upstream_allows(s, end(Failure::Timeout)));
}

TEST(Retry, StatusConditionBits) {
  EXPECT_EQ(status_condition(500), kNextHttp500);
  EXPECT_EQ(status_condition(502), kNextHttp502);
  EXPECT_EQ(status_condition(503), kNextHttp503);
  EXPECT_EQ(status_condition(504), kNextHttp504);
  EXPECT_EQ(status_condition(429), kNextHttp429);
  EXPECT_EQ(status_condition(200), 0);
  EXPECT_EQ(status_condition(501), 0);
}

TEST(Retry, StaleConnectionRetryIsForIdempotentResetsOnPooledConnections) {
  auto e = end(Failure::Reset);
  EXPECT_FALSE(stale_connection_retry(e)) << "a fresh connection that reset is the endpoint's failure";
  e.reused = true;
  EXPECT_TRUE(stale_connection_retry(e));
  e.idempotent = false;
  EXPECT_FALSE(stale_connection_retry(e));
  e = end(Failure::Timeout);
  e.reused = true;
  EXPECT_FALSE(stale_connection_retry(e)) << "a timeout is not an idle-close race";
}

TEST(Retry, ClassifyByWhatLeft) {
  const auto refused = Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes);
  const auto ctimeout = Error::upstream(ErrorKind::ConnectTimeout, Retryable::No);
  const auto reset = Error::upstream(ErrorKind::UpstreamReset, Retryable::OnlyIfReused);
  const auto timeout = Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No);
  EXPECT_EQ(classify(refused, 0, false), Failure::ConnectError);
  EXPECT_EQ(classify(ctimeout, 0, false), Failure::ConnectTimeout);
  EXPECT_EQ(classify(reset, 0, false), Failure::NotSent);
  EXPECT_EQ(classify(reset, 100, false), Failure::Reset);
  EXPECT_EQ(classify(timeout, 100, false), Failure::Timeout);
  EXPECT_EQ(classify(reset, 100, true), Failure::Late) << "a response byte arrived";
  EXPECT_EQ(classify(Error::downstream(ErrorKind::ClientClosed), 0, false), Failure::Late);
}

TEST(Retry, BudgetIsAShareOfRequestsPlusAFloor) {
  RetryBudget b;
  b.configure(20, 0);
  while (b.try_spend()) {
  }
  EXPECT_FALSE(b.try_spend());
  for (int i = 0; i < 4; ++i) b.on_request();
  EXPECT_FALSE(b.try_spend()) << "4 requests at 20% are 0.8 of a retry";
  b.on_request();
  EXPECT_TRUE(b.try_spend());
  EXPECT_FALSE(b.try_spend());
  b.configure(20, 3);
  b.on_tick(std::chrono::milliseconds(1000));
  int n = 0;
  while (b.try_spend()) ++n;
  EXPECT_EQ(n, 3) << "3 a second from the floor";
  for (int i = 0; i < 100; ++i) b.on_tick(std::chrono::milliseconds(1000));
  n = 0;
  while (b.try_spend()) ++n;
  EXPECT_EQ(n, 130) << "capped: 10 s of the floor plus 100";
}

}  // namespace
}  // namespace phigate::upstream
