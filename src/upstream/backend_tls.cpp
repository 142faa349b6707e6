#include "phigate/upstream/backend_tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>

namespace phigate::upstream {

using core::Error;
using core::ErrorKind;

namespace {

/// ECDHE key exchange and AEAD only (TLS 1.2), as the listener's default: a backend offering
/// only RSA key transport or CBC does not get PHI.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  const unsigned long e = ERR_peek_last_error();
  std::string s;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s = buf;
  }
  ERR_clear_error();
  return s;
}

Error config_error(std::string what) {
  return {ErrorKind::Config, core::ErrorSource::Config, core::Retryable::No, std::move(what)};
}

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr mem_bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

/// Certificates of a PEM text, in order; empty when there is none or a block does not parse.
std::vector<X509*> read_certs(const std::string& pem) {
  std::vector<X509*> out;
  auto bio = mem_bio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.push_back(x);
  // The loop ends at the first block that is not a certificate: end of input is the one good end.
  const unsigned long e = ERR_peek_last_error();
  const bool at_end = e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!at_end) {
    for (X509* x : out) X509_free(x);
    out.clear();
  }
  return out;
}

/// ex_data slot set when a backend asked for a client certificate we do not have: its refusal
/// (handshake_failure in TLS 1.2, certificate_required in 1.3) is then named for what it is.
int cert_requested_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int note_certificate_request(SSL* ssl, X509** /*x509*/, EVP_PKEY** /*key*/) {
  SSL_set_ex_data(ssl, cert_requested_index(), ssl);  // any non-null value
  return 0;  // no certificate: the handshake goes on without one, the backend decides
}

}  // namespace

Error TlsFailure::to_error(core::Retryable r) const {
  auto e = Error::upstream(ErrorKind::UpstreamTls, r, "upstream TLS: " + detail);
  e.reason_detail = reason;
  return e;
}

