// The request phases alone and in order, against snapshots built by hand. Pure: no sockets.
#include "phases.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "phigate/tls/ticket_keys.hpp"

namespace phigate::proxy::detail {
namespace {

using core::ErrorKind;
using core::Outcome;

config::RoutePolicyPtr policy(void (*edit)(config::RoutePolicy&)) {
  auto p = std::make_shared<config::RoutePolicy>();
  p->resource = "Ingress ns/app";
  edit(*p);
  return p;
}

/// A self-signed ECDSA certificate and key, as PEM, made with OpenSSL's API (no files, no CLI).
struct Pem {
  std::string cert, key;
};
Pem make_cert(const char* cn) {
  Pem out;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  auto read = [](BIO* b) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string text(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return text;
  };
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  out.cert = read(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key = read(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

/// Routes:
///   app.example /        → target 0 (no policy: static route)
///   plain.example /      → target 1 (ssl-redirect false: plain HTTP allowed)
///   ranges.example /     → target 2 (source ranges: only 10.0.0.0/8)
///   broken.example /     → target 3 (invalid Ingress: fails closed)
///   limits.example /     → target 4 (timeouts and body size overridden)
///   mtls.example /       → target 5 (client certificates required; TLS policy too)
///   nohsts.example /     → target 6 (phigate.io/hsts: "false")
struct Fixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  std::shared_ptr<const tls::HostPolicy> mtls_policy;

  explicit Fixture(bool with_tls = false) {
    auto& c = *cfg;
    c.timeouts.upstream_connect = std::chrono::milliseconds(5000);
    c.timeouts.upstream_send = std::chrono::milliseconds(6000);
    c.timeouts.upstream_read = std::chrono::milliseconds(7000);
    c.limits.request_body_bytes = 1000;
    c.limits.response_rate = 100000;  // limit-rate's global default, bytes per second
    c.limits.response_rate_after = 5000;
    auto route = [&](std::string host, config::RoutePolicyPtr p) {
      config::RouteSpec r;
      r.host = std::move(host);
      config::PathSpec ps;
      ps.path = "/";
      ps.backends = {"127.0.0.1:1"};
      ps.policy = std::move(p);
      r.paths.push_back(std::move(ps));
      c.routes.push_back(std::move(r));
    };
    route("app.example", nullptr);
    route("plain.example", policy([](config::RoutePolicy& p) { p.ssl_redirect = false; }));
    route("ranges.example", policy([](config::RoutePolicy& p) {
            p.ssl_redirect = false;
            p.allow_source_ranges = {"10.0.0.0/8"};
          }));
    route("broken.example", policy([](config::RoutePolicy& p) {
            p.ssl_redirect = false;
            p.fail_closed = "invalid annotation";
          }));
    route("limits.example", policy([](config::RoutePolicy& p) {
            p.connect_timeout = std::chrono::milliseconds(1);
            p.send_timeout = std::chrono::milliseconds(2);
            p.read_timeout = std::chrono::milliseconds(3);
            p.body_size = 10;
            p.rate_limit.rate_kib = 256;  // KiB: 262144 bytes per second; limit-rate-after unset
          }));
    route("mtls.example", policy([](config::RoutePolicy& p) {
            p.ssl_redirect = false;
            p.verify_client = config::VerifyClient::On;
          }));
    route("nohsts.example", policy([](config::RoutePolicy& p) { p.hsts = false; }));
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build(c.routes, diag);
    EXPECT_FALSE(diag.has_errors());
    snap.route_access.resize(7);
    auto ranges = std::make_shared<access::AccessList>();
    ranges->allow.add(*access::parse_cidr("10.0.0.0/8"));
    snap.route_access[2] = ranges;
    snap.trusted_proxies.add(*access::parse_cidr("192.168.0.0/16"));
    snap.global_access.deny.add(*access::parse_cidr("203.0.113.0/24"));
    snap.hsts_field = "Strict-Transport-Security: max-age=31536000\r\n";
    if (with_tls) {
      const auto pem = make_cert("phigate test");
      config::CertificateSpec cert;
      cert.cert_pem = pem.cert;
      cert.key_pem = pem.key;
      cert.resource = "Secret ns/cert";
      c.tls.default_certificate = cert;
      tls::HostTlsSpec spec;
      spec.host = "mtls.example";
      spec.verify = config::VerifyClient::On;
      spec.ca_pem = pem.cert;
      std::string error;
      mtls_policy = tls::HostPolicy::compile(spec, false, error);
      EXPECT_TRUE(mtls_policy) << error;
      tls::ServerContexts::HostPolicies hosts{{"mtls.example", mtls_policy}};
      config::Diagnostics tdiag;
      snap.tls = tls::ServerContexts::build(c.tls, std::make_shared<tls::TicketKeyRing>(), tdiag, hosts);
      EXPECT_TRUE(snap.tls);
    }
    snap.config = cfg;
  }
};

/// A request as the HTTP/1 parser leaves it.
struct Req {
  http::MessageHead head;
  Request r{head};
  Req(std::string target, std::string host, int minor = 1) {
    head.method = "GET";
    head.target = std::move(target);
    head.version_minor = minor;
    if (!host.empty()) head.headers.add("Host", host);
  }
};

ConnectionView plain(const std::optional<access::Address>& addr, std::string_view ip = "198.51.100.7") {
  ConnectionView c;
  c.peer_ip = ip;
  c.peer_addr = &addr;
  c.https_port = 8443;
  return c;
}

/// Runs the phases up to (not including) `name`, which must not decide; then `name`.
PhaseResult run_until(Request& r, const Snapshot& s, const ConnectionView& c, std::string_view name) {
  for (const auto& p : request_phases()) {
    if (p.name == name) return p.run(r, s, c);
    auto d = p.run(r, s, c);
    EXPECT_FALSE(d.has_value()) << p.name << " decided before " << name;
    if (d) return d;
  }
  ADD_FAILURE() << "no phase " << name;
  return std::nullopt;
}

TEST(Phases, OrderIsTodays) {
  std::vector<std::string_view> names;
  for (const auto& p : request_phases()) names.push_back(p.name);
  const std::vector<std::string_view> expected = {"client-address",
                                                  "audit-healthy",
                                                  "host",
                                                  "target",
                                                  "tls-policy",
                                                  "www-redirect",
                                                  "route",
                                                  "plain-redirect",
                                                  "client-cert-needs-tls",
                                                  "no-route",
                                                  "access",
                                                  "fail-closed",
                                                  "rate-limit",
                                                  "annotation-redirect",
                                                  "app-root",
                                                  "cors",
                                                  "response-headers",
                                                  "auth-basic",
                                                  "auth-external",
                                                  "rewrite",
                                                  "canary",
                                                  "limits",
                                                  "body-size"};
  EXPECT_EQ(names, expected);
  for (const auto& p : request_phases()) EXPECT_NE(p.run, nullptr) << p.name;
}

TEST(ClientAddressPhase, PeerUnlessTrustedProxyNamesAnother) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  Req q("/", "app.example");
  q.head.headers.add("X-Forwarded-For", "10.1.2.3");
  EXPECT_FALSE(phase::client_address(q.r, f.snap, plain(peer)));
  EXPECT_EQ(q.r.client_ip, "198.51.100.7");  // untrusted peer: its X-Forwarded-For is ignored
  ASSERT_TRUE(q.r.client_addr);
  EXPECT_EQ(*q.r.client_addr, *peer);

  const auto proxy = access::parse_address("192.168.1.1");
  auto c = plain(proxy, "192.168.1.1");
  c.peer_trusted = true;
  Req t("/", "app.example");
  t.head.headers.add("X-Forwarded-For", "10.1.2.3, 192.168.1.2");
  EXPECT_FALSE(phase::client_address(t.r, f.snap, c));
  EXPECT_EQ(t.r.client_ip, "10.1.2.3");
  EXPECT_EQ(*t.r.client_addr, *access::parse_address("10.1.2.3"));

  Req none("/", "app.example");  // trusted but no header: the peer
  EXPECT_FALSE(phase::client_address(none.r, f.snap, c));
  EXPECT_EQ(none.r.client_ip, "192.168.1.1");

  const std::optional<access::Address> unknown;
  Req u("/", "app.example");
  EXPECT_FALSE(phase::client_address(u.r, f.snap, plain(unknown, "")));
  EXPECT_FALSE(u.r.client_addr);
}

TEST(AuditHealthyPhase, RefusesWhileTheWriterCannotTakeRecords) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  Req q("/", "app.example");
  EXPECT_FALSE(phase::audit_healthy(q.r, f.snap, c));  // audit off
  c.audit_on = true;
  EXPECT_FALSE(phase::audit_healthy(q.r, f.snap, c));  // healthy
  c.audit_healthy = false;
  const auto d = phase::audit_healthy(q.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AuditUnavailable);
  EXPECT_EQ(d->error.kind, ErrorKind::AuditUnavailable);
  EXPECT_EQ(decision_status(*d), 503);
  EXPECT_FALSE(d->must_close);
  f.cfg->audit.block_on_overflow = true;  // the worker waits instead
  EXPECT_FALSE(phase::audit_healthy(q.r, f.snap, c));
}

TEST(HostPhase, OneValidHostMatchingTheAbsoluteForm) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  const auto c = plain(peer);
  struct Case {
    const char* target;
    const char* host;
    int minor;
    bool second_host;
    std::optional<Outcome> outcome;
  };
  const Case cases[] = {
      {"/", "App.Example:80", 1, false, std::nullopt},
      {"/", "", 0, false, std::nullopt},  // HTTP/1.0 may omit Host
      {"/", "", 1, false, Outcome::HostHeader},
      {"/", "a.example", 1, true, Outcome::HostHeader},
      {"/", "a.example:@b.example", 1, false, Outcome::HostSyntax},
      {"/", "a.example/x", 1, false, Outcome::HostSyntax},
      {"http://b.example/x", "a.example", 1, false, Outcome::StrictHttp},
      {"http://A.example:80/x", "a.example", 1, false, std::nullopt},
      {"a.example/x", "a.example", 1, false, Outcome::StrictHttp},
  };
  for (const auto& k : cases) {
    Req q(k.target, k.host, k.minor);
    if (k.second_host) q.head.headers.add("Host", "b.example");
    const auto d = phase::host(q.r, f.snap, c);
    ASSERT_EQ(d.has_value(), k.outcome.has_value()) << k.target << " " << k.host;
    if (!d) continue;
    EXPECT_EQ(d->outcome, *k.outcome) << k.host;
    EXPECT_EQ(d->error.kind, ErrorKind::BadRequest);
    EXPECT_TRUE(d->must_close);
  }
  Req ok("/", "App.Example:80");
  EXPECT_FALSE(phase::host(ok.r, f.snap, c));
  EXPECT_EQ(ok.r.host, "App.Example:80");
  EXPECT_EQ(ok.r.host_norm, "app.example");
}

TEST(TargetPhase, NormalisesOrRefuses) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  Req q("/a/../admin;x/secret?q=1", "app.example");
  EXPECT_FALSE(phase::target(q.r, f.snap, plain(peer)));
  EXPECT_EQ(q.r.target, "/admin;x/secret?q=1");
  EXPECT_EQ(q.r.path, "/admin/secret");
  Req bad("/%2e%2e/%2fetc", "app.example");
  const auto d = phase::target(bad.r, f.snap, plain(peer));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::PathNormalisation);
  EXPECT_EQ(decision_status(*d), 400);
  EXPECT_TRUE(d->must_close);
}

