// PA001-PA004: client certificates (optional, public CA bundle, no CRL) and basic-auth hashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gen_certs.hpp"

namespace phigate::check {
namespace {
using namespace gen;
namespace fs = std::filesystem;

struct Fixture {
  config::Config cfg;
  Options opt;
  Fixture() { opt.now = kNow; }
  std::shared_ptr<config::RoutePolicy> ingress(const std::string& name, const std::string& host, bool phi) {
    auto pol = std::make_shared<config::RoutePolicy>();
    pol->resource = "Ingress clinic/" + name;
    pol->phi = phi;
    cfg.routes.push_back(route(host, pol));
    return pol;
  }
  std::vector<Finding> run(std::string_view id) {
    const View v{.config = cfg, .options = opt};
    return run_rule(v, id);
  }
};

TEST(CheckAuthnRules, OptionalClientCertificatesOnAPhiHost) {
  Fixture f;
  f.ingress("a", "a.test", true)->verify_client = config::VerifyClient::Optional;
  f.ingress("b", "b.test", true)->verify_client = config::VerifyClient::OptionalNoCa;
  f.ingress("c", "c.test", false)->verify_client = config::VerifyClient::Optional;  // not PHI
  f.ingress("d", "d.test", true)->verify_client = config::VerifyClient::On;
  auto closed = f.ingress("e", "e.test", true);
  closed->verify_client = config::VerifyClient::Optional;
  closed->fail_closed = "invalid";  // serves nothing
  const auto out = f.run("PA001");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].host, "a.test");
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_EQ(out[0].where.resource, "Ingress clinic/a");
  EXPECT_EQ(out[1].host, "b.test");
  EXPECT_NE(out[1].message.find("optional_no_ca"), std::string::npos);
  EXPECT_TRUE(out[0].rule->enforceable);
}

struct BundleFixture : Fixture {
  std::string dir;
  Made web_a = make_cert({.cn = "web a", .sans = {}, .ca = true});
  Made web_b = make_cert({.cn = "web b", .sans = {}, .ca = true});
  Made mine = make_cert({.cn = "my client CA", .sans = {}, .ca = true});
  BundleFixture() {
    static int n = 0;  // the bundle is cached per path for the process: a fresh path per test
    dir =
        (fs::temp_directory_path() / ("phigate-pa-" + std::to_string(::getpid()) + "-" + std::to_string(++n)))
            .string();
    fs::create_directories(dir);
    std::ofstream(dir + "/bundle.crt") << web_a.cert_pem << web_b.cert_pem;
    opt.system_ca_bundle = dir + "/bundle.crt";
    opt.public_ca_count = 3;
  }
  ~BundleFixture() { fs::remove_all(dir); }
  void client_ca(const std::string& name, const std::string& pem) {
    auto p = ingress(name, name + ".test", true);
    p->verify_client = config::VerifyClient::On;
    p->auth_tls_secret = "clinic/" + name + "-ca";
    p->auth_tls_ca_pem = pem;
    p->auth_tls_crl_pem = "crl";
  }
};

TEST(CheckAuthnRules, APublicWebCaAsClientCaIsAnErrorABigBundleAWarning) {
  BundleFixture f;
  f.client_ca("mine", f.mine.cert_pem);
  f.client_ca("web", f.mine.cert_pem + f.web_b.cert_pem);
  std::string four;
  for (int i = 0; i < 4; ++i)
    four += make_cert({.cn = "ca " + std::to_string(i), .sans = {}, .ca = true}).cert_pem;
  f.client_ca("big", four);
  const auto out = f.run("PA002");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].where.resource, "Ingress clinic/web");
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_NE(out[0].message.find("holds 1 public web CA"), std::string::npos) << out[0].message;
  EXPECT_NE(out[0].message.find("clinic/web-ca"), std::string::npos);
  EXPECT_EQ(out[1].where.resource, "Ingress clinic/big");
  EXPECT_EQ(out[1].severity, Severity::Warning);
  EXPECT_NE(out[1].message.find("4 CA certificates"), std::string::npos) << out[1].message;
}

TEST(CheckAuthnRules, AMissingSystemBundleLeavesTheCountAndOneInfo) {
  BundleFixture f;
  f.opt.system_ca_bundle = f.dir + "/absent.crt";
  f.client_ca("web", f.web_a.cert_pem);
  f.client_ca("web2", f.web_b.cert_pem);
  std::string four;
  for (int i = 0; i < 4; ++i)
    four += make_cert({.cn = "ca " + std::to_string(i), .sans = {}, .ca = true}).cert_pem;
  f.client_ca("big", four);
  auto out = f.run("PA002");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].severity, Severity::Info);
  EXPECT_EQ(out[0].where.field, "check.system_ca_bundle");
  EXPECT_EQ(out[1].severity, Severity::Warning);
  // A snapshot build reads no file: only the count, and no info.
  f.opt.system_ca_bundle = f.dir + "/bundle.crt";
  f.opt.scope = Scope::Runtime;
  out = f.run("PA002");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
}

