// server-alias, from-to-www-redirect and service-upstream with real phigate and curl, against
// recording backends; and the ways a client might use an alias or a partner name to get around a
// host's client-certificate or source-range policy.
#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

const std::string kA = "    nginx.ingress.kubernetes.io/";

/// `ingress_yaml` with its one path changed from "/" to `path`.
std::string at_path(std::string y, const std::string& path) {
  y.replace(y.find("path: /,"), 8, "path: " + path + ",");
  return y;
}

class HostsIngressTest : public IngressTest {
 protected:
  void SetUp() override {
    IngressTest::SetUp();
    client_ca_ = make_ca(dir_.path(), "Client CA");
    good_ = make_leaf(dir_.path(), client_ca_, "good-client", {}, KeyType::EcdsaP256, true);
    dir_.write("manifests/ca.yaml",
               "apiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\ndata:\n"
               "  ca.crt: " +
                   b64(read_file(client_ca_.cert)) + "\n");
  }
  /// GET https://<host>:<port><path> (host resolved to 127.0.0.1, SNI = host): "status|location".
  std::string get(const Phigate& pg, const std::string& host, const std::string& path,
                  const CertPaths* cert = nullptr, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--resolve", host + ":" + std::to_string(pg.https) + ":127.0.0.1",
                                  "-o",        "/dev/null",
                                  "-w",        "%{http_code}|%header{location}"};
    if (cert != nullptr) args.insert(args.end(), {"--cert", cert->cert, "--key", cert->key});
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(https_url(pg, path, host));
    return curl(pg, args).out;
  }
  std::string origin(const Phigate& pg, const std::string& host) const {
    return "https://" + host + ":" + std::to_string(pg.https);
  }

  CertPaths client_ca_, good_;
};

// AD "Server Alias": the alias serves every path of the host, from every Ingress on it (the
// second Ingress sets no alias of its own). The backend sees the alias as Host.
TEST_F(HostsIngressTest, ServerAlias_ServesEveryPathOfTheHostFromTwoIngresses) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("svc", up));
  dir_.write(
      "manifests/ingress.yaml",
      at_path(ingress_yaml("a", "shop.app.example", "svc", kA + "server-alias: \"alias.app.example\"\n"),
              "/a") +
          "---\n" + at_path(ingress_yaml("b", "shop.app.example", "svc"), "/b"));
  auto pg = start();
  EXPECT_EQ(get(pg, "alias.app.example", "/a"), "200|");
  EXPECT_EQ(record_header(up.records().back(), "host"), "alias.app.example:" + std::to_string(pg.https));
  EXPECT_EQ(get(pg, "alias.app.example", "/b", nullptr, {"--http2"}), "200|");
  EXPECT_EQ(get(pg, "alias.app.example", "/c"), "404|");
  EXPECT_EQ(get(pg, "shop.app.example", "/b"), "200|");
  EXPECT_EQ(up.records().size(), 3u);
}

// Attacker: an alias is never a way around the host's client-certificate policy — not by SNI of
// the alias without a certificate, nor by the alias as Host on another host's connection.
TEST_F(HostsIngressTest, ServerAlias_NeverBypassesTheHostsClientCertificatePolicy) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("svc", up));
  dir_.write("manifests/ingress.yaml", ingress_yaml("mtls", "secure.app.example", "svc",
                                                    kA + "auth-tls-secret: default/client-ca\n" + kA +
                                                        "auth-tls-verify-client: \"on\"\n" + kA +
                                                        "server-alias: \"alias.app.example\"\n") +
                                           "---\n" + ingress_yaml("open", "open.app.example", "svc"));
  auto pg = start();
  EXPECT_EQ(get(pg, "secure.app.example", "/"), "400|");
  EXPECT_EQ(get(pg, "alias.app.example", "/"), "400|");
  EXPECT_EQ(get(pg, "alias.app.example", "/", nullptr, {"--http2"}), "400|");
  EXPECT_TRUE(up.records().empty()) << "the alias reached the backend without a client certificate";
  // The open host's connection (no certificate asked) with the alias as Host: misdirected.
  TlsClientOptions o{.sni = "open.app.example", .ca_file = ca_.cert, .verify_name = "open.app.example"};
  auto c = TlsClient::connect("127.0.0.1", pg.https, o);
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(c->write("GET / HTTP/1.1\r\nHost: alias.app.example\r\n\r\n"));
  const auto r = c->read_http_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  EXPECT_TRUE(up.records().empty());
  // With a certificate the alias is served, and the backend is told about the certificate.
  EXPECT_EQ(get(pg, "alias.app.example", "/", &good_), "200|");
  ASSERT_EQ(up.records().size(), 1u);
  EXPECT_EQ(record_header(up.records().back(), "ssl-client-verify"), "SUCCESS");
}

