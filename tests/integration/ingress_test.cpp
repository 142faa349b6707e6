// Kubernetes Ingress resources from a directory: routing, live reload, TLS Secrets, fail-closed
// annotations, and a reload storm under load that must not drop a request.
#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "ingress_fixture.hpp"
#include "support/hash.hpp"
#include "support/plain_client.hpp"

namespace phigate::test {
namespace {

TEST_F(IngressTest, RoutesFromManifestsToRealBackends) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a) + "---\n" + service_yaml("svc-b", b));
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-a") + "---\n" +
                                           ingress_yaml("other", "other.example", "svc-b"));
  auto pg = start();
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(code(pg, "other.example"), "200");
  EXPECT_EQ(code(pg, "x.app.example"), "404");
  EXPECT_EQ(a.records().size(), 1u);
  EXPECT_EQ(b.records().size(), 1u);
}

TEST_F(IngressTest, EditingAFileSwitchesRoutingLive_BrokenFileKeepsOldRoutes) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a) + "---\n" + service_yaml("svc-b", b));
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-a"));
  auto pg = start();
  ASSERT_EQ(code(pg, "app.example"), "200");
  ASSERT_EQ(a.records().size(), 1u);

  rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc-b"));
  ASSERT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(b.records().size(), 1u);

  rewrite(pg, "broken.yaml", "kind: Ingress\nmetadata: [unclosed\n", "reload failed");
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(b.records().size(), 2u);
  EXPECT_EQ(a.records().size(), 1u);
}

TEST_F(IngressTest, ReplacingTlsSecretChangesCertificateForNewHandshakes) {
  auto a = start_upstream("a");
  auto first = make_leaf(dir_.path(), ca_, "secret-one.app.example", {"secure.example"});
  auto second = make_leaf(dir_.path(), ca_, "secret-two.app.example", {"secure.example"});
  auto secret = [&](const CertPaths& c) {
    return "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: { name: secure-tls, namespace: "
           "default }\n"
           "data:\n  tls.crt: " +
           b64(read_file(c.cert)) + "\n  tls.key: " + b64(read_file(c.key)) + "\n";
  };
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a));
  dir_.write("manifests/secret.yaml", secret(first));
  dir_.write("manifests/ingress.yaml", ingress_yaml("secure", "secure.example", "svc-a", "", "secure-tls"));
  auto pg = start();
  auto subject = [&] {
    auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "secure.example", .ca_file = ca_.cert});
    return c ? c->peer_certificate_subject() : "handshake failed: " + c.error;
  };
  EXPECT_EQ(subject(), "CN=secret-one.app.example");
  // A long-lived connection opened before the renewal keeps working across it.
  auto kept = TlsClient::connect("127.0.0.1", pg.https, {.sni = "secure.example", .ca_file = ca_.cert});
  ASSERT_TRUE(kept) << kept.error;
  rewrite(pg, "secret.yaml", secret(second));
  EXPECT_EQ(subject(), "CN=secret-two.app.example");
  ASSERT_TRUE(kept->write("GET / HTTP/1.1\r\nHost: secure.example\r\n\r\n"));
  auto r = kept->read_http_response(5s);
  ASSERT_TRUE(r) << kept->error();
  EXPECT_EQ(r->status, 200);
}

TEST_F(IngressTest, MissingSecretServesDefaultCertificate_OtherHostsKeepWorking) {
  auto a = start_upstream("a");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("broken-tls", "secure.example", "svc-a", "", "no-such-secret") + "---\n" +
                 ingress_yaml("web", "app.example", "svc-a"));
  auto pg = start();
  auto c = TlsClient::connect("127.0.0.1", pg.https, {.sni = "secure.example"});
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(c->peer_certificate_subject(), "CN=app.example");  // the default certificate
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_NE(pg.process.output().find("no-such-secret"), std::string::npos);
  auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"});
  EXPECT_NE(m.out.find("phigate_config_resource_errors 1"), std::string::npos) << m.out;
}

