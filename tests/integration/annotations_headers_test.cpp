// proxy-redirect-from/-to and proxy-cookie-domain/-path through the real binary: a backend
// (phigate-test-upstream, header=) answers with its internal Location and cookies, and the client
// sees them rewritten, over HTTP/1.1 and HTTP/2.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ingress_fixture.hpp"
#include "response_head.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

class HeadersIngressTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    up_ = start_upstream("up");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_));
  }
  Head request(const Phigate& pg, const std::string& path, std::vector<std::string> args = {}) {
    std::vector<std::string> a = {"-s", "-D", "-", "-o", "/dev/null"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(https_url(pg, path));
    const auto r = curl(pg, a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return parse_head(r.out);
  }
  std::optional<Upstream> up_;
};

TEST_F(HeadersIngressTest, RedirectAndCookieRewrites) {
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc",
                          std::string(kN) + "proxy-redirect-from: \"http://backend.local:8080/\"\n" + kN +
                              "proxy-redirect-to: \"https://app.example/\"\n" + kN +
                              "proxy-cookie-domain: \"backend.local app.example\"\n" + kN +
                              "proxy-cookie-path: \"/internal /app\"\n"));
  auto pg = start();
  const std::string path =
      "/x?status=302&header=Location:http://backend.local:8080/login%3Fnext%3D/a"
      "&header=Refresh:5;%20url=http://backend.local:8080/r"
      "&header=Set-Cookie:sid=1;%20Domain=.Backend.Local;%20Path=/internal/x;%20HttpOnly"
      "&header=Set-Cookie:other=2;%20Domain=evil.example;%20Path=/elsewhere";
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto h = request(pg, path, {proto});
    EXPECT_EQ(h.status, "302") << proto;
    EXPECT_EQ(h.get("location"), "https://app.example/login?next=/a") << proto;
    EXPECT_EQ(h.get("refresh"), "5; url=https://app.example/r") << proto;
    EXPECT_EQ(
        h.all("set-cookie"),
        "sid=1; Domain=.app.example; Path=/app/x; HttpOnly, other=2; Domain=evil.example; Path=/elsewhere")
        << proto;
  }
  // A Location that does not start with the prefix (case-sensitive, as nginx) is left alone.
  const auto other = request(pg, "/x?status=301&header=Location:HTTP://BACKEND.LOCAL:8080/y");
  EXPECT_EQ(other.get("location"), "HTTP://BACKEND.LOCAL:8080/y");
}

// An Ingress author cannot use the rewrites to inject fields: CR/LF, $variables and regex forms
// fail the Ingress closed (503), and proxy-redirect-from without -to too.
TEST_F(HeadersIngressTest, InjectionAndRegexFormsFailClosed) {
  const std::vector<std::string> bad = {
      std::string(kN) + "proxy-redirect-from: \"~^http://(.*)$\"\n" + kN +
          "proxy-redirect-to: \"https://$1\"\n",
      std::string(kN) + "proxy-redirect-from: \"http://b/\"\n",
      std::string(kN) + "proxy-cookie-domain: \"~\\\\.local$ app.example\"\n",
      std::string(kN) + "proxy-cookie-path: \"/a /b; Domain=evil.example\"\n",
      std::string(kN) + "proxy-cookie-domain: \"a.local $host\"\n",
  };
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc"));
  auto pg = start();
  for (const auto& annotations : bad) {
    rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc", annotations));
    EXPECT_EQ(code(pg, "app.example", "/x"), "503") << annotations;
  }
  EXPECT_TRUE(up_->records().empty());
}

}  // namespace
}  // namespace phigate::test
