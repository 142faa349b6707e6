// The proxy core end to end: real phigate, real backends (test upstream and nginx), real curl
// and a raw TLS client, all on loopback.
#include <fstream>
#include <thread>

#include "phigate_fixture.hpp"
#include "support/hash.hpp"
#include "support/net.hpp"
#include "support/nginx.hpp"

namespace phigate::test {
namespace {

std::string route(const std::string& host, const std::string& backend, const std::string& path = "/",
                  const std::string& type = "Prefix") {
  return "  - host: " + host + "\n    paths:\n      - { path: " + path + ", type: " + type +
         ", backends: [\"" + backend + "\"] }\n";
}

TEST_F(PhigateTest, Proxy_GetAndPostOverTls_WithForwardingHeaders) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));

  auto get = curl(pg, {"-i", https_url(pg, "/hello?x=1"), "-H", "X-Forwarded-For: 6.6.6.6", "-H",
                       "Connection: keep-alive, X-Hop", "-H", "X-Hop: secret"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find("HTTP/1.1 200"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("\r\n\r\nok\n"), std::string::npos) << get.out;

  auto post = curl(pg, {https_url(pg, "/submit?echo=1"), "--data-binary", "patient=42"});
  ASSERT_EQ(post.exit_code, 0) << post.err;
  EXPECT_EQ(post.out, "patient=42");

  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 2u);
  const auto& g = recs[0];
  EXPECT_EQ(json_field(g, "method"), "GET");
  EXPECT_EQ(json_field(g, "target"), "/hello?x=1");
  // Spoofed X-Forwarded-For replaced (not appended); hop-by-hop fields and those named by
  // Connection removed; forwarding fields set.
  EXPECT_EQ(record_header_count(g, "x-forwarded-for"), 1);
  EXPECT_EQ(record_header(g, "x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(record_header(g, "x-forwarded-proto"), "https");
  EXPECT_EQ(record_header(g, "x-forwarded-host"), "app.example:" + std::to_string(pg.https));
  EXPECT_EQ(record_header(g, "x-real-ip"), "127.0.0.1");
  EXPECT_EQ(record_header(g, "x-request-id").size(), 32u);
  EXPECT_EQ(record_header_count(g, "x-hop"), 0);
  EXPECT_EQ(record_header_count(g, "connection"), 0);
  EXPECT_EQ(json_field(recs[1], "method"), "POST");
  EXPECT_EQ(json_field(recs[1], "body_bytes"), "10");
  EXPECT_EQ(json_field(recs[1], "body_sha256"), sha256_hex("patient=42"));
}

TEST_F(PhigateTest, Proxy_ToRealNginxBackend) {
  Nginx nginx = Nginx::start(dir_);
  std::ofstream(nginx.root_dir() + "/index.html") << "from nginx\n";
  auto pg = start_phigate(config(route("app.example", "127.0.0.1:" + std::to_string(nginx.port()))));
  auto r = curl(pg, {https_url(pg, "/index.html")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from nginx\n");
  auto head = curl(pg, {"-I", https_url(pg, "/index.html")});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_NE(head.out.find("Content-Length: 11"), std::string::npos) << head.out;
}

TEST_F(PhigateTest, Proxy_KeepAliveReusedOnBothSides) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto r = curl(pg, {"-v", "-o", "/dev/null", "-o", "/dev/null", https_url(pg, "/a"), https_url(pg, "/b")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("Re-using existing connection"), std::string::npos) << r.err;
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 2u);
  // The second request travelled on the same upstream connection as the first.
  EXPECT_EQ(json_field(recs[0], "conn"), json_field(recs[1], "conn"));
  EXPECT_EQ(json_field(recs[1], "seq"), "2");
}

TEST_F(PhigateTest, Proxy_PipelinedRequestsAnsweredInOrder) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .ca_file = ca_.cert});
  ASSERT_TRUE(c) << c.error;
  // Three requests in one write; the first is slow, so a proxy that answered out of order would
  // put the fast ones first.
  ASSERT_TRUE(
      c->write("GET /1?delay_ms=200&bytes=1 HTTP/1.1\r\nHost: app.example\r\n\r\n"
               "GET /2?bytes=2 HTTP/1.1\r\nHost: app.example\r\n\r\n"
               "GET /3?bytes=3 HTTP/1.1\r\nHost: app.example\r\n\r\n"));
  for (std::size_t i = 1; i <= 3; ++i) {
    auto resp = c->read_http_response(10s);
    ASSERT_TRUE(resp) << c->error();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, pattern_bytes(i)) << "response " << i;
  }
}

