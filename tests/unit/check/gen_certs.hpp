#pragma once
// Certificates made in memory with the OpenSSL API for the CR*/PA* unit tests: any validity window
// (expired too), key type and size, digest, subjectAltNames, issuer. No files, no openssl CLI.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "phigate/check/check.hpp"

namespace phigate::check::gen {

inline constexpr std::int64_t kNow = 1790000000;  // 2026-09-21, Options::now in every test
inline constexpr std::int64_t kDay = 86400;

struct Made {
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> cert;
  std::string cert_pem;
  std::string key_pem;
};

struct CertOptions {
  std::string cn = "example.test";
  std::vector<std::string> sans{"example.test"};  // DNS names; empty: no subjectAltName
  std::string key = "EC";                         // "EC" (P-256) or "RSA"
  std::size_t rsa_bits = 2048;
  std::int64_t not_before = kNow - 30 * kDay;
  std::int64_t not_after = kNow + 365 * kDay;
  const EVP_MD* md = EVP_sha256();
  bool ca = false;
  const Made* issuer = nullptr;  // null: self-signed
};

inline std::shared_ptr<EVP_PKEY> make_key(const std::string& type, std::size_t rsa_bits) {
  EVP_PKEY* k = type == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", rsa_bits)
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (k == nullptr) throw std::runtime_error("keygen failed");
  return {k, EVP_PKEY_free};
}

inline std::string pem_of(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline std::string pem_of(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline void add_ext(X509* x, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (e == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
}

inline Made make_cert(const CertOptions& o) {
  static long serial = 1;
  Made m;
  m.key = make_key(o.key, o.rsa_bits);
  std::shared_ptr<X509> x(X509_new(), X509_free);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(o.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(o.not_after));
  X509_set_pubkey(x.get(), m.key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(o.cn.c_str()),
                             -1, -1, 0);
  X509* issuer_cert = o.issuer ? o.issuer->cert.get() : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(issuer_cert));
  add_ext(x.get(), issuer_cert, NID_basic_constraints, o.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(x.get(), issuer_cert, NID_subject_key_identifier, "hash");
  if (!o.sans.empty()) {
    std::string san;
    for (const auto& s : o.sans) san += (san.empty() ? "DNS:" : ",DNS:") + s;
    add_ext(x.get(), issuer_cert, NID_subject_alt_name, san);
  }
  EVP_PKEY* signer = o.issuer ? o.issuer->key.get() : m.key.get();
  if (X509_sign(x.get(), signer, o.md) == 0) throw std::runtime_error("sign failed");
  m.cert = x;
  m.cert_pem = pem_of(x.get());
  m.key_pem = pem_of(m.key.get());
  return m;
}

/// One rule's findings over `v` (the rule found by id in all_rules(): it is registered).
inline std::vector<Finding> run_rule(const View& v, std::string_view id) {
  const Context ctx(v);
  Sink out;
  for (const auto& r : all_rules()) {
    if (r.info.id != id) continue;
    if (r.fn != nullptr) r.fn(v, r.info, ctx, out);
    return out;
  }
  throw std::runtime_error("no rule " + std::string(id));
}

/// A path of host `host` from Ingress `resource` with `policy`.
inline config::RouteSpec route(const std::string& host, std::shared_ptr<config::RoutePolicy> policy) {
  config::PathSpec p;
  p.path = "/";
  p.backends = {"10.0.0.1:443"};
  p.policy = std::move(policy);
  config::RouteSpec r;
  r.host = host;
  r.paths.push_back(std::move(p));
  return r;
}

}  // namespace phigate::check::gen