TEST(TlsPolicyPhase, HostMustHaveTheSnisPolicyAndItsCertificate) {
  Fixture f(true);
  ASSERT_TRUE(f.snap.tls);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  // Plain HTTP: nothing to compare.
  Req p("/", "mtls.example");
  p.r.host_norm = "mtls.example";
  EXPECT_FALSE(phase::tls_policy(p.r, f.snap, c));

  c.tls = true;
  const auto& none = f.snap.tls->policy_for("app.example");
  c.conn_policy = &none;
  Req same("/", "app.example");
  same.r.host_norm = "app.example";
  EXPECT_FALSE(phase::tls_policy(same.r, f.snap, c));

  // SNI app.example, Host mtls.example: another policy.
  Req other("/", "mtls.example");
  other.r.host_norm = "mtls.example";
  auto d = phase::tls_policy(other.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::Misdirected);
  EXPECT_EQ(decision_status(*d), 421);
  EXPECT_TRUE(d->must_close);

  c.conn_policy = nullptr;  // no handshake policy: refused as well
  EXPECT_EQ(phase::tls_policy(same.r, f.snap, c)->outcome, Outcome::Misdirected);

  // SNI mtls.example: the certificate's verdict decides.
  c.conn_policy = &f.snap.tls->policy_for("mtls.example");
  d = phase::tls_policy(other.r, f.snap, c);
  ASSERT_TRUE(d);  // not described: refused
  EXPECT_EQ(d->outcome, Outcome::ClientCertificate);
  tls::ClientCertificate cert;
  cert.refusal = "no required SSL certificate was sent";
  c.client_cert = &cert;
  d = phase::tls_policy(other.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::ClientCertificate);
  EXPECT_EQ(d->error.kind, ErrorKind::ClientCertificate);
  EXPECT_EQ(d->error.context, "no required SSL certificate was sent");
  EXPECT_EQ(decision_status(*d), 400);
  EXPECT_FALSE(d->must_close);
  cert.refusal = nullptr;
  cert.present = true;
  EXPECT_FALSE(phase::tls_policy(other.r, f.snap, c));
}

