#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <array>
#include <charconv>

#include "state_file_impl.hpp"

namespace phigate::audit::detail {
namespace {

constexpr std::string_view kFirstLine = "phigate-audit-state 1";
// Its own derived key: the state MAC never shares a key with segment encryption (HKDF info differs).
constexpr std::string_view kMacInfo = "phigate audit state v1";
constexpr std::size_t kMacBytes = 32;
using Mac = std::array<unsigned char, kMacBytes>;

bool compute_mac(const Key& key, std::string_view text, Mac& mac) {
  unsigned char mac_key[32];
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* kctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(key.bytes.data()),
                                        key.bytes.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kMacInfo.data()),
                                        kMacInfo.size()),
      OSSL_PARAM_construct_end()};
  bool ok = kctx && EVP_KDF_derive(kctx, mac_key, sizeof mac_key, params) == 1;
  EVP_KDF_CTX_free(kctx);
  EVP_KDF_free(kdf);
  std::size_t len = 0;
  ok = ok &&
       EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, mac_key, sizeof mac_key,
                 reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac.data(), mac.size(),
                 &len) != nullptr &&
       len == mac.size();
  OPENSSL_cleanse(mac_key, sizeof mac_key);
  if (!ok) ERR_clear_error();
  return ok;
}

void put_hex(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
}

bool get_hex(std::string_view s, unsigned char* out, std::size_t n) {
  if (s.size() != 2 * n) return false;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

// Takes the next line "<name> <value>\n" from `text`; false if the name differs or the line is missing.
bool take(std::string_view& text, std::string_view name, std::string_view& value) {
  const auto nl = text.find('\n');
  if (nl == std::string_view::npos) return false;
  const std::string_view line = text.substr(0, nl);
  if (line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ' ') return false;
  value = line.substr(name.size() + 1);
  text.remove_prefix(nl + 1);
  return true;
}

template <class T>
bool get_uint(std::string_view s, T& v) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;  // one spelling per value
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size();
}

std::string_view end_name(PrevState e) {
  switch (e) {
    case PrevState::Sealed:
      return "sealed";
    case PrevState::Crashed:
      return "crashed";
    case PrevState::None:
      break;
  }
  return "none";
}

}  // namespace

std::string encode_state(const ChainState& s, const Key& key) {
  std::string out;
  out.reserve(256);
  out += kFirstLine;
  out += "\nkey " + key.id;
  out += "\nend ";
  out += end_name(s.end);
  out += "\nsegment " + std::to_string(s.seq);
  out += "\nid ";
  put_hex(out, s.id.data(), s.id.size());
  out += "\nframe " + std::to_string(s.frames);
  out += "\ntag ";
  put_hex(out, s.tag.data(), s.tag.size());
  out += '\n';
  Mac mac;
  if (!compute_mac(key, out, mac)) return {};
  out += "mac ";
  put_hex(out, mac.data(), mac.size());
  out += '\n';
  return out;
}

StateParse parse_state(std::string_view text, const KeyRing& keys, ChainState& out) {
  out = ChainState{};
  std::string_view rest = text, v;
  if (!rest.starts_with(kFirstLine) || rest.substr(kFirstLine.size(), 1) != "\n")
    return StateParse::Malformed;
  rest.remove_prefix(kFirstLine.size() + 1);
  if (!take(rest, "key", v) || !is_valid_key_id(v)) return StateParse::Malformed;
  out.key_id = std::string(v);
  if (!take(rest, "end", v)) return StateParse::Malformed;
  if (v == "none") {
    out.end = PrevState::None;
  } else if (v == "sealed") {
    out.end = PrevState::Sealed;
  } else if (v == "crashed") {
    out.end = PrevState::Crashed;
  } else {
    return StateParse::Malformed;
  }
  if (!take(rest, "segment", v) || !get_uint(v, out.seq)) return StateParse::Malformed;
  if (!take(rest, "id", v) || !get_hex(v, out.id.data(), out.id.size())) return StateParse::Malformed;
  if (!take(rest, "frame", v) || !get_uint(v, out.frames)) return StateParse::Malformed;
  if (!take(rest, "tag", v) || !get_hex(v, out.tag.data(), out.tag.size())) return StateParse::Malformed;
  const std::string_view signed_part = text.substr(0, text.size() - rest.size());
  Mac stored;
  if (!take(rest, "mac", v) || !get_hex(v, stored.data(), stored.size()) || !rest.empty())
    return StateParse::Malformed;
  // "none" carries no segment; anything else names one (sequence numbers start at 1).
  if ((out.end == PrevState::None) != (out.seq == 0)) return StateParse::Malformed;
  const Key* key = keys.find(out.key_id);
  if (!key) return StateParse::UnknownKey;
  Mac computed;
  if (!compute_mac(*key, signed_part, computed) ||
      CRYPTO_memcmp(computed.data(), stored.data(), stored.size()) != 0) {
    return StateParse::BadMac;
  }
  return StateParse::Ok;
}

std::string describe_state(const ChainState& s) {
  switch (s.end) {
    case PrevState::Sealed:
      return "segment " + std::to_string(s.seq) + " sealed at frame " + std::to_string(s.frames);
    case PrevState::Crashed:
      return "segment " + std::to_string(s.seq) + " recovered after frame " + std::to_string(s.frames);
    case PrevState::None:
      break;
  }
  return "no segment yet";
}

}  // namespace phigate::audit::detail
