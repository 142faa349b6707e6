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

/// A set of CIDRs compiled into sorted, merged address ranges: `contains` is a binary search,
/// O(log n) however long the list (allowlists of thousands of ranges stay cheap per request).
class CidrSet {
 public:
  /// Adds a range. Control thread, before the set is shared.
  void add(const Cidr& c);
  bool empty() const noexcept { return ranges_.empty(); }
  std::size_t size() const noexcept { return ranges_.size(); }
  /// True when `a` lies in any member. Thread-safe for concurrent readers.
  bool contains(const Address& a) const noexcept;
  /// True when every address from `lo` to `hi` lies in the set (members that touch are merged, so
  /// 0.0.0.0/1 + 128.0.0.0/1 covers every IPv4 address).
  bool covers(const Address& lo, const Address& hi) const noexcept;

 private:
  struct Range {
    Address lo;
    Address hi;
  };
  std::vector<Range> ranges_;  // sorted by lo, non-overlapping, non-adjacent merged
};

/// Who may reach a route: deny wins; a non-empty allow list admits only its members.
struct AccessList {
  CidrSet allow;
  CidrSet deny;
  bool admits(const Address& a) const noexcept {
    if (deny.contains(a)) return false;
    return allow.empty() || allow.contains(a);
  }
};

/// A client address found behind trusted proxies; `text` views into the header value given.
struct ForwardedClient {
  std::string_view text;
  Address address{};
};

/// The client behind a trusted peer (nginx real_ip_recursive): walks the X-Forwarded-For entries
/// (`values` in header order) from the right, skipping members of `trusted`, and returns the first
/// untrusted one; when all are trusted, the left-most. An entry that is not an IP address ends the
/// walk at the last address before it (a forged value can hide nothing to its right). nullopt:
/// no usable entry, keep the peer. Sans-I/O, any thread.
std::optional<ForwardedClient> client_behind_proxies(const std::vector<std::string_view>& values,
                                                     const CidrSet& trusted);

}  // namespace phigate::access
