#include "phigate/access/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
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

namespace {

/// b is the address right after a.
bool touches(Address a, const Address& b) {
  for (int i = 15; i >= 0; --i) {
    if (++a[static_cast<std::size_t>(i)] != 0) return a == b;
  }
  return false;  // a is the last address
}

}  // namespace

void CidrSet::add(const Cidr& c) {
  Range r{c.network, c.network};
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned lo = i * 8;
    if (c.prefix <= lo) {
      r.hi[i] = 0xff;
    } else if (c.prefix < lo + 8) {
      r.hi[i] = static_cast<std::uint8_t>(r.hi[i] | (0xff >> (c.prefix - lo)));
    }
  }
  // Insert in order, then merge overlapping and touching neighbours (lists are built once per
  // snapshot): covers() then sees 0.0.0.0/1 + 128.0.0.0/1 as one range.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), r,
                             [](const Range& a, const Range& b) { return a.lo < b.lo; });
  ranges_.insert(it, r);
  std::vector<Range> merged;
  merged.reserve(ranges_.size());
  for (const auto& x : ranges_) {
    if (!merged.empty() && (x.lo <= merged.back().hi || touches(merged.back().hi, x.lo))) {
      if (merged.back().hi < x.hi) merged.back().hi = x.hi;
    } else {
      merged.push_back(x);
    }
  }
  ranges_ = std::move(merged);
}

bool CidrSet::contains(const Address& a) const noexcept {
  // The last range starting at or before `a` is the only candidate.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), a,
                             [](const Address& v, const Range& r) { return v < r.lo; });
  if (it == ranges_.begin()) return false;
  --it;
  return !(it->hi < a);
}

bool CidrSet::covers(const Address& lo, const Address& hi) const noexcept {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), lo,
                             [](const Address& v, const Range& r) { return v < r.lo; });
  if (it == ranges_.begin()) return false;
  --it;
  return !(it->hi < hi);
}

std::optional<ForwardedClient> client_behind_proxies(const std::vector<std::string_view>& values,
                                                     const CidrSet& trusted) {
  std::optional<ForwardedClient> last;
  for (auto v = values.rbegin(); v != values.rend(); ++v) {
    std::string_view rest = *v;
    while (!rest.empty()) {
      const auto comma = rest.rfind(',');
      std::string_view entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
      while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
      while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
      if (entry.empty()) continue;
      const auto addr = parse_address(entry);
      if (!addr) return last;
      last = ForwardedClient{entry, *addr};
      if (!trusted.contains(*addr)) return last;
    }
  }
  return last;
}

}  // namespace phigate::access
