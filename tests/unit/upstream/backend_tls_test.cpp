// BackendTls: which settings compile (and which fail, so that the path fails closed), the
// identity that keys pooled connections and cached sessions, and the pool key built from it.
#include "phigate/upstream/backend_tls.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {
namespace {

struct Pem {
  std::string cert;
  std::string key;
};

std::string to_pem(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

/// A self-signed P-256 certificate made in memory (no files, no clock beyond X509_gmtime_adj).
Pem self_signed(const char* cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, x);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(x);
  EVP_PKEY_free(key);
  return {to_pem(cb), to_pem(kb)};
}

BackendTlsSpec base() {
  BackendTlsSpec s;
  s.verify_name = "web.default.svc";
  return s;
}

std::string build_error(const BackendTlsSpec& s) {
  auto r = BackendTls::build(s);
  return r ? std::string() : r.error().context;
}

TEST(BackendTls, Builds_WithCaClientCertificateProtocolsAndCiphers) {
  const auto ca = self_signed("ca");
  const auto client = self_signed("client");
  auto s = base();
  s.ca_pem = ca.cert;
  s.cert_pem = client.cert;
  s.key_pem = client.key;
  s.server_name = true;
  s.protocols = "TLSv1.3";
  s.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  auto r = BackendTls::build(s);
  ASSERT_TRUE(r) << r.error().context;
  const auto& tls = *r.value();
  EXPECT_NE(tls.context(), nullptr);
  EXPECT_TRUE(tls.verify());
  EXPECT_TRUE(tls.client_certificate());
  EXPECT_EQ(tls.verify_name(), "web.default.svc");
  EXPECT_EQ(tls.identity(), BackendTls::identity_of(s));
  EXPECT_EQ(SSL_CTX_get_min_proto_version(tls.context()), TLS1_3_VERSION);
  // new_ssl arms the name check and SNI on a client SSL.
  auto ssl = tls.new_ssl();
  ASSERT_NE(ssl, nullptr);
  EXPECT_STREQ(SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name), "web.default.svc");
  EXPECT_EQ(SSL_get_verify_mode(ssl.get()) & SSL_VERIFY_PEER, SSL_VERIFY_PEER);
  EXPECT_STREQ(SSL_get0_peername(ssl.get()), nullptr);  // set only once verified
}

