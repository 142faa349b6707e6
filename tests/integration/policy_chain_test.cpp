// The policy chain with real phigate, curl and openssl s_client: a client-certificate or source-range
// policy attached to a host-less rule, the catch-all defaultBackend or a wildcard host is enforced
// or fails closed (503), and never reaches the backend without the check it asked for.
#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

const std::string kA = "    nginx.ingress.kubernetes.io/";

/// An Ingress whose only rule has no host (it matches every host nobody else claims).
std::string hostless_ingress_yaml(const std::string& name, const std::string& service,
                                  const std::string& annotations) {
  auto y = ingress_yaml(name, "placeholder", service, annotations);
  y.replace(y.find("  - host: placeholder\n"), std::string("  - host: placeholder\n").size(), "  - \n");
  return y;
}

/// An Ingress with only spec.defaultBackend: the catch-all.
std::string default_backend_yaml(const std::string& name, const std::string& service,
                                 const std::string& annotations) {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n  annotations:\n" +
         annotations + "spec:\n  ingressClassName: phigate\n  defaultBackend: { service: { name: " + service +
         ", port: { number: 80 } } }\n";
}

class PolicyChainTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    client_ca_ = make_ca(dir_.path(), "Client CA");
    good_ = make_leaf(dir_.path(), client_ca_, "good-client", {}, KeyType::EcdsaP256, true);
    up_.emplace(start_upstream("a"));
    dir_.write("manifests/services.yaml", service_yaml("svc-a", *up_));
    dir_.write("manifests/ca.yaml",
               "apiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\ndata:\n"
               "  ca.crt: " +
                   b64(read_file(client_ca_.cert)) + "\n");
  }

  /// curl without a client certificate to `host` (resolved to 127.0.0.1); the status code.
  /// curl arguments for the status code of https://secure.app.example<path>.
  std::vector<std::string> secure_code_args(const Phigate& pg, const std::string& path) const {
    return {"--resolve",
            "secure.app.example:" + std::to_string(pg.https) + ":127.0.0.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            https_url(pg, path, "secure.app.example")};
  }
  std::string status(const Phigate& pg, const std::string& host, const CertPaths* cert = nullptr) {
    std::vector<std::string> args{"--resolve", host + ":" + std::to_string(pg.https) + ":127.0.0.1",
                                  "-o",        "/dev/null",
                                  "-w",        "%{http_code}"};
    if (cert != nullptr) args.insert(args.end(), {"--cert", cert->cert, "--key", cert->key});
    args.push_back(https_url(pg, "/", host));
    return curl(pg, args).out;
  }

  /// openssl s_client without SNI and without a certificate; the status line.
  std::string s_client_status_line(const Phigate& pg, const std::string& host) {
    auto r = run(
        {"openssl", "s_client", "-quiet", "-ign_eof", "-noservername", "-connect",
         "127.0.0.1:" + std::to_string(pg.https), "-CAfile", ca_.cert},
        {.timeout = 20s, .stdin_data = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"});
    return r.out.substr(0, r.out.find("\r\n"));
  }

  /// `phigate validate --ingress-dir` on the manifests: exit code and output.
  RunResult validate() { return run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")}); }

  CertPaths client_ca_, good_;
  std::optional<Upstream> up_;
};

TEST_F(PolicyChainTest, HostlessRuleWithAuthTls_RefusedNeverServedOpen) {
  dir_.write("manifests/ingress.yaml", hostless_ingress_yaml("hostless", "svc-a",
                                                             kA + "auth-tls-secret: default/client-ca\n" +
                                                                 kA + "auth-tls-verify-client: \"on\"\n"));
  auto pg = start();
  // Any Host, any SNI, with or without a certificate: the catch-all stays claimed and answers 503.
  EXPECT_EQ(status(pg, "app.example"), "503");
  EXPECT_EQ(status(pg, "other.example"), "503");
  EXPECT_EQ(status(pg, "app.example", &good_), "503");
  EXPECT_EQ(s_client_status_line(pg, "anything.example"), "HTTP/1.1 503 Service Unavailable");
  EXPECT_TRUE(up_->records().empty()) << "a request reached the backend of a policy that cannot be enforced";

  const auto v = validate();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("ingress.yaml#0"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("Ingress default/hostless"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("nginx.ingress.kubernetes.io/auth-tls-secret"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("spec.rules[0] has no host"), std::string::npos) << v.out;
}

TEST_F(PolicyChainTest, CatchAllDefaultBackendWithAuthTls_RefusedNeverServedOpen) {
  dir_.write("manifests/ingress.yaml",
             default_backend_yaml("fallback", "svc-a", kA + "auth-tls-secret: default/client-ca\n") +
                 "---\n" + ingress_yaml("site", "app.example", "svc-a"));
  auto pg = start();
  EXPECT_EQ(status(pg, "other.example"), "503");
  EXPECT_EQ(status(pg, "other.example", &good_), "503");
  EXPECT_EQ(s_client_status_line(pg, "unknown.example"), "HTTP/1.1 503 Service Unavailable");
  EXPECT_TRUE(up_->records().empty());
  // Control: a host with its own rule is still served (only the catch-all failed closed).
  EXPECT_EQ(status(pg, "app.example"), "200");
  EXPECT_EQ(up_->records().size(), 1u);

  const auto v = validate();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("ingress.yaml#0"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("Ingress default/fallback"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("nginx.ingress.kubernetes.io/auth-tls-secret"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("spec.defaultBackend without rules is the catch-all"), std::string::npos) << v.out;
}

TEST_F(PolicyChainTest, AuthTlsWithSslRedirectFalse_NeverServedOnPlainHttp) {
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("plain", "app.example", "svc-a",
                          kA + "auth-tls-secret: default/client-ca\n" + kA + "ssl-redirect: \"false\"\n"));
  auto pg = start();
  const auto plain = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: app.example",
                          "http://127.0.0.1:" + std::to_string(pg.http) + "/"});
  EXPECT_EQ(plain.out, "503");  // not a redirect either: the Ingress is invalid
  EXPECT_EQ(status(pg, "app.example", &good_), "503");
  EXPECT_TRUE(up_->records().empty());
  const auto v = validate();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("nginx.ingress.kubernetes.io/ssl-redirect"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("Ingress default/plain"), std::string::npos) << v.out;
}

TEST_F(PolicyChainTest, WildcardHostWithAuthTls_EnforcedForSniAndHostUnderIt) {
  // Fine: the wildcard's policy is chosen for SNI a.app.example (one label under it) and checked
  // again against Host; the default certificate (*.app.example) serves it.
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("wild", "\"*.app.example\"", "svc-a", kA + "auth-tls-secret: default/client-ca\n") +
                 "---\n" + ingress_yaml("open", "app.example", "svc-a"));
  auto pg = start();
  EXPECT_EQ(status(pg, "a.app.example"), "400");
  EXPECT_TRUE(up_->records().empty());
  EXPECT_EQ(status(pg, "a.app.example", &good_), "200");
  EXPECT_EQ(up_->records().size(), 1u);
  // No SNI, an unknown SNI, or SNI of the open host, then Host under the wildcard: misdirected.
  // The default certificate answers an unknown SNI: verify it by a name it carries.
  TlsClientOptions o{.sni = "", .ca_file = ca_.cert, .verify_name = "app.example"};
  for (const std::string sni : {"", "unknown.example", "app.example"}) {
    o.sni = sni;
    auto c = TlsClient::connect("127.0.0.1", pg.https, o);
    ASSERT_TRUE(c) << c.error;
    ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: a.app.example\r\n\r\n"));
    const auto r = c->read_http_response(5s);
    ASSERT_TRUE(r) << "sni '" << sni << "'";
    EXPECT_EQ(r->status, 421) << "sni '" << sni << "'";
  }
  EXPECT_EQ(up_->records().size(), 1u);
  EXPECT_EQ(validate().exit_code, 0);
}

TEST_F(PolicyChainTest, SharedHostWhereOnlyOneIngressHasAuthTls_EveryPathNeedsTheCertificate) {
  // Fine: the older Ingress on the host sets nothing, the newer one asks for client certificates;
  // the host's policy is chosen by name, so the older one's path is protected too.
  auto more = ingress_yaml("a-more", "secure.app.example", "svc-a");
  more.replace(more.find("path: /,"), 8, "path: /more,");
  dir_.write("manifests/ingress.yaml", more + "---\n" +
                                           ingress_yaml("mtls", "secure.app.example", "svc-a",
                                                        kA + "auth-tls-secret: default/client-ca\n"));
  auto pg = start();
  const auto url = [&](const std::string& path) { return secure_code_args(pg, path); };
  EXPECT_EQ(curl(pg, url("/more")).out, "400");
  EXPECT_EQ(curl(pg, url("/")).out, "400");
  EXPECT_TRUE(up_->records().empty());
  auto with_cert = url("/more");
  with_cert.insert(with_cert.begin(), {"--cert", good_.cert, "--key", good_.key});
  EXPECT_EQ(curl(pg, with_cert).out, "200");
}

TEST_F(PolicyChainTest, InvalidIngressWithAuthTls_OtherIngressOnItsHostNotServedOpen) {
  // "mtls" asks for client certificates on the host but has an invalid annotation value, so it
  // fails closed and no host policy is compiled from it; "a-more" on the same host must not be
  // served to a client without a certificate because of that.
  auto more = ingress_yaml("a-more", "secure.app.example", "svc-a");
  more.replace(more.find("path: /,"), 8, "path: /more,");
  dir_.write("manifests/ingress.yaml",
             more + "---\n" +
                 ingress_yaml("mtls", "secure.app.example", "svc-a",
                              kA + "auth-tls-secret: default/client-ca\n" + kA + "proxy-body-size: lots\n"));
  auto pg = start();
  const auto url = [&](const std::string& path) { return secure_code_args(pg, path); };
  EXPECT_EQ(curl(pg, url("/more")).out, "503");
  EXPECT_EQ(curl(pg, url("/")).out, "503");
  EXPECT_TRUE(up_->records().empty());
  const auto v = validate();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("Ingress default/a-more"), std::string::npos) << v.out;
}

TEST_F(PolicyChainTest, WildcardWhosePolicyDoesNotCompile_HostsUnderItFailClosedToo) {
  // The wildcard's CA looks like PEM but does not parse: its own paths fail closed, and so must a
  // host under it that relies on it (no TLS settings of its own), instead of being served open.
  dir_.write("manifests/bad-ca.yaml",
             "apiVersion: v1\nkind: Secret\nmetadata: { name: bad-ca, namespace: default }\nstringData:\n"
             "  ca.crt: \"-----BEGIN CERTIFICATE-----\\nbm90IGEgY2VydGlmaWNhdGU=\\n-----END "
             "CERTIFICATE-----\\n\"\n");
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("wild", "\"*.app.example\"", "svc-a", kA + "auth-tls-secret: default/bad-ca\n") +
                 "---\n" + ingress_yaml("sub", "a.app.example", "svc-a") + "---\n" +
                 ingress_yaml("open", "app.example", "svc-a"));
  auto pg = start();
  EXPECT_EQ(status(pg, "b.app.example"), "503");
  EXPECT_EQ(status(pg, "a.app.example"), "503");
  EXPECT_TRUE(up_->records().empty());
  EXPECT_EQ(status(pg, "app.example"), "200");  // control: not under the wildcard
}

TEST_F(PolicyChainTest, MisspelledSourceRangeAnnotation_FailsClosedNotIgnored) {
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("typo", "app.example", "svc-a", kA + "whitelist-source-ranges: \"10.0.0.0/8\"\n"));
  auto pg = start();
  EXPECT_EQ(status(pg, "app.example"), "503");
  EXPECT_TRUE(up_->records().empty());
  const auto v = validate();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_NE(v.out.find("nginx.ingress.kubernetes.io/whitelist-source-ranges"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("Ingress default/typo"), std::string::npos) << v.out;
}

TEST_F(PolicyChainTest, SourceRangesOnHostlessRuleAndCatchAll_Enforced) {
  // Fine: both are per path, and the router's catch-all and host-less rules carry them.
  dir_.write("manifests/ingress.yaml",
             hostless_ingress_yaml("hostless", "svc-a", kA + "whitelist-source-range: \"10.0.0.0/8\"\n"));
  auto pg = start();
  EXPECT_EQ(status(pg, "app.example"), "403");
  rewrite(pg, "ingress.yaml",
          default_backend_yaml("fallback", "svc-a", "    phigate.io/denylist-source-range: \"127.0.0.1\"\n"));
  EXPECT_EQ(status(pg, "app.example"), "403");
  EXPECT_TRUE(up_->records().empty());
  // Control: without the annotation the same request is served, so the 403s above are the policy.
  rewrite(pg, "ingress.yaml", default_backend_yaml("fallback", "svc-a", "    phigate.io/hsts: \"true\"\n"));
  EXPECT_EQ(status(pg, "app.example"), "200");
}

}  // namespace
}  // namespace phigate::test
