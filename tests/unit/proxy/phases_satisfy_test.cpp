// satisfy: any | all (config::Satisfy) across the access, auth-basic and auth-external phases:
// the allowlist and authentication as alternatives, never the denylist. Pure: no sockets.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "phases.hpp"

namespace phigate::proxy::detail {
namespace {

using core::Outcome;

/// Routes (target = index):
///   any.example    satisfy any, basic auth, allow 10.0.0.0/8, deny 10.6.6.0/24
///   all.example    satisfy all, same lists and users
///   ext.example    satisfy any, auth-url (cluster 4), allow 10.0.0.0/8
///   noauth.example satisfy any, allow 10.0.0.0/8, no authentication: the allowlist refuses
///   nolist.example satisfy any, basic auth, no allowlist: credentials always
struct Fixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  std::vector<config::RoutePolicyPtr> policies;

  Fixture() {
    auto& c = *cfg;
    const auto users = std::make_shared<const std::vector<config::BasicAuthUser>>(
        std::vector<config::BasicAuthUser>{{"alice", "$apr1$x$y"}});
    auto route = [&](std::string host, bool any, bool basic, bool external) {
      auto p = std::make_shared<config::RoutePolicy>();
      p->resource = "Ingress ns/" + host;
      p->ssl_redirect = false;
      p->satisfy = any ? config::Satisfy::Any : config::Satisfy::All;
      p->basic_auth.enabled = basic;
      if (basic) p->basic_auth.users = users;
      p->external_auth.enabled = external;
      p->external_auth.response_headers = {"x-auth-request-user"};
      config::RouteSpec r;
      r.host = std::move(host);
      config::PathSpec ps;
      ps.path = "/";
      ps.backends = {"127.0.0.1:1"};
      ps.policy = p;
      r.paths.push_back(std::move(ps));
      c.routes.push_back(std::move(r));
      policies.push_back(p);
    };
    route("any.example", true, true, false);
    route("all.example", false, true, false);
    route("ext.example", true, false, true);
    route("noauth.example", true, false, false);
    route("nolist.example", true, true, false);
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build(c.routes, diag);
    EXPECT_FALSE(diag.has_errors());
    auto lists = std::make_shared<access::AccessList>();
    lists->allow.add(*access::parse_cidr("10.0.0.0/8"));
    lists->deny.add(*access::parse_cidr("10.6.6.0/24"));
    snap.route_access = {lists, lists, lists, lists, nullptr};
    snap.clusters.resize(5);
    snap.auth_clusters.emplace(policies[2].get(), 4);
    snap.config = cfg;
  }
};

struct Req {
  http::MessageHead head;
  Request r{head};
  Req(std::string host, bool credentials) {
    head.method = "GET";
    head.target = "/";
    head.version_minor = 1;
    head.headers.add("Host", host);
    // "alice:secret"
    if (credentials) head.headers.add("Authorization", "Basic YWxpY2U6c2VjcmV0");
    head.headers.add("X-Auth-Request-User", "forged");
  }
};

PhaseResult run(Fixture& f, Req& q, const char* ip) {
  const auto addr = access::parse_address(ip);
  ConnectionView c;
  c.peer_ip = ip;
  c.peer_addr = &addr;
  c.https_port = 8443;
  return run_phases(q.r, f.snap, c);
}

TEST(SatisfyAny, AllowlistedClientIsAskedNoCredentials) {
  Fixture f;
  Req q("any.example", false);
  EXPECT_FALSE(run(f, q, "10.1.2.3"));  // proxied, no 401
  EXPECT_TRUE(q.r.satisfied_by_allowlist);
  EXPECT_FALSE(q.r.auth_pending);  // nothing to verify
  // Credentials sent anyway are neither verified nor passed on (auth-forward-authorization unset).
  Req w("any.example", true);
  EXPECT_FALSE(run(f, w, "10.1.2.3"));
  EXPECT_FALSE(w.r.auth_pending);
  EXPECT_EQ(w.head.headers.find("authorization"), nullptr);
  // Not even under auth-forward-authorization: a forwarded Authorization means a verified one, and
  // these credentials were never checked (a backend reading the user would take "alice" on faith).
  // (made by make_shared<RoutePolicy>: not a const object)
  const_cast<config::RoutePolicy&>(*f.policies[0]).basic_auth.forward_authorization = true;
  Req v("any.example", true);
  EXPECT_FALSE(run(f, v, "10.1.2.3"));
  EXPECT_TRUE(v.r.satisfied_by_allowlist);
  EXPECT_EQ(v.head.headers.find("authorization"), nullptr);
}

TEST(SatisfyAny, ClientOutsideTheAllowlistMustAuthenticate) {
  Fixture f;
  Req q("any.example", false);
  const auto d = run(f, q, "198.51.100.7");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AuthRequired);  // a 401 challenge, not the allowlist's 403
  EXPECT_FALSE(q.r.satisfied_by_allowlist);
  Req w("any.example", true);
  EXPECT_FALSE(run(f, w, "198.51.100.7"));
  EXPECT_TRUE(w.r.auth_pending);  // verify_basic_auth() decides
  EXPECT_EQ(w.r.rare_or_empty().auth_user, "alice");
}

