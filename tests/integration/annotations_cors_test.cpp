// enable-cors and cors-* through the real binary: Ingresses as ingress-nginx users write them,
// recording backends (phigate-test-upstream --record) that show what reached them, and a backend
// that sends its own Access-Control-* fields (header=) to show they are replaced.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "ingress_fixture.hpp"
#include "response_head.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

class CorsIngressTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    up_ = start_upstream("up");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_));
  }
  void write(const std::string& annotations, const std::string& host = "app.example") {
    dir_.write("manifests/ingress.yaml", ingress_yaml("web", host, "svc", annotations));
  }
  /// The response head of one request (`method`, extra curl args such as -H Origin:...).
  Head request(const Phigate& pg, const std::string& method, const std::string& path,
               std::vector<std::string> args = {}, const std::string& host = "app.example") {
    std::vector<std::string> a = {"-s", "-D", "-", "-o", "/dev/null", "-X", method};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(https_url(pg, path, host));
    const auto r = curl(pg, a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return parse_head(r.out);
  }

  std::optional<Upstream> up_;
};

constexpr const char* kDefaultHeaders =
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,"
    "Authorization";

// enable-cors alone: "*" and ingress-nginx's defaults; the preflight is answered by phigate.
TEST_F(CorsIngressTest, DefaultPreflightIs204WithTheDefaultsAndNeverReachesTheBackend) {
  write(std::string(kN) + "enable-cors: \"true\"\n");
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto h =
        request(pg, "OPTIONS", "/api",
                {proto, "-H", "Origin: https://any.example", "-H", "Access-Control-Request-Method: PUT"});
    EXPECT_EQ(h.status, "204") << proto;
    EXPECT_EQ(h.get("access-control-allow-origin"), "*") << proto;
    EXPECT_EQ(h.get("access-control-allow-credentials"), "true") << proto;
    EXPECT_EQ(h.get("access-control-allow-methods"), "GET, PUT, POST, DELETE, PATCH, OPTIONS") << proto;
    EXPECT_EQ(h.get("access-control-allow-headers"), kDefaultHeaders) << proto;
    EXPECT_EQ(h.get("access-control-max-age"), "1728000") << proto;
    EXPECT_EQ(h.count("access-control-expose-headers"), 0u) << proto;
    EXPECT_EQ(h.count("content-length"), 0u) << proto;  // RFC 9110 §8.6: none in a 204
    EXPECT_EQ(h.count("vary"), 0u) << proto;            // "*" reflects nothing
  }
  EXPECT_TRUE(up_->records().empty());
  // Other methods reach the backend and come back with the fields.
  // The backend's Access-Control-* fields that phigate does not set are removed too; "*" adds no Vary.
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto get = request(pg, "GET", "/api?header=Access-Control-Expose-Headers:X-Secret",
                             {proto, "-H", "Origin: https://any.example"});
    EXPECT_EQ(get.status, "200") << proto;
    EXPECT_EQ(get.get("access-control-allow-origin"), "*") << proto;
    EXPECT_EQ(get.count("access-control-expose-headers"), 0u) << proto;
    EXPECT_EQ(get.count("vary"), 0u) << proto;
  }
  EXPECT_EQ(up_->records().size(), 2u);
}

// A listed origin is sent back with Vary: Origin; the backend's own CORS fields never survive
// (a malicious or careless backend cannot widen the policy), not even those phigate does not set.
TEST_F(CorsIngressTest, ListedOriginIsReflectedAndTheBackendsFieldsAreReplaced) {
  write(std::string(kN) + "enable-cors: \"true\"\n" + kN +
        "cors-allow-origin: \"https://app.example, https://*.partner.example:8443\"\n" + kN +
        "cors-allow-credentials: \"false\"\n" + kN + "cors-expose-headers: \"X-Total, X-Page\"\n" + kN +
        "cors-max-age: \"600\"\n" + kN + "cors-allow-methods: \"GET, POST\"\n");
  auto pg = start();
  const std::string evil =
      "/x?header=Access-Control-Allow-Origin:https://evil.example"
      "&header=access-control-allow-credentials:true&header=Access-Control-Max-Age:99999999"
      "&header=Vary:Accept-Encoding";
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto h = request(pg, "GET", evil, {proto, "-H", "Origin: https://app.example"});
    EXPECT_EQ(h.status, "200") << proto;
    EXPECT_EQ(h.count("access-control-allow-origin"), 1u) << proto;
    EXPECT_EQ(h.get("access-control-allow-origin"), "https://app.example") << proto;
    EXPECT_EQ(h.get("access-control-max-age"), "600") << proto;
    EXPECT_EQ(h.count("access-control-max-age"), 1u) << proto;
    EXPECT_EQ(h.get("access-control-allow-methods"), "GET, POST") << proto;
    EXPECT_EQ(h.get("access-control-expose-headers"), "X-Total, X-Page") << proto;
    // Credentials off: ours is absent, and so is the backend's (ingress-nginx let it through,
    // which turned a credential-less policy into one with credentials).
    EXPECT_EQ(h.count("access-control-allow-credentials"), 0u) << proto;
    EXPECT_EQ(h.all("vary"), "Accept-Encoding, Origin") << proto;
    const auto w = request(pg, "OPTIONS", "/x", {proto, "-H", "Origin: https://a1.partner.example:8443"});
    EXPECT_EQ(w.status, "204") << proto;
    EXPECT_EQ(w.get("access-control-allow-origin"), "https://a1.partner.example:8443") << proto;
    EXPECT_EQ(w.get("vary"), "Origin") << proto;
    EXPECT_EQ(w.count("access-control-allow-credentials"), 0u) << proto;
  }
  EXPECT_EQ(up_->records().size(), 2u);  // the two GETs; no preflight
}

