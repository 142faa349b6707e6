#include "phigate/tls/server_contexts.hpp"

#include "phigate/core/strings.hpp"
#include "phigate/tls/host_policy.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>

namespace phigate::tls {

std::string drain_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace {

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int contexts_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
/// Per SSL: non-null when the ClientHello's SNI may get h2 (set in on_client_hello, read by on_alpn).
int h2_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
char g_h2_allowed;  // its address is the "h2 allowed" mark: nothing to free with the SSL

/// DNS names of a certificate: subjectAltName DNS entries, or the CN when there are none.
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const auto* s = gn->d.dNSName;
      names.push_back(core::to_lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                      static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
      names.push_back(core::to_lower(std::string_view(cn)));
    }
  }
  return names;
}

/// Loads a PEM chain (leaf first) from memory into `ctx`.
bool use_pem_chain(SSL_CTX* ctx, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  if (!bio) return false;
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return false;
  const bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  if (!ok) return false;
  SSL_CTX_clear_chain_certs(ctx);
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {  // takes ownership on success
      X509_free(ca);
      return false;
    }
  }
  ERR_clear_error();  // the loop ends with a "no start line" error: expected, not a failure
  return true;
}

bool use_pem_key(SSL_CTX* ctx, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  if (!bio) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return false;
  const bool ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  return ok;
}

/// Runs first on every ClientHello, before OpenSSL looks at session resumption: picks the
/// certificate and the host's policy (client certificates, ciphers, session-id context) from the
/// SNI, so a ticket minted under another policy is not resumable here; and, from the same name,
/// whether ALPN may pick h2 (runs again on a HelloRetryRequest's second ClientHello).
int on_client_hello(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const ServerContexts*>(arg);
  const unsigned char* p = nullptr;
  std::size_t len = 0;
  char buf[256];
  std::size_t n = 0;
  // RFC 6066 §3: list length (2), then name_type 0 (host_name), length (2), name.
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) == 1 && len >= 5 &&
      static_cast<std::size_t>(p[0] << 8 | p[1]) + 2 == len && p[2] == TLSEXT_NAMETYPE_host_name) {
    const std::size_t name_len = static_cast<std::size_t>(p[3] << 8 | p[4]);
    if (name_len + 5 <= len && name_len < sizeof buf) {
      for (; n < name_len; ++n) {
        const char c = static_cast<char>(p[5 + n]);
        buf[n] = core::to_lower(c);
      }
    }
  }
  const std::string_view name(buf, n);
  SSL_CTX* want = self->select(name);
  if (want != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, want);
  set_policy(ssl, self->policy_for(name));
  SSL_set_ex_data(ssl, h2_index(), self->h2_for(name) ? &g_h2_allowed : nullptr);
  return SSL_CLIENT_HELLO_SUCCESS;
}

/// The choice was made in on_client_hello; acknowledging the name keeps it in the session.
int on_servername(SSL* /*ssl*/, int* /*alert*/, void* /*arg*/) {
  return SSL_TLSEXT_ERR_OK;
}

/// The position of protocol `want` in the client's ALPN list (RFC 7301 §3.1 wire format), or
/// nullptr. A malformed list ends the search.
const unsigned char* find_protocol(const unsigned char* in, unsigned int inlen, std::string_view want) {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned len = in[i];
    if (len == 0 || i + 1 + len > inlen) break;
    if (len == want.size() && std::memcmp(in + i + 1, want.data(), len) == 0) return in + i + 1;
    i += 1 + len;
  }
  return nullptr;
}

