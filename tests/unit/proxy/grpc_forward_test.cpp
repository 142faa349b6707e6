// gRPC forwarding's pure parts: what is a gRPC request, grpc-timeout, the grpc-status phigate
// answers with, and its trailers-only replies (against a fake client stream).
#include "grpc_forward.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace phigate::proxy::detail {
namespace {

using core::Error;
using core::ErrorKind;
using core::Retryable;
using namespace std::chrono;

http::HeaderList with_type(std::string_view ct) {
  http::HeaderList h;
  h.add("Content-Type", ct);
  return h;
}

TEST(GrpcForward, IsGrpcRequest_ApplicationGrpcAndItsSubtypesOnly) {
  EXPECT_TRUE(is_grpc_request(with_type("application/grpc")));
  EXPECT_TRUE(is_grpc_request(with_type("application/grpc+proto")));
  EXPECT_TRUE(is_grpc_request(with_type("Application/GRPC+json")));
  EXPECT_TRUE(is_grpc_request(with_type("application/grpc;charset=utf-8")));
  EXPECT_FALSE(is_grpc_request(with_type("application/grpc-web")));  // another protocol
  EXPECT_FALSE(is_grpc_request(with_type("application/grpcx")));
  EXPECT_FALSE(is_grpc_request(with_type("application/json")));
  EXPECT_FALSE(is_grpc_request(with_type("application/grp")));
  EXPECT_FALSE(is_grpc_request(http::HeaderList()));
}

TEST(GrpcForward, GrpcTimeout_EveryUnit) {
  EXPECT_EQ(parse_grpc_timeout("1H"), duration_cast<nanoseconds>(hours(1)));
  EXPECT_EQ(parse_grpc_timeout("2M"), duration_cast<nanoseconds>(minutes(2)));
  EXPECT_EQ(parse_grpc_timeout("3S"), duration_cast<nanoseconds>(seconds(3)));
  EXPECT_EQ(parse_grpc_timeout("250m"), duration_cast<nanoseconds>(milliseconds(250)));
  EXPECT_EQ(parse_grpc_timeout("100u"), duration_cast<nanoseconds>(microseconds(100)));
  EXPECT_EQ(parse_grpc_timeout("99999999n"), nanoseconds(99999999));
  EXPECT_EQ(parse_grpc_timeout("0S"), nanoseconds(0));
}

TEST(GrpcForward, GrpcTimeout_MalformedIsRefusedAndHugeIsCapped) {
  for (const char* bad :
       {"", "S", "1", "123456789S", "1s", "1h", "-1S", "1 S", " 1S", "1.5S", "1SS", "0x1S"}) {
    EXPECT_FALSE(parse_grpc_timeout(bad).has_value()) << bad;
  }
  // 99,999,999 hours overflows nanoseconds: capped at a day.
  EXPECT_EQ(parse_grpc_timeout("99999999H"), duration_cast<nanoseconds>(hours(24)));
  EXPECT_EQ(parse_grpc_timeout("99999999S"), duration_cast<nanoseconds>(hours(24)));
}

TEST(GrpcForward, GrpcStatusOf_PhigatesOwnRefusals) {
  const auto up = [](ErrorKind k) { return grpc_status_of(Error::upstream(k, Retryable::No)); };
  const auto down = [](ErrorKind k) { return grpc_status_of(Error::downstream(k)); };
  EXPECT_EQ(down(ErrorKind::NoRoute), 12);            // UNIMPLEMENTED
  EXPECT_EQ(down(ErrorKind::Denied), 7);              // PERMISSION_DENIED
  EXPECT_EQ(down(ErrorKind::ClientCertificate), 16);  // UNAUTHENTICATED
  EXPECT_EQ(up(ErrorKind::NoHealthyEndpoint), 14);    // UNAVAILABLE
  EXPECT_EQ(up(ErrorKind::ConnectRefused), 14);
  EXPECT_EQ(up(ErrorKind::UpstreamReset), 14);
  EXPECT_EQ(up(ErrorKind::UpstreamTls), 14);
  EXPECT_EQ(up(ErrorKind::ConnectTimeout), 4);  // DEADLINE_EXCEEDED
  EXPECT_EQ(up(ErrorKind::UpstreamTimeout), 4);
  EXPECT_EQ(down(ErrorKind::BodyTooLarge), 8);  // RESOURCE_EXHAUSTED
  EXPECT_EQ(down(ErrorKind::HeaderTooLarge), 8);
  EXPECT_EQ(down(ErrorKind::BadRequest), 13);  // INTERNAL
  EXPECT_EQ(grpc_status_of(Error::internal("x")), 13);
  EXPECT_EQ(down(ErrorKind::ClientClosed), 1);  // CANCELLED
}

/// A client stream that records what the forwarder sends.
class FakeStream final : public ClientStream {
 public:
  FakeStream() : req_(head_) {}
  Request& request() noexcept override { return req_; }
  RequestFacts& facts() noexcept override { return facts_; }
  net::awaitable<std::optional<Error>> read_body(std::string& /*out*/, bool& done) override {
    done = true;
    co_return std::nullopt;
  }
  void body_forwarded(std::size_t) noexcept override {}
  const http::HeaderList* request_trailers() const noexcept override { return nullptr; }
  void send_head(int status, const http::HeaderList& fields, bool end_stream) override {
    status_ = status;
    fields_ = fields;
    end_stream_ = end_stream;
    head_sent_ = true;
  }
  net::awaitable<std::optional<Error>> send_body(std::string_view) override { co_return std::nullopt; }
  void end_response(const http::HeaderList*) override {}
  void reset(std::uint32_t code) override { reset_ = static_cast<int>(code); }
  bool head_sent() const noexcept override { return head_sent_; }
  void arm_upstream(Wait, std::chrono::milliseconds) noexcept override {}
  bool upstream_timed_out() const noexcept override { return false; }

  http::MessageHead head_;
  Request req_;
  RequestFacts facts_;
  int status_ = 0;
  http::HeaderList fields_;
  bool end_stream_ = false;
  bool head_sent_ = false;
  int reset_ = -1;
};

TEST(GrpcForward, ReplyGrpcError_IsTrailersOnlyOver200) {
  FakeStream s;
  reply_grpc_error(s, Error::downstream(ErrorKind::NoRoute));
  EXPECT_EQ(s.status_, 200);
  EXPECT_TRUE(s.end_stream_);  // one HEADERS frame with END_STREAM
  ASSERT_NE(s.fields_.find("content-type"), nullptr);
  EXPECT_EQ(*s.fields_.find("content-type"), "application/grpc");
  ASSERT_NE(s.fields_.find("grpc-status"), nullptr);
  EXPECT_EQ(*s.fields_.find("grpc-status"), "12");
  ASSERT_NE(s.fields_.find("grpc-message"), nullptr);
  EXPECT_FALSE(s.fields_.find("grpc-message")->empty());
  EXPECT_EQ(s.facts_.grpc_status, 12);
  EXPECT_EQ(s.facts_.status, 200);
  EXPECT_EQ(s.reset_, -1);
}

}  // namespace
}  // namespace phigate::proxy::detail