// More pipelined bytes than the connection's 16 KiB read buffer, in one write: the first read fills
// the buffer with a request cut in two at its end; every request is still answered, in order, and
// reaches the backend once.
TEST_F(PhigateTest, Proxy_PipelinedRequestsBeyondOneReadBufferAllAnswered) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example", .ca_file = ca_.cert});
  ASSERT_TRUE(c) << c.error;
  std::string batch;
  constexpr int kRequests = 300;  // 29,292 bytes; no request ends at byte 16384
  for (int i = 1; i <= kRequests; ++i) {
    batch += "GET /p" + std::to_string(i) +
             "?bytes=1 HTTP/1.1\r\nHost: app.example\r\nX-Pad: " + std::string(40, 'p') + "\r\n\r\n";
  }
  ASSERT_GT(batch.size(), 16384u);
  ASSERT_TRUE(c->write(batch));
  for (int i = 1; i <= kRequests; ++i) {
    auto resp = c->read_http_response(10s);
    ASSERT_TRUE(resp) << "response " << i << ": " << c->error();
    EXPECT_EQ(resp->status, 200) << "response " << i;
  }
  EXPECT_EQ(up.records().size(), static_cast<std::size_t>(kRequests));
}

TEST_F(PhigateTest, Proxy_10MiBChunkedUploadAndDownload_ByteExact) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  const std::size_t n = 10u << 20;
  const auto file = dir_.write("upload.bin", pattern_bytes(n + 7));  // not a multiple of any buffer
  const auto expected = sha256_hex(pattern_bytes(n + 7));

  auto upload = curl(pg, {"-T", file, "-H", "Transfer-Encoding: chunked", "-o", dir_.path("echo.bin"),
                          https_url(pg, "/up?echo=1")});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(json_field(recs[0], "chunked"), "true");
  EXPECT_EQ(json_field(recs[0], "body_sha256"), expected);
  EXPECT_EQ(sha256_file_hex(dir_.path("echo.bin")), expected);

  auto download = curl(pg, {"-o", dir_.path("down.bin"), https_url(pg, "/down?bytes=10m&chunked=1")});
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_EQ(sha256_file_hex(dir_.path("down.bin")), sha256_hex(pattern_bytes(n)));
}

TEST_F(PhigateTest, Proxy_ExpectContinueHeadAnd204) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto r = curl(pg, {"-v", "-H", "Expect: 100-continue", "--data-binary", "abc", https_url(pg, "/e?echo=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("HTTP/1.1 100 Continue"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "abc");
  auto head = curl(pg, {"-I", https_url(pg, "/h?bytes=1234")});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_NE(head.out.find("Content-Length: 1234"), std::string::npos) << head.out;
  auto nc = curl(pg, {"-i", https_url(pg, "/n?status=204")});
  ASSERT_EQ(nc.exit_code, 0) << nc.err;
  EXPECT_NE(nc.out.find("HTTP/1.1 204"), std::string::npos) << nc.out;
}

TEST_F(PhigateTest, Proxy_NoRouteIs404_AndConnectionStaysUsable) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address(), "/api")));
  auto r =
      curl(pg, {"-v", "-w", "%{http_code}\n", "-o", "/dev/null", https_url(pg, "/nope"), "-o", "/dev/null",
                https_url(pg, "/api/x"), "-o", "/dev/null", https_url(pg, "/x", "other.example")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "404\n200\n404\n");
  EXPECT_NE(r.err.find("Re-using existing connection"), std::string::npos);
}

TEST_F(PhigateTest, Proxy_BackendDownIs502) {
  const auto dead = free_port();  // nothing listens there
  auto pg = start_phigate(config(route("app.example", "127.0.0.1:" + std::to_string(dead))));
  auto r = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "502");
}

TEST_F(PhigateTest, Proxy_UpstreamTooSlowIs504_NotAHang) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address()), "timeouts: { upstream_read: 300ms }\n"));
  auto r = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/slow?delay_ms=5000")}, 10s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "504");
}

TEST_F(PhigateTest, Proxy_UpstreamResetIs502) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto r = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/r?reset=before_headers")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "502");
}

TEST_F(PhigateTest, Proxy_RoundRobinAcrossEndpoints) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  auto pg = start_phigate(config("  - host: app.example\n    paths:\n      - { path: /, backends: [\"" +
                                     a.address() + "\", \"" + b.address() + "\"] }\n",
                                 "workers: 1\n"));
  std::vector<std::string> args = {"-o", "/dev/null"};
  for (int i = 0; i < 4; ++i) {
    args.push_back(https_url(pg, "/" + std::to_string(i)));
    if (i < 3) args.insert(args.end(), {"-o", "/dev/null"});
  }
  auto r = curl(pg, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(a.records().size(), 2u);
  EXPECT_EQ(b.records().size(), 2u);
}