TEST(RoutePhase, MatchesAndDecidesHsts) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  Req q("/x", "limits.example");
  EXPECT_FALSE(run_until(q.r, f.snap, c, "route"));
  ASSERT_NE(q.r.route, nullptr);
  EXPECT_EQ(q.r.route->target, 4u);
  EXPECT_EQ(q.r.policy, q.r.route->policy.get());
  EXPECT_FALSE(q.r.hsts);  // plain HTTP
  c.tls = true;
  EXPECT_FALSE(phase::route(q.r, f.snap, c));
  EXPECT_TRUE(q.r.hsts);
  Req off("/", "nohsts.example");
  EXPECT_FALSE(run_until(off.r, f.snap, plain(peer), "route"));
  EXPECT_FALSE(phase::route(off.r, f.snap, c));
  EXPECT_FALSE(off.r.hsts);  // phigate.io/hsts: "false"
  f.cfg->tls.hsts.disabled_hosts = {"*.example"};
  EXPECT_FALSE(phase::route(q.r, f.snap, c));
  EXPECT_FALSE(q.r.hsts);
  Req unknown("/", "nowhere.test");
  EXPECT_FALSE(run_until(unknown.r, f.snap, plain(peer), "route"));
  EXPECT_EQ(unknown.r.route, nullptr);
  EXPECT_EQ(unknown.r.policy, nullptr);
}

