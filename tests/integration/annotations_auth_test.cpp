// auth-type: basic through the real binary: htpasswd files written by Debian's `htpasswd` in every
// format, Secrets in the watched manifests, recording backends that show what reached them, the
// encrypted audit log read back. HTTP/1.1 and HTTP/2. Attackers: malformed credentials, other path
// spellings, absolute-form targets, a trailing-dot Host; the Secret changing under a running phigate.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "audit_fixture.hpp"
#include "ingress_fixture.hpp"

namespace phigate::test {
namespace {

constexpr const char* kN = "    nginx.ingress.kubernetes.io/";

/// One htpasswd line for `user` (`flag`: -B with cost 5, -m, -s, -d, -p), as Debian's htpasswd writes it.
std::string htpasswd(const std::string& flag, const std::string& user, const std::string& password) {
  std::vector<std::string> argv = {"htpasswd", "-nb" + flag.substr(1)};
  if (flag == "-B") argv.insert(argv.end(), {"-C", "5"});
  argv.insert(argv.end(), {user, password});
  const auto r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto line = r.out;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line + "\n";
}

std::string secret_yaml(const std::string& name, const std::string& key, const std::string& value,
                        const std::string& ns = "default") {
  return "apiVersion: v1\nkind: Secret\nmetadata: { name: " + name + ", namespace: " + ns +
         " }\ntype: Opaque\ndata:\n  " + key + ": " + b64(value) + "\n";
}

class AuthTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    dir_.write("manifests/class.yaml", kIngressClass);
    up_ = start_upstream("up");
    open_ = start_upstream("open");
    dir_.write("manifests/services.yaml", service_yaml("svc", *up_) + "---\n" + service_yaml("open", *open_));
  }
  Phigate start() {
    return start_phigate(config(
        "  []\n", "ingress: { dir: " + dir_.path("manifests") + ", debounce: 50ms }\n" + audit_yaml()));
  }
  static std::string basic(const std::string& secret = "users", const std::string& more = "") {
    return std::string(kN) + "auth-type: basic\n" + kN + "auth-secret: " + secret + "\n" + more;
  }
  void ingress(const std::string& annotations) {
    dir_.write("manifests/ingress.yaml", ingress_yaml("web", "app.example", "svc", annotations));
  }
  void rewrite(Phigate& pg, const std::string& file, const std::string& yaml) {
    const auto mark = pg.process.output().size();
    dir_.write("manifests/" + file, yaml);
    ASSERT_TRUE(pg.process.wait_for_line("reloaded", 10s, mark)) << pg.process.output().substr(mark);
  }
  /// Status of one request with `args` (e.g. -u user:pw, -H ...).
  std::string status(const Phigate& pg, const std::string& path, std::vector<std::string> args = {},
                     const std::string& proto = "--http1.1") {
    std::vector<std::string> a = {proto, "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(https_url(pg, path));
    return curl(pg, a).out;
  }
  std::optional<Upstream> up_, open_;
};

// Every format htpasswd writes, right and wrong passwords, over HTTP/1.1 and HTTP/2. APR has no
// plain-text passwords on Linux (htpasswd -p warns so): such an entry never matches. The backend
// never sees the Authorization field; a refused request never reaches it.
TEST_F(AuthTest, EveryHtpasswdFormatRightAndWrongPasswordsH1AndH2) {
  const std::vector<std::pair<std::string, std::string>> users = {
      {"-B", "bcrypt"}, {"-m", "apr1"}, {"-s", "sha"}, {"-d", "crypt"}, {"-p", "plain"}};
  std::string file = "# made by htpasswd\n";
  for (const auto& [flag, user] : users) file += htpasswd(flag, user, "pw-" + user);
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", file));
  ingress(basic());
  auto pg = start();
  std::size_t ok = 0;
  for (const char* proto : {"--http1.1", "--http2"}) {
    for (const auto& [flag, user] : users) {
      const auto want = flag == "-p" ? "401" : "200";
      EXPECT_EQ(status(pg, "/a", {"-u", user + ":pw-" + user}, proto), want) << user << " " << proto;
      if (flag != "-p") ++ok;
      // Twice: the second answer comes from the worker's cache, and must agree.
      EXPECT_EQ(status(pg, "/a", {"-u", user + ":pw-" + user}, proto), want) << user << " " << proto;
      if (flag != "-p") ++ok;
      // (Not a suffix: DES crypt reads only the first 8 characters of a password.)
      EXPECT_EQ(status(pg, "/a", {"-u", user + ":Xw-" + user}, proto), "401") << user << " " << proto;
      EXPECT_EQ(status(pg, "/a", {"-u", user + ":"}, proto), "401") << user << " " << proto;
    }
    // A known user's password under an unknown name.
    EXPECT_EQ(status(pg, "/a", {"-u", "mallory:pw-apr1"}, proto), "401") << proto;
  }
  const auto seen = proxied_requests(*up_);
  EXPECT_EQ(seen.size(), ok);
  for (const auto& line : seen) EXPECT_EQ(record_header(line, "authorization"), "") << line;
  const auto page = metrics(pg);
  EXPECT_EQ(metric(page, "phigate_auth_basic_failures_total"), "26");  // 2 x (5 x 2 + 2 plain + 1)
}

// With proxy-request-buffering: "on", a request is decided twice (once more when its body is
// whole); the Authorization field is gone from the head by then (it is not forwarded), and the
// upload must still go through, with its body, over both protocols; a wrong password is refused
// before a byte of the body is buffered.
TEST_F(AuthTest, BufferedUploadsAreVerifiedOnceAndServed) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "pw-alice")));
  ingress(basic("users", std::string(kN) + "proxy-request-buffering: \"on\"\n"));
  auto pg = start();
  const auto file = dir_.write("upload.bin", std::string(30000, 'u'));
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(status(pg, "/upload", {"-u", "alice:pw-alice", "--data-binary", "@" + file}, proto), "200")
        << proto;
  }
  // A refusal comes before the body is read; over HTTP/2 curl 7.88 may drop an answer that comes
  // before its upload ended (h2_test.cpp), so the wrong password is sent over HTTP/1.1.
  EXPECT_EQ(status(pg, "/upload", {"-u", "alice:wrong", "--data-binary", "@" + file}), "401");
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& line : seen) {
    EXPECT_EQ(json_field(line, "body_bytes"), "30000") << line;
    EXPECT_EQ(record_header(line, "authorization"), "") << line;
  }
  const auto page = wait_metric(pg, "phigate_request_buffer_bytes", "0");
  EXPECT_EQ(metric(page, "phigate_request_buffer_bytes"), "0") << page;
}