TEST_F(PhigateTest, Access_GlobalAllowAndDenyLists) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address()),
                                 "access: { allow: [\"127.0.0.0/30\"], deny: [\"127.0.0.2\"] }\n"));
  auto from = [&](const std::string& source) {
    return curl(pg, {"--interface", source, "-o", "/dev/null", "-w", "%{http_code}", https_url(pg, "/")}).out;
  };
  EXPECT_EQ(from("127.0.0.1"), "200");
  EXPECT_EQ(from("127.0.0.2"), "403");  // denied although inside the allow range: deny wins
  EXPECT_EQ(from("127.0.0.9"), "403");  // outside the allow range
  EXPECT_EQ(up.records().size(), 1u);
}

TEST_F(PhigateTest, Hsts_OnEveryHttpsResponse_NeverOnPlainHttp_Configurable) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  const std::string want = "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n";
  auto ok = curl(pg, {"-i", https_url(pg, "/")});
  EXPECT_NE(ok.out.find(want), std::string::npos) << ok.out;
  auto missing = curl(pg, {"-i", https_url(pg, "/", "other.example")});  // a local 404
  EXPECT_NE(missing.out.find(want), std::string::npos) << missing.out;
  auto plain = run(
      {"curl", "-sS", "-i", "-H", "Host: app.example", "http://127.0.0.1:" + std::to_string(pg.http) + "/"});
  EXPECT_EQ(plain.out.find("Strict-Transport-Security"), std::string::npos) << plain.out;
  // Exactly one HSTS field per response.
  auto echo = curl(pg, {"-i", https_url(pg, "/?bytes=1")});
  EXPECT_EQ(echo.out.find(want), echo.out.rfind(want)) << echo.out;

  pg.process.terminate();
  auto yaml = config(route("app.example", up.address()));
  yaml.replace(yaml.find("tls:\n"), 5,
               "tls:\n  hsts: { max_age: 600, include_subdomains: false, preload: true }\n");
  auto pg2 = start_phigate(yaml);
  auto custom = curl(pg2, {"-i", https_url(pg2, "/")});
  EXPECT_NE(custom.out.find("Strict-Transport-Security: max-age=600; preload\r\n"), std::string::npos)
      << custom.out;
}

TEST_F(PhigateTest, PathNormalisation_RoutesAndForwardsTheNormalisedPath) {
  auto pub = start_upstream("public");
  auto admin = start_upstream("admin");
  auto pg =
      start_phigate(config("  - host: app.example\n    paths:\n"
                           "      - { path: /public, backends: [\"" +
                               pub.address() +
                               "\"] }\n"
                               "      - { path: /admin, backends: [\"" +
                               admin.address() + "\"] }\n",
                           "access: {}\n"));
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
  ASSERT_TRUE(c) << c.error;
  for (const char* t : {"/public/../admin/x", "/public/%2e%2e/admin/x", "//admin/./x"}) {
    ASSERT_TRUE(c->write(std::string("GET ") + t + " HTTP/1.1\r\nHost: app.example\r\n\r\n"));
    auto r = c->read_http_response(5s);
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, 200) << t;
  }
  ASSERT_EQ(admin.records().size(), 3u);
  for (const auto& rec : admin.records()) EXPECT_EQ(json_field(rec, "target"), "/admin/x");
  EXPECT_TRUE(pub.records().empty());
  auto bad =
      curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", https_url(pg, "/public/a%2Fb")});
  EXPECT_EQ(bad.out, "400");
  auto above =
      curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", https_url(pg, "/../etc/passwd")});
  EXPECT_EQ(above.out, "400");
}

TEST_F(PhigateTest, Redirect_PlainHttpGets308ToHttps) {
  auto up = start_upstream();
  auto pg = start_phigate(config(route("app.example", up.address())));
  auto r = run({"curl", "-sS", "-i", "-H", "Host: app.example:8080",
                "http://127.0.0.1:" + std::to_string(pg.http) + "/a/b?c=d&e=f"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 308"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Location: https://app.example:" + std::to_string(pg.https) + "/a/b?c=d&e=f\r\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(up.records().empty()) << "the plain listener must never proxy";
}

TEST_F(PhigateTest, Redirect_AdvertisedPortIsConfigurable) {
  auto up = start_upstream();
  auto yaml = config(route("app.example", up.address()));
  yaml.replace(yaml.find("  admin:"), 0, "  https_redirect_port: 443\n");
  auto pg = start_phigate(yaml);
  auto r = run(
      {"curl", "-sS", "-i", "-H", "Host: app.example", "http://127.0.0.1:" + std::to_string(pg.http) + "/x"});
  EXPECT_NE(r.out.find("Location: https://app.example/x\r\n"), std::string::npos) << r.out;
  // A Host that could inject into Location is refused.
  auto bad = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: evil.com/@x",
                  "http://127.0.0.1:" + std::to_string(pg.http) + "/x"});
  EXPECT_EQ(bad.out, "400");
}

}  // namespace
}  // namespace phigate::test
