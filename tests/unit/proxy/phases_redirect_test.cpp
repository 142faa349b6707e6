// Phase annotation-redirect (ingress-nginx permanent-redirect, temporal-redirect) and the
// upstream-vhost line of the upstream-head helper. Pure: snapshots built by hand, no sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "phases.hpp"
#include "phigate/access/cidr.hpp"
#include "upstream_head.hpp"

namespace phigate::proxy::detail {
namespace {

using core::Outcome;

struct RouteDef {
  std::string host, path;
  config::RedirectPolicy redirect{};
  std::string vhost{};
  bool denied = false;        // allow only 10.0.0.0/8
  std::string fail_closed{};  // the Ingress is invalid
};

struct Fixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  explicit Fixture(const std::vector<RouteDef>& defs) {
    auto& c = *cfg;
    for (const auto& d : defs) {
      auto p = std::make_shared<config::RoutePolicy>();
      p->resource = "Ingress ns/" + d.host;
      p->ssl_redirect = false;
      p->redirect = d.redirect;
      p->hosts.upstream_vhost = d.vhost;
      p->fail_closed = d.fail_closed;
      config::RouteSpec r;
      r.host = d.host;
      config::PathSpec ps;
      ps.path = d.path;
      ps.backends = {"127.0.0.1:1"};
      ps.policy = p;
      r.paths.push_back(std::move(ps));
      c.routes.push_back(std::move(r));
    }
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build(c.routes, diag);
    snap.route_access.resize(defs.size());
    for (std::size_t i = 0; i < defs.size(); ++i) {
      if (!defs[i].denied) continue;
      auto ranges = std::make_shared<access::AccessList>();
      ranges->allow.add(*access::parse_cidr("10.0.0.0/8"));
      snap.route_access[i] = ranges;
    }
    snap.config = cfg;
  }
};

struct Result {
  PhaseResult d;
  std::string location;
  std::string host;            // the upstream Host when proxied
  std::string forwarded_host;  // X-Forwarded-Host when proxied
  std::string authority;       // upstream_authority
};

Result run(const Fixture& f, std::string target, std::string host, bool tls = false, bool two_hosts = false) {
  static const std::optional<access::Address> addr = access::parse_address("198.51.100.7");
  ConnectionView c;
  c.tls = tls;
  c.peer_ip = "198.51.100.7";
  c.peer_addr = &addr;
  http::MessageHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.version_minor = 1;
  head.headers.add("Host", host);
  if (two_hosts) head.headers.add("Host", host);
  Request r{head};
  Result out;
  // Every phase but tls-policy (its SNI/Host comparison is tested in phases_test.cpp; these
  // snapshots have no TLS contexts).
  for (const auto& p : request_phases()) {
    if (p.name == "tls-policy") continue;
    if ((out.d = p.run(r, f.snap, c))) break;
  }
  out.location = r.rare_or_empty().location;
  if (!out.d) {
    head.headers.set("X-Forwarded-Host", r.host);  // as set_forwarding_headers does
    prepare_upstream_head(r, head.headers);
    EXPECT_EQ(head.headers.count("host"), 1u);
    if (const auto* h = head.headers.find("host")) out.host = *h;
    if (const auto* h = head.headers.find("x-forwarded-host")) out.forwarded_host = *h;
    out.authority = std::string(upstream_authority(r));
  }
  return out;
}

config::RedirectPolicy permanent(std::string url, int code = 301) {
  config::RedirectPolicy p;
  p.permanent_url = std::move(url);
  p.permanent_code = code;
  return p;
}

config::RedirectPolicy both() {
  config::RedirectPolicy p = permanent("https://perm.example/p", 308);
  p.temporal_url = "https://temp.example/t";
  p.temporal_code = 307;
  return p;
}

const std::vector<RouteDef> kRoutes = {
    {"perm.example", "/", permanent("https://www.google.com"), "", false, ""},
    {"code.example", "/", permanent("https://code.example/new", 308), "", false, ""},
    {"both.example", "/", both(), "", false, ""},
    {"rel.example", "/", permanent("/landing?from=rel", 302), "", false, ""},
    {"denied.example", "/", permanent("https://elsewhere.example/"), "", true, ""},
    {"broken.example", "/", permanent("https://elsewhere.example/"), "", false, "invalid Ingress"},
    {"vhost.example", "/", {}, "internal.svc:8080", false, ""},
    {"plain.example", "/", {}, "", false, ""},
};

TEST(AnnotationRedirectPhase, PermanentDefaultsTo301AndTheUrlAsWritten) {
  const Fixture f(kRoutes);
  const auto r = run(f, "/any/path?q=1", "perm.example");
  ASSERT_TRUE(r.d);
  EXPECT_EQ(r.d->outcome, Outcome::AnnotationRedirect);
  EXPECT_EQ(decision_status(*r.d), 301);
  EXPECT_TRUE(is_redirect(*r.d));
  // The request's target never reaches the Location (no open redirect through the path).
  EXPECT_EQ(r.location, "https://www.google.com");
  EXPECT_EQ(redirect_body(*r.d), "");  // nginx's `return`: no body
}

TEST(AnnotationRedirectPhase, CodeAnnotationAndTemporalWins) {
  const Fixture f(kRoutes);
  const auto code = run(f, "/", "code.example");
  ASSERT_TRUE(code.d);
  EXPECT_EQ(decision_status(*code.d), 308);
  EXPECT_EQ(code.location, "https://code.example/new");
  const auto b = run(f, "/", "both.example");
  ASSERT_TRUE(b.d);
  EXPECT_EQ(decision_status(*b.d), 307);
  EXPECT_EQ(b.location, "https://temp.example/t");
}

TEST(AnnotationRedirectPhase, RelativePathTakesSchemeAndHostAsSent) {
  const Fixture f(kRoutes);
  const auto plain = run(f, "/x", "rel.example:8080");
  ASSERT_TRUE(plain.d);
  EXPECT_EQ(decision_status(*plain.d), 302);
  EXPECT_EQ(plain.location, "http://rel.example:8080/landing?from=rel");
  const auto tls = run(f, "/x", "REL.example", true);
  ASSERT_TRUE(tls.d);
  EXPECT_EQ(tls.location, "https://REL.example/landing?from=rel");
}

// Attacker: two Host fields (or a Host the host phase would refuse) never make a Location.
TEST(AnnotationRedirectPhase, RelativeRedirectNeedsOneValidHost) {
  const Fixture f(kRoutes);
  const auto two = run(f, "/", "rel.example", false, true);
  ASSERT_TRUE(two.d);
  EXPECT_NE(two.d->outcome, Outcome::AnnotationRedirect);
  EXPECT_TRUE(two.location.empty());
  EXPECT_EQ(same_host_location(false, "a.example@evil.example", "/x"), "");
  EXPECT_EQ(same_host_location(false, "a.example/evil", "/x"), "");
  EXPECT_EQ(same_host_location(false, "a.example\r\nSet-Cookie: x", "/x"), "");
  EXPECT_EQ(same_host_location(true, "a.example:444", "/x"), "https://a.example:444/x");
}

// A client refused by the source range gets 403, not the redirect target; an invalid Ingress 503.
TEST(AnnotationRedirectPhase, AccessAndFailClosedComeFirst) {
  const Fixture f(kRoutes);
  const auto denied = run(f, "/", "denied.example");
  ASSERT_TRUE(denied.d);
  EXPECT_EQ(denied.d->outcome, Outcome::AccessSourceRange);
  EXPECT_TRUE(denied.location.empty());
  const auto broken = run(f, "/", "broken.example");
  ASSERT_TRUE(broken.d);
  EXPECT_EQ(broken.d->outcome, Outcome::FailClosed);
  EXPECT_TRUE(broken.location.empty());
}

TEST(AnnotationRedirectPhase, PhaseOrder) {
  std::vector<std::string_view> names;
  for (const auto& p : request_phases()) names.push_back(p.name);
  const auto at = [&](std::string_view n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  ASSERT_LT(at("annotation-redirect"), static_cast<long>(names.size()));
  // After the access checks and the rate limit (a redirect is a request like any other).
  EXPECT_EQ(at("rate-limit"), at("fail-closed") + 1);
  EXPECT_EQ(at("annotation-redirect"), at("rate-limit") + 1);
  EXPECT_EQ(at("app-root"), at("annotation-redirect") + 1);
  EXPECT_EQ(at("www-redirect"), at("tls-policy") + 1);
  EXPECT_EQ(at("route"), at("www-redirect") + 1);
}

TEST(AnnotationRedirectPhase, NoRedirectProxies) {
  const Fixture f(kRoutes);
  const auto r = run(f, "/", "plain.example");
  EXPECT_FALSE(r.d);
  EXPECT_TRUE(r.location.empty());
}

config::RedirectPolicy www() {
  config::RedirectPolicy p;
  p.from_to_www = true;
  return p;
}

const std::vector<RouteDef> kWww = {
    {"shop.example", "/", www(), "", false, ""},
    {"www.blog.example", "/", www(), "", false, ""},
    {"real.example", "/", www(), "", false, ""},
    {"www.real.example", "/only", {}, "", false, ""},  // a real host: served, never redirected
    {"wild.example", "/", www(), "", false, ""},
    {"*.wild.example", "/", {}, "", false, ""},     // covers www.wild.example: served
    {"*.star.example", "/", www(), "", false, ""},  // a wildcard has no partner
    {"broken.example", "/", www(), "", false, "invalid Ingress"},
};

TEST(WwwRedirectPhase, PartnerWithoutRoutesGets308ToTheHost) {
  const Fixture f(kWww);
  auto r = run(f, "/a/b?c=d", "WWW.Shop.Example:8080");
  ASSERT_TRUE(r.d);
  EXPECT_EQ(r.d->outcome, Outcome::WwwRedirect);
  EXPECT_EQ(decision_status(*r.d), 308);
  EXPECT_EQ(r.location, "https://shop.example/a/b?c=d");
  EXPECT_EQ(redirect_body(*r.d), "308 Permanent Redirect\n");
  r = run(f, "/", "blog.example", true);
  ASSERT_TRUE(r.d);
  EXPECT_EQ(r.location, "https://www.blog.example/");
  // The host itself is served.
  EXPECT_FALSE(run(f, "/", "shop.example").d);
}

TEST(WwwRedirectPhase, RealHostsWildcardsAndFailedIngressesAreNotRedirected) {
  const Fixture f(kWww);
  // www.real.example has a route of its own: its own routing (404 for "/", 200 for "/only").
  auto r = run(f, "/", "www.real.example", true);
  ASSERT_TRUE(r.d);
  EXPECT_EQ(r.d->outcome, Outcome::NoRoute);
  EXPECT_FALSE(run(f, "/only", "www.real.example").d);
  EXPECT_FALSE(run(f, "/", "www.wild.example").d);  // *.wild.example serves it
  r = run(f, "/", "www.x.star.example", true);
  ASSERT_TRUE(r.d);
  EXPECT_NE(r.d->outcome, Outcome::WwwRedirect);
  r = run(f, "/", "www.broken.example", true);
  ASSERT_TRUE(r.d);
  EXPECT_NE(r.d->outcome, Outcome::WwwRedirect);
  EXPECT_EQ(f.snap.routes.www_redirect("www.broken.example"), "");
}

// Attacker: the Location's host comes from the route table, never from the request; an
// absolute-form target naming another authority keeps only its path.
TEST(WwwRedirectPhase, RequestCannotChooseTheLocationHost) {
  const Fixture f(kWww);
  const auto r = run(f, "//evil.example/x", "www.shop.example");
  ASSERT_TRUE(r.d);
  EXPECT_EQ(r.location.rfind("https://shop.example/", 0), 0u) << r.location;
}

TEST(UpstreamVhost, ReplacesHostKeepsForwardedHost) {
  const Fixture f(kRoutes);
  const auto v = run(f, "/x", "VHost.example:8443", true);
  ASSERT_FALSE(v.d);
  EXPECT_EQ(v.host, "internal.svc:8080");
  EXPECT_EQ(v.forwarded_host, "VHost.example:8443");
  EXPECT_EQ(v.authority, "internal.svc:8080");
  // Without the annotation, the client's Host goes through unchanged (preserve-host is the default).
  const auto p = run(f, "/x", "plain.example:8443", true);
  ASSERT_FALSE(p.d);
  EXPECT_EQ(p.host, "plain.example:8443");
  EXPECT_EQ(p.authority, "plain.example:8443");
}

}  // namespace
}  // namespace phigate::proxy::detail