// The 401: WWW-Authenticate with the realm quoted, over both protocols; ingress-nginx's default
// realm is "".
TEST_F(AuthTest, ChallengeCarriesTheQuotedRealm) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "pw")));
  ingress(basic("users", std::string(kN) + "auth-realm: 'Team \"A\" staff'\n"));
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    const auto r = curl(pg, {proto, "-s", "-D", "-", "-o", "/dev/null", https_url(pg, "/")});
    EXPECT_NE(r.out.find(" 401"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Basic realm=\"Team \\\"A\\\" staff\""), std::string::npos) << r.out;
  }
  rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc", basic()));
  const auto r = curl(pg, {"-s", "-D", "-", "-o", "/dev/null", https_url(pg, "/")});
  EXPECT_NE(r.out.find("Basic realm=\"\""), std::string::npos) << r.out;
  EXPECT_TRUE(proxied_requests(*up_).empty());
}

// Malformed credentials are refused before any verification; none reaches the backend; one audit
// record each, with the user tried (never the password).
TEST_F(AuthTest, MalformedCredentialsAndOneAuditRecordEach) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "s3cret-pw")));
  ingress(basic());
  auto pg = start();
  const std::vector<std::string> headers = {
      "Authorization: Basic",                        // nothing
      "Authorization: Basic !!!!",                   // bad base64
      "Authorization: Basic YWxpY2U=",               // "alice": no colon
      "Authorization: Basic Og==",                   // ":": empty user and password
      "Authorization: Bearer YWxpY2U6czNjcmV0LXB3",  // another scheme
      "Authorization: Digest username=\"alice\"",
      "Authorization: Basic " + std::string(6000, 'Q'),  // huge
  };
  int n = 0;
  for (const auto& h : headers) {
    for (const char* proto : {"--http1.1", "--http2"}) {
      const auto s = status(pg, "/m" + std::to_string(n++), {"-H", h}, proto);
      EXPECT_EQ(s, "401") << h.substr(0, 40) << " " << proto;
    }
  }
  EXPECT_EQ(status(pg, "/wrong", {"-u", "alice:guess-pw"}), "401");
  EXPECT_EQ(status(pg, "/right", {"-u", "alice:s3cret-pw"}), "200");
  EXPECT_EQ(proxied_requests(*up_).size(), 1u);
  const auto audit = stop_and_read_audit(pg);
  for (int i = 0; i < n; ++i) {
    const auto path = "\"path\":\"/m" + std::to_string(i) + "\"";
    int count = 0;
    for (const auto& rec : audit) count += has(rec, path) ? 1 : 0;
    EXPECT_EQ(count, 1) << path;
    EXPECT_TRUE(has(find(audit, path), "\"auth-basic\"")) << find(audit, path);
  }
  const auto wrong = find(audit, "\"path\":\"/wrong\"");
  EXPECT_TRUE(has(wrong, "\"user\":{\"name\":\"alice\"}")) << wrong;
  EXPECT_TRUE(has(wrong, "unauthorized")) << wrong;
  EXPECT_TRUE(has(find(audit, "\"path\":\"/right\""), "\"user\":{\"name\":\"alice\"}"));
  for (const auto& rec : audit) {
    EXPECT_FALSE(has(rec, "s3cret-pw")) << rec;
    EXPECT_FALSE(has(rec, "guess-pw")) << rec;
    EXPECT_FALSE(has(rec, "YWxpY2U6")) << rec;  // base64 of "alice:"
  }
}