/// The server's preference decides (RFC 7301 §3.2): h2 when the ClientHello's SNI allows it, else
/// http/1.1, whatever order the client listed them in.
int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void* /*arg*/) {
  // RFC 9113 §9.2: HTTP/2 over TLS needs TLS 1.2 or later (only reachable with
  // tls.allow_insecure_tls); the cipher rules of §9.2.2 already hold for every suite we accept.
  const bool h2 = SSL_get_ex_data(ssl, h2_index()) != nullptr && SSL_version(ssl) >= TLS1_2_VERSION;
  for (const std::string_view want : {std::string_view(h2 ? "h2" : ""), std::string_view("http/1.1")}) {
    if (want.empty()) continue;
    if (const auto* at = find_protocol(in, inlen, want)) {
      *out = at;
      *outlen = static_cast<unsigned char>(want.size());
      return SSL_TLSEXT_ERR_OK;
    }
  }
  // No overlap (e.g. h2 only, to a host with h2 off): carry on without ALPN rather than fail. A
  // client may only speak HTTP/2 when ALPN selected h2 (RFC 9113 §3.2), so it falls back to
  // HTTP/1.1 or gives up; one that sends the h2 preface anyway meets the HTTP/1 parser (400).
  return SSL_TLSEXT_ERR_NOACK;
}

int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  const auto* ring =
      static_cast<const TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (ring == nullptr) return -1;
  const auto keys = ring->current();
  const TicketKey* key = nullptr;
  int result = 1;
  if (enc != 0) {
    key = &keys->keys.front();
    std::memcpy(key_name, key->name.data(), key->name.size());
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  } else {
    for (std::size_t i = 0; i < keys->keys.size(); ++i) {
      if (std::memcmp(key_name, keys->keys[i].name.data(), 16) == 0) {
        key = &keys->keys[i];
        // 2 asks OpenSSL for a fresh ticket: when the key is old, and always in TLS 1.3, where
        // clients use each ticket once (RFC 8446 §C.4) and would otherwise run out after one
        // resumption.
        result = (i == 0 && SSL_version(ssl) != TLS1_3_VERSION) ? 1 : 2;
        break;
      }
    }
    if (key == nullptr) return 0;  // unknown or expired key: full handshake
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()),
                                        key->hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  return result;
}

}  // namespace

ServerContexts::~ServerContexts() = default;

SSL_CTX* ServerContexts::select(std::string_view name) const noexcept {
  if (SSL_CTX* const* ctx = by_name_.find(name)) return *ctx;
  return initial();
}

const HostPolicy& ServerContexts::policy_for(std::string_view name) const noexcept {
  if (const auto* policy = policies_.find(name)) return **policy;
  return *none_;
}

namespace {

std::atomic<std::uint64_t> g_builds{0};

/// Feeds length-prefixed fields into a SHA-256, so that no two field lists hash alike by shifting
/// bytes from one field to the next.
class Fingerprint {
 public:
  Fingerprint() : md_(EVP_MD_CTX_new()) {
    if (md_ == nullptr || EVP_DigestInit_ex(md_, EVP_sha256(), nullptr) != 1) ok_ = false;
  }
  ~Fingerprint() { EVP_MD_CTX_free(md_); }
  Fingerprint(const Fingerprint&) = delete;
  Fingerprint& operator=(const Fingerprint&) = delete;
  Fingerprint& add(std::string_view v) {
    const std::string len = std::to_string(v.size()) + ":";
    if (ok_ && (EVP_DigestUpdate(md_, len.data(), len.size()) != 1 ||
                EVP_DigestUpdate(md_, v.data(), v.size()) != 1))
      ok_ = false;
    return *this;
  }
  /// A file's bytes (certificate and key files are small); "missing" when it cannot be read, so a
  /// file that appears later changes the fingerprint too.
  Fingerprint& add_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return add("missing").add(path);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return add("file").add(path).add(bytes.str());
  }
  /// Hex digest; empty when hashing failed (never equal to anything: no reuse).
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!ok_ || EVP_DigestFinal_ex(md_, out, &len) != 1) return {};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string h;
    for (unsigned i = 0; i < len; ++i) {
      h += kHex[out[i] >> 4];
      h += kHex[out[i] & 15];
    }
    return h;
  }

 private:
  EVP_MD_CTX* md_;
  bool ok_ = true;
};

}  // namespace

