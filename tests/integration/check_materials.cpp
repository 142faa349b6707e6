// Materials for the check fixtures (check_materials.hpp).
#include "check_materials.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "support/certs.hpp"

namespace phigate::test {
namespace fs = std::filesystem;
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw std::runtime_error("cannot write " + path);
}

std::string base64(const std::string& in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

void copy_as(const std::string& from, const std::string& to) {
  spit(to, slurp(from));
}

void copy_pair(const CertPaths& p, const std::string& dir, const std::string& stem) {
  copy_as(p.cert, dir + "/" + stem + ".crt");
  copy_as(p.key, dir + "/" + stem + ".key");
}

/// htpasswd's {SHA} scheme (unsalted SHA-1, base64) of random bytes: a weak hash nobody can log in with.
std::string sha_hash() {
  unsigned char pw[16], md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (RAND_bytes(pw, sizeof pw) != 1 || EVP_Digest(pw, sizeof pw, md, &len, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("cannot make a {SHA} hash");
  return "{SHA}" + base64(std::string(reinterpret_cast<const char*>(md), len));
}

}  // namespace

void make_check_materials(const std::string& dir) {
  fs::create_directories(dir);
  const std::string work = dir + "/.work";
  fs::create_directories(work);
  // server.crt/key: the certificate every fixture serves (EC P-256, 365 days) for example.test,
  // *.example.test and localhost, issued by server-ca.crt.
  const auto server_ca = make_ca(work, "check server CA", 3650);
  const auto server =
      make_leaf(work, server_ca, "example.test", {"example.test", "*.example.test", "localhost"},
                KeyType::EcdsaP256, false, 365);
  copy_as(server.cert, dir + "/server.crt");
  copy_as(server.key, dir + "/server.key");
  copy_as(server_ca.cert, dir + "/server-ca.crt");
  // ca.crt + ca.crl: a private client CA (one certificate) and its CRL (client.crt revoked).
  const auto client_ca = make_ca(work, "check client CA", 3650);
  const auto client = make_leaf(work, client_ca, "client", {"client.test"}, KeyType::EcdsaP256, true, 365);
  copy_as(client_ca.cert, dir + "/ca.crt");
  spit(dir + "/ca.crl", slurp(make_crl(work, client_ca, {client})));
  // audit-keys/k1.key: a valid audit key (32 bytes, base64); audit/: the segment folder.
  // audit-keys/20200101-old.key: a valid key whose id dates it to 2020-01-01 (AU004).
  fs::create_directories(dir + "/audit-keys");
  fs::create_directories(dir + "/audit");
  spit(dir + "/audit-keys/k1.key", base64(std::string(32, '\x5a')) + "\n");
  fs::permissions(dir + "/audit-keys/k1.key", fs::perms::owner_read | fs::perms::owner_write);
  spit(dir + "/audit-keys/20200101-old.key", base64(std::string(32, '\x3c')) + "\n");
  fs::permissions(dir + "/audit-keys/20200101-old.key", fs::perms::owner_read | fs::perms::owner_write);

  // Weak server certificates (CR*), each for the same names as server.crt and issued by server-ca.
  const std::vector<std::string> names{"example.test", "*.example.test", "localhost"};
  // expiring.crt/key: valid for 10 days only (CR001 under the default 21).
  copy_pair(make_leaf(work, server_ca, "example.test", names, KeyType::EcdsaP256, false, 10), dir,
            "expiring");
  // rsa1024.crt/key: an RSA 1024 key (CR002).
  copy_pair(make_leaf(work, server_ca, "example.test", names, KeyType::Rsa1024, false, 365), dir, "rsa1024");
  // sha1chain.crt/key: a SHA-256 leaf under an intermediate that server-ca signed with SHA-1 (CR003),
  // the chain as served (leaf, intermediate).
  const auto sha1_ca = make_intermediate_ca(work, server_ca, "check SHA-1 intermediate", 3650, "sha1");
  const auto sha1_leaf = make_leaf(work, sha1_ca, "example.test", names, KeyType::EcdsaP256, false, 365);
  spit(dir + "/sha1chain.crt", slurp(sha1_leaf.cert) + slurp(sha1_ca.cert));
  copy_as(sha1_leaf.key, dir + "/sha1chain.key");
  // nosan.crt/key: CN=records.example.test and no subjectAltName (CR004: clients ignore the CN).
  copy_pair(make_leaf(work, server_ca, "records.example.test", {}, KeyType::EcdsaP256, false, 365), dir,
            "nosan");
  // other.key: a key that does not belong to server.crt (CR005).
  copy_as(make_leaf(work, server_ca, "other", {"other.test"}).key, dir + "/other.key");

  // public-ca.crt/crl: a CA that web-bundle.crt (a stand-in for the system's public CA bundle,
  // check.system_ca_bundle) also holds, and its CRL (PA002).
  const auto public_ca = make_ca(work, "check public web CA", 3650);
  copy_as(public_ca.cert, dir + "/public-ca.crt");
  spit(dir + "/public-ca.crl", slurp(make_crl(work, public_ca, {})));
  spit(dir + "/web-bundle.crt", slurp(make_ca(work, "check web CA 1", 3650).cert) + slurp(public_ca.cert) +
                                    slurp(make_ca(work, "check web CA 2", 3650).cert));

  // htpasswd-weak: an auth-file (basic auth Secret key `auth`) with one {SHA} and one bcrypt user (PA004).
  spit(dir + "/htpasswd-weak",
       "alice:" + sha_hash() + "\nbob:$2y$05$abcdefghijklmnopqrstuuQ2bP1hS7E0DqCk1e4LzXH1w8w4mKVbS\n");
}

void materialize(const std::string& from, const std::string& to, const std::string& gen) {
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    const auto rel = fs::relative(e.path(), from);
    const auto dst = fs::path(to) / rel;
    if (e.is_directory()) {
      fs::create_directories(dst);
      continue;
    }
    fs::create_directories(dst.parent_path());
    std::string text = slurp(e.path().string());
    for (std::size_t at = text.find("@B64:"); at != std::string::npos; at = text.find("@B64:", at)) {
      const auto end = text.find('@', at + 5);
      if (end == std::string::npos) throw std::runtime_error("unterminated @B64: in " + e.path().string());
      const std::string b64 = base64(slurp(gen + "/" + text.substr(at + 5, end - at - 5)));
      text.replace(at, end + 1 - at, b64);
      at += b64.size();
    }
    for (std::size_t at = text.find("@GEN@"); at != std::string::npos;
         at = text.find("@GEN@", at + gen.size())) {
      text.replace(at, 5, gen);
    }
    spit(dst.string(), text);
  }
}

}  // namespace phigate::test
