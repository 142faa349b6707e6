#include "phigate/access/cidr.hpp"

#include <gtest/gtest.h>

namespace phigate::access {
namespace {

bool in(const CidrSet& s, const char* ip) {
  return s.contains(*parse_address(ip));
}

TEST(Cidr, V4AndV6Membership) {
  CidrSet s;
  s.add(*parse_cidr("10.0.0.0/8"));
  s.add(*parse_cidr("192.168.1.7"));
  s.add(*parse_cidr("2001:db8::/32"));
  EXPECT_TRUE(in(s, "10.200.3.4"));
  EXPECT_FALSE(in(s, "11.0.0.1"));
  EXPECT_TRUE(in(s, "192.168.1.7"));
  EXPECT_FALSE(in(s, "192.168.1.8"));
  EXPECT_TRUE(in(s, "2001:db8:1::5"));
  EXPECT_FALSE(in(s, "2001:db9::1"));
}

TEST(Cidr, RejectsHostBitsAndJunk) {
  EXPECT_FALSE(parse_cidr("10.0.0.1/8"));
  EXPECT_FALSE(parse_cidr("10.0.0.0/33"));
  EXPECT_FALSE(parse_cidr("nonsense"));
  EXPECT_FALSE(parse_cidr("10.0.0.0/"));
  EXPECT_TRUE(parse_cidr("0.0.0.0/0"));
  EXPECT_TRUE(parse_cidr("::/0"));
}

TEST(Cidr, OddPrefixLengths) {
  CidrSet s;
  s.add(*parse_cidr("172.16.0.0/12"));
  EXPECT_TRUE(in(s, "172.31.255.255"));
  EXPECT_FALSE(in(s, "172.32.0.0"));
}

}  // namespace
}  // namespace phigate::access