TEST_F(IngressTest, InvalidAnnotationFailsClosedWith503_NeverFallsThrough) {
  auto a = start_upstream("a");
  auto catchall = start_upstream("catchall");
  dir_.write("manifests/services.yaml",
             service_yaml("svc-a", a) + "---\n" + service_yaml("svc-all", catchall));
  // A valid catch-all for every host, and a protected host whose annotation is invalid.
  std::string any = ingress_yaml("any", "placeholder", "svc-all");
  any.replace(any.find("  - host: placeholder\n"), std::string("  - host: placeholder\n").size(), "  - \n");
  dir_.write("manifests/ingress.yaml",
             any + "---\n" +
                 ingress_yaml("protected", "app.example", "svc-a",
                              "    nginx.ingress.kubernetes.io/proxy-read-timeout: \"soon\"\n"));
  auto pg = start();
  EXPECT_EQ(code(pg, "app.example", "/patients"), "503");
  EXPECT_EQ(code(pg, "other.example"), "200");  // the catch-all still serves other hosts
  EXPECT_TRUE(a.records().empty());
  EXPECT_EQ(catchall.records().size(), 1u);
  auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("Ingress default/protected"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("proxy-read-timeout"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("ingress.yaml#"), std::string::npos) << v.out;
}

// ingress.unsupported_annotations: an annotation phigate does not support (mirror-target) is
// ignored under warn (the default) and fails its Ingress closed under fail_closed; a no-effect one
// (proxy-buffering) serves under both, and an unknown name under our prefix counts as unsupported.
TEST_F(IngressTest, UnsupportedAnnotationFailsClosedUnderFailClosedAndServesUnderWarn) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a) + "---\n" + service_yaml("svc-b", b));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("mirrored", "app.example", "svc-a",
                          "    nginx.ingress.kubernetes.io/mirror-target: http://mirror.example/\n") +
                 "---\n" +
                 ingress_yaml("buffered", "other.example", "svc-b",
                              "    nginx.ingress.kubernetes.io/proxy-buffering: \"on\"\n"));
  const auto start_with = [&](const std::string& policy) {
    return start_phigate(config("  []\n", "ingress: { dir: " + dir_.path("manifests") +
                                              ", debounce: 50ms, unsupported_annotations: " + policy +
                                              " }\n"));
  };
  {
    auto pg = start_with("fail_closed");
    EXPECT_EQ(code(pg, "app.example", "/patients"), "503");
    EXPECT_EQ(code(pg, "other.example"), "200");  // no effect: a warning only
    EXPECT_TRUE(a.records().empty());
    EXPECT_EQ(b.records().size(), 1u);
    EXPECT_NE(pg.process.output().find("nginx.ingress.kubernetes.io/mirror-target"), std::string::npos)
        << pg.process.output();
    // An unknown name is as unsupported: renaming the annotation does not get it ignored.
    rewrite(pg, "ingress.yaml",
            ingress_yaml("mirrored", "app.example", "svc-a",
                         "    phigate.io/mirror-targets: http://mirror.example/\n"));
    EXPECT_EQ(code(pg, "app.example", "/patients"), "503");
    EXPECT_TRUE(a.records().empty());
  }
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("mirrored", "app.example", "svc-a",
                          "    nginx.ingress.kubernetes.io/mirror-target: http://mirror.example/\n"));
  auto pg = start_with("warn");
  EXPECT_EQ(code(pg, "app.example", "/patients"), "200");
  EXPECT_EQ(a.records().size(), 1u);
  EXPECT_NE(pg.process.output().find("unsupported annotation, ignored"), std::string::npos)
      << pg.process.output();
}

// Canaries: canary_test.cpp.

TEST_F(IngressTest, PlainHttpRedirectsUnlessSslRedirectIsFalse) {
  auto a = start_upstream("a");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("web", "app.example", "svc-a") + "---\n" +
                 ingress_yaml("open", "open.example", "svc-a",
                              "    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"\n"));
  auto pg = start();
  const std::string base = "http://127.0.0.1:" + std::to_string(pg.http);
  auto redirected =
      run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: app.example", base + "/"});
  EXPECT_EQ(redirected.out, "308");
  auto plain =
      run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: open.example", base + "/"});
  EXPECT_EQ(plain.out, "200");
  ASSERT_EQ(a.records().size(), 1u);
  EXPECT_EQ(record_header(a.records()[0], "x-forwarded-proto"), "http");
}

TEST_F(IngressTest, TimeoutAndBodySizeAnnotationsApplyPerIngress) {
  auto a = start_upstream("a");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("strict", "app.example", "svc-a",
                          "    nginx.ingress.kubernetes.io/proxy-read-timeout: \"1\"\n"
                          "    nginx.ingress.kubernetes.io/proxy-body-size: \"1k\"\n") +
                 "---\n" + ingress_yaml("lenient", "other.example", "svc-a"));
  auto pg = start();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(code(pg, "app.example", "/slow?delay_ms=3000"), "504");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);  // the Ingress's 1 s, not the global 60 s
  auto big = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", std::string(2048, 'x'),
                       https_url(pg, "/upload", "app.example")});
  EXPECT_EQ(big.out, "413");
  auto ok = curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", std::string(2048, 'x'),
                      https_url(pg, "/upload", "other.example")});
  EXPECT_EQ(ok.out, "200");
}

