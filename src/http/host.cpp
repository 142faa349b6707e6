#include "phigate/http/host.hpp"

#include <cstddef>

namespace phigate::http {

namespace {

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_name_char(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '~';
}

bool valid_port(std::string_view p) noexcept {
  if (p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

/// RFC 3986 §3.2.2 dec-octet ×4: 0-255, no leading zero (which some resolvers read as octal).
bool valid_ipv4(std::string_view s) noexcept {
  int octets = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t j = i;
    unsigned v = 0;
    while (j < s.size() && is_digit(s[j]) && j - i < 4) v = v * 10 + static_cast<unsigned>(s[j++] - '0');
    const std::size_t len = j - i;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[i] == '0')) return false;
    if (++octets == 4) return j == s.size();
    if (j >= s.size() || s[j] != '.') return false;
    i = j + 1;
  }
}

/// Hex groups and colons, at most one `::`, optionally an IPv4 tail. Deliberately syntactic: the
/// value is only matched against configured names, never resolved.
bool valid_ipv6(std::string_view s) noexcept {
  if (s.size() < 2 || s.size() > 45) return false;
  int groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (s.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (s.front() == ':') {
    return false;
  }
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && is_hex(s[j]) && j - i < 5) ++j;
    if (j < s.size() && s[j] == '.') {  // IPv4 tail: the rest must be a dotted quad
      return valid_ipv4(s.substr(i)) && groups + 2 <= (compressed ? 7 : 8) && (compressed || groups == 6);
    }
    if (j == i || j - i > 4) return false;
    ++groups;
    if (j == s.size()) break;
    if (s[j] != ':') return false;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (compressed) return false;
      compressed = true;
      i = j + 2;
      if (i == s.size()) break;
    } else {
      i = j + 1;
      if (i == s.size()) return false;  // trailing single colon
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

bool valid_reg_name(std::string_view s) noexcept {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);  // absolute form `example.com.`
  if (s.empty() || s.size() > 253) return false;
  std::size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;  // `.a`, `a..b`: nginx refuses them too
      label = 0;
    } else if (is_name_char(c)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

}  // namespace

bool valid_host(std::string_view host) noexcept {
  if (host.empty()) return true;  // RFC 9112 §3.2: empty when the target has no authority
  std::string_view name = host;
  std::string_view port;
  bool has_port = false;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    if (!valid_ipv6(host.substr(1, close - 1))) return false;
    const auto rest = host.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    return valid_port(rest.substr(1));
  }
  if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    has_port = true;
  }
  if (has_port && !valid_port(port)) return false;
  // A dotted quad is also a valid reg-name by these rules, so one check covers IPv4.
  return valid_reg_name(name);
}

}  // namespace phigate::http
