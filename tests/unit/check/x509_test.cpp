// The certificate helpers behind CR* and PA002: parsing (cached, bounded, hostile PEM), facts, the
// system CA bundle cache.
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

std::string temp_dir() {
  auto d = fs::temp_directory_path() / ("phigate-x509-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(CheckX509, ParsesAChainOnceAndCachesItByItsText) {
  const auto ca = make_cert({.cn = "ca", .sans = {}, .ca = true});
  const auto leaf = make_cert({.issuer = &ca});
  const std::string pem = leaf.cert_pem + ca.cert_pem;
  const auto a = x509::parse_certs(pem);
  ASSERT_TRUE(a->error.empty()) << a->error;
  ASSERT_EQ(a->certs.size(), 2u);
  const auto size = x509::cache_size();
  const auto b = x509::parse_certs(std::string(pem));  // another buffer, same text
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(x509::cache_size(), size);
  EXPECT_NE(x509::parse_certs(leaf.cert_pem).get(), a.get());
}

TEST(CheckX509, HostilePemIsAnErrorNeverACrash) {
  EXPECT_EQ(x509::parse_certs("")->error, "holds no PEM certificate");
  EXPECT_EQ(x509::parse_certs("just text\n")->error, "holds no PEM certificate");
  const std::string garbage = "-----BEGIN CERTIFICATE-----\nAAAA!!!notbase64\n-----END CERTIFICATE-----\n";
  const auto g = x509::parse_certs(garbage);
  EXPECT_FALSE(g->error.empty());
  EXPECT_TRUE(g->certs.empty());
  // Valid base64 of something that is not DER.
  const auto d =
      x509::parse_certs("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
  EXPECT_FALSE(d->error.empty());
  const auto leaf = make_cert({});
  const auto two = x509::parse_certs(leaf.cert_pem + garbage);
  EXPECT_EQ(two->certs.size(), 1u);
  EXPECT_EQ(two->error, "certificate 2 is not a valid PEM certificate");
  EXPECT_FALSE(
      x509::check_key(leaf.cert_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
          ->error.empty());
  EXPECT_TRUE(x509::check_key(leaf.cert_pem, leaf.key_pem)->matches);
  EXPECT_FALSE(x509::check_key(leaf.cert_pem, make_cert({}).key_pem)->matches);
  EXPECT_FALSE(x509::check_key(garbage, leaf.key_pem)->matches);
}

TEST(CheckX509, AHugeBundleIsReadOnlyUpToItsBound) {
  const auto leaf = make_cert({});
  std::string pem;
  for (std::size_t i = 0; i <= x509::kMostCerts; ++i) pem += leaf.cert_pem;
  const auto c = x509::parse_certs(pem);
  EXPECT_EQ(c->certs.size(), x509::kMostCerts);
  EXPECT_TRUE(c->truncated);
  EXPECT_TRUE(x509::parse_certs(std::string(x509::kMostPemBytes + 1, 'A'))->certs.empty());
}

TEST(CheckX509, WildcardNamesCoverOneLabelNeverTheApexAndTheCnIsIgnored) {
  const auto wild = make_cert({.sans = {"*.example.test"}});
  EXPECT_FALSE(x509::covers(wild.cert.get(), "example.test"));
  EXPECT_TRUE(x509::covers(wild.cert.get(), "a.example.test"));
  EXPECT_FALSE(x509::covers(wild.cert.get(), "a.b.example.test"));
  EXPECT_TRUE(x509::covers(wild.cert.get(), "*.example.test"));
  const auto one = make_cert({.sans = {"a.example.test"}});
  EXPECT_FALSE(x509::covers(one.cert.get(), "*.example.test"));
  EXPECT_TRUE(x509::covers(one.cert.get(), "a.example.test"));
  const auto cn_only = make_cert({.cn = "records.example.test", .sans = {}});
  EXPECT_FALSE(x509::covers(cn_only.cert.get(), "records.example.test"));
  const auto partial = make_cert({.sans = {"rec*.example.test"}});
  EXPECT_FALSE(x509::covers(partial.cert.get(), "records.example.test"));
}

TEST(CheckX509, KeyAndSignatureFacts) {
  std::string desc;
  EXPECT_TRUE(x509::weak_public_key(make_cert({.key = "RSA", .rsa_bits = 1024}).cert.get(), desc));
  EXPECT_EQ(desc, "RSA 1024");
  EXPECT_FALSE(x509::weak_public_key(make_cert({.key = "RSA", .rsa_bits = 2048}).cert.get(), desc));
  EXPECT_FALSE(x509::weak_public_key(make_cert({}).cert.get(), desc));
  EXPECT_EQ(desc, "EC 256");
  EXPECT_TRUE(x509::weak_signature(make_cert({.md = EVP_sha1()}).cert.get(), desc));
  EXPECT_EQ(desc, "SHA1");
  EXPECT_FALSE(x509::weak_signature(make_cert({}).cert.get(), desc));
  const auto ca = make_cert({.cn = "ca", .sans = {}, .ca = true});
  EXPECT_TRUE(x509::self_signed(ca.cert.get()));
  EXPECT_FALSE(x509::self_signed(make_cert({.issuer = &ca}).cert.get()));
  std::int64_t t = 0;
  ASSERT_TRUE(x509::not_after(make_cert({.not_after = kNow + 5 * kDay}).cert.get(), t));
  EXPECT_EQ(t, kNow + 5 * kDay);
}

TEST(CheckX509, SystemBundleIsReadOncePerPathAndMissingIsNull) {
  const auto dir = temp_dir();
  EXPECT_EQ(x509::system_bundle(dir + "/absent.crt"), nullptr);
  const auto a = make_cert({.cn = "web a", .sans = {}, .ca = true});
  const auto b = make_cert({.cn = "web b", .sans = {}, .ca = true});
  const std::string path = dir + "/bundle.crt";
  write(path, a.cert_pem + b.cert_pem);
  const auto set = x509::system_bundle(path);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->size(), 2u);
  EXPECT_TRUE(set->contains(x509::parse_certs(a.cert_pem)->fingerprints.front()));
  write(path, "");  // read once: a later change is not seen (the CLI runs once; a process keeps its view)
  EXPECT_EQ(x509::system_bundle(path).get(), set.get());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace phigate::check
