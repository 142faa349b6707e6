#pragma once
// Host name → T for exact names and one-label wildcards, the lookup that router (routes), tls
// (certificates, client-certificate policies) and HSTS exemptions share. A "*.example.com" entry
// covers exactly one more label: "a.example.com", never "example.com" nor "a.b.example.com"
// (RFC 6125 §6.4.3 for certificates; Kubernetes Ingress hosts use the same rule). Exact names win
// over wildcards. Keys and looked-up names are normalised by the caller (lower-case, no port, no
// trailing dot): lookups never allocate. Built once, then read by any thread.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "phigate/core/strings.hpp"

namespace phigate::core {

/// "*.example.com" → "example.com"; nullopt for a name that is not a wildcard pattern.
constexpr std::optional<std::string_view> wildcard_suffix(std::string_view pattern) noexcept {
  if (pattern.size() < 2 || pattern[0] != '*' || pattern[1] != '.') return std::nullopt;
  return pattern.substr(2);
}

/// What a one-label wildcard would be looked up by: "a.example.com" → "example.com". nullopt when
/// `host` has no dot or starts with one (no label for the '*' to stand for).
constexpr std::optional<std::string_view> parent_domain(std::string_view host) noexcept {
  const auto dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  return host.substr(dot + 1);
}

/// One pattern against one normalised host: equal, or "*.suffix" with `host` one label above it.
constexpr bool host_matches(std::string_view pattern, std::string_view host) noexcept {
  if (pattern == host) return true;
  const auto suffix = wildcard_suffix(pattern);
  const auto parent = parent_domain(host);
  return suffix && parent && *suffix == *parent;
}

template <class T>
class HostMap {
 public:
  /// Adds `pattern` ("name" or "*.suffix") → `value` unless the pattern is present: the first
  /// definition wins. Returns the stored value and whether it was inserted.
  std::pair<T&, bool> emplace(std::string_view pattern, T value) {
    auto [it, inserted] = map_for(pattern).emplace(key_of(pattern), std::move(value));
    return {it->second, inserted};
  }
  /// The value of `pattern`, default-constructed when absent (to fill a bucket in place).
  T& operator[](std::string_view pattern) {
    auto& map = map_for(pattern);
    const auto key = key_of(pattern);
    if (auto it = map.find(key); it != map.end()) return it->second;
    return map.emplace(std::string(key), T{}).first->second;
  }

  /// The value for normalised `host`: its exact entry, else the wildcard one label above it, else
  /// nullptr. No allocation.
  const T* find(std::string_view host) const noexcept {
    if (!exact_.empty()) {
      if (auto it = exact_.find(host); it != exact_.end()) return &it->second;
    }
    if (!wildcard_.empty()) {
      if (const auto parent = parent_domain(host)) {
        if (auto it = wildcard_.find(*parent); it != wildcard_.end()) return &it->second;
      }
    }
    return nullptr;
  }
  T* find(std::string_view host) noexcept {
    return const_cast<T*>(static_cast<const HostMap&>(*this).find(host));
  }

  bool empty() const noexcept { return exact_.empty() && wildcard_.empty(); }
  std::size_t size() const noexcept { return exact_.size() + wildcard_.size(); }

 private:
  StringMap<T>& map_for(std::string_view pattern) { return wildcard_suffix(pattern) ? wildcard_ : exact_; }
  static std::string_view key_of(std::string_view pattern) {
    return wildcard_suffix(pattern).value_or(pattern);
  }

  StringMap<T> exact_;
  StringMap<T> wildcard_;  // key: the suffix after "*."
};

}  // namespace phigate::core