// Attacker: the host's source range holds for the alias.
TEST_F(HostsIngressTest, ServerAlias_NeverBypassesTheHostsSourceRange) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("ranged", "shop.app.example", "svc",
                          kA + "whitelist-source-range: \"10.0.0.0/8\"\n" + kA +
                              "server-alias: \"alias.app.example, *.aliases.app.example\"\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "shop.app.example", "/"), "403|");
  EXPECT_EQ(get(pg, "alias.app.example", "/"), "403|");
  EXPECT_TRUE(up.records().empty());
}

// AD "Redirect from/to www": the partner name without routes of its own gets 308 to the host,
// path and query kept; a real www host is served, never redirected.
TEST_F(HostsIngressTest, FromToWwwRedirect_BothWaysAndARealHostWins) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("svc", up));
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("bare", "shop.app.example", "svc", kA + "from-to-www-redirect: \"true\"\n") + "---\n" +
          ingress_yaml("www", "www.blog.app.example", "svc", kA + "from-to-www-redirect: \"true\"\n") +
          "---\n" + ingress_yaml("real", "real.app.example", "svc", kA + "from-to-www-redirect: \"true\"\n") +
          "---\n" + at_path(ingress_yaml("realwww", "www.real.app.example", "svc"), "/www-only"));
  auto pg = start();
  // The default certificate is *.app.example: www.shop.app.example is two labels down, so curl
  // checks it as app.example (the redirect is what is tested here, not the certificate).
  const std::vector<std::string> k = {"-k"};
  EXPECT_EQ(get(pg, "www.shop.app.example", "/a/b?c=d", nullptr, k),
            "308|" + origin(pg, "shop.app.example") + "/a/b?c=d");
  EXPECT_EQ(get(pg, "www.shop.app.example", "/x", nullptr, {"-k", "--http2"}),
            "308|" + origin(pg, "shop.app.example") + "/x");
  EXPECT_EQ(get(pg, "blog.app.example", "/"), "308|" + origin(pg, "www.blog.app.example") + "/");
  EXPECT_TRUE(up.records().empty());
  // www.real.app.example has a route of its own: served as itself ("/" is not one of its paths).
  EXPECT_EQ(get(pg, "www.real.app.example", "/www-only", nullptr, k), "200|");
  EXPECT_EQ(get(pg, "www.real.app.example", "/", nullptr, k), "404|");
  EXPECT_EQ(get(pg, "shop.app.example", "/"), "200|");
  EXPECT_EQ(up.records().size(), 2u);
}

// AD "Service Upstream": the backend is the Service's cluster IP and port, not its endpoints. The
// test Service's cluster IP is loopback and its port the recording upstream's.
TEST_F(HostsIngressTest, ServiceUpstream_ClusterIpInsteadOfEndpoints_HeadlessFallsBack) {
  auto cluster = start_upstream("cluster");
  auto endpoint = start_upstream("endpoint");
  const auto svc = [&](const std::string& name, const std::string& cluster_ip) {
    return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name +
           ", namespace: default }\nspec:\n  clusterIP: " + cluster_ip +
           "\n  ports: [{ name: http, port: " + std::to_string(cluster.port) +
           ", targetPort: 8080 }]\n---\n"
           "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
           name + "-abc\n  namespace: default\n  labels: { kubernetes.io/service-name: " + name +
           " }\naddressType: IPv4\nports: [{ name: http, port: " + std::to_string(endpoint.port) +
           " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
  };
  dir_.write("manifests/services.yaml", svc("clustered", "127.0.0.1") + "---\n" + svc("headless", "None"));
  auto ing = [&](const std::string& name, const std::string& host, const std::string& service) {
    auto y = ingress_yaml(name, host, service, kA + "service-upstream: \"true\"\n");
    y.replace(y.find("number: 80"), 10, "number: " + std::to_string(cluster.port));
    return y;
  };
  dir_.write("manifests/ingress.yaml",
             ing("a", "app.example", "clustered") + "---\n" + ing("b", "other.example", "headless"));
  auto pg = start();
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(cluster.records().size(), 1u);
  EXPECT_TRUE(endpoint.records().empty());
  EXPECT_EQ(code(pg, "other.example"), "200");
  EXPECT_EQ(endpoint.records().size(), 1u);
  EXPECT_NE(pg.process.output().find("has no cluster IP (headless)"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
