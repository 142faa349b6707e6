#pragma once
// IPv4/IPv6 CIDR sets (trusted proxies; allowlists build on it). Sans-I/O.
// Addresses are 16 bytes; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::access {

using Address = std::array<std::uint8_t, 16>;

/// Parses "1.2.3.4" or "::1" into the 16-byte form.
std::optional<Address> parse_address(std::string_view text);

struct Cidr {
  Address network{};
  unsigned prefix = 0;  // in bits of the 16-byte form (IPv4 /n is stored as /96+n)
};

/// Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128). Host bits must be 0.
std::optional<Cidr> parse_cidr(std::string_view text);

class CidrSet {
 public:
  void add(const Cidr& c) { cidrs_.push_back(c); }
  bool empty() const noexcept { return cidrs_.empty(); }
  /// True when `a` lies in any member. Thread-safe for concurrent readers.
  bool contains(const Address& a) const noexcept;

 private:
  std::vector<Cidr> cidrs_;
};

}  // namespace phigate::access
