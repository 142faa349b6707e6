#pragma once
// Ingress-driven phigate for integration tests: manifests written into a watched directory.
#include <string>

#include "phigate_fixture.hpp"

namespace phigate::test {

inline std::string b64(const std::string& in) {
  auto r = run({"base64", "-w0"}, {.stdin_data = in});
  return r.out;
}

/// A Service named `name` (port 80, named "http") and an EndpointSlice pointing at `up`.
inline std::string service_yaml(const std::string& name, const Upstream& up) {
  return "apiVersion: v1\nkind: Service\nmetadata: { name: " + name +
         ", namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
         name + "-abc\n  namespace: default\n  labels: { kubernetes.io/service-name: " + name +
         " }\naddressType: IPv4\nports: [{ name: http, port: " + std::to_string(up.port) +
         " }]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: { ready: true }\n";
}

inline std::string ingress_yaml(const std::string& name, const std::string& host, const std::string& service,
                                const std::string& annotations = "", const std::string& tls_secret = "") {
  std::string y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n";
  if (!annotations.empty()) y += "  annotations:\n" + annotations;
  y += "spec:\n  ingressClassName: phigate\n";
  if (!tls_secret.empty()) y += "  tls: [{ hosts: [" + host + "], secretName: " + tls_secret + " }]\n";
  y += "  rules:\n  - host: " + host +
       "\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: " +
       service + ", port: { number: 80 } } } }\n";
  return y;
}

inline constexpr const char* kIngressClass =
    "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: { name: phigate }\n"
    "spec: { controller: phigate.io/ingress-controller }\n";

class IngressTest : public PhigateTest {
 protected:
  void SetUp() override {
    PhigateTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
  }
  /// phigate with no static routes, fed by manifests/, reloading 50 ms after a change.
  /// `extra`: more top-level config keys.
  Phigate start(const std::string& extra = "") {
    return start_phigate(
        config("  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" + extra));
  }
  /// Rewrites a manifest and waits for the reload that follows it.
  void rewrite(Phigate& pg, const std::string& file, const std::string& yaml,
               const std::string& expect = "reloaded") {
    const auto mark = pg.process.output().size();
    dir_.write("manifests/" + file, yaml);
    ASSERT_TRUE(pg.process.wait_for_line(expect, 10s, mark)) << pg.process.output().substr(mark);
  }
  std::string code(const Phigate& pg, const std::string& host, const std::string& path = "/") {
    return curl(pg, {"-o", "/dev/null", "-w", "%{http_code}", https_url(pg, path, host)}).out;
  }
};

}  // namespace phigate::test
