#include "phigate/net/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::net::proxy_protocol {
namespace {

Result parse_text(const std::string& s) {
  return parse(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

// An empty buffer's data() may be null: parse must not pass it to memcmp (undefined behaviour even
// for 0 bytes, which UBSan reports in the asan test run). Found by fuzz/proxy_protocol.cpp.
TEST(ProxyProtocol, NothingReceivedNeedsMore) {
  const auto r = parse(nullptr, 0);
  EXPECT_EQ(r.status, Status::NeedMore);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(ProxyProtocol, V1Tcp4) {
  const auto r = parse_text("PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /");
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, 41u);
  EXPECT_FALSE(r.local);
  EXPECT_EQ(r.source_ip, "192.0.2.7");
  EXPECT_EQ(r.source_port, 56324);
}

TEST(ProxyProtocol, V1Tcp6AndUnknown) {
  auto r = parse_text("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.source_ip, "2001:db8::1");
  r = parse_text("PROXY UNKNOWN ffff::1 ::1 1 2\r\n");
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_TRUE(r.local);
}

TEST(ProxyProtocol, V1PrefixesNeedMore) {
  const std::string full = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n";
  for (std::size_t i = 1; i < full.size(); ++i) {
    EXPECT_EQ(parse_text(full.substr(0, i)).status, Status::NeedMore) << i;
  }
}

TEST(ProxyProtocol, V1Malformed) {
  for (const char* bad :
       {"PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n", "PROXY TCP4 192.0.2.700 10.0.0.1 1 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "GET / HTTP/1.1\r\n", "\x16\x03\x01"}) {
    EXPECT_EQ(parse_text(bad).status, Status::Invalid) << bad;
  }
  EXPECT_EQ(parse_text("PROXY " + std::string(120, 'x')).status, Status::Invalid);
}

// The verdict must not depend on how the header was split into reads: a bare CR is refused while the
// CRLF is still missing, so it must be refused once the CRLF has arrived too (the UNKNOWN form, whose
// rest is otherwise ignored, used to accept it). Found by fuzz/proxy_protocol.cpp.
TEST(ProxyProtocol, V1BareCrRefusedWhateverTheSplit) {
  const std::string header = "PROXY UNKNOWN a\rb\r\n";
  EXPECT_EQ(parse_text(header.substr(0, 17)).status, Status::Invalid);  // "...a\rb": bare CR
  EXPECT_EQ(parse_text(header).status, Status::Invalid);
  EXPECT_EQ(parse_text("PROXY TCP4 1.2.3.4\n 1.2.3.4 1 2\r\n").status, Status::Invalid);
}

TEST(ProxyProtocol, V2Inet) {
  std::string body = {'\xC0', '\x00', '\x02', '\x07', 10, 0, 0, 1, '\xDC', '\x04', 1, '\xBB'};
  const auto h = v2(0x21, 0x11, body);
  const auto r = parse_text(h + "\x16\x03\x01");
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, 28u);
  EXPECT_EQ(r.source_ip, "192.0.2.7");
  EXPECT_EQ(r.source_port, 56324);
  for (std::size_t i = 1; i < h.size(); ++i)
    EXPECT_EQ(parse_text(h.substr(0, i)).status, Status::NeedMore) << i;
}

TEST(ProxyProtocol, V2Inet6WithTlvs) {
  std::string body(36, '\0');
  body[0] = '\x20';
  body[1] = '\x01';
  body[2] = '\x0d';
  body[3] = '\xb8';
  body[15] = 1;
  body[32] = 0x12;
  body[33] = 0x34;
  body += std::string(
      "\x04\x00\x03"
      "abc",
      6);  // a TLV: skipped
  const auto r = parse_text(v2(0x21, 0x21, body));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, 16u + 42u);
  EXPECT_EQ(r.source_ip, "2001:db8::1");
  EXPECT_EQ(r.source_port, 0x1234);
}

TEST(ProxyProtocol, V2LocalAndUnspec) {
  auto r = parse_text(v2(0x20, 0x00, ""));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_TRUE(r.local);
  r = parse_text(v2(0x21, 0x00, ""));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_TRUE(r.local);
}

TEST(ProxyProtocol, V2Malformed) {
  EXPECT_EQ(parse_text(v2(0x11, 0x11, std::string(12, '\0'))).status, Status::Invalid);  // version 1
  EXPECT_EQ(parse_text(v2(0x22, 0x11, std::string(12, '\0'))).status, Status::Invalid);  // command 2
  EXPECT_EQ(parse_text(v2(0x21, 0x12, std::string(12, '\0'))).status, Status::Invalid);  // DGRAM
  EXPECT_EQ(parse_text(v2(0x21, 0x11, std::string(8, '\0'))).status, Status::Invalid);   // short
  EXPECT_EQ(parse_text(v2(0x21, 0x21, std::string(12, '\0'))).status, Status::Invalid);
  EXPECT_EQ(parse_text(v2(0x21, 0x31, std::string(12, '\0'))).status, Status::Invalid);  // AF_UNIX
  EXPECT_EQ(parse_text(v2(0x21, 0x11, std::string(2000, '\0'))).status, Status::Invalid);
}

}  // namespace
}  // namespace phigate::net::proxy_protocol
