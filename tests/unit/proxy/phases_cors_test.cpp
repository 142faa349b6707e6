// Phase cors (ingress-nginx enable-cors, cors-*): the exact origin match, the fields, the 204
// preflight, and its place after the access checks. Pure: snapshots built by hand, no sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "phases.hpp"
#include "phigate/access/cidr.hpp"

namespace phigate::proxy::detail {
namespace {

using core::Outcome;

config::CorsOrigin origin(std::string scheme, std::string host, std::string port = {},
                          bool wildcard = false) {
  return config::CorsOrigin{std::move(scheme), std::move(host), std::move(port), wildcard};
}

struct Fixture {
  std::shared_ptr<config::Config> cfg = std::make_shared<config::Config>();
  Snapshot snap;
  // cors.example: "*" (defaults); list.example: a list; denied.example: "*" behind a source range;
  // broken.example: "*" on an Ingress that failed closed; off.example: no CORS.
  Fixture() {
    auto& c = *cfg;
    const auto add = [&](std::string host, config::CorsPolicy cors, std::string fail = {}) {
      auto p = std::make_shared<config::RoutePolicy>();
      p->resource = "Ingress ns/" + host;
      p->ssl_redirect = false;
      p->cors = std::move(cors);
      p->fail_closed = std::move(fail);
      config::RouteSpec r;
      r.host = std::move(host);
      config::PathSpec ps;
      ps.path = "/";
      ps.backends = {"127.0.0.1:1"};
      ps.policy = p;
      r.paths.push_back(std::move(ps));
      c.routes.push_back(std::move(r));
    };
    config::CorsPolicy any;
    any.enabled = true;
    add("cors.example", any);
    config::CorsPolicy list = any;
    list.any_origin = false;
    list.origins = {origin("https", "app.example"), origin("https", "example.com", "", true),
                    origin("http", "local.example", "8080")};
    list.expose = "X-Total";
    list.credentials = false;
    add("list.example", list);
    add("denied.example", any);
    add("broken.example", any, "invalid annotation");
    add("off.example", config::CorsPolicy{});
    config::Diagnostics diag;
    snap.routes = router::RouteTable::build(c.routes, diag);
    snap.route_access.resize(c.routes.size());
    auto ranges = std::make_shared<access::AccessList>();
    ranges->allow.add(*access::parse_cidr("10.0.0.0/8"));
    snap.route_access[2] = ranges;
    snap.config = cfg;
  }
};

struct Req {
  http::MessageHead head;
  Request r{head};
  Req(std::string method, std::string host, std::vector<std::string> origins) {
    head.method = std::move(method);
    head.target = "/x";
    head.version_minor = 1;
    head.headers.add("Host", host);
    for (auto& o : origins) head.headers.add("Origin", o);
  }
};

struct Result {
  PhaseResult d;
  std::string fields;
  bool drop = false;  // the backend's Access-Control-* fields are removed
};

Result run(const Fixture& f, std::string method, std::string host, std::vector<std::string> origins) {
  static const std::optional<access::Address> addr = access::parse_address("198.51.100.7");
  ConnectionView c;
  c.peer_ip = "198.51.100.7";
  c.peer_addr = &addr;
  Req q(std::move(method), std::move(host), std::move(origins));
  Result out;
  out.d = run_phases(q.r, f.snap, c);
  out.fields = q.r.rare_or_empty().response_fields;
  out.drop = q.r.rare_or_empty().edits.drop_access_control;
  return out;
}

TEST(CorsPhase, IsAfterFailClosedAndBeforeCanary) {
  std::vector<std::string_view> names;
  for (const auto& p : request_phases()) names.push_back(p.name);
  const auto at = [&](std::string_view n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  EXPECT_LT(at("access"), at("cors"));
  EXPECT_LT(at("fail-closed"), at("cors"));
  EXPECT_LT(at("cors"), at("canary"));
  EXPECT_LT(at("cors"), at("rewrite"));
}

TEST(CorsPhase, StarPreflightIs204WithTheDefaults) {
  const Fixture f;
  const auto r = run(f, "OPTIONS", "cors.example", {"https://anything.example"});
  ASSERT_TRUE(r.d.has_value());
  EXPECT_EQ(r.d->outcome, Outcome::CorsPreflight);
  EXPECT_TRUE(is_preflight(*r.d));
  EXPECT_FALSE(is_redirect(*r.d));
  EXPECT_EQ(decision_status(*r.d), 204);
  EXPECT_EQ(r.fields,
            "Access-Control-Allow-Origin: *\r\n"
            "Access-Control-Allow-Credentials: true\r\n"
            "Access-Control-Allow-Methods: GET, PUT, POST, DELETE, PATCH, OPTIONS\r\n"
            "Access-Control-Allow-Headers: DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,"
            "Cache-Control,Content-Type,Range,Authorization\r\n"
            "Access-Control-Max-Age: 1728000\r\n");
  // "*" matches without an Origin too (as ingress-nginx), and never reflects one.
  EXPECT_TRUE(run(f, "OPTIONS", "cors.example", {}).d.has_value());
  EXPECT_EQ(run(f, "GET", "cors.example", {"https://evil.example"}).fields.find("evil"), std::string::npos);
}

TEST(CorsPhase, OtherMethodsGoOnWithTheFields) {
  const Fixture f;
  const auto r = run(f, "GET", "list.example", {"https://app.example"});
  EXPECT_FALSE(r.d.has_value());
  EXPECT_TRUE(r.drop);
  EXPECT_EQ(r.fields,
            "Vary: Origin\r\n"
            "Access-Control-Allow-Origin: https://app.example\r\n"
            "Access-Control-Allow-Methods: GET, PUT, POST, DELETE, PATCH, OPTIONS\r\n"
            "Access-Control-Allow-Headers: DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,"
            "Cache-Control,Content-Type,Range,Authorization\r\n"
            "Access-Control-Max-Age: 1728000\r\n"
            "Access-Control-Expose-Headers: X-Total\r\n");
}

TEST(CorsPhase, ExactOriginMatchTable) {
  const Fixture f;
  struct Case {
    const char* origin;
    bool allowed;
  };
  const Case cases[] = {
      {"https://app.example", true},
      {"HTTPS://APP.EXAMPLE", true},  // scheme and host case-insensitively
      {"https://a.example.com", true},
      {"https://A-1.Example.COM", true},
      {"http://local.example:8080", true},
      // Not listed, or listed differently:
      {"http://app.example", false},       // another scheme
      {"https://app.example:443", false},  // the port exactly as listed
      {"https://app.example:8443", false},
      {"https://app.example.evil.com", false},  // a prefix of the value
      {"https://evilapp.example", false},       // a suffix of the value
      {"xhttps://app.example", false},          // ingress-nginx's unanchored start
      {"https://app.example/", false},          // a path
      {"https://app.example/x", false},
      {"https://user@app.example", false},
      {"https://app.example ", false},
      {" https://app.example", false},
      {"https://app.example,https://evil.example", false},
      {"https://example.com", false},      // the wildcard needs one label
      {"https://a.b.example.com", false},  // exactly one
      {"https://.example.com", false},
      {"https://a.example.com.evil.net", false},
      {"https://a_b.example.com", false},
      {"https://a.example.com:444", false},
      {"http://a.example.com", false},
      {"http://local.example", false},
      {"http://local.example:08080", false},
      {"null", false},  // not listed
      {"", false},
      {"*", false},
  };
  for (const auto& c : cases) {
    const auto get = run(f, "GET", "list.example", {c.origin});
    EXPECT_FALSE(get.d.has_value()) << c.origin;
    // A list: Vary: Origin and the removal of the backend's fields whatever the Origin.
    EXPECT_EQ(get.fields.starts_with("Vary: Origin\r\n"), true) << c.origin;
    EXPECT_TRUE(get.drop) << c.origin;
    EXPECT_EQ(get.fields.find("Access-Control-") != std::string::npos, c.allowed) << c.origin;
    const auto pre = run(f, "OPTIONS", "list.example", {c.origin});
    EXPECT_EQ(pre.d.has_value(), c.allowed) << c.origin;  // unmatched OPTIONS goes to the backend
    if (c.allowed) {
      EXPECT_NE(get.fields.find(std::string("Access-Control-Allow-Origin: ") + c.origin + "\r\n"),
                std::string::npos)
          << c.origin;
    } else {
      EXPECT_EQ(pre.fields, "Vary: Origin\r\n") << c.origin;
      EXPECT_TRUE(pre.drop) << c.origin;
    }
  }
}

TEST(CorsPhase, NullOnlyWhenListed) {
  config::CorsPolicy p;
  p.enabled = true;
  p.any_origin = false;
  EXPECT_FALSE(cors_origin_allowed(p, "null"));
  p.allow_null = true;
  EXPECT_TRUE(cors_origin_allowed(p, "null"));
  EXPECT_FALSE(cors_origin_allowed(p, "NULL"));
  EXPECT_FALSE(cors_origin_allowed(p, "null "));
}

TEST(CorsPhase, TwoOriginFieldsGetNothing) {
  const Fixture f;
  const auto r = run(f, "OPTIONS", "list.example", {"https://app.example", "https://evil.example"});
  EXPECT_FALSE(r.d.has_value());
  EXPECT_EQ(r.fields, "Vary: Origin\r\n");
  EXPECT_TRUE(r.drop);
  const auto same = run(f, "GET", "list.example", {"https://app.example", "https://app.example"});
  EXPECT_EQ(same.fields, "Vary: Origin\r\n");
  EXPECT_EQ(run(f, "GET", "list.example", {}).fields, "Vary: Origin\r\n");
}

TEST(CorsPhase, RefusedClientsGetTheirRefusalNotA204) {
  const Fixture f;
  const auto denied = run(f, "OPTIONS", "denied.example", {"https://app.example"});
  ASSERT_TRUE(denied.d.has_value());
  EXPECT_EQ(denied.d->outcome, Outcome::AccessSourceRange);
  EXPECT_EQ(decision_status(*denied.d), 403);
  EXPECT_TRUE(denied.fields.empty());
  EXPECT_FALSE(denied.drop);
  const auto broken = run(f, "OPTIONS", "broken.example", {"https://app.example"});
  ASSERT_TRUE(broken.d.has_value());
  EXPECT_EQ(broken.d->outcome, Outcome::FailClosed);
  EXPECT_TRUE(broken.fields.empty());
}

TEST(CorsPhase, OffMeansNothing) {
  const Fixture f;
  const auto r = run(f, "OPTIONS", "off.example", {"https://app.example"});
  EXPECT_FALSE(r.d.has_value());
  EXPECT_TRUE(r.fields.empty());
  EXPECT_FALSE(r.drop);
}

}  // namespace
}  // namespace phigate::proxy::detail
