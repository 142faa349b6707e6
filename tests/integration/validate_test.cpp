// `phigate validate`: `--config FILE` and `--ingress-dir DIR` run the same compile step as `run`,
// so for the same manifests they print the same problems (client-certificate CA, per-host
// conflicts, unenforced annotations), and a running phigate logs them and acts on them.
#include <string>
#include <vector>

#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

constexpr const char* kNginx = "    nginx.ingress.kubernetes.io/";

/// The printed lines that are about the manifests (the `validate` summary line excluded).
std::vector<std::string> manifest_lines(const std::string& out, const std::string& dir) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    auto line = out.substr(pos, end - pos);
    if (line.rfind(dir + "/", 0) == 0) lines.push_back(std::move(line));
    pos = end + 1;
  }
  return lines;
}

class ValidateTest : public IngressTest {
 protected:
  /// A client-certificate CA that is PEM-shaped but no certificate (other.example), two Ingresses
  /// asking for different cipher lists on app.example, and an annotation that has no effect
  /// (proxy-ssl-name on a plain-HTTP backend: it applies to HTTPS backends only).
  void write_manifests(const std::string& services) {
    const std::string bad_ca =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    dir_.write("manifests/services.yaml",
               services +
                   "---\napiVersion: v1\nkind: Secret\nmetadata: { name: client-ca, namespace: default }\n"
                   "type: Opaque\ndata:\n  ca.crt: " +
                   b64(bad_ca) + "\n");
    std::string second = ingress_yaml("second", "app.example", "web",
                                      std::string(kNginx) + "ssl-ciphers: ECDHE-RSA-AES256-GCM-SHA384\n");
    second.replace(second.find("path: /,"), 8, "path: /second,");
    second.replace(second.find("00:00:00Z"), 9, "00:00:09Z");  // younger: the first keeps the host
    dir_.write("manifests/ingress.yaml",
               ingress_yaml("first", "app.example", "web",
                            std::string(kNginx) + "ssl-ciphers: ECDHE-RSA-AES128-GCM-SHA256\n" + kNginx +
                                "proxy-ssl-name: backend.example\n") +
                   "---\n" + second + "---\n" +
                   ingress_yaml("mtls", "other.example", "web",
                                std::string(kNginx) + "auth-tls-secret: default/client-ca\n"));
  }
  std::string phigate_yaml() {
    return dir_.write("phigate.yaml", config("  []\n", "ingress: { dir: " + dir_.path("manifests") + " }\n"));
  }
};

TEST_F(ValidateTest, ConfigAndIngressDirReportTheSameBadCaConflictAndUnenforcedAnnotation) {
  write_manifests(
      "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
      "spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n");
  const auto dir = dir_.path("manifests");
  const auto by_dir = run({bin("phigate"), "validate", "--ingress-dir", dir});
  const auto by_config = run({bin("phigate"), "validate", "--config", phigate_yaml()});
  EXPECT_EQ(by_dir.exit_code, 1) << by_dir.out;
  EXPECT_EQ(by_config.exit_code, 1) << by_config.out;
  const auto lines = manifest_lines(by_dir.out, dir);
  EXPECT_EQ(lines, manifest_lines(by_config.out, dir)) << by_dir.out << "\n---\n" << by_config.out;
  const auto has = [&](const std::string& a, const std::string& b, const std::string& c) {
    for (const auto& l : lines) {
      if (l.find(a) != std::string::npos && l.find(b) != std::string::npos && l.find(c) != std::string::npos)
        return true;
    }
    return false;
  };
  EXPECT_TRUE(has("error: Ingress default/mtls", "host other.example", "ca.crt")) << by_dir.out;
  EXPECT_TRUE(has("error: Ingress default/second", "host app.example already has", "Ingress default/first"))
      << by_dir.out;
  EXPECT_TRUE(
      has("warning: Ingress default/first", "nginx.ingress.kubernetes.io/proxy-ssl-name", "has no effect"))
      << by_dir.out;
  for (const auto& l : lines) EXPECT_NE(l.find("/ingress.yaml#"), std::string::npos) << l;
}

TEST_F(ValidateTest, RunLogsWhatValidatePrintsAndFailsThoseHostsClosed) {
  auto a = start_upstream("a");
  write_manifests(service_yaml("web", a));
  const auto dir = dir_.path("manifests");
  const auto by_dir = run({bin("phigate"), "validate", "--ingress-dir", dir});
  const auto lines = manifest_lines(by_dir.out, dir);
  ASSERT_EQ(lines.size(), 3u) << by_dir.out;
  auto pg = start();
  for (const auto& l : lines)
    EXPECT_TRUE(pg.process.wait_for_line(l, 10s)) << l << "\n" << pg.process.output();
  EXPECT_EQ(code(pg, "app.example"), "200");
  EXPECT_EQ(code(pg, "app.example", "/second"), "503");  // conflicting TLS settings
  EXPECT_EQ(code(pg, "other.example"), "503");           // client-certificate CA does not compile
  EXPECT_EQ(a.records().size(), 1u);
}

}  // namespace
}  // namespace phigate::test
