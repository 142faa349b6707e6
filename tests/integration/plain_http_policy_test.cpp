// The plain HTTP listener and client-certificate policies: a host that requires client
// certificates is never served without TLS, even when another Ingress on the same host asks for
// plain HTTP (`ssl-redirect: "false"`). Real phigate, real curl, the test upstream.
#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

class PlainHttpPolicyTest : public IngressTest {};

TEST_F(PlainHttpPolicyTest, HostRequiringClientCertificates_NeverServedOverPlainHttp) {
  const auto client_ca = make_ca(dir_.path(), "Client CA");
  auto up = start_upstream("a");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", up));
  dir_.write("manifests/ca.yaml",
             "apiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\ndata:\n"
             "  ca.crt: " +
                 b64(read_file(client_ca.cert)) + "\n");
  const std::string a = "    nginx.ingress.kubernetes.io/";
  // The certificate rule comes from one Ingress; the other, on the same host, allows plain HTTP.
  std::string open = ingress_yaml("plain", "secure.app.example", "svc-a", a + "ssl-redirect: \"false\"\n");
  open.replace(open.find("path: /,"), 8, "path: /open,");
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("secure", "secure.app.example", "svc-a", a + "auth-tls-secret: default/client-ca\n") +
          "---\n" + open + "---\n" +
          ingress_yaml("public", "public.app.example", "svc-a", a + "ssl-redirect: \"false\"\n"));
  auto pg = start();
  const auto plain = [&](const std::string& host, const std::string& path) {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: " + host,
                     "http://127.0.0.1:" + std::to_string(pg.http) + path})
        .out;
  };
  EXPECT_EQ(plain("secure.app.example", "/open"), "403");
  EXPECT_EQ(plain("secure.app.example", "/"), "308");  // the mTLS Ingress itself redirects
  // A host without a certificate rule that asked for plain HTTP gets it (the control).
  EXPECT_EQ(plain("public.app.example", "/"), "200");
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header(recs[0], "host"), "public.app.example");
}

}  // namespace
}  // namespace phigate::test