// A client tries to reach the protected path past the check: other spellings, an absolute-form
// target, a trailing-dot Host. Another Ingress serves "/" of the host without authentication, so a
// spelling that escaped the protected route would land there (and show up in its records).
TEST_F(AuthTest, NoPathSpellingOrHostFormSkipsTheCheck) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "pw")));
  std::string prot = ingress_yaml("web", "app.example", "svc", basic());
  const auto at = prot.find("path: /,");
  prot.replace(at, 8, "path: /admin,");
  dir_.write("manifests/ingress.yaml", prot);
  dir_.write("manifests/open.yaml", ingress_yaml("open", "app.example", "open"));
  auto pg = start();
  EXPECT_EQ(status(pg, "/admin"), "401");
  EXPECT_EQ(status(pg, "/admin", {"-u", "alice:pw"}), "200");
  EXPECT_EQ(status(pg, "/public"), "200");  // the open Ingress
  for (const std::string path : {"/admin/", "//admin", "/./admin", "/x/../admin", "/%61dmin", "/admin;a=b",
                                 "/admin%2F", "/admin?x=1", "/admin#f"}) {
    for (const char* proto : {"--http1.1", "--http2"}) {
      const auto s = status(pg, path, {}, proto);
      EXPECT_TRUE(s == "401" || s == "400") << path << " " << proto << " -> " << s;
    }
  }
  // Absolute-form target (HTTP/1.1) and a trailing-dot Host.
  EXPECT_EQ(status(pg, "/", {"--request-target", "https://app.example/admin"}), "401");
  const auto dot = curl(
      pg, {"-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: app.example.", https_url(pg, "/admin")});
  EXPECT_TRUE(dot.out == "401" || dot.out == "400" || dot.out == "421") << dot.out;
  for (const auto& line : proxied_requests(*open_)) {
    EXPECT_EQ(json_field(line, "path").rfind("/admin", 0), std::string::npos) << line;
    EXPECT_EQ(json_field(line, "path").rfind("//admin", 0), std::string::npos) << line;
  }
  EXPECT_EQ(proxied_requests(*up_).size(), 1u);
}

