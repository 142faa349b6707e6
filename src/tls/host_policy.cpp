#include "phigate/tls/host_policy.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "phigate/tls/server_contexts.hpp"

namespace phigate::tls {

namespace {

int policy_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

/// The handshake never fails on the client's certificate: like nginx, the verdict is kept
/// (SSL_get_verify_result) and enforced per request, so a refusal is an HTTP 400 that names the
/// host and is audited, instead of an alert the client's user cannot read.
int keep_verdict(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) {
  return 1;
}

/// nginx ngx_ssl_verify_error_optional(): the errors `optional_no_ca` tolerates (no trusted CA).
bool error_without_ca(long rc) {
  return rc == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || rc == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
         rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
         rc == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr mem_bio(const std::string& s) {
  return {BIO_new_mem_buf(s.data(), static_cast<int>(s.size())), BIO_free};
}

std::string name_rfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
  // RFC 2253 escaping leaves no control bytes, but a header value must never carry one.
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

/// RFC 3986 percent-encoding of everything but unreserved characters (nginx $ssl_client_escaped_cert).
std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

const char* verify_name(config::VerifyClient v) {
  switch (v) {
    case config::VerifyClient::On:
      return "on";
    case config::VerifyClient::Optional:
      return "optional";
    case config::VerifyClient::OptionalNoCa:
      return "optional_no_ca";
    case config::VerifyClient::Off:
      break;
  }
  return "off";
}

}  // namespace

std::string insecure_cipher(const SSL_CTX* ctx) {
  const auto* list = SSL_CTX_get_ciphers(ctx);
  for (int k = 0; list != nullptr && k < sk_SSL_CIPHER_num(list); ++k) {
    const SSL_CIPHER* ci = sk_SSL_CIPHER_value(list, k);
    const int kx = SSL_CIPHER_get_kx_nid(ci);
    if (kx == NID_kx_any) continue;  // a TLS 1.3 suite: always AEAD with (EC)DHE
    const bool fs = kx == NID_kx_ecdhe || kx == NID_kx_dhe;
    if (SSL_CIPHER_is_aead(ci) == 1 && fs) continue;
    return std::string(SSL_CIPHER_get_name(ci)) +
           (fs ? ", which is not AEAD" : ", which is not forward-secret");
  }
  return {};
}

std::shared_ptr<const HostPolicy> HostPolicy::none() {
  static const std::shared_ptr<const HostPolicy> p = [] {
    std::shared_ptr<HostPolicy> h(new HostPolicy());
    static constexpr unsigned char kNone[] = "phigate/no-client-certificate";
    EVP_Digest(kNone, sizeof kNone - 1, h->id_.data(), nullptr, EVP_sha256(), nullptr);
    return h;
  }();
  return p;
}

std::shared_ptr<const HostPolicy> HostPolicy::compile(const HostTlsSpec& spec, bool allow_insecure,
                                                      std::string& error) {
  ERR_clear_error();
  std::shared_ptr<HostPolicy> p(new HostPolicy());
  p->verify_ = spec.verify;
  p->depth_ = spec.verify_depth;
  p->ciphers_ = spec.ciphers;
  p->resource_ = spec.resource;
  if (!spec.ciphers.empty()) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> probe(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!probe || SSL_CTX_set_cipher_list(probe.get(), spec.ciphers.c_str()) != 1) {
      drain_errors();
      error = "ssl-ciphers '" + spec.ciphers + "' selects no usable cipher";
      return nullptr;
    }
    if (auto why = insecure_cipher(probe.get()); !why.empty() && !allow_insecure) {
      error = "ssl-ciphers admits " + why + ": refused unless tls.allow_insecure_tls is true";
      return nullptr;
    }
  }
  if (spec.verify != config::VerifyClient::Off && !spec.ca_pem.empty()) {
    p->store_.reset(X509_STORE_new());
    p->ca_names_.reset(sk_X509_NAME_new_null());
    if (!p->store_ || !p->ca_names_) {
      error = "out of memory: " + drain_errors();
      return nullptr;
    }
    auto bio = mem_bio(spec.ca_pem);
    int count = 0;
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      const bool ok = X509_STORE_add_cert(p->store_.get(), ca) == 1;
      X509_NAME* name = X509_NAME_dup(X509_get_subject_name(ca));
      X509_free(ca);
      if (!ok || name == nullptr || sk_X509_NAME_push(p->ca_names_.get(), name) == 0) {
        X509_NAME_free(name);
        error = "ca.crt: cannot add certificate " + std::to_string(count + 1) + ": " + drain_errors();
        return nullptr;
      }
      ++count;
    }
    ERR_clear_error();  // the loop ends on "no start line": expected
    if (count == 0) {
      error = "ca.crt holds no PEM certificate";
      return nullptr;
    }
    if (!spec.crl_pem.empty()) {
      auto crl_bio = mem_bio(spec.crl_pem);
      int crls = 0;
      while (X509_CRL* crl = PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr)) {
        const bool ok = X509_STORE_add_crl(p->store_.get(), crl) == 1;
        X509_CRL_free(crl);
        if (!ok) {
          error = "ca.crl: cannot add CRL " + std::to_string(crls + 1) + ": " + drain_errors();
          return nullptr;
        }
        ++crls;
      }
      ERR_clear_error();
      if (crls == 0) {
        error = "ca.crl holds no PEM CRL";
        return nullptr;
      }
      // As nginx's ssl_crl: every certificate of the chain is checked against the CRLs.
      X509_STORE_set_flags(p->store_.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
  }
  // Every field length-prefixed: joined by separators alone, a CA bundle ending in "\n" + CRL and no
  // CRL would hash like that CA with that CRL, and two different policies would share a session
  // context (a session from the one without the CRL could resume on the other).
  std::string material = "phigate/host-policy/2";
  const std::string depth = std::to_string(spec.verify_depth);
  for (const std::string_view field :
       {std::string_view(verify_name(spec.verify)), std::string_view(depth), std::string_view(spec.ciphers),
        std::string_view(spec.ca_pem), std::string_view(spec.crl_pem)}) {
    material += '\n';
    material += std::to_string(field.size());
    material += ':';
    material += field;
  }
  if (EVP_Digest(material.data(), material.size(), p->id_.data(), nullptr, EVP_sha256(), nullptr) != 1) {
    error = "SHA-256 failed: " + drain_errors();
    return nullptr;
  }
  return p;
}

void HostPolicy::apply(SSL* ssl) const noexcept {
  // Sessions (tickets, PSKs) remember the context they were made in; OpenSSL refuses to resume
  // one under another, so a session from a host without client certificates is never accepted
  // on a host that requires them (the per-request check stays as the second line).
  SSL_set_session_id_context(ssl, id_.data(), static_cast<unsigned>(id_.size()));
  if (!ciphers_.empty() && SSL_set_cipher_list(ssl, ciphers_.c_str()) != 1) ERR_clear_error();
  if (verify_ == config::VerifyClient::Off) return;
  SSL_set_verify(ssl, SSL_VERIFY_PEER, keep_verdict);
  SSL_set_verify_depth(ssl, depth_);
  if (store_) SSL_set1_verify_cert_store(ssl, store_.get());
  if (ca_names_) {
    if (auto* names = SSL_dup_CA_list(ca_names_.get())) SSL_set0_CA_list(ssl, names);
  }
}

const HostPolicy* policy_of(const SSL* ssl) noexcept {
  const auto* p = ssl ? static_cast<const HostPolicy*>(SSL_get_ex_data(ssl, policy_index())) : nullptr;
  return p != nullptr ? p : HostPolicy::none().get();
}

void set_policy(SSL* ssl, const HostPolicy& policy) noexcept {
  SSL_set_ex_data(ssl, policy_index(), const_cast<HostPolicy*>(&policy));
  policy.apply(ssl);
}

ClientCertificate describe_client(SSL* ssl, const HostPolicy& policy) {
  ClientCertificate out;
  X509* cert = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
  if (cert == nullptr) {
    out.verify = "NONE";
    if (policy.verify() == config::VerifyClient::On) out.refusal = "no required SSL certificate was sent";
    return out;
  }
  out.present = true;
  const long rc = SSL_get_verify_result(ssl);
  if (rc == X509_V_OK) {
    out.verify = "SUCCESS";
  } else {
    out.verify = std::string("FAILED:") + X509_verify_cert_error_string(rc);
    const bool tolerated = policy.verify() == config::VerifyClient::OptionalNoCa && error_without_ca(rc);
    if (!tolerated) out.refusal = "the SSL certificate error";
  }
  out.subject = name_rfc2253(X509_get_subject_name(cert));
  out.issuer = name_rfc2253(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* h = BN_bn2hex(bn)) {
      out.serial = h;
      OPENSSL_free(h);
    }
    BN_free(bn);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) out.fingerprint = hex(md, md_len);
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (bio && PEM_write_bio_X509(bio.get(), cert) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    out.escaped_pem = url_encode(std::string_view(data, static_cast<std::size_t>(n > 0 ? n : 0)));
  }
  ERR_clear_error();
  return out;
}

}  // namespace phigate::tls
