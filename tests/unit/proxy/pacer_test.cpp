// limit-rate / limit-rate-after arithmetic (src/proxy/pacer.hpp), event by event: bytes sent,
// time elapsed -> the wait before the next write and the size of that write.
#include "pacer.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace phigate::proxy {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Clock = Pacer::Clock;

TEST(PaceDelay, NoRateOrNothingPacedNeverWaits) {
  EXPECT_EQ(pace_delay(0, 1 << 20, microseconds{0}), microseconds{0});
  EXPECT_EQ(pace_delay(1024, 0, microseconds{0}), microseconds{0});
}

TEST(PaceDelay, BytesOverTheRateWaitUntilTheirTime) {
  // 256 KiB/s: 64 KiB are due at 250 ms.
  EXPECT_EQ(pace_delay(256 * 1024, 64 * 1024, microseconds{0}), milliseconds{250});
  EXPECT_EQ(pace_delay(256 * 1024, 64 * 1024, milliseconds{100}), milliseconds{150});
  EXPECT_EQ(pace_delay(256 * 1024, 64 * 1024, milliseconds{250}), microseconds{0});
  EXPECT_EQ(pace_delay(256 * 1024, 64 * 1024, milliseconds{900}), microseconds{0});  // behind: no wait
  // 1 byte/s: exact seconds; a remainder is a fraction of one.
  EXPECT_EQ(pace_delay(1, 3, microseconds{0}), std::chrono::seconds{3});
  EXPECT_EQ(pace_delay(3, 1, microseconds{0}), microseconds{333333});
  EXPECT_EQ(pace_delay(1024, 1024, microseconds{-5}), std::chrono::seconds{1});  // a clock gone back
}

TEST(PaceDelay, HugeCountsDoNotOverflow) {
  const std::uint64_t rate = 10ull << 30;  // the largest limit-rate, 10 GiB/s
  EXPECT_EQ(pace_delay(rate, rate * 1000, microseconds{0}), std::chrono::seconds{1000});
  EXPECT_EQ(pace_delay(1, ~std::uint64_t{0}, microseconds{0}), std::chrono::hours{24});
}

TEST(Pacer, InactiveIsFree) {
  Pacer p;
  EXPECT_FALSE(p.active());
  EXPECT_EQ(p.slice(1 << 20), 1u << 20);
  EXPECT_EQ(p.before_write(Clock::now()), Clock::duration::zero());
}

TEST(Pacer, EventByEventAtTheRate) {
  Pacer p(8 * 1024, 0);  // 8 KiB/s: 1 KiB slices
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(p.slice(16 * 1024), 1024u);
  EXPECT_EQ(p.before_write(t0), Clock::duration::zero());  // the first paced bytes go at once
  p.sent(1024);
  EXPECT_EQ(p.before_write(t0), milliseconds{125});  // 1 KiB at 8 KiB/s
  EXPECT_EQ(p.before_write(t0 + milliseconds{100}), milliseconds{25});
  EXPECT_EQ(p.before_write(t0 + milliseconds{125}), Clock::duration::zero());
  p.sent(1024);
  EXPECT_EQ(p.before_write(t0 + milliseconds{125}), milliseconds{125});
  // A slow client (or upstream) that fell behind gets no credit beyond the rate since the start:
  // at 1 s, 2 KiB sent, 8 KiB due: 6 KiB may go at once, then the waits come back.
  p.sent(6 * 1024);
  EXPECT_EQ(p.before_write(t0 + milliseconds{1000}), Clock::duration::zero());
  p.sent(1024);
  EXPECT_EQ(p.before_write(t0 + milliseconds{1000}), milliseconds{125});
  EXPECT_EQ(p.bytes(), 9u * 1024);
}

TEST(Pacer, LimitRateAfterGoesAtFullSpeedThenTheClockStarts) {
  Pacer p(4 * 1024, 10 * 1024);  // 4 KiB/s after 10 KiB
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  // Full speed up to the boundary: the slice stops exactly there.
  EXPECT_EQ(p.slice(16 * 1024), 10u * 1024);
  EXPECT_EQ(p.before_write(t0), Clock::duration::zero());
  p.sent(6 * 1024);
  EXPECT_EQ(p.slice(16 * 1024), 4u * 1024);
  EXPECT_EQ(p.before_write(t0 + milliseconds{5}), Clock::duration::zero());
  p.sent(4 * 1024);
  // Now paced; the clock starts at the first paced write (5 s later here: no credit for them).
  EXPECT_EQ(p.slice(16 * 1024), 1024u);  // 4 KiB/s / 8 is under the 1 KiB floor
  const auto t1 = t0 + std::chrono::seconds(5);
  EXPECT_EQ(p.before_write(t1), Clock::duration::zero());
  p.sent(1024);
  EXPECT_EQ(p.before_write(t1), milliseconds{250});
  EXPECT_EQ(p.before_write(t1 + milliseconds{250}), Clock::duration::zero());
}

TEST(Pacer, SlicesAreAnEighthOfASecondBetween1And16KiB) {
  EXPECT_EQ(Pacer(1, 0).slice(100000), 1024u);
  EXPECT_EQ(Pacer(64 * 1024, 0).slice(100000), 8u * 1024);
  EXPECT_EQ(Pacer(256 * 1024, 0).slice(100000), 16u * 1024);
  EXPECT_EQ(Pacer(256 * 1024, 0).slice(100), 100u);  // never more than is ready
}

// 512 KiB at 256 KiB/s in the relay's 16 KiB writes: the last write is due at (512 - 16) / 256 s.
TEST(Pacer, AWholeResponseTakesItsTime) {
  Pacer p(256 * 1024, 0);
  auto now = Clock::time_point{} + std::chrono::hours(1);
  std::uint64_t left = 512 * 1024;
  int writes = 0;
  while (left > 0) {  // bounded: every round sends one slice
    now += p.before_write(now);
    const auto n = p.slice(static_cast<std::size_t>(left));
    p.sent(n);
    left -= n;
    ++writes;
  }
  EXPECT_EQ(writes, 32);
  EXPECT_EQ(now - (Clock::time_point{} + std::chrono::hours(1)), milliseconds{1937} + microseconds{500});
}

}  // namespace
}  // namespace phigate::proxy
