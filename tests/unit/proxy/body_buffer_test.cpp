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

// One HTTP/2 connection's streams share a cap of their own: a stream that would take the
// connection past it is shed although the worker's budget has room; releases give the share back.
TEST(BodyHold, AConnectionShareCapsItsStreamsTogether) {
  metrics::Gauge held;
  ConnShare share{.held = 0, .limit = 500};
  BodyHold a;
  BodyHold b;
  EXPECT_TRUE(a.grow_to(held, 300, 10000, &share));
  EXPECT_FALSE(b.grow_to(held, 201, 10000, &share));  // 300 + 201 > 500
  EXPECT_EQ(held.get(), 300);
  EXPECT_TRUE(b.grow_to(held, 200, 10000, &share));
  EXPECT_EQ(share.held, 500u);
  EXPECT_FALSE(a.grow_to(held, 250, 10000));  // a hold is tied to its share (else it would be "true")
  a.release();
  EXPECT_EQ(share.held, 200u);
  EXPECT_EQ(held.get(), 200);
  {
    BodyHold moved = std::move(b);
    EXPECT_EQ(share.held, 200u);
  }
  EXPECT_EQ(share.held, 0u);
  EXPECT_EQ(held.get(), 0);
}

// Review F4: what is charged is the memory the body holds (its capacity), grown as bytes arrive,
// at least doubling and never past the most the body may hold; a 1-byte-at-a-time chunked body
// never holds more than it is charged for.
TEST(BodyRoom, TheHoldIsTheCapacityGrownAsBytesArrive) {
  metrics::Gauge held;
  BodyHold hold;
  std::string body;
  // The first allocation is what is at hand (at least twice the short-string size), not a block: a
  // client sending one byte pins a few bytes.
  ASSERT_TRUE(make_body_room(body, 10, 100000, hold, held, 1000000));
  EXPECT_EQ(hold.bytes(), 2 * std::string().capacity());
  EXPECT_EQ(body.capacity(), hold.bytes());
  for (int i = 0; i < 99999; ++i) {
    ASSERT_TRUE(make_body_room(body, body.size() + 1, 100000, hold, held, 1000000));
    const auto cap = body.capacity();
    body.push_back('x');
    ASSERT_EQ(body.capacity(), cap) << "appended within the room made";
    ASSERT_GE(hold.bytes(), body.capacity());
  }
  EXPECT_EQ(hold.bytes(), 100000u);  // capped at the most, not the next doubling (131072)
  EXPECT_EQ(static_cast<std::uint64_t>(held.get()), hold.bytes());
}

TEST(BodyRoom, ShedWhenTheBudgetIsSpentAndNothingChanges) {
  metrics::Gauge held;
  BodyHold other;
  ASSERT_TRUE(other.grow_to(held, 9000, 10000));
  BodyHold hold;
  std::string body = "abc";
  EXPECT_FALSE(make_body_room(body, 5000, 100000, hold, held, 10000));  // 5000 > the 1000 left
  EXPECT_EQ(body, "abc");
  EXPECT_EQ(hold.bytes(), 0u);
  EXPECT_EQ(held.get(), 9000);
}

}  // namespace
}  // namespace phigate::proxy::detail
