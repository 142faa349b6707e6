#include "support/certs.hpp"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <atomic>
#include <fstream>
#include <stdexcept>

#include "support/run.hpp"

namespace phigate::test {
namespace {

// Unique file stems: a test may create several certificates with the same CN in one directory.
std::string unique_stem(const std::string& dir, std::string_view cn) {
  static std::atomic<unsigned> counter{0};
  std::string stem;
  for (char c : cn) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    stem += ok ? c : '_';
  }
  return dir + "/" + stem + "-" + std::to_string(++counter);
}

void write_text(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const RunResult r = run(argv, RunOptions{.timeout = std::chrono::seconds(60)});
  if (r.exit_code != 0 || r.timed_out) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("openssl failed (exit " + std::to_string(r.exit_code) + "): " + cmd + "\n" +
                             r.err);
  }
}

void generate_key(const std::string& path, KeyType type) {
  if (type == KeyType::Rsa2048 || type == KeyType::Rsa1024) {
    const std::string bits = type == KeyType::Rsa2048 ? "2048" : "1024";
    openssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + bits, "-out", path});
  } else {
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
  }
}

// A random positive 64-bit serial: a fixed serial file would race between parallel tests.
std::string random_serial() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) throw std::runtime_error("RAND_bytes failed");
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x01);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// `req` needs a [req] section even with -subj; the extension sections are selected per certificate.
constexpr std::string_view kReqConfig =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = placeholder\n";

CertPaths sign(const std::string& dir, const CertPaths& issuer, std::string_view cn, KeyType key_type,
               const std::string& extensions, int days, std::string_view digest = "sha256") {
  const std::string md = "-" + std::string(digest);
  const std::string stem = unique_stem(dir, cn);
  const CertPaths out{stem + ".crt", stem + ".key"};
  write_text(stem + ".cnf", std::string(kReqConfig) + "[ext]\n" + extensions);
  generate_key(out.key, key_type);
  const std::string subject = "/CN=" + std::string(cn);
  if (issuer.cert.empty()) {
    openssl({"req", "-x509", "-new", "-config", stem + ".cnf", "-extensions", "ext", "-key", out.key, "-subj",
             subject, "-days", std::to_string(days), md, "-set_serial", random_serial(), "-out", out.cert});
  } else {
    openssl(
        {"req", "-new", "-config", stem + ".cnf", "-key", out.key, "-subj", subject, "-out", stem + ".csr"});
    openssl({"x509", "-req", "-in", stem + ".csr", "-CA", issuer.cert, "-CAkey", issuer.key, "-set_serial",
             random_serial(), "-days", std::to_string(days), md, "-extfile", stem + ".cnf", "-extensions",
             "ext", "-out", out.cert});
  }
  return out;
}

}  // namespace

CertPaths make_ca(const std::string& dir, std::string_view cn, int days) {
  return sign(dir, CertPaths{}, cn, KeyType::EcdsaP256,
              "basicConstraints = critical,CA:TRUE\n"
              "keyUsage = critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier = hash\n",
              days);
}

CertPaths make_intermediate_ca(const std::string& dir, const CertPaths& issuer, std::string_view cn, int days,
                               std::string_view digest) {
  return sign(dir, issuer, cn, KeyType::EcdsaP256,
              "basicConstraints = critical,CA:TRUE,pathlen:0\n"
              "keyUsage = critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier = hash\n"
              "authorityKeyIdentifier = keyid,issuer\n",
              days, digest);
}

CertPaths make_leaf(const std::string& dir, const CertPaths& ca, std::string_view cn,
                    const std::vector<std::string>& sans, KeyType key_type, bool client, int days,
                    std::string_view digest) {
  std::string ext =
      "basicConstraints = critical,CA:FALSE\n"
      "subjectKeyIdentifier = hash\n"
      "authorityKeyIdentifier = keyid,issuer\n";
  // RSA key exchange (TLS 1.2 non-ECDHE suites) needs keyEncipherment; ECDSA keys only sign.
  ext += key_type != KeyType::EcdsaP256 ? "keyUsage = critical,digitalSignature,keyEncipherment\n"
                                        : "keyUsage = critical,digitalSignature\n";
  ext += client ? "extendedKeyUsage = clientAuth\n" : "extendedKeyUsage = serverAuth\n";
  if (!sans.empty()) {
    ext += "subjectAltName = ";
    for (std::size_t i = 0; i < sans.size(); ++i) {
      if (i != 0) ext += ",";
      ext += (is_ip_literal(sans[i]) ? "IP:" : "DNS:") + sans[i];
    }
    ext += "\n";
  }
  return sign(dir, ca, cn, key_type, ext, days, digest);
}

std::string make_crl(const std::string& dir, const CertPaths& ca, const std::vector<CertPaths>& revoked) {
  const std::string stem = unique_stem(dir, "crl");
  write_text(stem + ".index", "");
  write_text(stem + ".crlnumber", "01\n");
  write_text(stem + ".cnf", "[ca]\ndefault_ca = d\n[d]\ndatabase = " + stem + ".index\ncrlnumber = " + stem +
                                ".crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\ncertificate = " +
                                ca.cert + "\nprivate_key = " + ca.key + "\n");
  for (const auto& c : revoked) openssl({"ca", "-config", stem + ".cnf", "-revoke", c.cert});
  openssl({"ca", "-config", stem + ".cnf", "-gencrl", "-out", stem + ".crl"});
  return stem + ".crl";
}

}  // namespace phigate::test
