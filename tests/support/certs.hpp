#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace phigate::test {

/// Rsa1024 is weak on purpose (what `phigate check` flags; OpenSSL's default security level refuses
/// to serve it).
enum class KeyType { EcdsaP256, Rsa2048, Rsa1024 };

/// PEM files of one certificate and its (unencrypted, PKCS#8) private key.
struct CertPaths {
  std::string cert{};
  std::string key{};
};

/// Self-signed root CA (ECDSA P-256, CA:TRUE, keyCertSign) valid for `days`, written into `dir` under a
/// unique name. Runs the openssl CLI; throws std::runtime_error with openssl's stderr on failure.
CertPaths make_ca(const std::string& dir, std::string_view cn, int days = 30);

/// Intermediate CA (ECDSA P-256, CA:TRUE pathlen:0) signed by `issuer` with `digest` ("sha256";
/// "sha1" for a weak chain). Serve it by concatenating leaf + intermediate PEMs. Throws
/// std::runtime_error on failure.
CertPaths make_intermediate_ca(const std::string& dir, const CertPaths& issuer, std::string_view cn,
                               int days = 30, std::string_view digest = "sha256");

/// Leaf certificate signed by `ca`, subject CN=`cn`. Each entry of `sans` becomes a subjectAltName: an IP
/// literal ("127.0.0.1", "::1") as IP:, anything else as DNS:. extendedKeyUsage is clientAuth if `client`,
/// else serverAuth; no `sans`: no subjectAltName extension at all. Signed with `digest` ("sha256";
/// "sha1" for a weak one). Written into `dir` under a unique name; throws std::runtime_error on failure.
CertPaths make_leaf(const std::string& dir, const CertPaths& ca, std::string_view cn,
                    const std::vector<std::string>& sans, KeyType key_type = KeyType::EcdsaP256,
                    bool client = false, int days = 30, std::string_view digest = "sha256");

/// A PEM CRL signed by `ca` that revokes `revoked` (certificates it issued). Runs `openssl ca`
/// in a private folder under `dir`; throws std::runtime_error on failure.
std::string make_crl(const std::string& dir, const CertPaths& ca, const std::vector<CertPaths>& revoked);

}  // namespace phigate::test
