// Who the client is: PROXY protocol v1/v2 from a raw socket, and X-Forwarded-For behind trusted
// proxies; the allow/deny lists act on that address.
#include "phigate_fixture.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

std::string route_to(const Upstream& up) {
  return "  - host: app.example\n    paths: [{ path: /, backends: [\"" + up.address() + "\"] }]\n";
}

std::string v2_inet6(const std::string& addr16, std::uint16_t port) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // version 2, PROXY
  h += '\x21';  // INET6, STREAM
  h += '\0';
  h += '\x24';  // 36 bytes of addresses
  h += addr16;
  h += std::string(15, '\0') + '\x01';  // destination ::1
  h += static_cast<char>(port >> 8);
  h += static_cast<char>(port & 0xff);
  h += "\x01\xbb";
  return h;
}

int get_status(TlsClient& c) {
  if (!c.write("GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")) return 0;
  auto r = c.read_http_response(5s);
  return r ? r->status : 0;
}

TEST_F(PhigateTest, ProxyProtocolV1AndV2NameTheClient) {
  auto up = start_upstream();
  auto yaml = config(route_to(up), "access: { deny: [\"192.0.2.66\"] }\n");
  yaml.replace(yaml.find("  admin:"), 0, "  proxy_protocol: true\n");
  auto pg = start_phigate(yaml);
  auto with = [&](const std::string& preamble) {
    return TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .preamble = preamble});
  };
  auto v1 = with("PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n");
  ASSERT_TRUE(v1) << v1.error;
  EXPECT_EQ(get_status(*v1), 200);
  std::string addr(16, '\0');
  addr[0] = '\x20';
  addr[1] = '\x01';
  addr[2] = '\x0d';
  addr[3] = '\xb8';
  addr[15] = '\x09';
  auto v2 = with(v2_inet6(addr, 41000));
  ASSERT_TRUE(v2) << v2.error;
  EXPECT_EQ(get_status(*v2), 200);
  auto denied = with("PROXY TCP4 192.0.2.66 127.0.0.1 40000 443\r\n");
  ASSERT_TRUE(denied) << denied.error;
  EXPECT_EQ(get_status(*denied), 403);  // the deny list sees the PROXY address, not 127.0.0.1

  // No header, or a malformed one: the connection is closed before TLS.
  EXPECT_FALSE(with(""));
  EXPECT_FALSE(with("PROXY TCP4 198.51.100.7\r\n"));
  EXPECT_FALSE(with("PROXY TCP4 198.51.100.7 127.0.0.1 99999 443\r\n"));

  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(record_header(recs[0], "x-real-ip"), "198.51.100.7");
  EXPECT_EQ(record_header(recs[0], "x-forwarded-for"), "198.51.100.7");
  EXPECT_EQ(record_header(recs[1], "x-real-ip"), "2001:db8::9");
  auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"});
  EXPECT_NE(m.out.find("phigate_proxy_protocol_errors_total 3"), std::string::npos) << m.out;
}

TEST_F(PhigateTest, TrustedProxyForwardedForNamesTheClientForAllowlists) {
  auto up = start_upstream();
  auto pg = start_phigate(
      config(route_to(up), "trusted_proxies: [\"127.0.0.1/32\"]\naccess: { allow: [\"203.0.113.0/24\"] }\n"));
  auto from = [&](const std::string& source, const std::string& xff) {
    return curl(pg, {"--interface", source, "-H", "X-Forwarded-For: " + xff, "-o", "/dev/null", "-w",
                     "%{http_code}", https_url(pg, "/")})
        .out;
  };
  EXPECT_EQ(from("127.0.0.1", "203.0.113.5"), "200");  // trusted peer: its XFF names the client
  EXPECT_EQ(from("127.0.0.1", "198.51.100.1"), "403");
  // The left-most entry is the client's own claim: the right-most untrusted one decides.
  EXPECT_EQ(from("127.0.0.1", "203.0.113.5, 198.51.100.1"), "403");
  EXPECT_EQ(from("127.0.0.1", "198.51.100.1, 203.0.113.5, 127.0.0.1"), "200");
  // An untrusted peer's XFF is ignored: 127.0.0.2 is not in the allow list.
  EXPECT_EQ(from("127.0.0.2", "203.0.113.5"), "403");
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(record_header(recs[0], "x-real-ip"), "203.0.113.5");
  EXPECT_EQ(record_header(recs[0], "x-forwarded-for"), "203.0.113.5, 127.0.0.1");
}

}  // namespace
}  // namespace phigate::test