TEST_F(IngressTest, SourceRangeAnnotationsAllowAndDeny) {
  auto a = start_upstream("a");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("allow", "app.example", "svc-a",
                   "    nginx.ingress.kubernetes.io/whitelist-source-range: \"127.0.0.1/32\"\n") +
          "---\n" +
          ingress_yaml("deny", "other.example", "svc-a",
                       "    phigate.io/denylist-source-range: \"127.0.0.2, 10.0.0.0/8\"\n") +
          "---\n" +
          ingress_yaml("mtls", "mtls.app.example", "svc-a",
                       "    nginx.ingress.kubernetes.io/auth-tls-verify-client: \"optional_no_ca\"\n"));
  auto pg = start();
  auto from = [&](const std::string& source, const std::string& host) {
    return curl(pg, {"--interface", source, "--resolve",
                     "mtls.app.example:" + std::to_string(pg.https) + ":127.0.0.1", "-o", "/dev/null", "-w",
                     "%{http_code}", https_url(pg, "/", host)})
        .out;
  };
  EXPECT_EQ(from("127.0.0.1", "app.example"), "200");
  EXPECT_EQ(from("127.0.0.2", "app.example"), "403");
  EXPECT_EQ(from("127.0.0.1", "other.example"), "200");
  EXPECT_EQ(from("127.0.0.2", "other.example"), "403");
  // optional_no_ca without a certificate is served, and the backend is told there was none.
  EXPECT_EQ(from("127.0.0.1", "mtls.app.example"), "200");
  const auto recs = a.records();
  ASSERT_EQ(recs.size(), 3u);  // only the admitted requests reached the backend
  EXPECT_EQ(record_header(recs[2], "ssl-client-verify"), "NONE");
}

TEST_F(IngressTest, ZeroDropReload_WrkUnderFiftyRewrites) {
  auto a = start_upstream("a");
  auto b = start_upstream("b");
  dir_.write("manifests/services.yaml", service_yaml("svc-a", a) + "---\n" + service_yaml("svc-b", b));
  dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc-a"));
  auto pg = start();
  ASSERT_EQ(code(pg, "app.example"), "200");
  // wrk for a bounded 8 s while the directory is rewritten 50 times (alternating backends).
  auto load = std::async(std::launch::async, [&] {
    return run({"wrk", "-t1", "-c16", "-d8s", "-H", "Host: app.example",
                "https://127.0.0.1:" + std::to_string(pg.https) + "/"},
               {.timeout = 30s});
  });
  for (int i = 0; i < 50; ++i) {
    // Atomically, as a ConfigMap volume or GitOps sync swaps files: written in place, a test process
    // descheduled between truncate and write (ASan, a loaded CI machine) would let a reload read
    // an empty file and drop the route for one rewrite.
    const auto tmp = dir_.write("manifests/.ingress.yaml.tmp",
                                ingress_yaml("web", "app.example", i % 2 ? "svc-a" : "svc-b"));
    std::filesystem::rename(tmp, dir_.path("manifests/ingress.yaml"));
    std::this_thread::sleep_for(120ms);  // paces the rewrites across the run; not a readiness wait
  }
  const auto r = load.get();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Requests/sec"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Non-2xx"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Socket errors"), std::string::npos) << r.out;
  // Both backends served: the rewrites really switched routing under load.
  EXPECT_FALSE(a.records().empty());
  EXPECT_FALSE(b.records().empty());
  EXPECT_NE(pg.process.output().find("generation 10"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
