// Materials for the check fixtures (check_materials.hpp).
#include "check_materials.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

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
  fs::create_directories(dir + "/audit-keys");
  fs::create_directories(dir + "/audit");
  spit(dir + "/audit-keys/k1.key", base64(std::string(32, '\x5a')) + "\n");
  fs::permissions(dir + "/audit-keys/k1.key", fs::perms::owner_read | fs::perms::owner_write);
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
