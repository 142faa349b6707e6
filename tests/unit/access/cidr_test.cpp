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

TEST(Cidr, CoversAWholeRangeOnlyWhenMembersLeaveNoGap) {
  const auto a = [](const char* ip) { return *parse_address(ip); };
  CidrSet halves;
  halves.add(*parse_cidr("0.0.0.0/1"));
  halves.add(*parse_cidr("128.0.0.0/1"));
  EXPECT_TRUE(halves.covers(a("0.0.0.0"), a("255.255.255.255")));
  EXPECT_FALSE(halves.covers(a("::"), a("::1")));
  CidrSet gap;
  gap.add(*parse_cidr("0.0.0.0/1"));
  gap.add(*parse_cidr("128.0.0.0/2"));
  gap.add(*parse_cidr("224.0.0.0/3"));
  EXPECT_TRUE(gap.covers(a("10.0.0.0"), a("10.255.255.255")));
  EXPECT_FALSE(gap.covers(a("0.0.0.0"), a("255.255.255.255")));  // 192.0.0.0/3 is missing
  EXPECT_FALSE(CidrSet{}.covers(a("10.0.0.1"), a("10.0.0.1")));
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

TEST(Cidr, OverlappingAndAdjacentRangesMerge) {
  CidrSet s;
  s.add(*parse_cidr("10.0.0.0/24"));
  s.add(*parse_cidr("10.0.0.0/16"));  // swallows the /24
  s.add(*parse_cidr("10.1.0.0/16"));  // adjacent: still two ranges, both hit
  EXPECT_TRUE(in(s, "10.0.200.1"));
  EXPECT_TRUE(in(s, "10.1.255.255"));
  EXPECT_FALSE(in(s, "10.2.0.0"));
  EXPECT_FALSE(in(s, "9.255.255.255"));
}

TEST(Cidr, TenThousandRangesStillExact) {
  CidrSet s;
  for (int i = 0; i < 10000; ++i) {
    s.add(*parse_cidr(std::to_string(20 + i / 256) + "." + std::to_string(i % 256) + ".0.0/24"));
  }
  EXPECT_EQ(s.size(), 10000u);
  EXPECT_TRUE(in(s, "20.0.0.7"));
  EXPECT_TRUE(in(s, "59.15.0.255"));  // i = 9999
  EXPECT_FALSE(in(s, "59.15.1.0"));
  EXPECT_FALSE(in(s, "20.0.1.0"));
  EXPECT_FALSE(in(s, "::1"));
}

TEST(AccessList, DenyWinsAndEmptyAllowAdmitsAll) {
  AccessList a;
  EXPECT_TRUE(a.admits(*parse_address("1.2.3.4")));
  a.deny.add(*parse_cidr("1.2.3.4"));
  EXPECT_FALSE(a.admits(*parse_address("1.2.3.4")));
  a.allow.add(*parse_cidr("1.2.3.0/24"));
  EXPECT_FALSE(a.admits(*parse_address("1.2.3.4")));
  EXPECT_TRUE(a.admits(*parse_address("1.2.3.5")));
  EXPECT_FALSE(a.admits(*parse_address("1.2.4.5")));
}

}  // namespace
}  // namespace phigate::access

namespace {
phigate::access::CidrSet trusted_set(std::initializer_list<const char*> cidrs) {
  phigate::access::CidrSet s;
  for (const char* c : cidrs) s.add(*phigate::access::parse_cidr(c));
  return s;
}
}  // namespace

TEST(ClientBehindProxies, RightMostUntrustedWins) {
  const auto t = trusted_set({"10.0.0.0/8"});
  const std::vector<std::string_view> xff{"198.51.100.7, 203.0.113.9", "10.1.1.1 ,10.2.2.2"};
  const auto c = phigate::access::client_behind_proxies(xff, t);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->text, "203.0.113.9");  // not the spoofable left-most entry
}

TEST(ClientBehindProxies, AllTrustedGivesLeftMost) {
  const auto t = trusted_set({"10.0.0.0/8", "2001:db8::/32"});
  const std::vector<std::string_view> xff{"10.9.9.9, 2001:db8::5"};
  const auto c = phigate::access::client_behind_proxies(xff, t);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->text, "10.9.9.9");
}

TEST(ClientBehindProxies, GarbageStopsTheWalk) {
  const auto t = trusted_set({"10.0.0.0/8"});
  EXPECT_FALSE(phigate::access::client_behind_proxies({"not-an-ip"}, t));
  const auto c = phigate::access::client_behind_proxies({"1.2.3.4, junk, 10.0.0.3"}, t);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->text, "10.0.0.3");
  EXPECT_FALSE(phigate::access::client_behind_proxies({}, t));
  EXPECT_FALSE(phigate::access::client_behind_proxies({" , "}, t));
}