TEST(CheckAuthnRules, ClientCaWithoutCrlIsAWarning) {
  Fixture f;
  auto a = f.ingress("a", "a.test", true);
  a->verify_client = config::VerifyClient::On;
  a->auth_tls_secret = "clinic/ca";
  a->auth_tls_ca_pem = "x";
  auto b = f.ingress("b", "b.test", true);
  b->verify_client = config::VerifyClient::On;
  b->auth_tls_ca_pem = "x";
  b->auth_tls_crl_pem = "y";
  f.ingress("c", "c.test", true);  // no client certificates
  const auto out = f.run("PA003");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
  EXPECT_EQ(out[0].where.resource, "Ingress clinic/a");
  EXPECT_EQ(out[0].host, "a.test");
}

std::shared_ptr<const std::vector<config::BasicAuthUser>> users(
    std::initializer_list<std::pair<const char*, const char*>> list) {
  auto v = std::make_shared<std::vector<config::BasicAuthUser>>();
  for (const auto& [n, h] : list) v->push_back({n, h});
  return v;
}

TEST(CheckAuthnRules, NonBcryptHashesAreCountedNeverShown) {
  Fixture f;
  const std::vector<std::pair<const char*, const char*>> weak{
      {"alice-sha", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="},
      {"bob-apr", "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"},
      {"carol-des", "rqXexS6ZhobKA"},
      {"dave-plain", "hunter2-plaintext"},
      {"erin-sha512",
       "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"},
      {"frank-2x", "$2x$05$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
  };
  auto p = f.ingress("a", "a.test", true);
  p->basic_auth.enabled = true;
  p->basic_auth.secret = "clinic/users";
  auto all = std::make_shared<std::vector<config::BasicAuthUser>>();
  for (const auto& [n, h] : weak) all->push_back({n, h});
  all->push_back({"grace-bcrypt", "$2y$12$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"});
  all->push_back({"heidi-bcrypt", "$2b$10$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"});
  p->basic_auth.users = all;
  auto q = f.ingress("b", "b.test", false);  // not PHI: a warning
  q->basic_auth.enabled = true;
  q->basic_auth.secret = "clinic/other";
  q->basic_auth.users = users({{"ivan", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}});
  auto r = f.ingress("c", "c.test", true);  // bcrypt only
  r->basic_auth.enabled = true;
  r->basic_auth.users = users({{"judy", "$2a$11$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"}});
  const auto out = f.run("PA004");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_EQ(out[0].message,
            "6 of 8 users of Secret clinic/users (Ingress clinic/a) have weak password hashes (apr1: 1, "
            "bcrypt $2x$: 1, crypt: 1, plain text: 1, sha512-crypt: 1, {SHA}: 1)");
  EXPECT_EQ(out[1].severity, Severity::Warning);
  EXPECT_EQ(out[1].where.resource, "Ingress clinic/b");
  for (const auto& x : out) {
    for (const auto& u : *all) {
      EXPECT_EQ(x.message.find(u.name), std::string::npos) << u.name;
      EXPECT_EQ(x.message.find(u.hash.substr(3)), std::string::npos) << u.hash;
    }
    EXPECT_EQ(x.message.find("ivan"), std::string::npos);
    EXPECT_EQ(x.message.find("W6ph5"), std::string::npos);
  }
}

TEST(CheckAuthnRules, CheapBcryptIsWeakToo) {
  // htpasswd -B writes cost 5 unless given -C: a GPU tries such hashes thousands of times faster.
  Fixture f;
  auto p = f.ingress("a", "a.test", true);
  p->basic_auth.enabled = true;
  p->basic_auth.secret = "clinic/users";
  auto all = users({{"kim", "$2y$04$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
                    {"lee", "$2b$09$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
                    {"max", "$2a$10$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
                    {"ned", "$2y$1$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
                    {"oli", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="}});
  p->basic_auth.users = all;
  const auto out = f.run("PA004");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_EQ(out[0].message,
            "4 of 5 users of Secret clinic/users (Ingress clinic/a) have weak password hashes (bcrypt cost < "
            "10: 3, {SHA}: 1)");
  for (const auto& u : *all) {
    EXPECT_EQ(out[0].message.find(u.name), std::string::npos) << u.name;
    EXPECT_EQ(out[0].message.find(u.hash.substr(7)), std::string::npos) << u.hash;
  }
  // Cost 10 and more only: no finding.
  p->basic_auth.users = users({{"max", "$2a$10$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"},
                               {"pat", "$2y$12$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS"}});
  EXPECT_TRUE(f.run("PA004").empty());
}

}  // namespace
}  // namespace phigate::check
