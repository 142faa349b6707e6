#include "names_impl.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

#include "phigate/core/host_map.hpp"

namespace phigate::ingress::detail {

bool is_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool is_dns_name(std::string_view s, bool allow_wildcard) {
  if (const auto suffix = core::wildcard_suffix(s); allow_wildcard && suffix) s = *suffix;
  if (s.empty() || s.size() > 253) return false;
  for (;;) {
    const auto dot = s.find('.');
    if (!is_dns_label(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

namespace {

/// inet_pton wants a NUL-terminated string; `family` AF_INET or AF_INET6. Returns the byte count.
std::size_t parse_ip(std::string_view s, int family, std::array<unsigned char, 16>& out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof buf) return 0;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (inet_pton(family, buf, out.data()) != 1) return 0;
  return family == AF_INET ? 4 : 16;
}

}  // namespace

bool is_ip_address(std::string_view s) {
  std::array<unsigned char, 16> a{};
  return parse_ip(s, AF_INET, a) != 0 || parse_ip(s, AF_INET6, a) != 0;
}

std::optional<std::string> canonical_cidr(std::string_view s) {
  const auto slash = s.find('/');
  const auto addr_text = s.substr(0, slash);
  std::array<unsigned char, 16> a{};
  const int family = addr_text.find(':') == std::string_view::npos ? AF_INET : AF_INET6;
  const std::size_t bytes = parse_ip(addr_text, family, a);
  if (bytes == 0) return std::nullopt;
  const unsigned max = static_cast<unsigned>(bytes * 8);
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    const auto p = s.substr(slash + 1);
    // Digits only: from_chars would accept neither '+' nor spaces, but also bound the length.
    if (p.empty() || p.size() > 3) return std::nullopt;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (ec != std::errc{} || ptr != p.data() + p.size() || bits > max) return std::nullopt;
  }
  for (unsigned i = 0; i < bytes; ++i) {
    const unsigned lo = i * 8;
    const unsigned keep = bits >= lo + 8 ? 8 : (bits > lo ? bits - lo : 0);
    const auto mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
    if ((a[i] & static_cast<unsigned char>(~mask)) != 0) return std::nullopt;
  }
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, a.data(), text, sizeof text) == nullptr) return std::nullopt;
  return std::string(text) + "/" + std::to_string(bits);
}

}  // namespace phigate::ingress::detail
