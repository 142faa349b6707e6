#include "phigate/http/forwarding.hpp"

#include <gtest/gtest.h>

namespace phigate::http {
namespace {

HeaderList headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
  HeaderList h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

TEST(HopByHop, StandardFieldsAndConnectionTokensAreRemoved) {
  auto h = headers({{"Host", "a"},
                    {"Connection", "keep-alive, X-Secret-Hop"},
                    {"Keep-Alive", "timeout=5"},
                    {"X-Secret-Hop", "1"},
                    {"Transfer-Encoding", "chunked"},
                    {"TE", "trailers"},
                    {"Upgrade", "h2c"},
                    {"Proxy-Connection", "keep-alive"},
                    {"Content-Length", "3"},
                    {"Expect", "100-continue"},
                    {"Accept", "*/*"}});
  remove_hop_by_hop(h);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_NE(h.find("host"), nullptr);
  EXPECT_NE(h.find("accept"), nullptr);
}

TEST(Forwarding, SpoofedHeadersFromUntrustedPeerAreReplaced) {
  auto h = headers({{"X-Forwarded-For", "6.6.6.6"},
                    {"x-forwarded-for", "7.7.7.7"},
                    {"X-Forwarded-Proto", "http"},
                    {"X-Forwarded-Host", "evil"},
                    {"X-Real-IP", "6.6.6.6"},
                    {"X-Request-Id", "forged"}});
  set_forwarding_headers(h, {"10.1.2.3", false, "https", "app.example", 8443, "abc123", ""});
  EXPECT_EQ(h.count("x-forwarded-for"), 1u);
  EXPECT_EQ(*h.find("x-forwarded-for"), "10.1.2.3");
  EXPECT_EQ(*h.find("x-forwarded-proto"), "https");
  EXPECT_EQ(*h.find("x-forwarded-host"), "app.example");
  EXPECT_EQ(*h.find("x-forwarded-port"), "8443");
  EXPECT_EQ(*h.find("x-real-ip"), "10.1.2.3");
  EXPECT_EQ(*h.find("x-request-id"), "abc123");
}

TEST(Forwarding, PortIsWrittenInDecimalAtBothEndsOfItsRange) {
  for (const auto& [port, text] :
       {std::pair<std::uint16_t, std::string_view>{65535, "65535"}, {1, "1"}, {80, "80"}}) {
    auto h = headers({});
    set_forwarding_headers(h, {"10.1.2.3", false, "https", "app.example", port, "abc123", ""});
    ASSERT_NE(h.find("x-forwarded-port"), nullptr);
    EXPECT_EQ(*h.find("x-forwarded-port"), text);
  }
}

TEST(Forwarding, TrustedProxyChainIsAppendedAndKept) {
  auto h = headers({{"X-Forwarded-For", "203.0.113.9"},
                    {"X-Forwarded-Proto", "https"},
                    {"X-Request-Id", "lb-1"},
                    {"X-Real-IP", "6.6.6.6"}});
  set_forwarding_headers(h, {"10.0.0.2", true, "https", "app.example", 443, "new", "203.0.113.9"});
  EXPECT_EQ(*h.find("x-forwarded-for"), "203.0.113.9, 10.0.0.2");
  EXPECT_EQ(h.count("x-real-ip"), 1u);
  EXPECT_EQ(*h.find("x-real-ip"), "203.0.113.9");  // ours, never the forwarded field
  EXPECT_EQ(*h.find("x-request-id"), "lb-1");
  EXPECT_EQ(*h.find("x-forwarded-host"), "app.example");
}

TEST(Forwarding, AddsFieldsWhenAbsent) {
  HeaderList h;
  set_forwarding_headers(h, {"::1", false, "https", "h", 443, "id", ""});
  EXPECT_EQ(*h.find("x-forwarded-for"), "::1");
  EXPECT_EQ(*h.find("forwarded"), "for=\"[::1]\";host=h;proto=https");
  EXPECT_EQ(h.size(), 7u);
}

// forwarding_lines is set_forwarding_headers with ours written as lines: the same fields leave,
// the same fields come, in the same order, for every kind of peer and input.
TEST(ForwardingLines, SameDecisionsAsSetForwardingHeaders) {
  const std::initializer_list<std::pair<const char*, const char*>> inputs[] = {
      {},
      {{"Host", "app.example"}, {"Accept", "*/*"}},
      {{"X-Forwarded-For", "6.6.6.6"},
       {"x-forwarded-for", "7.7.7.7"},
       {"X-Real-IP", "1.1.1.1"},
       {"X-Request-Id", "forged"},
       {"Forwarded", "for=9.9.9.9"},
       {"X-Forwarded-Proto", "http"},
       {"X-Forwarded-Host", "evil"},
       {"X-Forwarded-Port", "1"},
       {"X_Forwarded_For", "u"},
       {"X-Original-URL", "/admin"},
       {"X-Forwarded-Prefix", "/p"},
       {"Cookie", "a=b"}}};
  const ForwardInfo infos[] = {{"10.1.2.3", false, "https", "app.example", 8443, "abc123", ""},
                               {"10.0.0.2", true, "https", "app.example:8443", 443, "new", "203.0.113.9"},
                               {"::1", false, "http", "[::1]:80", 80, "id", ""},
                               {"fd00::2", true, "https", "h", 65535, "r", ""}};
  for (const auto& in : inputs) {
    for (const auto& info : infos) {
      auto expected = headers(in);
      set_forwarding_headers(expected, info);
      auto got = headers(in);
      std::string lines = "Before: kept\r\n";  // appended to, never replaced
      forwarding_lines(got, info, lines);
      ASSERT_EQ(lines.rfind("Before: kept\r\n", 0), 0u);
      ASSERT_GE(lines.size(), 2u);
      EXPECT_EQ(lines.substr(lines.size() - 2), "\r\n");
      add_raw_lines(got, std::string_view(lines).substr(14));
      ASSERT_EQ(got.size(), expected.size()) << lines;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const auto& g = got.begin()[i];
        const auto& e = expected.begin()[i];
        EXPECT_EQ(g.name, e.name) << i << "\n" << lines;
        EXPECT_EQ(g.value, e.value) << i << "\n" << lines;
      }
    }
  }
}

TEST(ForwardingLines, LinesAreHttp1FieldLines) {
  HeaderList h;
  std::string lines;
  forwarding_lines(h, {"10.1.2.3", false, "https", "app.example", 8443, "abc123", ""}, lines);
  EXPECT_EQ(lines,
            "Forwarded: for=10.1.2.3;host=app.example;proto=https\r\n"
            "X-Forwarded-For: 10.1.2.3\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: app.example\r\n"
            "X-Forwarded-Port: 8443\r\n"
            "X-Real-IP: 10.1.2.3\r\n"
            "X-Request-Id: abc123\r\n");
  EXPECT_TRUE(h.empty());  // ours are lines, not fields
}

// Snapshot::audit_reads_forwarding relies on it: every field set_forwarding_headers can add is one.
TEST(ForwardingLines, IsForwardingFieldCoversEveryFieldWeSet) {
  HeaderList h;
  set_forwarding_headers(h, {"::1", false, "https", "h", 443, "id", ""});
  ASSERT_EQ(h.size(), 7u);
  for (const auto& f : h) EXPECT_TRUE(is_forwarding_field(f.name)) << f.name;
  EXPECT_TRUE(is_forwarding_field("X-FORWARDED-FOR"));
  for (const char* other : {"host", "x-forwarded-prefix", "x-forwarded", "x-trace", "x-original-uri", ""})
    EXPECT_FALSE(is_forwarding_field(other)) << other;
}

TEST(ForwardingLines, ForwardedValueTakesTheFieldElseTheLine) {
  const std::string_view lines = "X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\nX-Real-IP: a: b\r\n";
  const HeaderList none;
  EXPECT_EQ(forwarded_value(none, lines, "x-forwarded-for"), "203.0.113.9, 10.0.0.2");
  EXPECT_EQ(forwarded_value(none, lines, "X-REAL-IP"), "a: b");  // the value is all after the first ": "
  EXPECT_EQ(forwarded_value(none, lines, "x-forwarded"), std::nullopt);
  EXPECT_EQ(forwarded_value(none, "", "x-forwarded-for"), std::nullopt);
  EXPECT_EQ(forwarded_value(none, "X-Forwarded-For: 1.2.3.4", "x-forwarded-for"),
            "1.2.3.4");  // no final CRLF
  // set_forwarding_headers' field (audit_reads_forwarding) wins over any line.
  const auto fields = headers({{"X-Forwarded-For", "10.9.8.7"}});
  EXPECT_EQ(forwarded_value(fields, lines, "x-forwarded-for"), "10.9.8.7");
  EXPECT_EQ(forwarded_value(fields, lines, "x-real-ip"), "a: b");
}

TEST(HopByHop, ConnectionNeverRemovesHost) {
  auto h = headers({{"Host", "app.example"}, {"Connection", "host, close"}, {"Accept", "*/*"}});
  remove_hop_by_hop(h);
  ASSERT_NE(h.find("host"), nullptr);
  EXPECT_EQ(*h.find("host"), "app.example");
  EXPECT_EQ(h.size(), 2u);
}

TEST(HopByHop, EveryConnectionTokenHonoured) {
  // The ninth and later names used to survive (only 8 were kept), in one field or across several.
  auto h = headers({{"Connection", "a1, a2, a3, a4, a5, a6, a7, a8, X-Ninth"},
                    {"Connection", "X-Tenth"},
                    {"X-Ninth", "1"},
                    {"x-tenth", "1"},
                    {"Authorization-Hop", "kept"}});
  remove_hop_by_hop(h);
  EXPECT_EQ(h.find("x-ninth"), nullptr);
  EXPECT_EQ(h.find("x-tenth"), nullptr);
  EXPECT_EQ(h.size(), 1u);
}

TEST(HopByHop, ShortConnectionValueSurvivesFieldMoves) {
  // Removal moves field storage; tokens must not be read from a moved inline string.
  auto h = headers({{"Keep-Alive", "1"}, {"Connection", "x-a"}, {"B", "short"}, {"X-A", "1"}, {"C", "2"}});
  remove_hop_by_hop(h);
  EXPECT_EQ(h.find("x-a"), nullptr);
  EXPECT_NE(h.find("b"), nullptr);
  EXPECT_NE(h.find("c"), nullptr);
}

TEST(Forwarding, UnderscoreAndRewriteFieldsDroppedFromEveryone) {
  for (bool trusted : {false, true}) {
    auto h = headers({{"ssl_client_verify", "SUCCESS"},
                      {"X_Forwarded_For", "10.0.0.1"},
                      {"X-Original-URL", "/admin"},
                      {"x-rewrite-url", "/admin"},
                      {"X-Fine", "1"}});
    set_forwarding_headers(h, {"10.1.2.3", trusted, "https", "app.example", 443, "id", ""});
    EXPECT_EQ(h.find("ssl_client_verify"), nullptr) << trusted;
    EXPECT_EQ(h.find("x_forwarded_for"), nullptr) << trusted;
    EXPECT_EQ(h.find("x-original-url"), nullptr) << trusted;
    EXPECT_EQ(h.find("x-rewrite-url"), nullptr) << trusted;
    EXPECT_NE(h.find("x-fine"), nullptr) << trusted;
  }
}

TEST(Forwarding, NamesBeyondLettersDigitsAndHyphenDropped) {
  auto h = headers({{"X.Forwarded.For", "10.0.0.1"}, {"ssl~client~verify", "SUCCESS"}, {"X-Fine-2", "1"}});
  set_forwarding_headers(h, {"10.1.2.3", true, "https", "app.example", 443, "id", ""});
  EXPECT_EQ(h.find("x.forwarded.for"), nullptr);
  EXPECT_EQ(h.find("ssl~client~verify"), nullptr);
  EXPECT_NE(h.find("x-fine-2"), nullptr);
}

TEST(Forwarding, PrefixSchemeSslUriFromUntrustedOnly) {
  for (bool trusted : {false, true}) {
    auto h = headers({{"X-Forwarded-Prefix", "/evil"},
                      {"X-Forwarded-Scheme", "https"},
                      {"X-Forwarded-Ssl", "on"},
                      {"X-Forwarded-Uri", "/admin"},
                      {"X-Original-URI", "/admin"}});
    set_forwarding_headers(h, {"10.1.2.3", trusted, "https", "app.example", 443, "id", ""});
    for (const char* n : {"x-forwarded-prefix", "x-forwarded-scheme", "x-forwarded-ssl", "x-forwarded-uri",
                          "x-original-uri"}) {
      EXPECT_EQ(h.find(n) != nullptr, trusted) << n << " trusted=" << trusted;
    }
  }
}

TEST(Forwarding, ForwardedReplacedFromUntrustedAppendedFromTrusted) {
  auto h = headers({{"Forwarded", "for=10.0.0.1;proto=https"}, {"forwarded", "for=10.9.9.9"}});
  set_forwarding_headers(h, {"192.0.2.7", false, "https", "app.example:8443", 8443, "id", ""});
  EXPECT_EQ(h.count("forwarded"), 1u);
  EXPECT_EQ(*h.find("forwarded"), "for=192.0.2.7;host=\"app.example:8443\";proto=https");
  auto t = headers({{"Forwarded", "for=203.0.113.9;proto=https"}});
  set_forwarding_headers(t, {"10.0.0.2", true, "https", "app.example", 443, "id", "203.0.113.9"});
  EXPECT_EQ(t.count("forwarded"), 1u);
  EXPECT_EQ(*t.find("forwarded"), "for=203.0.113.9;proto=https, for=10.0.0.2;host=app.example;proto=https");
}

TEST(HeaderList, SetReplacesAllDuplicates) {
  auto h = headers({{"A", "1"}, {"B", "2"}, {"a", "3"}});
  h.set("a", "9");
  EXPECT_EQ(h.count("A"), 1u);
  EXPECT_EQ(*h.find("A"), "9");
  EXPECT_EQ(h.size(), 2u);
}

TEST(HeaderList, ClearKeepsWorking) {
  auto h = headers({{"A", "1"}, {"B", "2"}});
  h.clear();
  EXPECT_TRUE(h.empty());
  h.add("C", "3");
  EXPECT_EQ(*h.find("c"), "3");
  EXPECT_EQ(h.find("a"), nullptr);
}

TEST(Tokens, SplitAndTrim) {
  std::vector<std::string> out;
  for_each_token(" a, b ,,c\t", [&](std::string_view t) { out.emplace_back(t); });
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace phigate::http

namespace phigate::http {
namespace {
TEST(Iequals, CaseFoldsLettersOnly) {
  EXPECT_TRUE(iequals("X-Forwarded-For", "x-forwarded-for"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("@", "`"));  // 0x40 / 0x60 differ by the case bit but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  EXPECT_TRUE(iequals("ZZ9", "zz9"));
}
}  // namespace
}  // namespace phigate::http