TEST(BackendTls, SystemStoreWhenNoCaAndNoSniForAnIpName) {
  auto s = base();
  s.verify_name = "127.0.0.1";
  s.server_name = true;
  auto r = BackendTls::build(s);
  ASSERT_TRUE(r) << r.error().context;
  auto ssl = r.value()->new_ssl();
  ASSERT_NE(ssl, nullptr);
  // RFC 6066 §3: no IP literal in SNI.
  EXPECT_EQ(SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

TEST(BackendTls, BuildErrors_EachSettingThatCannotBeHonouredIsAnError) {
  const auto good = self_signed("client");
  const auto other = self_signed("other");
  auto s = base();
  s.ca_pem = "not a certificate";
  EXPECT_NE(build_error(s).find("CA is not a PEM"), std::string::npos);
  s.ca_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_NE(build_error(s).find("CA is not a PEM"), std::string::npos);

  s = base();
  s.protocols = "TLSv1.1";
  EXPECT_NE(build_error(s).find("unsupported protocol 'TLSv1.1'"), std::string::npos);
  s.protocols = " ";
  EXPECT_NE(build_error(s).find("no protocol"), std::string::npos);

  s = base();
  s.ciphers = "NO-SUCH-CIPHER";
  EXPECT_NE(build_error(s).find("invalid cipher list"), std::string::npos);

  s = base();
  s.cert_pem = good.cert;
  EXPECT_NE(build_error(s).find("both a certificate and a key"), std::string::npos);
  s.key_pem = other.key;
  EXPECT_NE(build_error(s).find("does not match"), std::string::npos);
  s.key_pem = "garbage";
  EXPECT_NE(build_error(s).find("not a PEM private key"), std::string::npos);

  s = base();
  s.verify_name.clear();
  EXPECT_NE(build_error(s).find("needs a name"), std::string::npos);
  s.verify = false;  // unverified TLS needs no name
  EXPECT_EQ(build_error(s), "");

  s = base();
  s.verify_depth = -1;
  EXPECT_NE(build_error(s).find("verify depth"), std::string::npos);
}

TEST(BackendTls, Identity_EqualForEqualSettingsDifferentForAnyChange) {
  const auto ca = self_signed("ca");
  auto a = base();
  a.ca_pem = ca.cert;
  const auto id = BackendTls::identity_of(a);
  EXPECT_EQ(id, BackendTls::identity_of(a));
  std::vector<BackendTlsSpec> variants(9, a);
  variants[0].ca_pem.clear();
  variants[1].cert_pem = "x";
  variants[2].key_pem = "x";
  variants[3].verify_name = "other.default.svc";
  variants[4].server_name = true;
  variants[5].verify = false;
  variants[6].verify_depth = 2;
  variants[7].protocols = "TLSv1.3";
  variants[8].ciphers = "ECDHE-RSA-AES128-GCM-SHA256";
  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(BackendTls::identity_of(variants[i]), id) << i;
  }
  // Length-prefixed: moving bytes between fields changes the identity.
  auto b = base();
  b.verify_name = "ab";
  b.protocols = "";
  auto c = base();
  c.verify_name = "a";
  c.protocols = "b";
  EXPECT_NE(BackendTls::identity_of(b), BackendTls::identity_of(c));
}

TEST(UpstreamPoolKey, PlainAndEachTlsSettingKeyApart) {
  auto verified = base();
  auto unverified = base();
  unverified.verify = false;
  const auto v = BackendTls::build(verified);
  const auto u = BackendTls::build(unverified);
  ASSERT_TRUE(v && u);
  std::string plain_key, v_key, u_key, v_again;
  Pool::pool_key(plain_key, "10.0.0.1:443", nullptr);
  Pool::pool_key(v_key, "10.0.0.1:443", v.value().get());
  Pool::pool_key(u_key, "10.0.0.1:443", u.value().get());
  EXPECT_EQ(plain_key, "10.0.0.1:443");
  // The attack: a tenant's verify-off route to the same pod must not share a connection with a
  // verified one, nor TLS with plain.
  EXPECT_NE(v_key, u_key);
  EXPECT_NE(v_key, plain_key);
  EXPECT_NE(u_key, plain_key);
  // A second context with the same settings (another snapshot) shares the pool entry.
  const auto v2 = BackendTls::build(verified);
  ASSERT_TRUE(v2);
  Pool::pool_key(v_again, "10.0.0.1:443", v2.value().get());
  EXPECT_EQ(v_key, v_again);
  std::string other_ep;
  Pool::pool_key(other_ep, "10.0.0.2:443", v.value().get());
  EXPECT_NE(other_ep, v_key);
}

TEST(UpstreamPoolKey, EmptyPoolHasNoSessionAndNoConnectionForAnyKey) {
  Pool pool({});
  std::string k;
  Pool::pool_key(k, "10.0.0.1:443", nullptr);
  EXPECT_EQ(pool.session(k), nullptr);
  EXPECT_FALSE(pool.acquire(k, Clock::time_point{}).has_value());
}

TEST(UpstreamTlsFailure, BecomesA502WhoseAuditReasonNamesTheCheck) {
  const TlsFailure f{kTlsNameMismatch, "hostname mismatch"};
  const auto e = f.to_error(core::Retryable::Yes);
  EXPECT_EQ(e.kind, core::ErrorKind::UpstreamTls);
  EXPECT_EQ(e.status(), 502);
  EXPECT_EQ(e.reason(), "upstream_tls_name_mismatch");
  EXPECT_EQ(core::Error::upstream(core::ErrorKind::UpstreamTls, core::Retryable::No).reason(),
            "upstream_tls");
}

}  // namespace
}  // namespace phigate::upstream