// Origins that are not listed get no CORS fields: never reflected, and their OPTIONS goes to the
// backend like any request. The backend's own Access-Control-* fields are removed too (ingress-nginx
// let them through), and Vary: Origin tells caches the answer depends on the Origin. H1 and H2.
TEST_F(CorsIngressTest, UnlistedOriginsAreNeverReflected) {
  write(std::string(kN) + "enable-cors: \"true\"\n" + kN +
        "cors-allow-origin: \"https://app.example, https://*.example.com\"\n");
  auto pg = start();
  const std::vector<std::vector<std::string>> attacks = {
      {"-H", "Origin: https://app.example.evil.com"},  // the listed value as a prefix
      {"-H", "Origin: https://evilapp.example"},
      {"-H", "Origin: xhttps://app.example"},  // ingress-nginx's unanchored match
      {"-H", "Origin: http://app.example"},
      {"-H", "Origin: https://app.example:444"},
      {"-H", "Origin: https://app.example/"},
      {"-H", "Origin: null"},
      {"-H", "Origin: https://example.com"},      // the wildcard needs one label
      {"-H", "Origin: https://a.b.example.com"},  // and only one
      {"-H", "Origin: https://a.example.com.evil.net"},
      {"-H", "Origin: https://app.example", "-H", "Origin: https://evil.example"},  // two fields
      {"-H", "Origin: https://app.example, https://evil.example"},
      {},  // no Origin
  };
  std::size_t sent = 0;
  for (const char* proto : {"--http1.1", "--http2"}) {
    for (const auto& a : attacks) {
      const auto what = std::string(proto) + " " + (a.empty() ? std::string("(none)") : a.back());
      auto args = a;
      args.insert(args.begin(), proto);
      const auto h = request(pg, "OPTIONS", "/x?status=200&header=Access-Control-Allow-Origin:*", args);
      ++sent;
      EXPECT_EQ(h.status, "200") << what;  // the backend's answer, not a 204
      EXPECT_EQ(h.count("access-control-allow-origin"), 0u) << what;
      EXPECT_EQ(h.all("vary"), "Origin") << what;
      const auto g = request(pg, "GET",
                             "/x?header=Access-Control-Allow-Origin:https://backend.example"
                             "&header=Access-Control-Allow-Credentials:true&header=Vary:Accept",
                             args);
      ++sent;
      EXPECT_EQ(g.status, "200") << what;
      EXPECT_EQ(g.count("access-control-allow-origin"), 0u) << what;
      EXPECT_EQ(g.count("access-control-allow-credentials"), 0u) << what;
      EXPECT_EQ(g.count("access-control-allow-methods"), 0u) << what;
      EXPECT_EQ(g.all("vary"), "Accept, Origin") << what;
    }
  }
  EXPECT_EQ(up_->records().size(), sent);
  // Case does not matter in scheme and host; the Origin is sent back as the client wrote it.
  const auto ok = request(pg, "GET", "/x", {"-H", "Origin: HTTPS://App.Example"});
  EXPECT_EQ(ok.get("access-control-allow-origin"), "HTTPS://App.Example");
  EXPECT_EQ(
      request(pg, "GET", "/x", {"-H", "Origin: https://Sub.Example.com"}).get("access-control-allow-origin"),
      "https://Sub.Example.com");
}

// A refused client learns nothing: a source range is checked before the preflight (403, not 204),
// and an invalid CORS list fails the Ingress closed (ingress-nginx would use its default "*").
TEST_F(CorsIngressTest, RefusedClientsAndInvalidListsGetNo204) {
  write(std::string(kN) + "enable-cors: \"true\"\n" + kN + "whitelist-source-range: \"10.0.0.0/8\"\n");
  auto pg = start();
  const auto denied = request(pg, "OPTIONS", "/x", {"-H", "Origin: https://app.example"});
  EXPECT_EQ(denied.status, "403");
  EXPECT_EQ(denied.count("access-control-allow-origin"), 0u);
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       std::string(kN) + "enable-cors: \"true\"\n" + kN +
                           "cors-allow-origin: \"https://app.example/path\"\n"));
  const auto invalid = request(pg, "OPTIONS", "/x", {"-H", "Origin: https://app.example"});
  EXPECT_EQ(invalid.status, "503");
  EXPECT_EQ(invalid.count("access-control-allow-origin"), 0u);
  EXPECT_EQ(request(pg, "GET", "/x").status, "503");
  EXPECT_TRUE(up_->records().empty());
}

}  // namespace
}  // namespace phigate::test
