#include "balance_input.hpp"

#include "phigate/core/strings.hpp"

namespace phigate::proxy::detail {

namespace {

constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view cookie_value(const http::HeaderList& headers, std::string_view name) noexcept {
  if (name.empty()) return {};
  // RFC 6265 §5.4/§4.2.1: cookie-pair *( ";" SP cookie-pair ). HTTP/1.1 clients send one Cookie
  // field, but a second one is read too (RFC 9113 §8.2.3 splits it for HTTP/2). Names are case
  // sensitive; the first pair with the name wins (the most specific path comes first, §5.4 2.).
  // Lenient about whitespace around ';' and '=' like browsers; a pair without '=' is skipped.
  for (const auto& h : headers) {
    if (!core::iequals(h.name, "cookie")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      const auto pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim_ows(pair.substr(0, eq)) != name) continue;
      auto value = trim_ows(pair.substr(eq + 1));
      // cookie-value may be DQUOTE-wrapped; the quotes are not part of the value.
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  return {};
}

std::string_view query_argument(std::string_view target, std::string_view name) noexcept {
  const auto q = target.find('?');
  if (q == std::string_view::npos || name.empty()) return {};
  std::string_view rest = target.substr(q + 1);
  // nginx's $arg_<name>: names compared case-insensitively, the raw (still percent-encoded) value
  // of the first match.
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (core::iequals(pair.substr(0, eq), name))
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  }
  return {};
}

std::string_view balance_hash_key(const Request& r, const upstream::BalanceSettings& b,
                                  std::string& scratch) {
  using upstream::HashSource;
  if (b.kind != upstream::BalanceKind::Hash) return {};
  switch (b.hash_source) {
    case HashSource::None:
      return {};
    case HashSource::RemoteAddr:
      return r.client_ip;
    case HashSource::RequestUri:
      return r.target;
    case HashSource::Uri:
      return r.path;
    case HashSource::Host:
      return r.host_norm;
    case HashSource::Header: {
      // Several fields with the name hash as their comma-joined list (RFC 9110 §5.3), like nginx.
      const std::string* first = nullptr;
      scratch.clear();
      for (const auto& h : r.head.headers) {
        if (!core::iequals(h.name, b.hash_name)) continue;
        if (first == nullptr) {
          first = &h.value;
          continue;
        }
        if (scratch.empty()) scratch = *first;
        scratch += ", ";
        scratch += h.value;
      }
      if (first == nullptr) return {};
      return scratch.empty() ? std::string_view(*first) : std::string_view(scratch);
    }
    case HashSource::Cookie:
      return cookie_value(r.head.headers, b.hash_name);
    case HashSource::Arg:
      return query_argument(r.target, b.hash_name);
  }
  return {};
}

std::string_view affinity_cookie_value(const Request& r, const upstream::BalanceSettings& b) {
  if (!b.affinity_cookie) return {};
  return cookie_value(r.head.headers, b.cookie_name);
}

}  // namespace phigate::proxy::detail
