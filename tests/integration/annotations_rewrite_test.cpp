// use-regex, rewrite-target, app-root and x-forwarded-prefix, with Ingresses as ingress-nginx
// users write them (its docs' examples), against recording backends; and the ways a client or
// another Ingress's author might try to get around them.
#include <chrono>

#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

struct P {
  std::string path;
  std::string type = "ImplementationSpecific";
};

/// An Ingress with several paths on one host, all to `service`.
std::string ingress_paths(const std::string& name, const std::string& host, const std::string& service,
                          const std::vector<P>& paths, const std::string& annotations = "",
                          const std::string& created = "2026-01-01T00:00:00Z") {
  std::string y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n  creationTimestamp: \"" + created + "\"\n";
  if (!annotations.empty()) y += "  annotations:\n" + annotations;
  y += "spec:\n  ingressClassName: phigate\n  rules:\n  - host: " + host + "\n    http:\n      paths:\n";
  for (const auto& p : paths) {
    y += "      - path: \"" + p.path + "\"\n        pathType: " + p.type +
         "\n        backend: { service: { name: " + service + ", port: { number: 80 } } }\n";
  }
  return y;
}

const std::string kUseRegex = "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n";

class RewriteIngressTest : public IngressTest {
 protected:
  /// Status of a GET for `path` on `host` (curl leaves the path as it is: no dot-segment folding).
  std::string get(const Phigate& pg, const std::string& host, const std::string& path,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(https_url(pg, path, host));
    return curl(pg, args).out;
  }
  static std::string last_target(const Upstream& up) {
    const auto r = up.records();
    return r.empty() ? "(none)" : json_field(r.back(), "target");
  }
};

// docs/examples/rewrite/README.md: rewrite.bar.com, path /something(/|$)(.*), target /$2.
TEST_F(RewriteIngressTest, RewriteTargetDocsExample_BackendSeesTheRewrittenPath) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("rewrite", "app.example", "http-svc", {{"/something(/|$)(.*)"}},
                           kUseRegex + "    nginx.ingress.kubernetes.io/rewrite-target: /$2\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/something"), "200");
  EXPECT_EQ(last_target(up), "/");
  EXPECT_EQ(get(pg, "app.example", "/something/"), "200");
  EXPECT_EQ(last_target(up), "/");
  EXPECT_EQ(get(pg, "app.example", "/something/new"), "200");
  EXPECT_EQ(last_target(up), "/new");
  EXPECT_EQ(get(pg, "app.example", "/something/new?a=1&b=2"), "200");  // the query is kept
  EXPECT_EQ(last_target(up), "/new?a=1&b=2");
  EXPECT_EQ(get(pg, "app.example", "/SOMETHING/Case"), "200");  // case-insensitive, captures as sent
  EXPECT_EQ(last_target(up), "/Case");
  EXPECT_EQ(get(pg, "app.example", "/something;jsessionid=x/new"), "200");  // ;params routed away
  EXPECT_EQ(last_target(up), "/new");
  EXPECT_EQ(get(pg, "app.example", "/something/h2", {"--http2"}), "200");  // HTTP/2 → HTTP/1.1
  EXPECT_EQ(last_target(up), "/h2");
  // Not this route: "(/|$)" needs a '/' or the end; no other route on the host.
  EXPECT_EQ(get(pg, "app.example", "/somethingelse"), "404");
}

// A client trying to climb out of the rewritten prefix: dot segments, encoded dots, encoded
// slashes. Each is refused or resolved before routing; the backend never sees a "..".
TEST_F(RewriteIngressTest, ClientCannotBreakOutOfTheRewrite) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("rewrite", "app.example", "http-svc", {{"/something(/|$)(.*)"}},
                           kUseRegex + "    nginx.ingress.kubernetes.io/rewrite-target: /app/$2\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/something/../../etc/passwd"), "400");
  EXPECT_EQ(get(pg, "app.example", "/something/%2e%2e/%2e%2e/etc/passwd"), "400");
  EXPECT_EQ(get(pg, "app.example", "/something/%2E%2E%2Fetc"), "400");
  EXPECT_EQ(get(pg, "app.example", "/something/a%2Fb"), "400");
  EXPECT_EQ(get(pg, "app.example", "/something/..%2F..%2Fetc"), "400");
  // "/something/x/../y" is "/something/y": rewritten from the normalised path.
  EXPECT_EQ(get(pg, "app.example", "/something/x/../y"), "200");
  EXPECT_EQ(last_target(up), "/app/y");
  // "/something/%2e%2e/x" is "/x": not this route.
  EXPECT_EQ(get(pg, "app.example", "/something/%2e%2e/x"), "404");
  for (const auto& line : up.records()) {
    const auto t = json_field(line, "target");
    EXPECT_EQ(t.find(".."), std::string::npos) << t;
    EXPECT_EQ(t.rfind("/app/", 0), 0u) << t;
  }
}

