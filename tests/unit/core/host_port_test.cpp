#include "phigate/core/host_port.hpp"

#include <gtest/gtest.h>

namespace phigate::core {
namespace {

TEST(SplitHostPort, NamesAndIpv4) {
  std::string h;
  std::uint16_t p = 0;
  ASSERT_TRUE(split_host_port("127.0.0.1:8443", h, p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 8443);
  ASSERT_TRUE(split_host_port("backend.svc:80", h, p));
  EXPECT_EQ(h, "backend.svc");
  EXPECT_EQ(p, 80);
}

TEST(SplitHostPort, Ipv6NeedsBrackets) {
  std::string h;
  std::uint16_t p = 1;
  ASSERT_TRUE(split_host_port("[::1]:0", h, p));
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 0);
  ASSERT_TRUE(split_host_port("[2001:db8::1]:443", h, p));
  EXPECT_EQ(h, "2001:db8::1");
  EXPECT_EQ(p, 443);
  EXPECT_FALSE(split_host_port("::1:80", h, p));  // ambiguous without brackets
  EXPECT_FALSE(split_host_port("[::1]", h, p));   // no port
  EXPECT_FALSE(split_host_port("[::1]80", h, p));
  EXPECT_FALSE(split_host_port("[::1:80", h, p));
  EXPECT_FALSE(split_host_port("[]:80", h, p));
}

TEST(SplitHostPort, MissingOrBadPort) {
  std::string h = "unchanged";
  std::uint16_t p = 7;
  EXPECT_FALSE(split_host_port("host", h, p));
  EXPECT_FALSE(split_host_port("host:", h, p));
  EXPECT_FALSE(split_host_port(":80", h, p));
  EXPECT_FALSE(split_host_port("host:+80", h, p));
  EXPECT_FALSE(split_host_port("host:80x", h, p));
  EXPECT_FALSE(split_host_port("host: 80", h, p));
  EXPECT_FALSE(split_host_port("", h, p));
  EXPECT_EQ(h, "unchanged");  // outputs untouched on failure
  EXPECT_EQ(p, 7);
}

TEST(SplitHostPort, PortRange) {
  std::string h;
  std::uint16_t p = 0;
  ASSERT_TRUE(split_host_port("host:65535", h, p));
  EXPECT_EQ(p, 65535);
  EXPECT_FALSE(split_host_port("host:65536", h, p));
  EXPECT_FALSE(split_host_port("host:70000", h, p));
  EXPECT_FALSE(split_host_port("host:99999999999999999999", h, p));
  EXPECT_FALSE(split_host_port("host:-1", h, p));
}

}  // namespace
}  // namespace phigate::core
