// TX* rules (164.312(e)(1) transmission security): each fires exactly when it should, at error on
// a PHI host and warning elsewhere where the rule says so, placed at its key or annotation, never
// on a path that already fails closed; each fixture yields exactly its rule.
#include <gtest/gtest.h>

#include "fixture_view.hpp"

namespace phigate::check {
namespace {

using test::run_rule;
using test::Scene;

constexpr const char* kWeak = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA";  // CBC: not AEAD
constexpr const char* kNoPfs = "AES128-GCM-SHA256";                                // RSA key exchange

TEST(CheckTx001, TlsBelow12OnlyWhenMinVersionIsLegacy) {
  Scene s;
  s.cfg.key_lines =
      std::make_shared<const std::map<std::string, int>>(std::map<std::string, int>{{"tls.min_version", 9}});
  EXPECT_TRUE(run_rule(s.view(), "TX001").empty());
  for (const char* v : {"TLSv1", "TLSv1.1"}) {
    s.cfg.tls.allow_insecure_tls = true;
    s.cfg.tls.min_version = v;
    const auto f = run_rule(s.view(), "TX001");
    ASSERT_EQ(f.size(), 1u) << v;
    EXPECT_EQ(f[0].severity, Severity::Error);
    EXPECT_EQ(f[0].where.field, "tls.min_version");
    EXPECT_EQ(f[0].where.line, 9);
    EXPECT_EQ(f[0].where.file, "/etc/phigate/phigate.yaml");
  }
  s.cfg.tls.min_version = "TLSv1.3";
  EXPECT_TRUE(run_rule(s.view(), "TX001").empty());
}

TEST(CheckTx002, NonAeadOrNonPfsGlobalHostAndBackendCiphers) {
  Scene s;
  s.add("a.example", Scene::policy("a", true));
  EXPECT_TRUE(run_rule(s.view(), "TX002").empty());  // the default list is AEAD + ECDHE
  s.cfg.tls.ciphers = kWeak;
  auto f = run_rule(s.view(), "TX002");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "tls.ciphers");
  EXPECT_NE(f[0].message.find("not AEAD"), std::string::npos) << f[0].message;
  s.cfg.tls.ciphers = kNoPfs;
  f = run_rule(s.view(), "TX002");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].message.find("not forward-secret"), std::string::npos) << f[0].message;
  // TLS 1.3 only: no TLS 1.2 suite is ever negotiated.
  s.cfg.tls.min_version = "TLSv1.3";
  EXPECT_TRUE(run_rule(s.view(), "TX002").empty());
  s.cfg.tls.min_version = "TLSv1.2";
  s.cfg.tls.ciphers = config::kDefaultCiphers;

  // Per-host ssl-ciphers: error whatever the host; backend ciphers: E on PHI, W elsewhere.
  auto host = Scene::policy("b", false);
  host.ssl_ciphers = kWeak;
  s.add("b.example", host);
  auto backend = Scene::policy("c", false);
  backend.proxy_ssl_ciphers = kNoPfs;
  s.add("c.example", backend);
  f = run_rule(s.view(), "TX002");
  ASSERT_EQ(f.size(), 2u);
  for (const auto& x : f) {
    if (x.host == "b.example") {
      EXPECT_EQ(x.severity, Severity::Error);
      EXPECT_EQ(x.where.resource, "Ingress ns/b");
      EXPECT_EQ(x.where.field, "metadata.annotations");  // no Resources: the annotation is not found
    } else {
      EXPECT_EQ(x.host, "c.example");
      EXPECT_EQ(x.severity, Severity::Warning);
    }
  }
  // A failed-closed Ingress serves nothing.
  host.fail_closed = "broken";
  backend.fail_closed = "broken";
  s.cfg.routes.resize(1);
  s.add("b.example", host);
  s.add("c.example", backend);
  EXPECT_TRUE(run_rule(s.view(), "TX002").empty());
}

TEST(CheckTx003, InsecureAllowedButUnusedOnly) {
  Scene s;
  s.add("a.example", Scene::policy("a", true));
  EXPECT_TRUE(run_rule(s.view(), "TX003").empty());
  s.cfg.tls.allow_insecure_tls = true;
  auto f = run_rule(s.view(), "TX003");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(f[0].where.field, "tls.allow_insecure_tls");
  // Something insecure in use: the flag is needed, TX001/TX002 report what.
  s.cfg.tls.min_version = "TLSv1.1";
  EXPECT_TRUE(run_rule(s.view(), "TX003").empty());
  s.cfg.tls.min_version = "TLSv1.2";
  auto p = Scene::policy("b", false);
  p.ssl_ciphers = kWeak;
  s.add("b.example", p);
  EXPECT_TRUE(run_rule(s.view(), "TX003").empty());
  // Weak backend ciphers do not need the flag (it governs client-facing TLS only).
  s.cfg.routes.pop_back();
  auto b = Scene::policy("c", false);
  b.proxy_ssl_ciphers = kNoPfs;
  s.add("c.example", b);
  EXPECT_EQ(run_rule(s.view(), "TX003").size(), 1u);
}

