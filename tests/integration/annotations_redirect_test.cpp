// permanent-redirect, temporal-redirect (with their -code annotations) and upstream-vhost, with
// Ingresses as ingress-nginx users write them (its docs' examples), against recording backends;
// and the ways a client or an Ingress's author might try to get around them.
#include <filesystem>

#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

constexpr const char* kA = "    nginx.ingress.kubernetes.io/";

struct Reply {
  std::string status, location, length, body;
};

class RedirectIngressTest : public IngressTest {
 protected:
  /// One GET: status, Location, Content-Length and body as the client saw them.
  Reply get(const Phigate& pg, const std::string& host, const std::string& path,
            std::vector<std::string> extra = {}) {
    const auto body = dir_.path("body.out");
    std::filesystem::remove(body);  // curl creates no file for an empty body
    std::vector<std::string> args = {"--path-as-is", "-o", body, "-w",
                                     "%{http_code}|%header{location}|%header{content-length}"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(https_url(pg, path, host));
    const auto out = curl(pg, args).out;
    Reply r;
    const auto a = out.find('|');
    const auto b = out.find('|', a + 1);
    r.status = out.substr(0, a);
    r.location = out.substr(a + 1, b - a - 1);
    r.length = out.substr(b + 1);
    r.body = std::filesystem::exists(body) ? dir_.read("body.out") : "";
    return r;
  }
  std::string origin(const Phigate& pg, const std::string& host = "app.example") const {
    return "https://" + host + ":" + std::to_string(pg.https);
  }
};

// AD "Permanent Redirect": every request of the Ingress's paths, whatever its path or query, gets
// the URL as written, with an empty body; the backend sees nothing. HTTP/1.1 and HTTP/2.
TEST_F(RedirectIngressTest, PermanentRedirect_301ToTheUrlAsWritten_BackendNeverSeesIt) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("perm", "app.example", "http-svc",
                          std::string(kA) + "permanent-redirect: https://www.google.com\n"));
  auto pg = start();
  for (const std::vector<std::string>& proto : {std::vector<std::string>{}, {"--http2"}}) {
    for (const std::string path : {"/", "/a/b?c=d", "//evil.example/x", "/x?next=https://evil.example"}) {
      const auto r = get(pg, "app.example", path, proto);
      EXPECT_EQ(r.status, "301") << path;
      // The request target never reaches the Location: no open redirect through the path.
      EXPECT_EQ(r.location, "https://www.google.com") << path;
      EXPECT_EQ(r.length, "0") << path;
      EXPECT_EQ(r.body, "") << path;
    }
  }
  EXPECT_TRUE(up.records().empty());
}

TEST_F(RedirectIngressTest, PermanentRedirectCode308_AndTemporalWinsWithItsCode) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("perm", "app.example", "http-svc",
                          std::string(kA) + "permanent-redirect: https://new.example/moved\n" + kA +
                              "permanent-redirect-code: \"308\"\n") +
                 "---\n" +
                 ingress_yaml("temp", "other.example", "http-svc",
                              std::string(kA) + "permanent-redirect: https://perm.example/\n" + kA +
                                  "temporal-redirect: https://temp.example/t?x=1\n" + kA +
                                  "temporal-redirect-code: \"307\"\n"));
  auto pg = start();
  auto r = get(pg, "app.example", "/x");
  EXPECT_EQ(r.status, "308");
  EXPECT_EQ(r.location, "https://new.example/moved");
  r = get(pg, "other.example", "/y", {"--http2"});
  EXPECT_EQ(r.status, "307");
  EXPECT_EQ(r.location, "https://temp.example/t?x=1");
  EXPECT_TRUE(up.records().empty());
}

// A path is made absolute with the request's scheme and Host (nginx absolute_redirect).
TEST_F(RedirectIngressTest, TemporalRedirectToAPath_AbsoluteWithSchemeAndHost) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml", ingress_yaml("temp", "app.example", "http-svc",
                                                    std::string(kA) + "temporal-redirect: /maintenance\n"));
  auto pg = start();
  const auto r = get(pg, "app.example", "/orders?id=7");
  EXPECT_EQ(r.status, "302");
  EXPECT_EQ(r.location, origin(pg) + "/maintenance");
  EXPECT_TRUE(up.records().empty());
}

// A client outside the source range gets 403 and never learns the redirect target.
TEST_F(RedirectIngressTest, SourceRangeRefusesBeforeTheRedirect) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("perm", "app.example", "http-svc",
                          std::string(kA) + "permanent-redirect: https://internal.example/secret-admin\n" +
                              kA + "whitelist-source-range: \"10.0.0.0/8\"\n"));
  auto pg = start();
  const auto r = get(pg, "app.example", "/");
  EXPECT_EQ(r.status, "403");
  EXPECT_EQ(r.location, "");
  EXPECT_EQ(r.body.find("internal.example"), std::string::npos);
}

