#include "phigate/access/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace phigate::access {

std::optional<Address> parse_address(std::string_view text) {
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  Address a{};
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    a[10] = a[11] = 0xff;
    std::memcpy(a.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(a.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

namespace {
bool is_v4_text(std::string_view t) {
  return t.find(':') == std::string_view::npos;
}

bool prefix_equal(const Address& a, const Address& b, unsigned bits) {
  const unsigned bytes = bits / 8;
  if (std::memcmp(a.data(), b.data(), bytes) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}
}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const auto addr_text = text.substr(0, slash);
  const auto addr = parse_address(addr_text);
  if (!addr) return std::nullopt;
  const unsigned max = is_v4_text(addr_text) ? 32 : 128;
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (p.empty() || ec != std::errc{} || ptr != p.data() + p.size() || bits > max) return std::nullopt;
  }
  Cidr c{*addr, max == 32 ? bits + 96 : bits};
  // Host bits set ("10.0.0.1/8") is almost always a typo: refuse rather than guess.
  Address masked{};
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned lo = i * 8;
    if (c.prefix >= lo + 8) {
      masked[i] = c.network[i];
    } else if (c.prefix > lo) {
      masked[i] = static_cast<std::uint8_t>(c.network[i] & (0xff << (8 - (c.prefix - lo))));
    }
  }
  if (masked != c.network) return std::nullopt;
  return c;
}

bool CidrSet::contains(const Address& a) const noexcept {
  for (const auto& c : cidrs_) {
    if (prefix_equal(a, c.network, c.prefix)) return true;
  }
  return false;
}

}  // namespace phigate::access
