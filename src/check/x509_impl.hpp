#pragma once
// Certificates and keys for the CR* and PA* rules (private to check): PEM parsed once per process.
// parse_certs() caches certificates, check_key() only the verdict on a key (never the key itself:
// no private key outlives the Secret it came from), by SHA-256 of the PEM text (bounded LRU,
// mutex), so a snapshot rebuilt after an EndpointSlice change does not parse every Secret again.
// Facts only: nothing here logs or returns key material. Thread-safe.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::check::x509 {

struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Digest = std::array<unsigned char, 32>;

/// The certificates of one PEM text, in order (a served chain: leaf first). `error` non-empty when
/// the text holds no certificate or a block that does not parse (then `certs` holds those before it).
struct Certs {
  std::vector<X509Ptr> certs;
  std::vector<Digest> fingerprints;  // SHA-256 of each certificate's DER
  bool truncated = false;            // more than kMostCerts: the rest were not read
  std::string error;
};
/// The verdict on a certificate's private key: `error` set when the key does not parse, else
/// `matches` says whether it belongs to the first certificate of the certificate text.
struct KeyCheck {
  bool matches = false;
  std::string error;
};

inline constexpr std::size_t kMostCerts = 4096;         // per PEM text (bounded work on hostile input)
inline constexpr std::size_t kMostPemBytes = 8u << 20;  // larger files are not read
inline constexpr std::size_t kCacheEntries = 4096;

std::shared_ptr<const Certs> parse_certs(std::string_view pem);
std::shared_ptr<const KeyCheck> check_key(std::string_view cert_pem, std::string_view key_pem);
/// Entries in the parse cache now (tests).
std::size_t cache_size();

/// A whole file, at most kMostPemBytes; false (why set, no content) when it cannot be read.
bool read_file(const std::string& path, std::string& out, std::string& why);

/// The public web CAs of `path` (Options::system_ca_bundle): SHA-256 DER fingerprints, read once
/// per process and path. Null when the file cannot be read.
std::shared_ptr<const std::set<Digest>> system_bundle(const std::string& path);

/// notAfter as seconds since the epoch; false when it cannot be read.
bool not_after(const X509* x, std::int64_t& out);
/// "RSA 1024", "EC 256", ... and whether the key is weaker than RSA 2048 / EC 256 (DSA always weak).
bool weak_public_key(const X509* x, std::string& desc);
/// The signature's digest is SHA-1 or weaker (MD5, MD4, MD2); `desc` its name.
bool weak_signature(const X509* x, std::string& desc);
/// Self-signed (a trust anchor: its own signature is never checked by a client).
bool self_signed(const X509* x);
/// `host` is covered by the certificate's DNS subjectAltNames (never the subject CN, no partial
/// wildcards). A host "*.x" is probed as a label under x: a wildcard host needs a wildcard name.
bool covers(const X509* x, std::string_view host);

}  // namespace phigate::check::x509