std::string ServerContexts::fingerprint(const config::TlsSpec& spec, const TicketKeyRing* keys,
                                        const HostPolicies& hosts, const config::Http2Spec* http2) {
  Fingerprint f;
  f.add("phigate/server-contexts/1").add(spec.profile).add(spec.allow_insecure_tls ? "1" : "0");
  f.add(spec.min_version).add(spec.ciphers).add(spec.ciphersuites).add(spec.groups);
  f.add(spec.session_tickets ? "1" : "0").add(std::to_string(spec.ticket_key_rotation.count()));
  f.add(std::to_string(reinterpret_cast<std::uintptr_t>(keys)));
  const auto cert = [&](const config::CertificateSpec& c) {
    f.add("cert").add(c.resource).add(c.where.file).add(std::to_string(c.where.line));
    if (!c.cert_pem.empty()) {
      f.add(c.cert_pem).add(c.key_pem);
    } else {
      f.add_file(c.cert).add_file(c.key);
    }
    f.add(std::to_string(c.hosts.size()));
    for (const auto& h : c.hosts) f.add(h);
  };
  if (spec.default_certificate) cert(*spec.default_certificate);
  for (const auto& c : spec.certificates) cert(c);
  f.add("hosts").add(std::to_string(hosts.size()));
  for (const auto& [host, policy] : hosts) {
    f.add(host);
    if (policy) {
      f.add(std::string_view(reinterpret_cast<const char*>(policy->id().data()), policy->id().size()));
      f.add(policy->resource());
    } else {
      f.add("none");
    }
  }
  // The ALPN choice lives in the contexts: a reload that flips http2 must build new ones.
  f.add("http2").add(http2 != nullptr && http2->enabled ? "1" : "0");
  if (http2 != nullptr) {
    f.add(std::to_string(http2->disabled_hosts.size()));
    for (const auto& h : http2->disabled_hosts) f.add(h);
  }
  return f.hex();
}

std::uint64_t ServerContexts::builds_total() noexcept {
  return g_builds.load(std::memory_order_relaxed);
}