TEST(PlainRedirectPhase, RedirectsUnlessTheRouteAllowsPlainHttp) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  Req q("/a?b=1", "app.example:8080");  // static route: redirected
  auto d = run_until(q.r, f.snap, c, "plain-redirect");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::Redirected);
  EXPECT_EQ(decision_status(*d), 308);
  EXPECT_FALSE(d->must_close);  // the codec's choice
  EXPECT_EQ(q.r.rare_or_empty().location, "https://app.example:8443/a?b=1");
  f.snap.https_redirect_port = 443;
  Req n("/", "nowhere.test");  // no route: redirected too
  d = run_until(n.r, f.snap, c, "plain-redirect");
  ASSERT_TRUE(d);
  EXPECT_EQ(n.r.rare_or_empty().location, "https://nowhere.test/");
  Req ok("/", "plain.example");
  EXPECT_FALSE(run_until(ok.r, f.snap, c, "plain-redirect"));
  EXPECT_TRUE(ok.r.rare_or_empty().location.empty());
  c.tls = true;
  Req t("/", "app.example");
  t.r.host = "app.example";
  EXPECT_FALSE(phase::plain_redirect(t.r, f.snap, c));
}

TEST(PlainRedirectPhase, NeedsOneValidHost) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  Req q("/", "", 0);  // HTTP/1.0 without Host passes the host phase, not this one
  const auto d = run_until(q.r, f.snap, plain(peer), "plain-redirect");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::HostHeader);
  EXPECT_EQ(d->error.context, "redirect needs one valid Host");
  EXPECT_EQ(decision_status(*d), 400);
  EXPECT_TRUE(d->must_close);
  EXPECT_TRUE(q.r.rare_or_empty().location.empty());
}