// Captures glued into dot segments by the Ingress's own template: 400, never forwarded.
TEST_F(RewriteIngressTest, CapturesAssemblingDotSegmentsAre400) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("glue", "app.example", "http-svc", {{"/g/(.*)-(.*)"}},
                           "    nginx.ingress.kubernetes.io/rewrite-target: /base/$1/$2\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/g/..-.."), "400");
  EXPECT_EQ(get(pg, "app.example", "/g/a-.."), "400");
  EXPECT_EQ(get(pg, "app.example", "/g/a-b"), "200");
  EXPECT_EQ(last_target(up), "/base/a/b");
  ASSERT_EQ(up.records().size(), 1u);
}

// docs/user-guide/ingress-path-matching.md with a second, non-regex Ingress on the host: its
// literal paths stay literal ('.' is a dot), only case-insensitivity changes (documented).
TEST_F(RewriteIngressTest, UseRegexDoesNotTurnAnotherIngresssLiteralPathIntoARegex) {
  auto files = start_upstream("files");
  auto rx = start_upstream("rx");
  dir_.write("manifests/services.yaml", service_yaml("files", files) + "---\n" + service_yaml("rx", rx));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("files", "other.example", "files", {{"/file.txt", "Prefix"}}, "",
                           "2025-01-01T00:00:00Z") +
                 "---\n" + ingress_paths("regex", "other.example", "rx", {{"/foo/.*"}}, kUseRegex));
  auto pg = start();
  EXPECT_EQ(get(pg, "other.example", "/foo/bar"), "200");
  EXPECT_EQ(last_target(rx), "/foo/bar");  // use-regex alone does not rewrite
  EXPECT_EQ(get(pg, "other.example", "/FOO/bar"), "200");
  EXPECT_EQ(rx.records().size(), 2u);
  EXPECT_EQ(get(pg, "other.example", "/file.txt"), "200");
  EXPECT_EQ(get(pg, "other.example", "/FILE.TXT"), "200");  // the documented case-insensitivity
  EXPECT_EQ(files.records().size(), 2u);
  EXPECT_EQ(get(pg, "other.example", "/fileXtxt"), "404");  // '.' is not "any byte"
  EXPECT_EQ(get(pg, "other.example", "/foo"), "404");       // "/foo/.*" needs the '/'
  EXPECT_EQ(files.records().size(), 2u);
  // Deleting the regex Ingress restores segment-wise, case-sensitive Prefix matching.
  rewrite(pg, "ingress.yaml",
          ingress_paths("files", "other.example", "files", {{"/file.txt", "Prefix"}}, "",
                        "2025-01-01T00:00:00Z"));
  EXPECT_EQ(get(pg, "other.example", "/FILE.TXT"), "404");
  EXPECT_EQ(get(pg, "other.example", "/file.txt/x"), "200");
}

// An author in another namespace joins a host with a regex one byte longer than the owner's path
// ("/records/" is matched before "/records"), to take its requests past its allowlist. Not served:
// the owner's route and its allowlist still answer. And a literal Exact "/" on a host in regex
// mode stays exact (ingress-nginx would match every path with it).
TEST_F(RewriteIngressTest, RegexFromAnotherNamespaceCannotTakeAHostsPaths) {
  auto ehr = start_upstream("ehr");
  auto steal = start_upstream("steal");
  auto other_ns = [](std::string y) {
    for (std::size_t at; (at = y.find("namespace: default")) != std::string::npos;)
      y.replace(at, 18, "namespace: other");
    return y;
  };
  dir_.write("manifests/services.yaml",
             service_yaml("ehr", ehr) + "---\n" + other_ns(service_yaml("steal", steal)));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("ehr", "app.example", "ehr", {{"/records", "Prefix"}, {"/", "Exact"}},
                           "    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8\n",
                           "2025-01-01T00:00:00Z") +
                 "---\n" +
                 ingress_paths("more", "app.example", "ehr", {{"/api/v[0-9]+/.*"}}, kUseRegex,
                               "2025-06-01T00:00:00Z") +
                 "---\n" +
                 other_ns(ingress_paths("steal", "app.example", "steal", {{"/records/"}}, kUseRegex)));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/records/123"), "403");  // the owner's allowlist (127.0.0.1)
  EXPECT_EQ(get(pg, "app.example", "/"), "403");
  EXPECT_EQ(get(pg, "app.example", "/internal/patients/7"), "404");  // Exact "/" is not every path
  EXPECT_TRUE(steal.records().empty());
  EXPECT_TRUE(ehr.records().empty());
  EXPECT_NE(pg.process.output().find("which an Ingress of namespace default already serves"),
            std::string::npos)
      << pg.process.output();
}