std::shared_ptr<const ServerContexts> ServerContexts::build(const config::TlsSpec& spec,
                                                            std::shared_ptr<TicketKeyRing> keys,
                                                            config::Diagnostics& diag, HostPolicies hosts,
                                                            const config::Http2Spec* http2) {
  std::shared_ptr<ServerContexts> self(new ServerContexts());
  self->inputs_ = fingerprint(spec, keys.get(), hosts, http2);
  if (http2 != nullptr) {
    self->h2_enabled_ = http2->enabled;
    for (const auto& h : http2->disabled_hosts) self->h2_disabled_.emplace(h, true);
  }
  const std::size_t diag_start = diag.entries().size();
  self->keys_ = std::move(keys);
  self->none_ = HostPolicy::none();
  for (auto& [host, policy] : hosts) self->policies_.emplace(host, std::move(policy));
  std::vector<const config::CertificateSpec*> certs;
  if (spec.default_certificate) certs.push_back(&*spec.default_certificate);
  for (const auto& c : spec.certificates) certs.push_back(&c);
  if (certs.empty()) {
    diag.error("", 0, "tls.default_certificate", "no certificate configured");
    return nullptr;
  }
  bool ok = true;
  for (std::size_t i = 0; i < certs.size(); ++i) {
    const auto& c = *certs[i];
    const std::string field = !c.resource.empty() ? "data[tls.crt]"
                              : i == 0            ? "tls.default_certificate"
                                                  : "tls.certificates[" + std::to_string(i - 1) + "]";
    ERR_clear_error();
    std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_server_method()));
    auto fail = [&](const std::string& what) {
      // A certificate from a Kubernetes Secret only costs its own hosts (they get the default
      // certificate); one from the config file stops the load.
      diag.error(c.where.file, c.where.line, field, what + ": " + drain_errors(), c.resource);
      if (c.resource.empty()) ok = false;
    };
    if (!ctx) {
      fail("SSL_CTX_new failed");
      continue;
    }
    SSL_CTX* x = ctx.get();
    const int min = spec.min_version == "TLSv1.3"   ? TLS1_3_VERSION
                    : spec.min_version == "TLSv1.1" ? TLS1_1_VERSION
                    : spec.min_version == "TLSv1"   ? TLS1_VERSION
                                                    : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(x, min) != 1 || SSL_CTX_set_max_proto_version(x, TLS1_3_VERSION) != 1) {
      fail("cannot set protocol versions");
      continue;
    }
    if (SSL_CTX_set_cipher_list(x, spec.ciphers.c_str()) != 1) {
      fail("tls.ciphers '" + spec.ciphers + "' selects no usable cipher");
      continue;
    }
    if (i == 0) {
      // Transmission security (HIPAA 164.312(e)(1)): every TLS <= 1.2 suite the list admits must be
      // AEAD with an ephemeral (EC)DHE key exchange, checked on what OpenSSL actually enabled.
      if (const auto why = insecure_cipher(x); !why.empty()) {
        if (spec.allow_insecure_tls) {
          diag.warning(c.where.file, c.where.line, "tls.ciphers",
                       "tls.ciphers admits " + why + " (allowed by tls.allow_insecure_tls)");
        } else {
          diag.error(c.where.file, c.where.line, "tls.ciphers",
                     "tls.ciphers admits " + why + ": refused unless tls.allow_insecure_tls is true");
          ok = false;
        }
      }
    }
    if (SSL_CTX_set_ciphersuites(x, spec.ciphersuites.c_str()) != 1) {
      fail("tls.ciphersuites '" + spec.ciphersuites + "' is invalid");
      continue;
    }
    if (SSL_CTX_set1_groups_list(x, spec.groups.c_str()) != 1) {
      fail("tls.groups '" + spec.groups + "' is invalid");
      continue;
    }
    // CRIME (compression) and renegotiation-based attacks/DoS: both off. The server picks the
    // cipher so that its AEAD/ECDHE preference wins over a client's weaker one.
    SSL_CTX_set_options(x, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | (spec.session_tickets ? 0 : SSL_OP_NO_TICKET));
    SSL_CTX_set_mode(
        x, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One read() per TLS record instead of two (header, then body): strace showed 2 per request.
    SSL_CTX_set_read_ahead(x, 1);
    // Stateless tickets only: an in-process session cache would be per SSL_CTX and lock-shared.
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(x, 1);
    SSL_CTX_set_timeout(
        x, static_cast<long>(
               std::chrono::duration_cast<std::chrono::seconds>(spec.ticket_key_rotation).count()));
    static constexpr unsigned char kSid[] = "phigate";
    SSL_CTX_set_session_id_context(x, kSid, sizeof kSid - 1);
    const bool from_memory = !c.cert_pem.empty();
    const std::string what = from_memory ? c.resource : c.cert;
    if (from_memory ? !use_pem_chain(x, c.cert_pem)
                    : SSL_CTX_use_certificate_chain_file(x, c.cert.c_str()) != 1) {
      fail("cannot load certificate " + what);
      continue;
    }
    if (from_memory ? !use_pem_key(x, c.key_pem)
                    : SSL_CTX_use_PrivateKey_file(x, c.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail("cannot load private key " + (from_memory ? c.resource : c.key));
      continue;
    }
    if (SSL_CTX_check_private_key(x) != 1) {
      fail("private key " + (from_memory ? c.resource : c.key) + " does not match certificate " + what);
      continue;
    }
    SSL_CTX_set_ex_data(x, ring_index(), self->keys_.get());
    SSL_CTX_set_ex_data(x, contexts_index(), self.get());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(x, on_ticket_key);
    SSL_CTX_set_client_hello_cb(x, on_client_hello, self.get());
    SSL_CTX_set_tlsext_servername_callback(x, on_servername);
    SSL_CTX_set_alpn_select_cb(x, on_alpn, nullptr);
    // Names the operator listed (Ingress spec.tls[].hosts) come first, then the certificate's own.
    auto names = c.hosts;
    for (auto& n : certificate_names(SSL_CTX_get0_certificate(x))) names.push_back(std::move(n));
    for (const auto& n : names) self->by_name_.emplace(n, x);  // first certificate naming a host wins
    self->names_.push_back(std::move(names));
    self->contexts_.push_back(std::move(ctx));
  }
  if (!ok) return nullptr;
  self->diagnostics_.assign(diag.entries().begin() + static_cast<std::ptrdiff_t>(diag_start),
                            diag.entries().end());
  g_builds.fetch_add(1, std::memory_order_relaxed);
  return self;
}

}  // namespace phigate::tls
