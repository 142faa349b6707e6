// enable-cors and cors-*: accepted values set the policy, refused ones fail the Ingress closed
// (ingress-nginx would silently use its default) with a reason that never quotes the value.
#include <gtest/gtest.h>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

TEST(CorsAnnotations, DefaultsAreIngressNginxs) {
  const auto r = parse({{kN + "enable-cors", "true"}});
  EXPECT_TRUE(r.problems.empty());
  const auto& c = r.policy.cors;
  EXPECT_TRUE(c.enabled);
  EXPECT_TRUE(c.any_origin);
  EXPECT_TRUE(c.credentials);
  EXPECT_EQ(c.max_age, 1728000u);
  EXPECT_EQ(c.methods, "GET, PUT, POST, DELETE, PATCH, OPTIONS");
  EXPECT_EQ(c.headers,
            "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,"
            "Authorization");
  EXPECT_TRUE(c.expose.empty());
  EXPECT_FALSE(parse({}).policy.cors.enabled);
  EXPECT_FALSE(parse({{kN + "enable-cors", "false"}}).policy.cors.enabled);
}

TEST(CorsAnnotations, ValidValuesSetThePolicy) {
  const auto r = parse({{kN + "enable-cors", "true"},
                        {kN + "cors-allow-origin", " https://app.example , https://*.example.com:8443,null"},
                        {kN + "cors-allow-methods", "GET,POST , PUT"},
                        {kN + "cors-allow-headers", "X-Custom, Content-Type"},
                        {kN + "cors-expose-headers", "X-Total"},
                        {kN + "cors-allow-credentials", "false"},
                        {kN + "cors-max-age", "600"}});
  EXPECT_TRUE(r.problems.empty()) << (r.problems.empty() ? "" : r.problems[0].message);
  const auto& c = r.policy.cors;
  EXPECT_FALSE(c.any_origin);
  EXPECT_TRUE(c.allow_null);
  ASSERT_EQ(c.origins.size(), 2u);
  EXPECT_EQ(c.origins[0].scheme, "https");
  EXPECT_EQ(c.origins[0].host, "app.example");
  EXPECT_EQ(c.origins[0].port, "");
  EXPECT_FALSE(c.origins[0].wildcard);
  EXPECT_EQ(c.origins[1].host, "example.com");
  EXPECT_EQ(c.origins[1].port, "8443");
  EXPECT_TRUE(c.origins[1].wildcard);
  EXPECT_EQ(c.methods, "GET, POST, PUT");
  EXPECT_EQ(c.headers, "X-Custom, Content-Type");
  EXPECT_EQ(c.expose, "X-Total");
  EXPECT_FALSE(c.credentials);
  EXPECT_EQ(c.max_age, 600u);
}

TEST(CorsAnnotations, StarAnywhereMeansAnyOrigin) {
  const auto r = parse({{kN + "cors-allow-origin", "https://a.example, *"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.policy.cors.any_origin);
  EXPECT_TRUE(r.policy.cors.origins.empty());
}

TEST(CorsAnnotations, HostsAreLowerCased) {
  const auto r = parse({{kN + "cors-allow-origin", "https://App.Example"}});
  ASSERT_EQ(r.policy.cors.origins.size(), 1u);
  EXPECT_EQ(r.policy.cors.origins[0].host, "app.example");
}

TEST(CorsAnnotations, RefusedValuesFailClosed) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"enable-cors", "yes"},
      {"cors-allow-origin", ""},
      {"cors-allow-origin", "app.example"},           // no scheme
      {"cors-allow-origin", "https://app.example/"},  // a path
      {"cors-allow-origin", "https://app.example/x"},
      {"cors-allow-origin", "HTTPS://app.example"},       // scheme in lower case
      {"cors-allow-origin", "https://user@app.example"},  // userinfo
      {"cors-allow-origin", "https://*.com"},             // a whole top-level domain
      {"cors-allow-origin", "https://*"},
      {"cors-allow-origin", "https://a.*.example"},  // '*' only as the first label
      {"cors-allow-origin", "https://**.example.com"},
      {"cors-allow-origin", "https://app.example:0"},
      {"cors-allow-origin", "https://app.example:65536"},
      {"cors-allow-origin", "https://app.example:"},
      {"cors-allow-origin", "https://app.example:08"},
      {"cors-allow-origin", "https://-a.example"},
      {"cors-allow-origin", "https://a..example"},
      {"cors-allow-origin", "https://a.example,,https://b.example"},
      {"cors-allow-origin", "https://a.example\r\nX-Evil: 1"},
      {"cors-allow-origin", std::string("https://a.example") + '\0' + ".evil"},
      {"cors-allow-origin", "https://[::1]"},
      {"cors-allow-origin", "NULL"},
      {"cors-allow-methods", ""},
      {"cors-allow-methods", "GET,,POST"},
      {"cors-allow-methods", "GET POST"},
      {"cors-allow-methods", "GET\r\nX-Evil: 1"},
      {"cors-allow-headers", "X-A, X B"},
      {"cors-allow-headers", "X-A:1"},
      {"cors-allow-headers", "\"X\""},
      {"cors-expose-headers", "X-A;"},
      {"cors-expose-headers", ","},
      {"cors-allow-credentials", "yes"},
      {"cors-allow-credentials", "True"},
      {"cors-max-age", "-1"},
      {"cors-max-age", "1d"},
      {"cors-max-age", "2147483648"},
      {"cors-max-age", "99999999999"},
      {"cors-max-age", ""},
  };
  for (const auto& [name, value] : bad) {
    std::map<std::string, std::string> a = {{kN + "enable-cors", "true"}};
    a[kN + name] = value;
    const auto r = parse(a);
    ASSERT_EQ(r.problems.size(), 1u) << name << "=" << value;
    EXPECT_EQ(r.problems[0].severity, config::Severity::Error) << name << "=" << value;
    EXPECT_FALSE(r.fail_closed.empty()) << name;
    EXPECT_EQ(r.fail_closed.find('\n'), std::string::npos) << name;
    EXPECT_EQ(r.fail_closed.find('\r'), std::string::npos) << name;
  }
}

TEST(CorsAnnotations, LongListsAreBounded) {
  std::string many;
  for (int i = 0; i < 65; ++i) many += (i ? "," : "") + std::string("X-H") + std::to_string(i);
  EXPECT_FALSE(parse({{kN + "cors-allow-headers", many}}).fail_closed.empty());
  EXPECT_FALSE(parse({{kN + "cors-allow-headers", std::string(5000, 'a')}}).fail_closed.empty());
}

TEST(CorsAnnotations, PhigatePrefixWorksToo) {
  const auto r = parse({{"phigate.io/enable-cors", "true"}, {"phigate.io/cors-max-age", "5"}});
  EXPECT_TRUE(r.problems.empty());
  EXPECT_TRUE(r.policy.cors.enabled);
  EXPECT_EQ(r.policy.cors.max_age, 5u);
}

}  // namespace
}  // namespace phigate::ingress
