// libFuzzer target: the `Authorization: Basic` reader of basic authentication
// (parse_basic_authorization, src/proxy/basic_auth.hpp). Its input is the client's header fields,
// before any credential is checked: anyone who can reach an Ingress with auth-type: basic controls
// it. Input: header fields, one per line (`\n`), `name:value` split at the first ':' (the value
// kept as is: leading blanks, NUL and non-UTF-8 bytes included); a line without ':' is an
// Authorization field with that value.
// Properties:
//  - the verdict and the credentials are those of an independent reading of RFC 7617 / RFC 4648
//    §4 as the header documents it (blanks before the scheme, one ' ' after it, blanks around the
//    token; padded standard base64; Missing for no field or another scheme; Malformed for two
//    fields, bad base64, no ':', an empty user, a control character or more than kMaxCredentials);
//  - Ok: a non-empty user without ':', no control byte in either part, user:password at most
//    kMaxCredentials bytes; not Ok: the output strings are left as they were;
//  - Ok: `Basic base64(user:password)` (any case of the field name and of the scheme) reads back
//    as the same pair, and any second Authorization field makes the request Malformed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "basic_auth.hpp"
#include "check.hpp"

namespace {

using phigate::proxy::detail::CredentialsParse;
using phigate::proxy::detail::kMaxCredentials;
using phigate::proxy::detail::parse_basic_authorization;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string encode(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (in.size() - i == 1) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (in.size() - i == 2) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

/// Strict padded base64 (bits below the last full byte ignored, as most decoders do).
bool decode(std::string_view in, std::string& out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  std::size_t pad = 0;
  while (pad < 2 && !in.empty() && in[in.size() - 1 - pad] == '=') ++pad;
  unsigned acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const auto p = kAlphabet.find(in[i]);
    if (p == std::string_view::npos) return false;
    acc = (acc << 6 | static_cast<unsigned>(p)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

bool blank(char c) {
  return c == ' ' || c == '\t';
}

/// What the header promises, read independently.
CredentialsParse reference(const phigate::http::HeaderList& headers, std::string& user,
                           std::string& password) {
  const std::string* value = nullptr;
  int seen = 0;
  for (const auto& h : headers) {
    if (ieq(h.name, "authorization")) {
      ++seen;
      value = &h.value;
    }
  }
  if (seen == 0) return CredentialsParse::Missing;
  if (seen > 1) return CredentialsParse::Malformed;
  std::string_view v = *value;
  std::size_t i = 0;
  while (i < v.size() && blank(v[i])) ++i;
  std::size_t j = i;
  while (j < v.size() && v[j] != ' ') ++j;
  if (!ieq(v.substr(i, j - i), "basic")) return CredentialsParse::Missing;
  if (j == v.size()) return CredentialsParse::Malformed;
  auto token = v.substr(j + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && blank(token.back())) token.remove_suffix(1);
  std::string decoded;
  if (!decode(token, decoded) || decoded.size() > kMaxCredentials) return CredentialsParse::Malformed;
  const auto colon = decoded.find(':');
  if (colon == std::string::npos || colon == 0) return CredentialsParse::Malformed;
  for (const char c : decoded) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return CredentialsParse::Malformed;
  }
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  return CredentialsParse::Ok;
}

bool has_control(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  phigate::http::HeaderList headers;
  while (!in.empty()) {
    const auto nl = in.find('\n');
    const auto line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      headers.add("Authorization", line);
    else
      headers.add(line.substr(0, colon), line.substr(colon + 1));
    if (headers.size() > 16) break;
  }

  const std::string kUntouched = "\x01untouched";
  std::string user = kUntouched, password = kUntouched;
  const auto got = parse_basic_authorization(headers, user, password);
  std::string ref_user, ref_password;
  const auto want = reference(headers, ref_user, ref_password);
  FUZZ_CHECK(got == want, "verdict differs from an independent reading of RFC 7617 / RFC 4648");
  if (got != CredentialsParse::Ok) {
    FUZZ_CHECK(user == kUntouched && password == kUntouched, "credentials handed out with a refusal");
    return 0;
  }
  FUZZ_CHECK(user == ref_user && password == ref_password, "credentials differ from an independent decoding");
  FUZZ_CHECK(!user.empty(), "empty user accepted");
  FUZZ_CHECK(user.find(':') == std::string::npos, "user contains ':'");
  FUZZ_CHECK(!has_control(user) && !has_control(password),
             "control byte (NUL, CR, LF...) in the credentials");
  FUZZ_CHECK(user.size() + 1 + password.size() <= kMaxCredentials, "credentials longer than kMaxCredentials");

  // Round trip: the canonical encoding of what was read reads back the same.
  const auto token = encode(user + ":" + password);
  for (const auto& [name, scheme] : {std::pair<std::string_view, std::string_view>{"Authorization", "Basic "},
                                     {"authorization", "basic "},
                                     {"AUTHORIZATION", "BASIC  "}}) {
    phigate::http::HeaderList again;
    again.add("Host", "example.test");
    again.add(name, std::string(scheme) + token);
    std::string u2, p2;
    FUZZ_CHECK(parse_basic_authorization(again, u2, p2) == CredentialsParse::Ok,
               "re-encoded credentials are refused");
    FUZZ_CHECK(u2 == user && p2 == password, "re-encoded credentials read back differently");
  }
  // A second Authorization field, whatever it holds, is never Ok: which one would a backend read?
  auto twice = headers;
  twice.add("authorization", "Basic " + token);
  std::string u3 = kUntouched, p3 = kUntouched;
  FUZZ_CHECK(parse_basic_authorization(twice, u3, p3) == CredentialsParse::Malformed,
             "two Authorization fields accepted");
  return 0;
}