TEST(ClientCertNeedsTlsPhase, NeverServesACertificateHostInPlain) {
  Fixture f(true);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  Req q("/", "mtls.example");  // its route allows plain HTTP, its host requires certificates
  const auto d = run_until(q.r, f.snap, c, "client-cert-needs-tls");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::ClientCertificateNeedsTls);
  EXPECT_EQ(decision_status(*d), 403);
  EXPECT_FALSE(d->must_close);
  // The route's own verify_client is enough, without TLS contexts.
  Fixture g;
  Req r("/", "mtls.example");
  ASSERT_TRUE(run_until(r.r, g.snap, c, "client-cert-needs-tls"));
  Req ok("/", "plain.example");
  EXPECT_FALSE(run_until(ok.r, f.snap, c, "client-cert-needs-tls"));
  // A failed-closed Ingress answers its 503 later instead.
  auto broken = *q.r.policy;
  broken.fail_closed = "x";
  q.r.policy = &broken;
  EXPECT_FALSE(phase::client_cert_needs_tls(q.r, f.snap, c));
  c.tls = true;
  q.r.policy = nullptr;
  EXPECT_FALSE(phase::client_cert_needs_tls(q.r, f.snap, c));
}

TEST(NoRoutePhase, Refuses404) {
  Fixture f(true);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  c.tls = true;
  c.conn_policy = &f.snap.tls->policy_for("app.example");  // the policy of hosts nobody configured
  Req q("/", "nowhere.test");
  const auto d = run_until(q.r, f.snap, c, "no-route");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::NoRoute);
  EXPECT_EQ(decision_status(*d), 404);
  EXPECT_FALSE(d->must_close);
  Req ok("/", "app.example");
  EXPECT_FALSE(run_until(ok.r, f.snap, c, "no-route"));
}

TEST(AccessPhase, GlobalThenSourceRange) {
  Fixture f;
  struct Case {
    const char* ip;
    const char* host;
    std::optional<Outcome> outcome;
  };
  const Case cases[] = {
      {"198.51.100.7", "plain.example", std::nullopt},
      {"203.0.113.9", "plain.example", Outcome::AccessGlobal},   // global deny
      {"203.0.113.9", "ranges.example", Outcome::AccessGlobal},  // global first
      {"198.51.100.7", "ranges.example", Outcome::AccessSourceRange},
      {"10.9.9.9", "ranges.example", std::nullopt},
  };
  for (const auto& k : cases) {
    const auto addr = access::parse_address(k.ip);
    Req q("/", k.host);
    const auto d = run_until(q.r, f.snap, plain(addr, k.ip), "access");
    ASSERT_EQ(d.has_value(), k.outcome.has_value()) << k.ip << " " << k.host;
    if (!d) continue;
    EXPECT_EQ(d->outcome, *k.outcome);
    EXPECT_EQ(d->error.kind, ErrorKind::Denied);
    EXPECT_EQ(decision_status(*d), 403);
    EXPECT_FALSE(d->must_close);
  }
  // No client address at all: not admitted.
  const std::optional<access::Address> unknown;
  Req u("/", "plain.example");
  const auto d = run_until(u.r, f.snap, plain(unknown, ""), "access");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AccessGlobal);
  // A route whose list is missing from the snapshot cannot be checked: refused.
  f.snap.route_access.clear();
  const auto peer = access::parse_address("198.51.100.7");
  Req m("/", "plain.example");
  const auto e = run_until(m.r, f.snap, plain(peer), "access");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, Outcome::AccessSourceRange);
}

TEST(FailClosedPhase, InvalidIngressAnswers503) {
  Fixture f;
  const auto peer = access::parse_address("198.51.100.7");
  Req q("/", "broken.example");
  const auto d = run_until(q.r, f.snap, plain(peer), "fail-closed");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::FailClosed);
  EXPECT_EQ(d->error.kind, ErrorKind::Unavailable);
  EXPECT_EQ(d->error.context, "Ingress ns/app");
  EXPECT_EQ(decision_status(*d), 503);
  EXPECT_FALSE(d->must_close);
  Req ok("/", "plain.example");
  EXPECT_FALSE(run_until(ok.r, f.snap, plain(peer), "fail-closed"));
}

