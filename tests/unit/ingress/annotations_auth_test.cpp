// Basic authentication: the annotations (auth-type, auth-secret, auth-secret-type, auth-realm,
// phigate.io/auth-forward-authorization), the readers of the Secret's users (htpasswd, auth-map),
// the Secret resolved by translate (fail closed on every problem) and the reference the kube
// provider follows.
#include <gtest/gtest.h>

#include "annotations_auth_impl.hpp"
#include "phigate/ingress/annotations.hpp"
#include "phigate/ingress/translate.hpp"

namespace phigate::ingress {
namespace {

const std::string kN = "nginx.ingress.kubernetes.io/";
const std::string kP = "phigate.io/";

ParsedAnnotations parse(std::map<std::string, std::string> a) {
  return parse_annotations(a, "shop");
}

bool has_error(const ParsedAnnotations& r, const std::string& key_suffix) {
  for (const auto& p : r.problems) {
    if (p.severity == config::Severity::Error && p.key.size() >= key_suffix.size() &&
        p.key.compare(p.key.size() - key_suffix.size(), key_suffix.size(), key_suffix) == 0) {
      return true;
    }
  }
  return false;
}

TEST(AuthAnnotations, BasicWithSecretRealmAndMap) {
  const auto r = parse({{kN + "auth-type", "basic"},
                        {kN + "auth-secret", "users"},
                        {kN + "auth-secret-type", "auth-map"},
                        {kN + "auth-realm", "Team \"A\" \\ staff"},
                        {kP + "auth-forward-authorization", "true"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  const auto& a = r.policy.basic_auth;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.secret, "shop/users");
  EXPECT_TRUE(a.auth_map);
  EXPECT_EQ(a.realm, "Team \"A\" \\ staff");
  EXPECT_TRUE(a.forward_authorization);
}

TEST(AuthAnnotations, DefaultsAsIngressNginx) {
  const auto r = parse({{kN + "auth-type", "basic"}, {kN + "auth-secret", "shop/users"}});
  EXPECT_TRUE(r.fail_closed.empty()) << r.fail_closed;
  EXPECT_EQ(r.policy.basic_auth.realm, "");  // auth_basic "" in ingress-nginx's template
  EXPECT_FALSE(r.policy.basic_auth.auth_map);
  EXPECT_FALSE(r.policy.basic_auth.forward_authorization);
}

// Each of these would leave the paths without the authentication their owner asked for, or ask
// for what phigate cannot give: the Ingress fails closed.
TEST(AuthAnnotations, RefusedValuesFailClosed) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{kN + "auth-type", "digest"}, {kN + "auth-secret", "users"}}, "auth-type"},
      {{{kN + "auth-type", "Basic"}, {kN + "auth-secret", "users"}}, "auth-type"},
      {{{kN + "auth-type", "basic "}, {kN + "auth-secret", "users"}}, "auth-type"},
      {{{kN + "auth-type", "basic"}}, "auth-type"},                                         // no Secret
      {{{kN + "auth-secret", "users"}}, "auth-secret"},                                     // no auth-type
      {{{kN + "auth-type", "basic"}, {kN + "auth-secret", "other/users"}}, "auth-secret"},  // cross-namespace
      {{{kN + "auth-type", "basic"}, {kN + "auth-secret", "a/b/c"}}, "auth-secret"},
      {{{kN + "auth-type", "basic"}, {kN + "auth-secret", "users"}, {kN + "auth-secret-type", "file"}},
       "auth-secret-type"},
      {{{kN + "auth-type", "basic"}, {kN + "auth-secret", "users"}, {kN + "auth-realm", "a\r\nX-Evil: 1"}},
       "auth-realm"},
      {{{kN + "auth-type", "basic"},
        {kN + "auth-secret", "users"},
        {kN + "auth-realm", std::string(300, 'r')}},
       "auth-realm"},
      // The phigate key wins, and cannot switch off what the nginx key asks for.
      {{{kN + "auth-type", "basic"}, {kN + "auth-secret", "users"}, {kP + "auth-type", "none"}}, "auth-type"},
  };
  for (const auto& [annotations, key] : cases) {
    const auto r = parse(annotations);
    EXPECT_FALSE(r.fail_closed.empty()) << key;
    EXPECT_TRUE(has_error(r, key)) << key;
  }
}