TEST(CheckTx004, PlainHttpWithoutRedirectErrorOnPhiHostWarningElsewhere) {
  Scene s;
  auto plain = Scene::policy("records", true);
  plain.ssl_redirect = false;
  s.add("records.example", plain);
  EXPECT_TRUE(run_rule(s.view(), "TX004").empty());  // no http listener: nothing is served in clear
  s.cfg.listeners.http = {"0.0.0.0:80"};
  auto f = run_rule(s.view(), "TX004");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].host, "records.example");
  EXPECT_EQ(f[0].where.resource, "Ingress ns/records");

  // Another Ingress on the PHI host is tainted by it: error too; a non-PHI host: warning.
  auto other = Scene::policy("other", false);
  other.ssl_redirect = false;
  s.add("records.example", other, "/static");
  s.add("www.example", Scene::policy("www", false));
  auto www = Scene::policy("www2", false);
  www.ssl_redirect = false;
  s.add("www.example", www, "/blog");
  f = run_rule(s.view(), "TX004");
  ASSERT_EQ(f.size(), 3u);
  for (const auto& x : f) {
    EXPECT_EQ(x.severity, x.host == "records.example" ? Severity::Error : Severity::Warning) << x.message;
  }

  // force-ssl-redirect redirects; client certificates refuse plain HTTP; failed closed serves nothing.
  Scene t;
  t.cfg.listeners.http = {"0.0.0.0:80"};
  auto forced = Scene::policy("f", true);
  forced.ssl_redirect = false;
  forced.force_ssl_redirect = true;
  t.add("f.example", forced);
  auto certs = Scene::policy("c", true);
  certs.verify_client = config::VerifyClient::On;
  t.add("c.example", certs);
  auto neighbour = Scene::policy("n", true);
  neighbour.ssl_redirect = false;
  t.add("c.example", neighbour, "/n");
  auto closed = Scene::policy("x", true);
  closed.ssl_redirect = false;
  closed.fail_closed = "broken";
  t.add("x.example", closed);
  EXPECT_TRUE(run_rule(t.view(), "TX004").empty());
}

TEST(CheckTx005, HstsOffOrShortOrDisabledForAPhiHost) {
  Scene s;
  s.add("records.example", Scene::policy("records", true));
  s.add("www.example", Scene::policy("www", false));
  EXPECT_TRUE(run_rule(s.view(), "TX005").empty());

  s.cfg.tls.hsts.max_age = 86400;
  auto f = run_rule(s.view(), "TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "tls.hsts.max_age");
  EXPECT_EQ(f[0].severity, Severity::Error);
  s.cfg.tls.hsts.max_age = 31536000;

  s.cfg.tls.hsts.enabled = false;
  f = run_rule(s.view(), "TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "tls.hsts.enabled");
  s.cfg.tls.hsts.enabled = true;

  // disabled_hosts: the non-PHI host is fine; a wildcard covering the PHI host is not.
  s.cfg.tls.hsts.disabled_hosts = {"www.example", "*.example"};
  f = run_rule(s.view(), "TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "tls.hsts.disabled_hosts[1]");
  EXPECT_EQ(f[0].host, "records.example");
  // A wildcard PHI route with one of its names listed loses HSTS there.
  Scene w;
  w.add("*.clinic.example", Scene::policy("wild", true));
  w.cfg.tls.hsts.disabled_hosts = {"lab.clinic.example"};
  f = run_rule(w.view(), "TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].host, "*.clinic.example");
  s.cfg.tls.hsts.disabled_hosts.clear();

  // hsts "false" on another Ingress of the PHI host (tainted), and on a non-PHI host (no finding).
  auto off = Scene::policy("other", false);
  off.hsts = false;
  s.add("records.example", off, "/other");
  s.add("www.example", off, "/other");
  f = run_rule(s.view(), "TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].host, "records.example");
  EXPECT_EQ(f[0].where.resource, "Ingress ns/other");

  // No PHI host at all: nothing to report.
  Scene n;
  n.add("www.example", Scene::policy("www", false));
  n.cfg.tls.hsts.enabled = false;
  EXPECT_TRUE(run_rule(n.view(), "TX005").empty());
  n.opt.phi_hosts_all = true;
  EXPECT_EQ(run_rule(n.view(), "TX005").size(), 1u);
}

TEST(CheckTx006, PassthroughOnPhiHostOnly) {
  Scene s;
  auto pt = Scene::policy("records", true);
  pt.ssl_passthrough = true;
  pt.fail_closed = "ssl-passthrough: the host's TLS connections are passed through undecrypted";
  s.add("records.example", pt);
  auto www = Scene::policy("www", false);
  www.ssl_passthrough = true;
  www.fail_closed = pt.fail_closed;
  s.add("www.example", www);
  s.pt = {{"records.example", "Ingress ns/records"}, {"www.example", "Ingress ns/www"}};
  const auto f = run_rule(s.view(), "TX006");  // read from View::passthrough although failed closed
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].host, "records.example");
  EXPECT_EQ(f[0].severity, Severity::Error);
  EXPECT_EQ(f[0].where.resource, "Ingress ns/records");
}

TEST(CheckTx007, BackendInClearAndAuthServiceInClear) {
  Scene s;
  auto http = Scene::policy("records", true);
  http.backend_protocol = config::BackendProtocol::Http;
  s.add("records.example", http);
  auto grpc = Scene::policy("www", false);
  grpc.backend_protocol = config::BackendProtocol::Grpc;
  s.add("www.example", grpc);
  s.add("ok.example", Scene::policy("ok", true));
  auto f = run_rule(s.view(), "TX007");
  ASSERT_EQ(f.size(), 2u);
  for (const auto& x : f) {
    EXPECT_EQ(x.severity, x.host == "records.example" ? Severity::Error : Severity::Warning);
  }
  // A static route without a policy speaks HTTP to its backend; its key places the finding.
  Scene st;
  config::RouteSpec r;
  r.host = "static.example";
  config::PathSpec p;
  p.path = "/";
  p.where = {"/etc/phigate/phigate.yaml", 31};
  r.paths.push_back(p);
  st.cfg.routes.push_back(r);
  f = run_rule(st.view(), "TX007");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::Warning);
  EXPECT_EQ(f[0].where.field, "routes[0].paths[0].backend_protocol");
  EXPECT_EQ(f[0].where.line, 31);
  // auth-url over http on a PHI host.
  Scene a;
  auto ea = Scene::policy("auth", true);
  ea.external_auth.enabled = true;
  ea.external_auth.https = true;
  a.add("auth.example", ea);
  EXPECT_TRUE(run_rule(a.view(), "TX007").empty());
  ea.external_auth.https = false;
  a.cfg.routes.clear();
  a.add("auth.example", ea);
  f = run_rule(a.view(), "TX007");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].message.find("auth-url"), std::string::npos);
  // Failed closed (e.g. by upstream.tls.require): skipped.
  http.fail_closed = "upstream.tls.require";
  Scene c;
  c.add("records.example", http);
  EXPECT_TRUE(run_rule(c.view(), "TX007").empty());
}

