// CR001-CR005: the served certificates (expiry, key size, signature digest, names, key match).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gen_certs.hpp"
#include "x509_impl.hpp"

namespace phigate::check {
namespace {
using namespace gen;
namespace fs = std::filesystem;

struct Fixture {
  config::Config cfg;
  Options opt;
  Fixture() {
    opt.now = kNow;
    cfg.file = "/etc/phigate/phigate.yaml";
  }
  /// A Secret certificate serving `hosts`; the first host carries PHI when `phi`.
  void secret(const std::string& cert_pem, const std::string& key_pem, std::vector<std::string> hosts,
              bool phi = true) {
    config::CertificateSpec c;
    c.cert_pem = cert_pem;
    c.key_pem = key_pem;
    c.hosts = hosts;
    c.resource = "Secret clinic/tls-" + std::to_string(cfg.tls.certificates.size());
    cfg.tls.certificates.push_back(std::move(c));
    for (const auto& h : hosts) {
      auto pol = std::make_shared<config::RoutePolicy>();
      pol->resource = "Ingress clinic/records";
      pol->phi = phi;
      cfg.routes.push_back(route(h, pol));
    }
  }
  std::vector<Finding> run(std::string_view id) {
    const View v{.config = cfg, .options = opt};
    return run_rule(v, id);
  }
};

const Made& ca() {
  static const Made m = make_cert({.cn = "ca", .sans = {}, .ca = true});
  return m;
}

TEST(CheckCertRules, ACompliantCertificateHasNoFinding) {
  Fixture f;
  const auto leaf = make_cert({.sans = {"records.example.test"}, .issuer = &ca()});
  f.secret(leaf.cert_pem + ca().cert_pem, leaf.key_pem, {"records.example.test"});
  for (const char* id : {"CR001", "CR002", "CR003", "CR004", "CR005"}) {
    EXPECT_TRUE(f.run(id).empty()) << id;
  }
}

TEST(CheckCertRules, ExpiredIsAnErrorExpiringIsAnErrorOnPhiAndAWarningElsewhere) {
  Fixture f;
  const auto expired = make_cert({.sans = {"a.test"}, .not_after = kNow - 3 * kDay});
  const auto soon = make_cert({.sans = {"b.test"}, .not_after = kNow + 10 * kDay});
  const auto soon_plain = make_cert({.sans = {"c.test"}, .not_after = kNow + 10 * kDay});
  const auto later = make_cert({.sans = {"d.test"}, .not_after = kNow + 30 * kDay});
  f.secret(expired.cert_pem, expired.key_pem, {"a.test"}, false);
  f.secret(soon.cert_pem, soon.key_pem, {"b.test"}, true);
  f.secret(soon_plain.cert_pem, soon_plain.key_pem, {"c.test"}, false);
  f.secret(later.cert_pem, later.key_pem, {"d.test"}, false);
  const auto out = f.run("CR001");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_NE(out[0].message.find("expired 3 days ago"), std::string::npos) << out[0].message;
  EXPECT_EQ(out[0].where.resource, "Secret clinic/tls-0");
  EXPECT_EQ(out[0].where.field, "data.tls.crt");
  EXPECT_EQ(out[1].severity, Severity::Error);
  EXPECT_NE(out[1].message.find("expires in 10 days"), std::string::npos) << out[1].message;
  EXPECT_NE(out[1].message.find("b.test"), std::string::npos);
  EXPECT_EQ(out[2].severity, Severity::Warning);
  f.opt.min_cert_days = 5;  // --min-cert-days
  EXPECT_EQ(f.run("CR001").size(), 1u);
}

TEST(CheckCertRules, AnIntermediateThatExpiresFirstIsNamed) {
  Fixture f;
  const auto inter =
      make_cert({.cn = "inter", .sans = {}, .not_after = kNow + 2 * kDay, .ca = true, .issuer = &ca()});
  const auto leaf = make_cert({.sans = {"a.test"}, .issuer = &inter});
  f.secret(leaf.cert_pem + inter.cert_pem, leaf.key_pem, {"a.test"});
  const auto out = f.run("CR001");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].message.find("chain certificate 2 expires in 2 days"), std::string::npos)
      << out[0].message;
}

TEST(CheckCertRules, WeakKeysAreErrors) {
  Fixture f;
  const auto rsa1024 = make_cert({.sans = {"a.test"}, .key = "RSA", .rsa_bits = 1024});
  const auto rsa2048 = make_cert({.sans = {"b.test"}, .key = "RSA", .rsa_bits = 2048});
  f.secret(rsa1024.cert_pem, rsa1024.key_pem, {"a.test"});
  f.secret(rsa2048.cert_pem, rsa2048.key_pem, {"b.test"});
  const auto out = f.run("CR002");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_NE(out[0].message.find("leaf RSA 1024"), std::string::npos) << out[0].message;
  EXPECT_EQ(out[0].where.resource, "Secret clinic/tls-0");
}

