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

// Per Ingress, validate lists every annotation phigate does not fully honour: no effect,
// unsupported (with the policy in force) and supported with a difference (not a warning: only here).
TEST_F(ValidateTest, ListsAnnotationsNotFullyHonouredPerIngress) {
  dir_.write("manifests/services.yaml",
             "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
             "spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n");
  dir_.write(
      "manifests/ingress.yaml",
      ingress_yaml("shop", "shop.example", "web",
                   std::string(kNginx) + "proxy-buffering: \"on\"\n" + kNginx +
                       "mirror-target: http://mirror.example/\n" + kNginx + "proxy-connect-timeout: \"5\"\n" +
                       kNginx + "ssl-redirect: \"true\"\n") +
          "---\n" +
          ingress_yaml("plain", "plain.example", "web", std::string(kNginx) + "ssl-redirect: \"false\"\n"));
  const auto dir = dir_.path("manifests");
  const auto v = run({bin("phigate"), "validate", "--ingress-dir", dir});
  EXPECT_EQ(v.exit_code, 0) << v.out;  // warnings only
  const auto header =
      "Ingress default/shop (" + dir + "/ingress.yaml#0): 3 annotation(s) not fully honoured\n";
  const auto at = v.out.find(header);
  ASSERT_NE(at, std::string::npos) << v.out;
  const auto block = v.out.substr(at + header.size());
  const std::string pad(std::string("nginx.ingress.kubernetes.io/proxy-connect-timeout").size() -
                            std::string("nginx.ingress.kubernetes.io/mirror-target").size(),
                        ' ');
  EXPECT_EQ(block.rfind("  nginx.ingress.kubernetes.io/mirror-target" + pad +
                            "  unsupported (warn): requests are not mirrored\n"
                            "  nginx.ingress.kubernetes.io/proxy-buffering",
                        0),
            0u)
      << v.out;
  EXPECT_NE(block.find("no effect: responses stream through fixed buffers"), std::string::npos) << v.out;
  EXPECT_NE(block.find("  nginx.ingress.kubernetes.io/proxy-connect-timeout  differs: 1ms to 1h"),
            std::string::npos)
      << v.out;
  EXPECT_EQ(v.out.find("ssl-redirect  "), std::string::npos) << v.out;  // fully honoured: not listed
  EXPECT_EQ(v.out.find("Ingress default/plain ("), std::string::npos) << v.out;
  // The supported-with-differences line is no diagnostic (decision 5): only the summary has it.
  for (const auto& l : manifest_lines(v.out, dir))
    EXPECT_EQ(l.find("proxy-connect-timeout"), std::string::npos) << l;

  // Under ingress.unsupported_annotations: fail_closed the unsupported one is an error naming it.
  const auto cfg =
      dir_.write("strict.yaml",
                 config("  []\n", "ingress: { dir: " + dir + ", unsupported_annotations: fail_closed }\n"));
  const auto strict = run({bin("phigate"), "validate", "--config", cfg});
  EXPECT_EQ(strict.exit_code, 1) << strict.out;
  bool named = false;
  for (const auto& l : manifest_lines(strict.out, dir)) {
    named |= l.find("error: Ingress default/shop") != std::string::npos &&
             l.find("nginx.ingress.kubernetes.io/mirror-target") != std::string::npos &&
             l.find("fail_closed") != std::string::npos;
  }
  EXPECT_TRUE(named) << strict.out;
  EXPECT_NE(strict.out.find("Ingress default/shop (" + dir +
                            "/ingress.yaml#0): 2 annotation(s) not fully honoured"),
            std::string::npos)
      << strict.out;
}

// An Ingress author forges a summary line with a CR/LF in an annotation key (manifest files are not
// validated by an API server): it is printed escaped, on its own line.
TEST_F(ValidateTest, UnhonouredSummaryEscapesControlBytesInKeys) {
  dir_.write("manifests/services.yaml",
             "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\n"
             "spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n");
  dir_.write("manifests/ingress.yaml",
             ingress_yaml("shop", "shop.example", "web",
                          "    \"nginx.ingress.kubernetes.io/x\\nIngress default/forged (f): 0 annotation(s) "
                          "not fully honoured\\r\": \"1\"\n"));
  const auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")});
  EXPECT_NE(v.out.find("nginx.ingress.kubernetes.io/x\\x0aIngress default/forged"), std::string::npos)
      << v.out;
  EXPECT_EQ(v.out.find("\nIngress default/forged"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find('\r'), std::string::npos) << v.out;
}

// `phigate annotations`: the registry as Markdown (docs/annotations.md) or JSON; other arguments
// are usage errors.
TEST(AnnotationsCommand, MarkdownJsonAndUsageErrors) {
  const auto md = run({bin("phigate"), "annotations"});
  EXPECT_EQ(md.exit_code, 0);
  EXPECT_EQ(md.out, run({bin("phigate"), "annotations", "--markdown"}).out);
  EXPECT_NE(md.out.find("| `mirror-target` | unsupported |"), std::string::npos) << md.out.substr(0, 400);
  const auto json = run({bin("phigate"), "annotations", "--json"});
  EXPECT_EQ(json.exit_code, 0);
  // Valid JSON, one object per row, each with the fields docs and tools read.
  const auto check =
      run({"python3", "-c",
           "import json,sys; rows=json.load(sys.stdin); "
           "assert all(set(r)=={'name','state','off','group','behaviour','difference','origin',"
           "'planned'} for r in rows); "
           "assert [r['name'] for r in rows]==sorted(r['name'] for r in rows); print(len(rows))"},
          {.stdin_data = json.out});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.out, "152\n");  // 150 + phigate.io/proxy-set-headers, phigate.io/auth-forward-authorization
  for (const char* bad : {"--yaml", "extra"}) {
    EXPECT_EQ(run({bin("phigate"), "annotations", bad}).exit_code, 2) << bad;
  }
  EXPECT_EQ(run({bin("phigate"), "annotations", "--json", "--markdown"}).exit_code, 2);
}

}  // namespace
}  // namespace phigate::test