std::string BackendTls::identity_of(const BackendTlsSpec& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  // Length-prefixed fields: no two different specs hash the same bytes.
  const auto field = [&](std::string_view v) {
    const std::uint64_t n = v.size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, v.data(), v.size());
  };
  field(s.ca_pem);
  field(s.cert_pem);
  field(s.key_pem);
  field(s.verify_name);
  field(s.server_name ? "sni" : "");
  field(s.verify ? "verify" : "");
  field(std::to_string(s.verify_depth));
  field(s.protocols);
  field(s.ciphers);
  field(s.alpn_h2 ? "h2" : "");
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "tls:";
  for (unsigned i = 0; i < 16 && i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

core::Result<std::shared_ptr<const BackendTls>> BackendTls::build(const BackendTlsSpec& spec) {
  ERR_clear_error();
  if (spec.verify && spec.verify_name.empty()) {
    return config_error("verification needs a name to check the backend's certificate against");
  }
  if (spec.cert_pem.empty() != spec.key_pem.empty()) {
    return config_error("a client certificate needs both a certificate and a key");
  }
  if (spec.verify_depth < 0 || spec.verify_depth > 100) return config_error("verify depth must be 0 to 100");
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  if (!spec.protocols.empty()) {
    bool v12 = false;
    bool v13 = false;
    std::string_view v = spec.protocols;
    while (!v.empty()) {
      const auto sp = v.find(' ');
      const auto tok = v.substr(0, sp);
      if (tok == "TLSv1.2") {
        v12 = true;
      } else if (tok == "TLSv1.3") {
        v13 = true;
      } else if (!tok.empty()) {
        return config_error("unsupported protocol '" + std::string(tok) + "' (TLSv1.2, TLSv1.3)");
      }
      if (sp == std::string_view::npos) break;
      v.remove_prefix(sp + 1);
    }
    if (!v12 && !v13) return config_error("no protocol (TLSv1.2, TLSv1.3)");
    min_version = v12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    max_version = v13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  }

  std::shared_ptr<BackendTls> out(new BackendTls());
  out->spec_ = spec;
  out->identity_ = identity_of(spec);
  out->ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX* ctx = out->ctx_;
  if (ctx == nullptr) return config_error("cannot create a TLS context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  // A backend's FIN without close_notify is an EOF like any other: the HTTP codec decides from
  // the framing whether the response was complete (nginx does the same).
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ctx, spec.ciphers.empty() ? kDefaultCiphers : spec.ciphers.c_str()) != 1) {
    return config_error("invalid cipher list: " + openssl_error());
  }
  if (spec.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx, spec.verify_depth);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!spec.ca_pem.empty()) {
    const auto certs = read_certs(spec.ca_pem);
    if (certs.empty()) return config_error("the CA is not a PEM certificate list");
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    bool ok = true;
    for (X509* x : certs) {
      ok = ok && X509_STORE_add_cert(store, x) == 1;
      X509_free(x);
    }
    if (!ok) return config_error("cannot add the CA: " + openssl_error());
  } else if (spec.verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return config_error("cannot load the system trust store: " + openssl_error());
  }
  if (spec.cert_pem.empty()) {
    SSL_CTX_set_client_cert_cb(ctx, note_certificate_request);
  } else {
    auto certs = read_certs(spec.cert_pem);
    if (certs.empty()) return config_error("the client certificate is not PEM");
    const bool used = SSL_CTX_use_certificate(ctx, certs.front()) == 1;
    X509_free(certs.front());
    bool chain_ok = true;
    for (std::size_t i = 1; i < certs.size(); ++i) {
      if (SSL_CTX_add0_chain_cert(ctx, certs[i]) != 1) {  // takes ownership on success only
        X509_free(certs[i]);
        chain_ok = false;
      }
    }
    if (!used || !chain_ok) return config_error("cannot use the client certificate: " + openssl_error());
    auto bio = mem_bio(spec.key_pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) return config_error("the client key is not a PEM private key");
    const bool key_ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    if (!key_ok || SSL_CTX_check_private_key(ctx) != 1) {
      return config_error("the client key does not match the client certificate");
    }
  }
  if (spec.alpn_h2) {
    // Wire format: length-prefixed protocol names (RFC 7301 §3.1). h2 only: gRPC needs HTTP/2.
    static constexpr unsigned char kH2[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2) != 0) {
      return config_error("cannot set ALPN h2: " + openssl_error());
    }
  }
  ERR_clear_error();
  return std::shared_ptr<const BackendTls>(std::move(out));
}

BackendTls::~BackendTls() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

SslPtr BackendTls::new_ssl(SSL_SESSION* session) const {
  SslPtr ssl(SSL_new(ctx_));
  if (!ssl) return ssl;
  SSL_set_connect_state(ssl.get());
  const auto& name = spec_.verify_name;
  const bool ip = is_ip_literal(name);
  // RFC 6066 §3: a literal IP address is not a server name.
  if (spec_.server_name && !name.empty() && !ip) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (spec_.verify) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str());
    } else {
      // No "f*o.example" partial wildcards (RFC 6125 §7.2).
      SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl.get(), name.c_str());
    }
  }
  if (session != nullptr) SSL_set_session(ssl.get(), session);
  ERR_clear_error();
  return ssl;
}

TlsFailure classify_failure(const SSL* ssl) {
  TlsFailure f{kTlsHandshake, {}};
  const long v = SSL_get_verify_result(ssl);
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && v != X509_V_OK) {
    switch (v) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_CERT_UNTRUSTED:
        f.reason = kTlsUnknownCa;
        break;
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        f.reason = kTlsNameMismatch;
        break;
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        f.reason = kTlsExpired;
        break;
      default:
        f.reason = kTlsCertificate;
    }
    f.detail = X509_verify_cert_error_string(v);  // fixed text, never certificate fields
    ERR_clear_error();
    return f;
  }
  const unsigned long e = ERR_peek_last_error();
  if (SSL_get_ex_data(ssl, cert_requested_index()) != nullptr) {
    f.reason = kTlsClientCertRefused;  // asked for a certificate we had none to give
  } else if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        f.reason = kTlsClientCertRefused;
        break;
      default:
        break;
    }
  }
  f.detail = openssl_error();
  if (f.detail.empty()) f.detail = "handshake failed";
  return f;
}