TEST(CheckCertRules, Sha1OnTheLeafOrAnIntermediateButNotOnASelfSignedRoot) {
  Fixture f;
  const auto leaf_sha1 = make_cert({.sans = {"a.test"}, .md = EVP_sha1(), .issuer = &ca()});
  const auto inter_sha1 =
      make_cert({.cn = "inter", .sans = {}, .md = EVP_sha1(), .ca = true, .issuer = &ca()});
  const auto under = make_cert({.sans = {"b.test"}, .issuer = &inter_sha1});
  const auto root_sha1 = make_cert({.cn = "old root", .sans = {}, .md = EVP_sha1(), .ca = true});
  const auto under_root = make_cert({.sans = {"c.test"}, .issuer = &root_sha1});
  f.secret(leaf_sha1.cert_pem, leaf_sha1.key_pem, {"a.test"});
  f.secret(under.cert_pem + inter_sha1.cert_pem, under.key_pem, {"b.test"});
  f.secret(under_root.cert_pem + root_sha1.cert_pem, under_root.key_pem, {"c.test"});
  const auto out = f.run("CR003");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0].message.find("leaf SHA1"), std::string::npos) << out[0].message;
  EXPECT_NE(out[1].message.find("chain certificate 2 SHA1"), std::string::npos) << out[1].message;
  EXPECT_EQ(out[1].where.resource, "Secret clinic/tls-1");
}

TEST(CheckCertRules, NamesMustCoverEveryHostAWildcardNotTheApex) {
  Fixture f;
  const auto wild = make_cert({.sans = {"*.example.test"}});
  f.secret(wild.cert_pem, wild.key_pem, {"example.test", "a.example.test", "*.example.test"});
  const auto cn_only = make_cert({.cn = "records.example.test", .sans = {}});
  f.secret(cn_only.cert_pem, cn_only.key_pem, {"records.example.test"});
  const auto one = make_cert({.sans = {"x.other.test"}});
  f.secret(one.cert_pem, one.key_pem, {"*.other.test"});
  const auto out = f.run("CR004");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].host, "example.test");
  EXPECT_EQ(out[1].host, "records.example.test");
  EXPECT_EQ(out[2].host, "*.other.test");
  for (const auto& x : out) EXPECT_EQ(x.severity, Severity::Error);
}

TEST(CheckCertRules, KeyMismatchAndUnreadableMaterialNeverLeakTheKey) {
  Fixture f;
  const auto a = make_cert({.sans = {"a.test"}});
  const auto b = make_cert({.sans = {"b.test"}});
  f.secret(a.cert_pem, b.key_pem, {"a.test"});  // someone else's key
  f.secret(b.cert_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
           {"b.test"});  // broken
  f.secret("-----BEGIN CERTIFICATE-----\nAAAA!!\n-----END CERTIFICATE-----\n", a.key_pem, {"c.test"});
  f.secret(b.cert_pem, b.key_pem, {"b.test"});  // fine
  const auto out = f.run("CR005");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NE(out[0].message.find("does not belong"), std::string::npos) << out[0].message;
  EXPECT_EQ(out[0].where.field, "data.tls.key");
  EXPECT_NE(out[1].message.find("not an unencrypted PEM private key"), std::string::npos) << out[1].message;
  EXPECT_NE(out[2].message.find("not a valid PEM certificate"), std::string::npos) << out[2].message;
  EXPECT_EQ(out[2].where.field, "data.tls.crt");
  // The other rules skip what does not parse, without crashing.
  for (const char* id : {"CR001", "CR002", "CR003", "CR004"}) EXPECT_TRUE(f.run(id).empty()) << id;
  for (const auto& x : out) {
    EXPECT_EQ(x.message.find("PRIVATE"), std::string::npos);
    EXPECT_EQ(x.message.find("BEGIN"), std::string::npos);
  }
}

TEST(CheckCertRules, CertificateFilesAreReadByTheCliOnlyAndParsedOnce) {
  const auto dir = fs::temp_directory_path() / ("phigate-cr-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto old = make_cert({.sans = {"a.test"}, .not_after = kNow - kDay});
  std::ofstream(dir / "c.crt") << old.cert_pem;
  std::ofstream(dir / "c.key") << old.key_pem;
  Fixture f;
  f.cfg.tls.default_certificate.emplace();
  f.cfg.tls.default_certificate->cert = (dir / "c.crt").string();
  f.cfg.tls.default_certificate->key = (dir / "c.key").string();
  f.cfg.tls.default_certificate->where = {f.cfg.file, 7};
  auto out = f.run("CR001");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].where.file, f.cfg.file);
  EXPECT_EQ(out[0].where.line, 7);
  EXPECT_EQ(out[0].where.field, "tls.default_certificate.cert");
  EXPECT_NE(out[0].message.find("tls.default_certificate"), std::string::npos);
  const auto cached = x509::cache_size();
  EXPECT_EQ(f.run("CR001").size(), 1u);  // the same text: no new parse
  EXPECT_EQ(x509::cache_size(), cached);
  f.opt.scope = Scope::Runtime;  // a snapshot build reads no file
  EXPECT_TRUE(f.run("CR001").empty());
  EXPECT_TRUE(f.run("CR005").empty());
  fs::remove(dir / "c.key");
  f.opt.scope = Scope::Cli;
  out = f.run("CR005");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].message.find("cannot read"), std::string::npos) << out[0].message;
  fs::remove_all(dir);
}

TEST(CheckCertRules, TheDefaultCertificateServesPhiWhenAnyHostIsPhi) {
  Fixture f;
  const auto soon = make_cert({.sans = {"other.test"}, .not_after = kNow + 3 * kDay});
  f.cfg.tls.default_certificate.emplace();
  f.cfg.tls.default_certificate->cert_pem = soon.cert_pem;
  f.cfg.tls.default_certificate->key_pem = soon.key_pem;
  auto out = f.run("CR001");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);  // no PHI host at all
  auto pol = std::make_shared<config::RoutePolicy>();
  pol->phi = true;
  f.cfg.routes.push_back(route("records.example.test", pol));
  out = f.run("CR001");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Error);
}

}  // namespace
}  // namespace phigate::check