// RE2 is linear: a pattern that backtracks catastrophically elsewhere answers at once.
TEST_F(RewriteIngressTest, CatastrophicBacktrackingPatternReturnsFast) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("redos", "app.example", "svc",
                           {{"/(a+)+$"}, {"/(a|aa)+$"}, {"/(x+x+)+y"}, {"/", "Prefix"}}, kUseRegex));
  auto pg = start();
  const std::string evil = "/" + std::string(4000, 'a') + "!";
  const auto start_time = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(get(pg, "app.example", evil), "200");
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, std::chrono::seconds(10));
  EXPECT_EQ(last_target(up), evil);  // matched by "/" (longest text first, none of the others)
  EXPECT_EQ(get(pg, "app.example", "/aaaa"), "200");
}

// A regex RE2 refuses fails its Ingress closed, and still claims its literal prefix: 503 there,
// never a fall-through to another Ingress's "/".
TEST_F(RewriteIngressTest, InvalidRegexFailsClosedAndClaimsItsLiteralPrefix) {
  auto protected_up = start_upstream("protected");
  auto catchall = start_upstream("catchall");
  dir_.write("manifests/services.yaml",
             service_yaml("svc-p", protected_up) + "---\n" + service_yaml("svc-all", catchall));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("all", "app.example", "svc-all", {{"/", "Prefix"}}) + "---\n" +
                 ingress_paths("bad", "app.example", "svc-p", {{"/api/(?=admin)(.*)"}}, kUseRegex));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/api/admin"), "503");
  EXPECT_EQ(get(pg, "app.example", "/API/other"), "503");
  EXPECT_EQ(get(pg, "app.example", "/public"), "200");
  EXPECT_TRUE(protected_up.records().empty());
  EXPECT_EQ(catchall.records().size(), 1u);
  auto v = run({bin("phigate"), "validate", "--ingress-dir", dir_.path("manifests")});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("Ingress default/bad"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("spec.rules[0].http.paths[0].path"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("RE2"), std::string::npos) << v.out;
}

// docs/examples/rewrite/README.md "App Root": approot.bar.com → 302 to /app1.
TEST_F(RewriteIngressTest, AppRootRedirects302OnlyForSlash) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("approot", "x.app.example", "http-svc", {{"/", "Prefix"}},
                           "    nginx.ingress.kubernetes.io/app-root: /app1\n"));
  auto pg = start();
  const auto r = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", https_url(pg, "/", "x.app.example")});
  EXPECT_EQ(r.out, "302 https://x.app.example:" + std::to_string(pg.https) + "/app1");
  EXPECT_TRUE(up.records().empty());
  const auto h2 = curl(pg, {"--http2", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                            https_url(pg, "/?q=1", "x.app.example")});
  EXPECT_EQ(h2.out, "302 https://x.app.example:" + std::to_string(pg.https) + "/app1");
  EXPECT_EQ(get(pg, "x.app.example", "/app1"), "200");
  EXPECT_EQ(last_target(up), "/app1");
}

// x-forwarded-prefix (docs: annotations.md "X-Forwarded-Prefix Header"): set with the rewrite,
// replacing whatever the client sent.
TEST_F(RewriteIngressTest, ForwardedPrefixWithTheRewriteReplacesTheClients) {
  auto up = start_upstream("up");
  dir_.write("manifests/services.yaml", service_yaml("http-svc", up));
  dir_.write("manifests/ingress.yaml",
             ingress_paths("xfp", "app.example", "http-svc", {{"/api(/|$)(.*)"}},
                           "    nginx.ingress.kubernetes.io/rewrite-target: /$2\n"
                           "    nginx.ingress.kubernetes.io/x-forwarded-prefix: /api\n"));
  auto pg = start();
  EXPECT_EQ(get(pg, "app.example", "/api/users", {"-H", "X-Forwarded-Prefix: /evil"}), "200");
  ASSERT_EQ(up.records().size(), 1u);
  EXPECT_EQ(json_field(up.records()[0], "target"), "/users");
  EXPECT_EQ(record_header(up.records()[0], "x-forwarded-prefix"), "/api");
  EXPECT_EQ(record_header_count(up.records()[0], "x-forwarded-prefix"), 1);
  EXPECT_EQ(get(pg, "app.example", "/api/h2", {"--http2"}), "200");
  EXPECT_EQ(record_header(up.records().back(), "x-forwarded-prefix"), "/api");
}

}  // namespace
}  // namespace phigate::test