std::optional<TlsFailure> check_alpn_h2(const SSL* ssl) {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  if (len == 2 && proto[0] == 'h' && proto[1] == '2') return std::nullopt;
  return TlsFailure{kTlsAlpn, len == 0 ? "the backend selected no ALPN protocol (h2 required)"
                                       : "the backend selected an ALPN protocol other than h2"};
}

net::awaitable<std::optional<TlsFailure>> handshake(net::tcp::socket& s, SSL* ssl) {
  net::error_code ec;
  s.non_blocking(true, ec);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl);
    if (r == 1) co_return std::nullopt;
    net::tcp::socket::wait_type wait{};
    switch (SSL_get_error(ssl, r)) {
      case SSL_ERROR_WANT_READ:
        wait = net::tcp::socket::wait_read;
        break;
      case SSL_ERROR_WANT_WRITE:
        wait = net::tcp::socket::wait_write;
        break;
      case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
          const int e = errno;
          co_return TlsFailure{kTlsHandshake,
                               e != 0 ? std::strerror(e) : "connection closed during the handshake"};
        }
        co_return classify_failure(ssl);
      default:
        co_return classify_failure(ssl);
    }
    auto [wec] = co_await s.async_wait(wait, net::use_awaitable_tuple);
    if (wec) co_return TlsFailure{kTlsHandshake, wec.message()};
  }
}

namespace {

/// The wait an SSL call that returned `r` asks for, or nullopt when it failed. `ec` and
/// `protocol_error` say how: a syscall error (errno, or `eof` when the peer just closed), else a TLS
/// error whose details stay in the error queue for classify_failure().
std::optional<net::tcp::socket::wait_type> tls_want(SSL* ssl, int r, TlsIo& io) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      return net::tcp::socket::wait_read;
    case SSL_ERROR_WANT_WRITE:
      return net::tcp::socket::wait_write;
    case SSL_ERROR_ZERO_RETURN:  // close_notify, or a FIN (SSL_OP_IGNORE_UNEXPECTED_EOF)
      io.ec = net::asio::error::eof;
      return std::nullopt;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        const int e = errno;
        io.ec = e == 0 ? net::error_code(net::asio::error::eof)
                       : net::error_code(e, boost::system::system_category());
        return std::nullopt;
      }
      [[fallthrough]];
    default:
      io.ec = net::error_code(EPROTO, boost::system::system_category());
      io.protocol_error = true;
      return std::nullopt;
  }
}

}  // namespace

net::awaitable<TlsIo> tls_write_all(net::tcp::socket& s, SSL* ssl, std::string_view bytes) {
  TlsIo io;
  while (io.bytes < bytes.size()) {
    std::size_t n = 0;
    ERR_clear_error();
    const int r = SSL_write_ex(ssl, bytes.data() + io.bytes, bytes.size() - io.bytes, &n);
    if (r == 1) {
      io.bytes += n;
      continue;
    }
    const auto wait = tls_want(ssl, r, io);
    if (!wait) {
      if (io.ec == net::asio::error::eof) io.ec = net::error_code(EPIPE, boost::system::system_category());
      co_return io;
    }
    auto [wec] = co_await s.async_wait(*wait, net::use_awaitable_tuple);
    if (wec) {
      io.ec = wec;
      co_return io;
    }
  }
  co_return io;
}

net::awaitable<TlsIo> tls_read_some(net::tcp::socket& s, SSL* ssl, char* buf, std::size_t size) {
  TlsIo io;
  for (;;) {
    std::size_t n = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl, buf, size, &n);
    if (r == 1) {
      io.bytes = n;
      co_return io;
    }
    const auto wait = tls_want(ssl, r, io);
    if (!wait) co_return io;
    auto [wec] = co_await s.async_wait(*wait, net::use_awaitable_tuple);
    if (wec) {
      io.ec = wec;
      co_return io;
    }
  }
}

}  // namespace phigate::upstream