// satisfy: "any" or "all" exactly; anything else fails the Ingress closed naming it (ingress-nginx
// would silently use all).
TEST(AuthAnnotations, SatisfyAnyOrAll) {
  const auto basic = [](std::string v) {
    return parse(
        {{kN + "auth-type", "basic"}, {kN + "auth-secret", "users"}, {kN + "satisfy", std::move(v)}});
  };
  EXPECT_EQ(parse({{kN + "auth-type", "basic"}, {kN + "auth-secret", "users"}}).policy.satisfy,
            config::Satisfy::All);
  const auto any = basic("any");
  EXPECT_TRUE(any.fail_closed.empty()) << any.fail_closed;
  EXPECT_EQ(any.policy.satisfy, config::Satisfy::Any);
  const auto all = basic("all");
  EXPECT_TRUE(all.fail_closed.empty()) << all.fail_closed;
  EXPECT_EQ(all.policy.satisfy, config::Satisfy::All);
  for (const auto* bad : {"Any", "any ", "", "none", "all,any"}) {
    const auto r = basic(bad);
    EXPECT_FALSE(r.fail_closed.empty()) << bad;
    EXPECT_TRUE(has_error(r, "satisfy")) << bad;
  }
}

TEST(AuthAnnotations, SettingsWithoutAuthTypeOnlyWarn) {
  const auto r = parse({{kN + "auth-realm", "x"}});
  EXPECT_TRUE(r.fail_closed.empty());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].severity, config::Severity::Warning);
}

TEST(Htpasswd, EveryFormatParsesSortedWithCommentsAndCrlf) {
  std::vector<config::BasicAuthUser> users;
  const std::string text =
      "# users\r\n"
      "zed:$2y$05$abcdefghijklmnopqrstuuQ3oUqJ0v5X1l1kS8C6rY0h0mXk3J5Y2\r\n"
      "\n"
      "bob:$apr1$x1$y\n"
      "carol:{SHA}abc=\n"
      "dave:abCDef0123456\n"
      "erin:plain:comment field\n";
  ASSERT_EQ(detail::parse_htpasswd(text, users), "");
  ASSERT_EQ(users.size(), 5u);
  EXPECT_EQ(users[0].name, "bob");
  EXPECT_EQ(users[0].hash, "$apr1$x1$y");
  EXPECT_EQ(users[2].name, "dave");
  EXPECT_EQ(users[3].name, "erin");
  EXPECT_EQ(users[3].hash, "plain");  // Apache ignores what follows a second ':'
  EXPECT_EQ(users[4].name, "zed");
  EXPECT_EQ(users[4].hash.back(), '2');  // CR dropped
}

TEST(Htpasswd, MalformedFilesNameTheLineNeverTheHash) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alice:$apr1$a$b\nbroken line\n", "line 2: expected user:hash"},
      {":$apr1$a$b\n", "line 1: empty user name"},
      {"alice:\n", "line 1: empty password hash"},
      {"alice:$apr1$a$b\nalice:$apr1$c$d\n", "a user name is listed twice"},
      {"al\x01ice:x\n", "line 1: control character in the user name"},
      {"alice:a\tb\n", "line 1: control character in the password hash"},
      {"", "no user"},
      {"# only a comment\n\n", "no user"},
  };
  for (const auto& [text, want] : cases) {
    std::vector<config::BasicAuthUser> users;
    const auto why = detail::parse_htpasswd(text, users);
    EXPECT_EQ(why, want) << text;
    EXPECT_TRUE(users.empty()) << text;
    EXPECT_EQ(why.find("$apr1$"), std::string::npos);
  }
}

