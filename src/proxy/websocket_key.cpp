#include "websocket_key.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace phigate::proxy::detail {
namespace {

std::string base64(const unsigned char* data, std::size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');  // EVP_EncodeBlock writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

}  // namespace

bool new_websocket_key(std::string& out) {
  unsigned char raw[16];
  out.clear();
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  out = base64(raw, sizeof raw);
  return true;
}

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §1.3
  std::string input(key);
  input.append(kGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha1(), nullptr) != 1) return {};
  return base64(digest, len);
}

}  // namespace phigate::proxy::detail
