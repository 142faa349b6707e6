// Phases app-root and rewrite (ingress-nginx app-root, rewrite-target, x-forwarded-prefix), and
// the one upstream-head helper. Pure: snapshots built by hand, no sockets.
#include <gtest/gtest.h>

#include <memory>

#include "phases.hpp"
#include "phigate/access/cidr.hpp"
#include "upstream_head.hpp"

namespace phigate::proxy::detail {
namespace {

using core::ErrorKind;
using core::Outcome;

struct RouteDef {
  std::string host, path;
  std::string rewrite, prefix, app_root;
  bool use_regex = false;
  bool denied = false;  // allow only 10.0.0.0/8
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
      p->regex.use_regex = d.use_regex;
      p->regex.rewrite_target = d.rewrite;
      p->regex.x_forwarded_prefix = d.prefix;
      p->regex.app_root = d.app_root;
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

struct Req {
  http::MessageHead head;
  Request r{head};
  Req(std::string target, std::string host) {
    head.method = "GET";
    head.target = std::move(target);
    head.version_minor = 1;
    head.headers.add("Host", host);
  }
};

struct Result {
  PhaseResult d;
  std::string upstream;  // prepare_upstream_head's target
  std::string prefix;    // X-Forwarded-Prefix after it
};

Result run(const Fixture& f, std::string target, std::string host = "rw.example", bool tls = false) {
  static const std::optional<access::Address> addr = access::parse_address("198.51.100.7");
  ConnectionView c;
  c.tls = tls;
  c.peer_ip = "198.51.100.7";
  c.peer_addr = &addr;
  Req q(std::move(target), std::move(host));
  q.head.headers.add("X-Forwarded-Prefix", "/forged");
  Result out;
  out.d = run_phases(q.r, f.snap, c);
  if (!out.d) {
    out.upstream = std::string(prepare_upstream_head(q.r, q.head.headers));
    const auto* p = q.head.headers.find("x-forwarded-prefix");
    out.prefix = p != nullptr ? *p : "";
    EXPECT_EQ(q.head.headers.count("x-forwarded-prefix"), 1u);
  } else {
    out.upstream = q.r.rare_or_empty().location;
  }
  return out;
}

const std::vector<RouteDef> kDocs = {
    {"rw.example", "/something(/|$)(.*)", "/$2", "", "", false, false},
    {"rw.example", "/", "", "", "", false, false},
    {"pre.example", "/(app)(/|$)(.*)", "/$3", "/$1", "", false, false},
    {"dots.example", "/(.*)x(.*)", "/$1/$2", "", "", false, false},
    {"rel.example", "/r(.*)", "$1", "", "", false, false},
};

// docs/examples/rewrite/README.md
TEST(RewritePhase, DocsExampleAndQueryKept) {
  const Fixture f(kDocs);
  EXPECT_EQ(run(f, "/something").upstream, "/");
  EXPECT_EQ(run(f, "/something/").upstream, "/");
  EXPECT_EQ(run(f, "/something/new").upstream, "/new");
  EXPECT_EQ(run(f, "/something/new?a=1&b=%20").upstream, "/new?a=1&b=%20");
  EXPECT_EQ(run(f, "/other?x").upstream, "/other?x");  // no rewrite: the normalised target
  // The forged X-Forwarded-Prefix of an untrusted client is kept only when the route sets none
  // (forwarding rules decide that); here the helper leaves it to them.
}

TEST(RewritePhase, ParametersAreRemovedBeforeTheRewrite) {
  const Fixture f(kDocs);
  EXPECT_EQ(run(f, "/something;x/secret;y=1").upstream, "/secret");
}

TEST(RewritePhase, ForwardedPrefixReplacesTheClientsOne) {
  const Fixture f(kDocs);
  const auto r = run(f, "/app/x?q", "pre.example");
  EXPECT_FALSE(r.d.has_value());
  EXPECT_EQ(r.upstream, "/x?q");
  EXPECT_EQ(r.prefix, "/app");
}

// Captures glued into dot segments: "/..x.." → "/../..", never sent.
TEST(RewritePhase, DotSegmentsFromCapturesAre400) {
  const Fixture f(kDocs);
  for (const char* target : {"/..x..", "/.x", "/ax.."}) {
    const auto r = run(f, target, "dots.example");
    ASSERT_TRUE(r.d.has_value()) << target;
    EXPECT_EQ(r.d->outcome, Outcome::RewriteRefused) << target;
    EXPECT_EQ(decision_status(*r.d), 400) << target;
  }
  EXPECT_EQ(run(f, "/axb", "dots.example").upstream, "/a/b");
  // Empty captures: nginx would send "//"; leading slashes collapse (never a network-path reference).
  EXPECT_EQ(run(f, "/x", "dots.example").upstream, "/");
}

TEST(RewritePhase, ResultNotStartingWithSlashIs400) {
  const Fixture f(kDocs);
  const auto r = run(f, "/rabc", "rel.example");
  ASSERT_TRUE(r.d.has_value());
  EXPECT_EQ(r.d->outcome, Outcome::RewriteRefused);
  EXPECT_EQ(run(f, "/r/abc", "rel.example").upstream, "/abc");
}

// The client's own dot segments and encoded slashes are refused or resolved before routing: they
// never reach the rewrite.
TEST(RewritePhase, ClientEscapesAreNormalisedFirst) {
  const Fixture f(kDocs);
  EXPECT_EQ(run(f, "/something/../../etc").d->outcome, Outcome::PathNormalisation);  // above the root
  EXPECT_EQ(run(f, "/something/%2e%2e/x").upstream, "/x");  // resolved to "/x": not this route
  EXPECT_EQ(run(f, "/something/a/%2e%2e/b").upstream, "/b");
  EXPECT_EQ(run(f, "/something/a%2Fb").d->outcome, Outcome::PathNormalisation);
  EXPECT_EQ(run(f, "/something/a%2fb").d->outcome, Outcome::PathNormalisation);
}

TEST(AppRootPhase, OnlySlashRedirects302WithTheHostAsSent) {
  const Fixture f({{"approot.example", "/", "", "", "/app1", false, false},
                   {"approot.example", "/app1", "", "", "", false, false}});
  auto r = run(f, "/", "approot.example:8080");
  ASSERT_TRUE(r.d.has_value());
  EXPECT_EQ(r.d->outcome, Outcome::AppRootRedirect);
  EXPECT_EQ(decision_status(*r.d), 302);
  EXPECT_TRUE(is_redirect(*r.d));
  EXPECT_EQ(r.upstream, "http://approot.example:8080/app1");
  {  // over TLS (the phase alone: this snapshot has no TLS contexts), the query ignored
    Req q("/?x=1", "approot.example");
    ConnectionView c;
    c.tls = true;
    ASSERT_FALSE(phase::host(q.r, f.snap, c).has_value());
    ASSERT_FALSE(phase::target(q.r, f.snap, c).has_value());
    ASSERT_FALSE(phase::route(q.r, f.snap, c).has_value());
    const auto d = phase::app_root(q.r, f.snap, c);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(q.r.rare_or_empty().location, "https://approot.example/app1");
  }
  EXPECT_FALSE(run(f, "/app1", "approot.example").d.has_value());
  EXPECT_FALSE(run(f, "/x", "approot.example").d.has_value());
  EXPECT_EQ(redirect_body(302), "302 Found\n");
  EXPECT_EQ(redirect_body(308), "308 Permanent Redirect\n");
}

// Only the Ingress serving "/" redirects it: another Ingress's app-root on a deeper path of the
// same host does not, whether the root is a literal "/" or a regex that matches "/".
TEST(AppRootPhase, OnlyTheRootsOwnerRedirectsIt) {
  const Fixture literal({{"approot.example", "/", "", "", "", false, false},
                         {"approot.example", "/b", "", "", "/b/login", false, false}});
  EXPECT_FALSE(run(literal, "/", "approot.example").d.has_value());
  const Fixture regex({{"approot.example", "/(.*)", "", "", "", true, false},
                       {"approot.example", "/b", "", "", "/b/login", false, false}});
  const auto r = run(regex, "/", "approot.example");
  EXPECT_FALSE(r.d.has_value());
  const Fixture owner({{"approot.example", "/(.*)", "", "", "/app1", true, false},
                       {"approot.example", "/b", "", "", "/b/login", false, false}});
  const auto o = run(owner, "/", "approot.example");
  ASSERT_TRUE(o.d.has_value());
  EXPECT_EQ(o.d->outcome, Outcome::AppRootRedirect);
  EXPECT_EQ(o.upstream, "http://approot.example/app1");
}

// A client refused by the route's source range gets 403, not the redirect target.
TEST(AppRootPhase, AccessChecksComeFirst) {
  const Fixture f({{"approot.example", "/", "", "", "/app1", false, true}});
  const auto r = run(f, "/", "approot.example");
  ASSERT_TRUE(r.d.has_value());
  EXPECT_EQ(r.d->outcome, Outcome::AccessSourceRange);
}

}  // namespace
}  // namespace phigate::proxy::detail