// Every check runs on a pool all Ingresses share: a hash whose cost has no bound would let one
// Secret stall everyone's logins (review). bcrypt over cost 12, SHA-crypt over 10,000 rounds and
// unknown schemes (yescrypt, scrypt) are refused naming the line; and a table is at most 1,000 users.
TEST(Htpasswd, HashesOfUnboundedCostAndHugeTablesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"a:$2y$13$abcdefghijklmnopqrstuuQ3oUqJ0v5X1l1kS8C6rY0h0mXk3J5Y2\n",
       "line 1: bcrypt cost 13 is over 12"},
      {"a:$2b$31$abcdefghijklmnopqrstuuQ3oUqJ0v5X1l1kS8C6rY0h0mXk3J5Y2\n",
       "line 1: bcrypt cost 31 is over 12"},
      {"a:$2y$x5$abc\n", "line 1: malformed bcrypt hash"},
      {"a:$6$rounds=999999999$salt$hash\n", "line 1: SHA-crypt rounds 999999999 are over 10000"},
      {"a:$5$rounds=$salt$hash\n", "line 1: malformed SHA-crypt rounds"},
      {"a:$y$j9T$salt$hash\n", "line 1: unsupported password hash scheme"},
      {"a:$7$CU..../....salt$hash\n", "line 1: unsupported password hash scheme"},
  };
  for (const auto& [text, want] : refused) {
    std::vector<config::BasicAuthUser> users;
    const auto why = detail::parse_htpasswd(text, users);
    EXPECT_EQ(why.rfind(want, 0), 0u) << text << " -> " << why;
    EXPECT_TRUE(users.empty());
  }
  for (const char* ok : {"a:$2y$12$abcdefghijklmnopqrstuuQ3oUqJ0v5X1l1kS8C6rY0h0mXk3J5Y2\n",
                         "a:$6$rounds=10000$salt$hash\n", "a:$6$salt$hash\n", "a:$1$salt$hash\n"}) {
    std::vector<config::BasicAuthUser> users;
    EXPECT_EQ(detail::parse_htpasswd(ok, users), "") << ok;
  }
  std::string big;
  for (int i = 0; i < 1001; ++i) big += "u" + std::to_string(i) + ":$apr1$a$b\n";
  std::vector<config::BasicAuthUser> users;
  EXPECT_EQ(detail::parse_htpasswd(big, users).rfind("1001 users, more than 1000", 0), 0u);
  big.erase(big.rfind("u1000:"));
  EXPECT_EQ(detail::parse_htpasswd(big, users), "");
  EXPECT_EQ(users.size(), 1000u);
}

TEST(AuthMap, KeysAreUsersTrailingNewlineDropped) {
  std::vector<config::BasicAuthUser> users;
  ASSERT_EQ(detail::parse_auth_map({{"bob", "$apr1$x$y\n"}, {"alice", "{SHA}z="}}, users), "");
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].name, "alice");
  EXPECT_EQ(users[1].hash, "$apr1$x$y");
  EXPECT_EQ(detail::parse_auth_map({{"bob", ""}}, users), "key \"bob\": empty password hash");
  // A key from a manifest file is not validated by an API server: its control bytes are escaped in
  // the reason, which reaches the log.
  const auto why = detail::parse_auth_map({{"eve\nforged log line", ""}}, users);
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  EXPECT_NE(why.find("empty password hash"), std::string::npos) << why;
  EXPECT_EQ(detail::parse_auth_map({}, users), "no user");
}