TEST(SatisfyAll, BothTheAllowlistAndCredentials) {
  Fixture f;
  Req out("all.example", true);
  const auto d = run(f, out, "198.51.100.7");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AccessSourceRange);
  Req in("all.example", false);
  const auto e = run(f, in, "10.1.2.3");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, Outcome::AuthRequired);
  EXPECT_FALSE(in.r.satisfied_by_allowlist);
  Req both("all.example", true);
  EXPECT_FALSE(run(f, both, "10.1.2.3"));
  EXPECT_TRUE(both.r.auth_pending);
}

TEST(SatisfyAny, DenylistAndGlobalListsAreNeverRelaxed) {
  Fixture f;
  f.snap.global_access.deny.add(*access::parse_cidr("203.0.113.0/24"));
  for (const bool credentials : {false, true}) {
    Req q("any.example", credentials);
    const auto d = run(f, q, "10.6.6.6");  // in the allowlist and in the denylist
    ASSERT_TRUE(d);
    EXPECT_EQ(d->outcome, Outcome::AccessSourceRange);
    EXPECT_FALSE(q.r.auth_pending);
    Req g("any.example", credentials);
    const auto e = run(f, g, "203.0.113.5");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->outcome, Outcome::AccessGlobal);
  }
}

TEST(SatisfyAny, ExternalAuthSkippedOnlyForTheAllowlist) {
  Fixture f;
  Req in("ext.example", false);
  EXPECT_FALSE(run(f, in, "10.1.2.3"));
  EXPECT_TRUE(in.r.satisfied_by_allowlist);
  EXPECT_FALSE(in.r.auth_external_pending);  // no subrequest
  // What the auth service would vouch for is still never the client's.
  EXPECT_EQ(in.head.headers.find("x-auth-request-user"), nullptr);
  Req out("ext.example", false);
  EXPECT_FALSE(run(f, out, "198.51.100.7"));
  EXPECT_FALSE(out.r.satisfied_by_allowlist);
  EXPECT_TRUE(out.r.auth_external_pending);
  EXPECT_EQ(out.r.auth_cluster, 4u);
}

TEST(SatisfyAny, WithoutAuthenticationOrAllowlistIsAll) {
  Fixture f;
  Req q("noauth.example", false);
  const auto d = run(f, q, "198.51.100.7");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::AccessSourceRange);
  Req in("noauth.example", false);
  EXPECT_FALSE(run(f, in, "10.1.2.3"));
  EXPECT_FALSE(in.r.satisfied_by_allowlist);
  Req n("nolist.example", false);
  const auto e = run(f, n, "10.1.2.3");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, Outcome::AuthRequired);
}

TEST(SatisfyAny, FailClosedPathsStayClosed) {
  Fixture f;
  // basic auth without users (translate would have failed it closed): never served, allowlisted or not.
  auto p = std::const_pointer_cast<config::RoutePolicy>(f.policies[0]);
  p->basic_auth.users = nullptr;
  Req q("any.example", false);
  const auto d = run(f, q, "10.1.2.3");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, Outcome::FailClosed);
  // auth-url without its cluster: the same.
  f.snap.auth_clusters.clear();
  Req e("ext.example", false);
  const auto x = run(f, e, "10.1.2.3");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->outcome, Outcome::FailClosed);
}

}  // namespace
}  // namespace phigate::proxy::detail