// A malicious Ingress author: a URL with CRLF (header injection), a protocol-relative "//evil"
// or an out-of-range code fails the Ingress closed (503), never a redirect nor the backend.
TEST_F(RedirectIngressTest, InjectedOrOutOfRangeValuesFailClosed) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("crlf", "app.example", "http-svc",
                   std::string(kA) + "permanent-redirect: \"https://a.example/\\r\\nSet-Cookie: s=1\"\n") +
          "---\n" +
          ingress_yaml("rel", "other.example", "http-svc",
                       std::string(kA) + "temporal-redirect: \"//evil.example/\"\n"));
  auto pg = start();
  auto r = get(pg, "app.example", "/");
  EXPECT_EQ(r.status, "503");
  EXPECT_EQ(r.location, "");
  r = get(pg, "other.example", "/");
  EXPECT_EQ(r.status, "503");
  EXPECT_EQ(r.location, "");
  rewrite(pg, "ingress.yaml",
          ingress_yaml("code", "app.example", "http-svc",
                       std::string(kA) + "permanent-redirect: https://a.example/\n" + kA +
                           "permanent-redirect-code: \"300\"\n"));
  r = get(pg, "app.example", "/");
  EXPECT_EQ(r.status, "503");
  EXPECT_EQ(r.location, "");
  EXPECT_TRUE(up.records().empty());
}

// AD "Custom Host": the backend gets the annotation's Host; X-Forwarded-Host stays the client's.
// HTTP/1.1 and HTTP/2 → HTTP/1.1.
TEST_F(RedirectIngressTest, UpstreamVhost_BackendSeesTheNewHost_ForwardedHostTheClients) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("vhost", "app.example", "http-svc",
                          std::string(kA) + "upstream-vhost: Internal.Backend.svc:8080\n") +
                 "---\n" + ingress_yaml("plain", "other.example", "http-svc"));
  auto pg = start();
  for (const std::vector<std::string>& proto : {std::vector<std::string>{}, {"--http2"}}) {
    const auto before = up.records().size();
    // A client's own Host-ish fields change nothing.
    auto extra = proto;
    extra.insert(extra.end(), {"-H", "X-Forwarded-Host: forged.example"});
    EXPECT_EQ(get(pg, "app.example", "/x", extra).status, "200");
    const auto recs = up.records();
    ASSERT_EQ(recs.size(), before + 1);
    EXPECT_EQ(record_header(recs.back(), "host"), "internal.backend.svc:8080");
    EXPECT_EQ(record_header_count(recs.back(), "host"), 1);
    EXPECT_EQ(record_header(recs.back(), "x-forwarded-host"), "app.example:" + std::to_string(pg.https));
  }
  // Without it the client's Host is forwarded unchanged (ingress-nginx's default).
  EXPECT_EQ(get(pg, "other.example", "/y").status, "200");
  EXPECT_EQ(record_header(up.records().back(), "host"), "other.example:" + std::to_string(pg.https));
}

// upstream-vhost on a WebSocket upgrade: the backend sees the annotation's Host on the upgrade
// request (asked again with Connection: upgrade), X-Forwarded-Host the client's; a client's own
// Host-ish fields change nothing.
TEST_F(RedirectIngressTest, UpstreamVhost_OnTheWebSocketUpgradeToo) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml", ingress_yaml("vhost", "app.example", "http-svc",
                                                    std::string(kA) + "upstream-vhost: ws.internal\n"));
  auto pg = start();
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "app.example"});
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write(
      "GET /ws HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-Host: forged.example\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
      "13\r\n\r\n"));
  const auto resp = c->read_http_response(10s);
  ASSERT_TRUE(resp) << c->error();
  EXPECT_EQ(resp->status, 200);  // the test backend does not switch: relayed, then closed
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header(recs[0], "upgrade"), "websocket");
  EXPECT_EQ(record_header(recs[0], "connection"), "upgrade");
  EXPECT_EQ(record_header(recs[0], "host"), "ws.internal");
  EXPECT_EQ(record_header_count(recs[0], "host"), 1);
  EXPECT_EQ(record_header(recs[0], "x-forwarded-host"), "app.example");
}

// ingress-nginx's usual `$service_name.$namespace.svc` value: an error naming the annotation.
TEST_F(RedirectIngressTest, UpstreamVhostVariableFailsClosed) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("vhost", "app.example", "http-svc",
                   std::string(kA) + "upstream-vhost: \"$service_name.$namespace.svc.cluster.local\"\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/").status, "503");
  EXPECT_TRUE(up.records().empty());
  EXPECT_NE(pg.process.output().find("upstream-vhost"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