// The Secret changes under a running phigate: the old password stops working at once (the cache
// is keyed by the stored hash), the new one works; a broken Secret fails the Ingress closed (503),
// never open; auth-map and auth-forward-authorization.
TEST_F(AuthTest, SecretChangesAndFailsClosed) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-B", "alice", "old-pw")));
  ingress(basic());
  auto pg = start();
  EXPECT_EQ(status(pg, "/", {"-u", "alice:old-pw"}), "200");
  EXPECT_EQ(status(pg, "/", {"-u", "alice:old-pw"}), "200");  // cached now
  rewrite(pg, "secret.yaml", secret_yaml("users", "auth", htpasswd("-B", "alice", "new-pw")));
  EXPECT_EQ(status(pg, "/", {"-u", "alice:old-pw"}), "401");
  EXPECT_EQ(status(pg, "/", {"-u", "alice:new-pw"}), "200");
  // Broken: an unreadable line, no `auth` key, the Secret gone. 503 with or without credentials.
  for (const auto& yaml : {secret_yaml("users", "auth", htpasswd("-m", "alice", "new-pw") + "garbage\n"),
                           secret_yaml("users", "htpasswd", htpasswd("-m", "alice", "new-pw")),
                           secret_yaml("other", "auth", htpasswd("-m", "alice", "new-pw"))}) {
    const auto mark = pg.process.output().size();
    rewrite(pg, "secret.yaml", yaml);
    EXPECT_EQ(status(pg, "/", {"-u", "alice:new-pw"}), "503");
    EXPECT_EQ(status(pg, "/"), "503");
    const auto out = pg.process.output().substr(mark);
    EXPECT_NE(out.find("auth-secret"), std::string::npos) << out;
    EXPECT_NE(out.find("default/users"), std::string::npos) << out;
  }
  // auth-map, and the Authorization field forwarded when asked.
  rewrite(pg, "secret.yaml", secret_yaml("users", "bob", htpasswd("-s", "bob", "map-pw").substr(4)));
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       basic("users", std::string(kN) + "auth-secret-type: auth-map\n" +
                                          "    phigate.io/auth-forward-authorization: \"true\"\n")));
  EXPECT_EQ(status(pg, "/fwd", {"-u", "bob:map-pw"}), "200");
  EXPECT_EQ(status(pg, "/fwd", {"-u", "bob:nope"}), "401");
  const auto seen = proxied_requests(*up_);
  ASSERT_FALSE(seen.empty());
  EXPECT_NE(record_header(seen.back(), "authorization"), "") << seen.back();
  // digest and a cross-namespace Secret: fail closed.
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       std::string(kN) + "auth-type: digest\n" + kN + "auth-secret: users\n"));
  EXPECT_EQ(status(pg, "/", {"-u", "bob:map-pw"}), "503");
  rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc", basic("kube-system/users")));
  EXPECT_EQ(status(pg, "/", {"-u", "bob:map-pw"}), "503");
}

