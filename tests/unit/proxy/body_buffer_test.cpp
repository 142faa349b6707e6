// proxy-request-buffering: the per-worker byte budget (BodyHold over the worker's gauge) and the
// bound the limits and body-size phases put on a buffered request.
#include <gtest/gtest.h>

#include "body_buffer.hpp"
#include "phases.hpp"

namespace phigate::proxy::detail {
namespace {

TEST(BodyHold, GrowsWithinTheLimitAndGivesEverythingBack) {
  metrics::Gauge held;
  {
    BodyHold a;
    EXPECT_TRUE(a.grow_to(held, 600, 1000));
    EXPECT_EQ(held.get(), 600);
    EXPECT_TRUE(a.grow_to(held, 500, 1000));  // never shrinks by growing
    EXPECT_EQ(a.bytes(), 600u);
    BodyHold b;
    EXPECT_FALSE(b.grow_to(held, 401, 1000));  // 600 + 401 > 1000: shed, nothing taken
    EXPECT_EQ(held.get(), 600);
    EXPECT_EQ(b.bytes(), 0u);
    EXPECT_TRUE(b.grow_to(held, 400, 1000));  // exactly at the limit
    EXPECT_EQ(held.get(), 1000);
    EXPECT_FALSE(a.grow_to(held, 601, 1000));
    EXPECT_EQ(a.bytes(), 600u);
    BodyHold moved = std::move(b);  // a move keeps one owner of the bytes
    EXPECT_EQ(b.bytes(), 0u);
    EXPECT_EQ(held.get(), 1000);
    a.release();
    EXPECT_EQ(held.get(), 400);
    a.release();  // twice: nothing more
    EXPECT_EQ(held.get(), 400);
  }
  EXPECT_EQ(held.get(), 0);  // destroyed: every byte back
}

TEST(BodyHold, HugeRequestsNeverWrapTheBudget) {
  metrics::Gauge held;
  BodyHold a;
  EXPECT_TRUE(a.grow_to(held, 10, 64));
  BodyHold b;
  EXPECT_FALSE(b.grow_to(held, UINT64_MAX, 64));
  EXPECT_FALSE(b.grow_to(held, UINT64_MAX - 5, 64));
  EXPECT_EQ(held.get(), 10);
  // The limit lowered under what is held (a reload): nothing more is given, what is held stays.
  EXPECT_FALSE(b.grow_to(held, 1, 5));
  EXPECT_EQ(held.get(), 10);
  metrics::Gauge other;
  EXPECT_FALSE(a.grow_to(other, 20, 64));  // a hold belongs to one worker's gauge
}

struct BufferFixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  config::RoutePolicy pol;
  http::MessageHead head;
  Request r{head};
  ConnectionView view{};
  BufferFixture() {
    cfg->limits.request_buffer_bytes = 1000;
    snap.config = cfg;
    r.policy = &pol;
  }
  PhaseResult run(std::optional<std::uint64_t> content_length) {
    head.content_length = content_length;
    if (auto d = phase::limits(r, snap, view)) return d;
    return phase::body_size(r, snap, view);
  }
};

TEST(BufferingPhases, BoundIsTheSmallerOfTheAnnotationAndTheLimit) {
  BufferFixture f;
  EXPECT_FALSE(f.run(5000));  // streamed: no bound but proxy-body-size
  EXPECT_FALSE(f.r.limits.buffer_body);
  f.pol.request_buffering = true;
  EXPECT_FALSE(f.run(1000));
  EXPECT_TRUE(f.r.limits.buffer_body);
  EXPECT_EQ(f.r.limits.buffer_bytes, 1000u);  // default: limits.request_buffer_bytes
  f.pol.body_buffer_bytes = 100;
  EXPECT_FALSE(f.run(100));
  EXPECT_EQ(f.r.limits.buffer_bytes, 100u);
  f.pol.body_buffer_bytes = 1u << 30;  // capped
  EXPECT_FALSE(f.run(std::nullopt));
  EXPECT_EQ(f.r.limits.buffer_bytes, 1000u);
}

TEST(BufferingPhases, ContentLengthOverTheBound_413BeforeAnyByteIsRead) {
  BufferFixture f;
  f.pol.request_buffering = true;
  f.pol.body_buffer_bytes = 100;
  const auto d = f.run(101);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, core::Outcome::BodyTooLarge);
  EXPECT_EQ(decision_status(*d), 413);
  EXPECT_TRUE(d->must_close);         // the unread body must never be read as a request
  EXPECT_FALSE(f.run(std::nullopt));  // chunked: refused as it crosses the bound, by the proxy
  f.pol.request_buffering = false;
  EXPECT_FALSE(f.run(101));
}

}  // namespace
}  // namespace phigate::proxy::detail
