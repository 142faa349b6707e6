#include "phigate/http/host.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::http {
namespace {

TEST(ValidHost, NamesAddressesAndPortsAccepted) {
  for (const char* h : {"", "app.example", "APP.Example", "app.example.", "app.example:443",
                        "app.example:", "a", "my_host.internal", "127.0.0.1", "127.0.0.1:8443", "[::1]",
                        "[::1]:443", "[::1]:", "[2001:db8::1]", "[2001:db8:0:0:0:0:0:1]",
                        "[::ffff:192.0.2.1]", "[::0.0.0.0]", "[1:2:3:4:5:6:255.255.255.255]", "[fe80::]"}) {
    EXPECT_TRUE(valid_host(h)) << h;
  }
}

TEST(ValidHost, AmbiguousOrInjectedHostsRefused) {
  // Each of these is read as one host by one parser and as another (or as a path) by the next.
  for (const char* h : {"a.example:@b.example",
                        "user@a.example",
                        "a.example/..",
                        "a.example\\b",
                        "a.example?x",
                        "a.example#x",
                        "a .example",
                        "a.example\t",
                        "a%2eexample",
                        "a..example",
                        ".a.example",
                        "a.example..",
                        "a.example:80:80",
                        "a.example:65536",
                        "a.example:123456",
                        "a.example:8a",
                        "[::1",
                        "[::1]x",
                        "[::1]:99999",
                        "[]",
                        "[:::1]",
                        "[1::2::3]",
                        "[::1%eth0]",
                        "[1:2:3:4:5:6:7:8:9]",
                        "[12345::]",
                        "[1:2:3:4:5:6:7]",
                        "[::...]",
                        "[db8::0.000.0.10]",
                        "[::999.1.1.1]",
                        "[::1.2.3]",
                        "[::1.2.3.4.5]",
                        "[::01.2.3.4]",
                        "a,b",
                        "a;b",
                        "a(b)",
                        "a*b"}) {
    EXPECT_FALSE(valid_host(h)) << h;
  }
  EXPECT_FALSE(valid_host(std::string_view("a\0b", 3)));
  EXPECT_FALSE(valid_host(std::string(64, 'a') + ".example"));  // label over 63
  EXPECT_FALSE(valid_host(std::string(254, 'a')));
}

}  // namespace
}  // namespace phigate::http