// translate: the Secret's users reach the policy; every problem fails the Ingress closed with an
// error naming the Ingress, the annotation and the Secret (and its key).
class TranslateAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    Service s;
    s.origin = {"cluster/svc.yaml", 0, -1, 1};
    s.meta.name = "web";
    s.meta.ns = "default";
    s.ports = {{"http", 80, "8080"}};
    res_.services.push_back(s);
    EndpointSlice e;
    e.origin = {"cluster/slices.yaml", 0, -1, 1};
    e.meta.name = "web-1";
    e.meta.ns = "default";
    e.service_name = "web";
    e.address_type = "IPv4";
    e.ports = {{"http", 8080}};
    e.endpoints = {{{"10.0.0.1"}, true}};
    res_.endpoint_slices.push_back(e);
  }
  void ingress(std::map<std::string, std::string> annotations) {
    Ingress i;
    i.origin = {"cluster/ing.yaml", 0, -1, 1};
    i.meta.name = "ing";
    i.meta.ns = "default";
    i.meta.created = 1;
    i.meta.annotations = std::move(annotations);
    i.class_name = "phigate";
    IngressPath p;
    p.path = "/";
    p.type = config::PathType::Prefix;
    p.backend.service = ServiceBackend{"web", 80, ""};
    i.rules = {{"h.example", {p}, 1}};
    res_.ingresses = {i};
  }
  void secret(std::map<std::string, std::string> data, std::string name = "users") {
    Secret s;
    s.origin = {"cluster/secret.yaml", 0, -1, 1};
    s.meta.name = std::move(name);
    s.meta.ns = "default";
    s.data = std::move(data);
    res_.secrets.push_back(s);
  }
  const config::RoutePolicy& run() {
    diag_ = {};
    t_ = translate(res_, spec_, diag_);
    for (const auto& r : t_.routes) {
      if (r.host == "h.example") return *r.paths.at(0).policy;
    }
    ADD_FAILURE() << "no route";
    static const config::RoutePolicy none;
    return none;
  }
  Resources res_;
  config::IngressSpec spec_;
  config::Diagnostics diag_;
  Translation t_;
};

const std::map<std::string, std::string> kBasic = {{kN + "auth-type", "basic"},
                                                   {kN + "auth-secret", "users"}};

TEST_F(TranslateAuth, UsersFromTheAuthKey) {
  secret({{"auth", "alice:$apr1$a$b\n"}});
  ingress(kBasic);
  const auto& p = run();
  EXPECT_TRUE(p.fail_closed.empty()) << p.fail_closed << diag_.to_string();
  ASSERT_TRUE(p.basic_auth.users);
  ASSERT_EQ(p.basic_auth.users->size(), 1u);
  EXPECT_EQ(p.basic_auth.users->at(0).name, "alice");
}

TEST_F(TranslateAuth, EveryProblemFailsClosedNamingIngressAnnotationSecretAndKey) {
  const std::vector<std::tuple<std::map<std::string, std::string>, bool, std::string>> cases = {
      {{}, false, "Secret default/users not found"},
      {{{"htpasswd", "alice:x\n"}}, true, "has no key `auth`"},
      {{{"auth", "alice:x\nno colon here\n"}}, true, "key `auth`: line 2: expected user:hash"},
      {{{"auth", ""}}, true, "key `auth`: no user"},
  };
  for (const auto& [data, present, want] : cases) {
    res_.secrets.clear();
    if (present) secret(data);
    ingress(kBasic);
    const auto& p = run();
    EXPECT_FALSE(p.fail_closed.empty()) << want;
    EXPECT_FALSE(p.basic_auth.users) << want;
    const auto text = diag_.to_string();
    EXPECT_NE(text.find(want), std::string::npos) << text;
    EXPECT_NE(text.find("auth-secret"), std::string::npos) << text;
    EXPECT_NE(text.find("default/ing"), std::string::npos) << text;
  }
}

TEST_F(TranslateAuth, AuthMapSecret) {
  secret({{"alice", "$apr1$a$b"}, {"bob", "{SHA}x="}});
  auto a = kBasic;
  a[kN + "auth-secret-type"] = "auth-map";
  ingress(a);
  const auto& p = run();
  EXPECT_TRUE(p.fail_closed.empty()) << p.fail_closed;
  ASSERT_TRUE(p.basic_auth.users);
  EXPECT_EQ(p.basic_auth.users->size(), 2u);
}

TEST_F(TranslateAuth, TheProviderFollowsTheSecret) {
  ingress(kBasic);
  const auto refs = referenced_secrets(res_.ingresses[0]);
  EXPECT_EQ(refs, std::vector<std::string>{"default/users"});
  // A cross-namespace reference is refused, so nothing is fetched for it.
  ingress({{kN + "auth-type", "basic"}, {kN + "auth-secret", "kube-system/users"}});
  EXPECT_TRUE(referenced_secrets(res_.ingresses[0]).empty());
}

}  // namespace
}  // namespace phigate::ingress
