// permanent-redirect(-code), temporal-redirect(-code), upstream-vhost: accepted values set the
// policy, refused ones fail the Ingress closed with a reason that never quotes the value.
#include <gtest/gtest.h>

#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress {
namespace {

const std::string kN(kNginxPrefix);

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

TEST(RedirectAnnotations, ValidValuesSetThePolicy) {
  const auto r = parse({{kN + "permanent-redirect", "https://www.google.com"},
                        {kN + "permanent-redirect-code", "308"},
                        {kN + "temporal-redirect", "http://10.0.0.1:8080/a/b?c=d&e=f"},
                        {kN + "temporal-redirect-code", "307"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  EXPECT_EQ(r.policy.redirect.permanent_url, "https://www.google.com");
  EXPECT_EQ(r.policy.redirect.permanent_code, 308);
  EXPECT_EQ(r.policy.redirect.temporal_url, "http://10.0.0.1:8080/a/b?c=d&e=f");
  EXPECT_EQ(r.policy.redirect.temporal_code, 307);
  // temporal wins over permanent (ingress-nginx)
  EXPECT_EQ(r.policy.redirect.url(), "http://10.0.0.1:8080/a/b?c=d&e=f");
  EXPECT_EQ(r.policy.redirect.code(), 307);
  // defaults: 301 and 302
  const auto d = parse({{kN + "permanent-redirect", "/moved"}});
  EXPECT_TRUE(d.fail_closed.empty());
  EXPECT_EQ(d.policy.redirect.url(), "/moved");
  EXPECT_EQ(d.policy.redirect.code(), 301);
  const auto t = parse({{kN + "temporal-redirect", "https://[2001:db8::1]:8443/x#frag"}});
  EXPECT_TRUE(t.fail_closed.empty());
  EXPECT_EQ(t.policy.redirect.code(), 302);
  for (const char* code : {"301", "302", "303", "307", "308"}) {
    EXPECT_TRUE(parse({{kN + "permanent-redirect-code", code}}).fail_closed.empty()) << code;
    EXPECT_TRUE(parse({{kN + "temporal-redirect-code", code}}).fail_closed.empty()) << code;
  }
}

// Malicious Ingress author: nothing that could inject a header, point a browser at another host
// than the one written, or expand to something else reaches a Location.
TEST(RedirectAnnotations, RefusedValuesFailClosed) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"permanent-redirect", ""},
      {"permanent-redirect", "www.google.com"},                         // no scheme, not a path
      {"permanent-redirect", "//evil.example/x"},                       // protocol-relative: another host
      {"permanent-redirect", "/\\evil.example"},                        // browsers read '\' as '/'
      {"permanent-redirect", "https://a.example/\r\nSet-Cookie: x=1"},  // header injection
      {"permanent-redirect", "https://a.example/\nx"},
      {"permanent-redirect", std::string("https://a.example/\0x", 19)},
      {"permanent-redirect", "https://a.example/a b"},
      {"permanent-redirect", "https://a.example/\"x"},
      {"permanent-redirect", "https://a.example/<script>"},
      {"permanent-redirect", "https://$host/x"},  // nginx variables are not expanded
      {"permanent-redirect", "/$request_uri"},
      {"permanent-redirect", "javascript:alert(1)"},
      {"permanent-redirect", "ftp://a.example/"},
      {"permanent-redirect", "https://"},
      {"permanent-redirect", "https:///x"},
      {"permanent-redirect", "https://user@evil.example/"},  // userinfo: looks like a.example
      {"permanent-redirect", "https://good.example:@evil.example/"},
      {"permanent-redirect", "https://a.example:99999/"},
      {"permanent-redirect", "https://a.example:/"},
      {"permanent-redirect", "https://a..example/"},
      {"permanent-redirect", "https://a_b.example%2f/"},
      {"permanent-redirect", "/" + std::string(2048, 'a')},
      {"temporal-redirect", "//evil.example"},
      {"temporal-redirect", "https://a.example/\r\n"},
      {"permanent-redirect-code", "300"},  // ingress-nginx: the URL as a body
      {"permanent-redirect-code", "304"},
      {"permanent-redirect-code", "200"},
      {"permanent-redirect-code", "3O1"},
      {"permanent-redirect-code", " 301"},
      {"permanent-redirect-code", ""},
      {"temporal-redirect-code", "305"},
      {"temporal-redirect-code", "399"},
      {"temporal-redirect-code", "+302"},
  };
  for (const auto& [name, value] : bad) {
    const auto r = parse({{kN + name, value}});
    ASSERT_EQ(r.problems.size(), 1u) << name << "=" << value;
    EXPECT_EQ(r.problems[0].severity, config::Severity::Error) << name << "=" << value;
    EXPECT_FALSE(r.fail_closed.empty()) << name << "=" << value;
    EXPECT_EQ(r.fail_closed.find('\n'), std::string::npos) << name;
    EXPECT_EQ(r.fail_closed.find('\r'), std::string::npos) << name;
    EXPECT_EQ(r.problems[0].key, kN + name);
    EXPECT_TRUE(r.policy.redirect.url().empty()) << name << "=" << value;
    EXPECT_EQ(r.policy.redirect.permanent_code, 301) << name << "=" << value;
    EXPECT_EQ(r.policy.redirect.temporal_code, 302) << name << "=" << value;
  }
}

TEST(RedirectAnnotations, VariablesAreNamed) {
  const auto r = parse({{kN + "permanent-redirect", "https://example.com$request_uri"}});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].message.find("'$'"), std::string::npos) << r.problems[0].message;
}

TEST(HostsAnnotations, UpstreamVhost) {
  const auto r = parse({{kN + "upstream-vhost", "Backend.Internal.svc:8080"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  EXPECT_EQ(r.policy.hosts.upstream_vhost, "backend.internal.svc:8080");
  EXPECT_EQ(parse({{kN + "upstream-vhost", "10.0.0.1"}}).policy.hosts.upstream_vhost, "10.0.0.1");
  EXPECT_EQ(parse({{kN + "upstream-vhost", "[::1]:81"}}).policy.hosts.upstream_vhost, "[::1]:81");
  for (const std::string v : {"", "a.example/x", "a.example\r\nX-Evil: 1", "user@a.example",
                              "a.example:", "a.example:0", "a b", "*.example", "a.example:65536", "[::1"}) {
    const auto b = parse({{kN + "upstream-vhost", v}});
    ASSERT_EQ(b.problems.size(), 1u) << v;
    EXPECT_EQ(b.problems[0].severity, config::Severity::Error) << v;
    EXPECT_FALSE(b.fail_closed.empty()) << v;
    EXPECT_TRUE(b.policy.hosts.upstream_vhost.empty()) << v;
  }
  // The common ingress-nginx variables: an error that names the annotation and says why.
  const auto v = parse({{kN + "upstream-vhost", "$service_name.$namespace.svc.cluster.local"}});
  ASSERT_EQ(v.problems.size(), 1u);
  EXPECT_EQ(v.problems[0].severity, config::Severity::Error);
  EXPECT_EQ(v.problems[0].key, kN + "upstream-vhost");
  EXPECT_NE(v.problems[0].message.find("$service_name"), std::string::npos) << v.problems[0].message;
}

}  // namespace
}  // namespace phigate::ingress