TEST(LimitsPhase, ConfigOverriddenByThePolicy) {
  Fixture f(true);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  c.tls = true;
  c.conn_policy = &f.snap.tls->policy_for("app.example");  // the policy of hosts nobody configured
  Req g("/", "app.example");
  EXPECT_FALSE(run_until(g.r, f.snap, c, "limits"));
  EXPECT_EQ(g.r.limits.connect, std::chrono::milliseconds(5000));
  EXPECT_EQ(g.r.limits.send, std::chrono::milliseconds(6000));
  EXPECT_EQ(g.r.limits.read, std::chrono::milliseconds(7000));
  EXPECT_EQ(g.r.limits.body_bytes, 1000u);
  Req p("/", "limits.example");
  EXPECT_FALSE(run_until(p.r, f.snap, c, "limits"));
  EXPECT_EQ(p.r.limits.connect, std::chrono::milliseconds(1));
  EXPECT_EQ(p.r.limits.send, std::chrono::milliseconds(2));
  EXPECT_EQ(p.r.limits.read, std::chrono::milliseconds(3));
  EXPECT_EQ(p.r.limits.body_bytes, 10u);
  // limit-rate is KiB and overrides limits.response_rate; an unset limit-rate-after keeps the global.
  EXPECT_EQ(g.r.limits.response_rate, 100000u);
  EXPECT_EQ(g.r.limits.response_rate_after, 5000u);
  EXPECT_EQ(p.r.limits.response_rate, 262144u);
  EXPECT_EQ(p.r.limits.response_rate_after, 5000u);
}

TEST(BodySizePhase, AnnouncedLengthOverTheLimit) {
  Fixture f(true);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  c.tls = true;
  c.conn_policy = &f.snap.tls->policy_for("app.example");  // the policy of hosts nobody configured
  Req q("/", "limits.example");
  q.head.content_length = 11;
  const auto d = run_until(q.r, f.snap, c, "body-size");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::BodyTooLarge);
  EXPECT_EQ(decision_status(*d), 413);
  EXPECT_TRUE(d->must_close);
  Req at("/", "limits.example");
  at.head.content_length = 10;
  EXPECT_FALSE(run_until(at.r, f.snap, c, "body-size"));
  Req unlimited("/", "limits.example");
  unlimited.head.content_length = 1u << 30;
  EXPECT_FALSE(run_until(unlimited.r, f.snap, c, "limits"));
  unlimited.r.limits.body_bytes = 0;
  EXPECT_FALSE(phase::body_size(unlimited.r, f.snap, c));
}

