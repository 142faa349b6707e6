// The plain HTTP listener and client-certificate policies: a host that requires client
// certificates is never served without TLS, even when a catch-all Ingress that matches its paths
// asks for plain HTTP (`ssl-redirect: "false"`). Real phigate, real curl, the test upstream.
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
  // The certificate rule covers /private of secure.app.example; a host-less catch-all Ingress (valid:
  // it asks for no certificate) allows plain HTTP for every other host.
  std::string secure =
      ingress_yaml("secure", "secure.app.example", "svc-a", a + "auth-tls-secret: default/client-ca\n");
  secure.replace(secure.find("path: /,"), 8, "path: /private,");
  const std::string catch_all =
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: catch-all\n  namespace: default\n"
      "  annotations:\n" +
      a +
      "ssl-redirect: \"false\"\nspec:\n  ingressClassName: phigate\n  rules:\n  - http:\n      paths:\n"
      "      - { path: /, pathType: Prefix, backend: { service: { name: svc-a, port: { number: 80 } } } }\n";
  dir_.write("manifests/ingress.yaml", secure + "---\n" + catch_all);
  auto pg = start();
  const auto plain = [&](const std::string& host, const std::string& path) {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: " + host,
                     "http://127.0.0.1:" + std::to_string(pg.http) + path})
        .out;
  };
  // A host with rules never falls through to the catch-all (as in ingress-nginx), so its other
  // paths have no route that allows plain HTTP: redirected. phigate's run-time guard (403 for
  // any plain request to a host whose TLS policy verifies certificates) stands behind this and
  // behind the compile-time refusal of ssl-redirect: "false" on such hosts (policy_chain_test).
  EXPECT_EQ(plain("secure.app.example", "/other"), "308");
  EXPECT_EQ(plain("secure.app.example", "/private"), "308");  // the mTLS Ingress itself redirects
  // A host without a certificate rule that asked for plain HTTP gets it (the control).
  EXPECT_EQ(plain("public.app.example", "/"), "200");
  const auto recs = up.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(record_header(recs[0], "host"), "public.app.example");
  EXPECT_EQ(run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")}).exit_code, 0);
}

}  // namespace
}  // namespace phigate::test
