#include "phigate/core/error.hpp"

#include <gtest/gtest.h>

#include "phigate/core/ids.hpp"
#include "phigate/core/result.hpp"

namespace phigate::core {
namespace {

TEST(ErrorTable, KindsMapToStatusAndReason) {
  EXPECT_EQ(Error::downstream(ErrorKind::NoRoute).status(), 404);
  EXPECT_EQ(Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes).status(), 502);
  EXPECT_EQ(Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No).status(), 504);
  EXPECT_EQ(Error::upstream(ErrorKind::ConnectTimeout, Retryable::No).status(), 504);
  EXPECT_EQ(Error::downstream(ErrorKind::HeaderTooLarge).status(), 431);
  EXPECT_EQ(Error::downstream(ErrorKind::ClientClosed).status(), 0);
  EXPECT_EQ(Error::downstream(ErrorKind::BadRequest, "x").to_string(), "bad_request: x");
}

TEST(Result, HoldsValueOrError) {
  Result<int> ok = 7;
  Result<int> bad = Error::internal("boom");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 7);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().context, "boom");
}

TEST(RequestId, Is32HexDigitsAndVaries) {
  FastRandom rng;
  std::string a, b;
  make_request_id(rng, a);
  make_request_id(rng, b);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(RequestId, DigitsAreTheTwoRandomWordsNibbleByNibbleLowFirst) {
  FastRandom rng;
  FastRandom same = rng;  // the same state: the same two words
  for (int round = 0; round < 100; ++round) {
    std::string id;
    make_request_id(rng, id);
    std::string want;
    for (int half = 0; half < 2; ++half) {
      std::uint64_t v = same.next();
      for (int i = 0; i < 16; ++i, v >>= 4) want += "0123456789abcdef"[v & 0xf];
    }
    ASSERT_EQ(id, want);
  }
}

}  // namespace
}  // namespace phigate::core