TEST(RunPhases, EndToEnd) {
  Fixture f(true);
  const auto peer = access::parse_address("198.51.100.7");
  auto c = plain(peer);
  c.tls = true;
  c.conn_policy = &f.snap.tls->policy_for("app.example");
  Req ok("/a/./b?x", "App.example");
  EXPECT_FALSE(run_phases(ok.r, f.snap, c));  // proxy it
  EXPECT_EQ(ok.r.target, "/a/b?x");
  EXPECT_EQ(ok.r.host_norm, "app.example");
  EXPECT_EQ(ok.r.client_ip, "198.51.100.7");
  ASSERT_NE(ok.r.route, nullptr);
  EXPECT_EQ(ok.r.route->target, 0u);
  EXPECT_TRUE(ok.r.hsts);
  EXPECT_EQ(ok.r.limits.body_bytes, 1000u);
  // A plain proxied request leaves the rare fields unallocated (a phase that writes one
  // unconditionally costs every stream cache lines: docs/perf-h2-many-streams.md round 10).
  EXPECT_FALSE(ok.r.has_rare());
  Req limited("/", "limits.example");
  EXPECT_FALSE(run_phases(limited.r, f.snap, c));
  EXPECT_NE(limited.r.policy, nullptr);
  EXPECT_FALSE(limited.r.has_rare());

  // The first decision wins: an audit outage before a bad Host.
  c.audit_on = true;
  c.audit_healthy = false;
  Req both("/", "");
  auto d = run_phases(both.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AuditUnavailable);
  EXPECT_TRUE(both.r.hsts);  // refusals before the route carry the snapshot's HSTS
  c.audit_healthy = true;
  d = run_phases(both.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::HostHeader);

  // A bad path before a misdirected Host: normalisation comes first.
  Req path("/../x", "mtls.example");
  d = run_phases(path.r, f.snap, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::PathNormalisation);
  Req mis("/", "mtls.example");
  EXPECT_EQ(run_phases(mis.r, f.snap, c)->outcome, Outcome::Misdirected);
  Req big("/", "nowhere.test");
  big.head.content_length = 5000;
  EXPECT_EQ(run_phases(big.r, f.snap, c)->outcome, Outcome::NoRoute);  // 404 before 413

  // Plain HTTP.
  auto p = plain(peer);
  Req redirect("/x", "app.example");
  EXPECT_EQ(run_phases(redirect.r, f.snap, p)->outcome, Outcome::Redirected);
  EXPECT_EQ(redirect.r.rare_or_empty().location, "https://app.example:8443/x");
  EXPECT_TRUE(redirect.r.has_rare());
  EXPECT_FALSE(redirect.r.hsts);
  Req served("/x", "plain.example");
  EXPECT_FALSE(run_phases(served.r, f.snap, p));
  EXPECT_FALSE(served.r.has_rare());
  Req large("/x", "plain.example");
  large.head.content_length = 1001;
  EXPECT_EQ(run_phases(large.r, f.snap, p)->outcome, Outcome::BodyTooLarge);
}

TEST(HttpsLocation, SameAsTheConnectionsWas) {
  EXPECT_EQ(https_location("a.example:80", "/x?y", 443), "https://a.example/x?y");
  EXPECT_EQ(https_location("a.example", "/x", 8443), "https://a.example:8443/x");
  EXPECT_EQ(https_location("[::1]:80", "/", 443), "https://[::1]/");
  EXPECT_EQ(https_location("a.example", "http://a.example/p?q", 443), "https://a.example/p?q");
  EXPECT_EQ(https_location("a.example", "http://a.example", 443), "https://a.example/");
  EXPECT_EQ(https_location("a.example", "", 443), "https://a.example/");
  EXPECT_EQ(https_location("", "/", 443), "");
  EXPECT_EQ(https_location("a.example\r\nSet-Cookie:x", "/", 443), "");
  EXPECT_EQ(https_location("[::1", "/", 443), "");
  EXPECT_EQ(https_location("a.example", "a.example/x", 443), "");
}

TEST(CountOutcome, OutcomeFamilyAndLegacyCounters) {
  metrics::WorkerShard s;
  count_outcome(s, Outcome::Misdirected);
  count_outcome(s, Outcome::ClientCertificate);
  count_outcome(s, Outcome::AuditUnavailable);
  count_outcome(s, Outcome::Redirected);
  count_outcome(s, Outcome::Redirected);
  count_outcome(s, Outcome::Proxied);
  EXPECT_EQ(s.misdirected.get(), 1u);
  EXPECT_EQ(s.client_cert_refusals.get(), 1u);
  EXPECT_EQ(s.audit_fail_closed.get(), 1u);
  EXPECT_EQ(s.redirects.get(), 2u);
  EXPECT_EQ(s.outcomes[static_cast<std::size_t>(Outcome::Redirected)].get(), 2u);
  EXPECT_EQ(s.outcomes[static_cast<std::size_t>(Outcome::Proxied)].get(), 1u);
  EXPECT_EQ(s.outcomes[static_cast<std::size_t>(Outcome::NoRoute)].get(), 0u);
  const metrics::WorkerShard* shards[] = {&s};
  const auto text = metrics::render(shards, metrics::ControlStats{});
  EXPECT_NE(text.find("phigate_request_outcomes_total{outcome=\"redirected\",decision=\"redirected\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("phigate_request_outcomes_total{outcome=\"proxied\",decision=\"allowed\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace phigate::proxy::detail