// satisfy: any. The client (127.0.0.1) in the allowlist is served without credentials (none asked,
// none checked, none forwarded); with an allowlist that excludes it, it must authenticate and the
// backend never sees it otherwise. One audit record per request; the allowlisted ones say why no
// credentials were asked. HTTP/1.1 and HTTP/2.
TEST_F(AuthTest, SatisfyAnyAllowlistOrCredentials) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "pw-alice")));
  const auto any = [](const std::string& range) {
    return basic("users",
                 std::string(kN) + "satisfy: any\n" + kN + "whitelist-source-range: " + range + "\n");
  };
  ingress(any("127.0.0.1/32"));
  auto pg = start();
  std::vector<std::string> in, out_ok, out_refused;
  int n = 0;
  for (const char* proto : {"--http1.1", "--http2"}) {
    in.push_back("/in" + std::to_string(n++));
    EXPECT_EQ(status(pg, in.back(), {}, proto), "200") << proto;
    in.push_back("/in" + std::to_string(n++));  // wrong credentials: not checked, not forwarded
    EXPECT_EQ(status(pg, in.back(), {"-u", "alice:wrong"}, proto), "200") << proto;
  }
  EXPECT_EQ(proxied_requests(*up_).size(), in.size());
  rewrite(pg, "ingress.yaml", ingress_yaml("web", "app.example", "svc", any("10.0.0.0/8")));
  for (const char* proto : {"--http1.1", "--http2"}) {
    out_refused.push_back("/out" + std::to_string(n++));
    EXPECT_EQ(status(pg, out_refused.back(), {}, proto), "401") << proto;  // a challenge, not 403
    out_refused.push_back("/out" + std::to_string(n++));
    EXPECT_EQ(status(pg, out_refused.back(), {"-u", "alice:wrong"}, proto), "401") << proto;
    out_ok.push_back("/out" + std::to_string(n++));
    EXPECT_EQ(status(pg, out_ok.back(), {"-u", "alice:pw-alice"}, proto), "200") << proto;
  }
  const auto seen = proxied_requests(*up_);
  ASSERT_EQ(seen.size(), in.size() + out_ok.size());
  for (const auto& line : seen) {
    EXPECT_EQ(record_header(line, "authorization"), "") << line;
    for (const auto& p : out_refused) EXPECT_NE(json_field(line, "path"), p) << line;
  }
  const auto audit = stop_and_read_audit(pg);
  const auto one = [&](const std::string& path) {
    int count = 0;
    for (const auto& rec : audit) count += has(rec, "\"path\":\"" + path + "\"") ? 1 : 0;
    EXPECT_EQ(count, 1) << path;
    return find(audit, "\"path\":\"" + path + "\"");
  };
  for (const auto& p : in) EXPECT_TRUE(has(one(p), "\"satisfied_by\":\"allowlist\"")) << one(p);
  for (const auto& p : out_ok) {
    const auto rec = one(p);
    EXPECT_FALSE(has(rec, "satisfied_by")) << rec;
    EXPECT_TRUE(has(rec, "\"user\":{\"name\":\"alice\"}")) << rec;
  }
  for (const auto& p : out_refused) {
    const auto rec = one(p);
    EXPECT_FALSE(has(rec, "satisfied_by")) << rec;
    EXPECT_TRUE(has(rec, "\"auth-basic\"")) << rec;
  }
}

// satisfy: all (and no satisfy): the allowlist and the credentials both. satisfy: any never relaxes
// the denylist. A bad value fails the Ingress closed.
TEST_F(AuthTest, SatisfyAllNeedsBothAndAnyNeverRelaxesTheDenylist) {
  dir_.write("manifests/secret.yaml", secret_yaml("users", "auth", htpasswd("-m", "alice", "pw-alice")));
  ingress(basic("users", std::string(kN) + "satisfy: all\n" + kN + "whitelist-source-range: 127.0.0.1/32\n"));
  auto pg = start();
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(status(pg, "/a", {}, proto), "401") << proto;
    EXPECT_EQ(status(pg, "/a", {"-u", "alice:pw-alice"}, proto), "200") << proto;
  }
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       basic("users", std::string(kN) + "whitelist-source-range: 10.0.0.0/8\n")));
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(status(pg, "/b", {"-u", "alice:pw-alice"}, proto), "403") << proto;
  }
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       basic("users", std::string(kN) + "satisfy: any\n" + kN +
                                          "allowlist-source-range: 127.0.0.0/8\n" + kN +
                                          "denylist-source-range: 127.0.0.1/32\n")));
  for (const char* proto : {"--http1.1", "--http2"}) {
    EXPECT_EQ(status(pg, "/c", {}, proto), "403") << proto;
    EXPECT_EQ(status(pg, "/c", {"-u", "alice:pw-alice"}, proto), "403") << proto;
  }
  const auto mark = pg.process.output().size();
  rewrite(pg, "ingress.yaml",
          ingress_yaml("web", "app.example", "svc",
                       basic("users", std::string(kN) + "satisfy: Any\n" + kN +
                                          "whitelist-source-range: 127.0.0.1/32\n")));
  EXPECT_EQ(status(pg, "/d", {"-u", "alice:pw-alice"}), "503");
  const auto log = pg.process.output().substr(mark);
  EXPECT_NE(log.find("satisfy"), std::string::npos) << log;
  EXPECT_EQ(proxied_requests(*up_).size(), 2u);
}

}  // namespace
}  // namespace phigate::test
