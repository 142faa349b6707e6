#include "websocket_key.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace phigate::proxy::detail {
namespace {

TEST(WebSocketKey, AcceptIsRfc6455Example) {
  // RFC 6455 §1.3 and §4.2.2.
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketKey, KeysAreSixteenRandomBytesInBase64) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string k;
    ASSERT_TRUE(new_websocket_key(k));
    EXPECT_EQ(k.size(), 24u);  // base64 of 16 bytes: 22 symbols and "=="
    EXPECT_EQ(k.substr(22), "==");
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace phigate::proxy::detail