TEST(CheckTx008, UnverifiedTlsBackend) {
  Scene s;
  auto off = Scene::policy("records", true);
  off.proxy_ssl_verify = false;
  s.add("records.example", off);
  auto www = Scene::policy("www", false);
  www.proxy_ssl_verify = false;
  s.add("www.example", www);
  auto plain = Scene::policy("plain", true);  // HTTP backend: TX007's, not TX008's
  plain.backend_protocol = config::BackendProtocol::Http;
  plain.proxy_ssl_verify = false;
  s.add("plain.example", plain);
  const auto f = run_rule(s.view(), "TX008");
  ASSERT_EQ(f.size(), 2u);
  for (const auto& x : f) {
    EXPECT_EQ(x.severity, x.host == "records.example" ? Severity::Error : Severity::Warning);
  }
}

TEST(CheckTx009, BackendProtocolsBelow12) {
  Scene s;
  auto ok = Scene::policy("ok", true);
  ok.proxy_ssl_protocols = "TLSv1.2 TLSv1.3";
  s.add("ok.example", ok);
  EXPECT_TRUE(run_rule(s.view(), "TX009").empty());
  auto legacy = Scene::policy("legacy", true);
  legacy.proxy_ssl_protocols = "TLSv1.1 TLSv1.2";
  s.add("legacy.example", legacy);
  const auto f = run_rule(s.view(), "TX009");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].message.find("TLSv1.1"), std::string::npos);
}

TEST(CheckTxFixtures, EachYieldsExactlyItsRule) {
  for (const char* id : {"TX001", "TX002", "TX003", "TX004", "TX005", "TX006", "TX007", "TX008"}) {
    SCOPED_TRACE(id);
    test::expect_fixture_yields(id);
  }
}

TEST(CheckTxFixtures, Tx005IsPlacedOnTheAnnotationLine) {
  const auto f = test::expect_fixture_yields("TX005");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.resource, "Ingress clinic/records");
  EXPECT_EQ(f[0].where.field, "metadata.annotations.phigate.io/hsts");
  EXPECT_EQ(f[0].where.line, 13);  // manifests/app.yaml: the phigate.io/hsts line
  EXPECT_EQ(f[0].where.doc, 1);
  EXPECT_EQ(f[0].severity, Severity::Error);
}

TEST(CheckTxFixtures, Tx001IsPlacedOnTheConfigKeyLine) {
  const auto f = test::expect_fixture_yields("TX001");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].where.field, "tls.min_version");
  EXPECT_EQ(f[0].where.line, 9);  // phigate.yaml: the min_version line
}

}  // namespace
}  // namespace phigate::check
