#include "phigate/net/client_hello.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace phigate::net::client_hello {
namespace {

std::string u16(std::size_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
std::string u24(std::size_t v) {
  return {static_cast<char>(v >> 16), static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string extension(unsigned type, const std::string& body) {
  return u16(type) + u16(body.size()) + body;
}

std::string sni(const std::string& name) {
  const std::string entry = std::string(1, '\0') + u16(name.size()) + name;
  return extension(0, u16(entry.size()) + entry);
}

/// A ClientHello handshake message (header included) with these extensions.
std::string hello_message(const std::string& extensions, bool with_extensions = true) {
  std::string body = "\x03\x03";
  body += std::string(32, 'r');                           // random
  body += std::string(1, '\x20') + std::string(32, 's');  // session id
  body += u16(4) + "\x13\x01\x13\x02";                    // cipher suites
  body += std::string("\x01\x00", 2);                     // compression: null
  if (with_extensions) body += u16(extensions.size()) + extensions;
  return std::string(1, '\x01') + u24(body.size()) + body;
}

/// The message in TLS records of at most `fragment` bytes each.
std::string records(const std::string& msg, std::size_t fragment = 16384) {
  std::string out;
  for (std::size_t i = 0; i < msg.size(); i += fragment) {
    const auto part = msg.substr(i, fragment);
    out += std::string("\x16\x03\x01", 3) + u16(part.size()) + part;
  }
  return out;
}

std::string hello(const std::string& name, std::size_t fragment = 16384) {
  return records(
      hello_message(extension(0x000a, u16(2) + "\x00\x1d") + sni(name) + extension(0x002b, "\x02\x03\x04")),
      fragment);
}

Result parse_text(const std::string& s) {
  return parse(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

TEST(ClientHello, NothingReceivedNeedsMore) {
  EXPECT_EQ(parse(nullptr, 0).status, Status::NeedMore);
}

TEST(ClientHello, ReadsTheServerName) {
  const auto r = parse_text(hello("app.example.com"));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.server_name, "app.example.com");
}

TEST(ClientHello, UpperCaseAndTrailingDotAreNormalisedAsTheRouterDoes) {
  EXPECT_EQ(parse_text(hello("App.EXAMPLE.com.")).server_name, "app.example.com");
  // Only one trailing dot; an empty label or a byte outside a host name is no name at all.
  for (const std::string bad :
       {"app.example.com..", "app..example.com", ".", "app example", "app/x", "a\x01b"}) {
    const auto r = parse_text(hello(bad));
    ASSERT_EQ(r.status, Status::Done) << bad;
    EXPECT_EQ(r.server_name, "") << bad;
  }
}

TEST(ClientHello, OneByteAtATimeNeedsMoreUntilTheLastByte) {
  // The connection re-parses after each read: a hello arriving in 1-byte TCP segments.
  const auto h = hello("pass.example");
  for (std::size_t n = 0; n < h.size(); ++n) {
    ASSERT_EQ(parse_text(h.substr(0, n)).status, Status::NeedMore) << n;
  }
  EXPECT_EQ(parse_text(h).server_name, "pass.example");
}

TEST(ClientHello, SplitAcrossRecords) {
  // RFC 8446 §5.1: a handshake message may be fragmented over several records, down to one byte each.
  for (const std::size_t fragment : {1u, 2u, 3u, 7u, 50u}) {
    const auto h = hello("pass.example", fragment);
    const auto r = parse_text(h);
    ASSERT_EQ(r.status, Status::Done) << fragment;
    EXPECT_EQ(r.server_name, "pass.example") << fragment;
  }
  // In 1-byte records the hello needs 6 bytes per byte: past the peek bound for a big hello.
  const auto big =
      records(hello_message(extension(0x0015, std::string(4000, '\0')) + sni("pass.example")), 1);
  EXPECT_EQ(parse_text(big).status, Status::Invalid);
}

TEST(ClientHello, BytesAfterTheHelloDoNotChangeTheVerdict) {
  const auto h = hello("pass.example");
  const auto r = parse_text(h + std::string("\x17\x03\x03\x00\x05hello", 10));
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.server_name, "pass.example");
}

TEST(ClientHello, NoServerName) {
  const auto none = parse_text(records(hello_message(extension(0x000a, u16(2) + "\x00\x1d"))));
  ASSERT_EQ(none.status, Status::Done);
  EXPECT_EQ(none.server_name, "");
  const auto no_extensions = parse_text(records(hello_message({}, false)));
  ASSERT_EQ(no_extensions.status, Status::Done);
  EXPECT_EQ(no_extensions.server_name, "");
}

TEST(ClientHello, GarbageIsInvalid) {
  // Plain HTTP on the TLS port, a TLS alert, an SSLv2-style hello, a ServerHello.
  EXPECT_EQ(parse_text("GET / HTTP/1.1\r\nHost: pass.example\r\n\r\n").status, Status::Invalid);
  EXPECT_EQ(parse_text(std::string("\x15\x03\x03\x00\x02\x02\x28", 7)).status, Status::Invalid);
  EXPECT_EQ(parse_text(std::string("\x80\x2e\x01\x03\x01", 5)).status, Status::Invalid);
  auto server_hello = hello("pass.example");
  server_hello[5] = '\x02';
  EXPECT_EQ(parse_text(server_hello).status, Status::Invalid);
  // An empty handshake record (RFC 8446 §5.1 forbids it) and a record longer than 2^14.
  EXPECT_EQ(parse_text(std::string("\x16\x03\x01\x00\x00", 5)).status, Status::Invalid);
  EXPECT_EQ(parse_text(std::string("\x16\x03\x01\x40\x01", 5)).status, Status::Invalid);
}

TEST(ClientHello, OversizedHelloIsInvalidBeforeItArrives) {
  // The handshake header announces more than the bound: decided from the first record's header.
  const auto h = std::string("\x16\x03\x01\x40\x00", 5) + "\x01" + u24(kMaxHelloBytes);
  EXPECT_EQ(parse_text(h).status, Status::Invalid);
  // Just under the bound still parses.
  const std::size_t fixed = hello_message(sni("pass.example") + extension(0x0015, "")).size();
  const auto padded =
      hello_message(sni("pass.example") + extension(0x0015, std::string(kMaxHelloBytes - fixed, '\0')));
  ASSERT_EQ(padded.size(), kMaxHelloBytes);
  const auto r = parse_text(records(padded));
  ASSERT_EQ(r.status, Status::Done) << (r.error ? r.error : "");
  EXPECT_EQ(r.server_name, "pass.example");
}

TEST(ClientHello, MalformedLengthsAreInvalid) {
  const auto msg = hello_message(sni("pass.example"));
  // Extensions length one more than present.
  auto longer = msg;
  const std::size_t ext_len_at = 4 + 2 + 32 + 33 + 6 + 2;
  longer[ext_len_at + 1] = static_cast<char>(longer[ext_len_at + 1] + 1);
  EXPECT_EQ(parse_text(records(longer)).status, Status::Invalid);
  // Two server_name extensions: the backend and phigate might read different ones.
  EXPECT_EQ(parse_text(records(hello_message(sni("a.example") + sni("b.example")))).status, Status::Invalid);
  // Two host_name entries in one list.
  const std::string e1 = std::string(1, '\0') + u16(9) + "a.example";
  const std::string e2 = std::string(1, '\0') + u16(9) + "b.example";
  EXPECT_EQ(parse_text(records(hello_message(extension(0, u16(e1.size() + e2.size()) + e1 + e2)))).status,
            Status::Invalid);
  // A truncated extension.
  EXPECT_EQ(parse_text(records(hello_message(u16(0) + u16(10) + "abc"))).status, Status::Invalid);
}

TEST(ClientHello, VerdictIsTheSameForEverySplit) {
  // Any prefix is NeedMore, and once decided, the same for every longer input.
  const auto h = hello("pass.example", 5) + "trailing";
  Status seen = Status::NeedMore;
  std::string name;
  for (std::size_t n = 0; n <= h.size(); ++n) {
    const auto r = parse_text(h.substr(0, n));
    if (seen == Status::NeedMore) {
      seen = r.status;
      name = r.server_name;
    } else {
      ASSERT_EQ(r.status, seen) << n;
      ASSERT_EQ(r.server_name, name) << n;
    }
  }
  EXPECT_EQ(seen, Status::Done);
  EXPECT_EQ(name, "pass.example");
}

}  // namespace
}  // namespace phigate::net::client_hello
