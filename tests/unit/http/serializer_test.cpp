#include "phigate/http/serializer.hpp"

#include <gtest/gtest.h>

namespace phigate::http {
namespace {

TEST(Serializer, RequestHeadWithFraming) {
  HeaderList h;
  h.add("Host", "a");
  std::string out;
  append_request_head(out, "POST", "/x?y", h, {Framing::Kind::ContentLength, 12});
  EXPECT_EQ(out, "POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
  out.clear();
  append_request_head(out, "POST", "/", h, {Framing::Kind::Chunked, 0});
  EXPECT_EQ(out, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(Serializer, ResponseHeadForHttp10KeepsAliveExplicitly) {
  HeaderList h;
  std::string out;
  append_response_head(out, 200, "", 0, h, {Framing::Kind::ContentLength, 0}, false);
  EXPECT_EQ(out, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(Serializer, LocalReplyWithLocationAndClose) {
  std::string out;
  append_local_reply(out, 308, 1, true, "moved\n", "https://a/b");
  EXPECT_EQ(
      out,
      "HTTP/1.1 308 Permanent Redirect\r\nServer: phigate\r\nContent-Type: text/plain\r\nContent-Length: "
      "6\r\nLocation: https://a/b\r\nConnection: close\r\n\r\nmoved\n");
}

TEST(Serializer, ChunkHeaderIsHex) {
  std::string out;
  append_chunk_header(out, 255);
  EXPECT_EQ(out, "ff\r\n");
}

}  // namespace
}  // namespace phigate::http
