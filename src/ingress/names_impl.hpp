#pragma once
// Small validators shared by annotations.cpp and translate.cpp (private to the ingress library).
#include <optional>
#include <string>
#include <string_view>

#include "phigate/core/strings.hpp"

namespace phigate::ingress::detail {

/// Lower-cases ASCII letters (core's; annotations.cpp and translate.cpp call it as detail::to_lower).
using core::to_lower;

/// A DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 bytes (namespaces).
bool is_dns_label(std::string_view s);

/// A DNS-1123 subdomain (dot-separated labels, at most 253 bytes); with `allow_wildcard`, "*." may
/// precede it (one wildcard label, as Kubernetes allows in Ingress hosts).
bool is_dns_name(std::string_view s, bool allow_wildcard = false);

/// An IPv4 or IPv6 address literal.
bool is_ip_address(std::string_view s);

/// "10.0.0.0/8", "2001:DB8::/32" or a bare address → canonical "10.0.0.0/8", "2001:db8::/32",
/// "10.1.2.3/32". nullopt when malformed or when host bits are set ("10.0.0.1/8" is almost always a typo).
std::optional<std::string> canonical_cidr(std::string_view s);

}  // namespace phigate::ingress::detail
