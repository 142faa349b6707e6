// The CORS annotations' value grammars (ingress-nginx AN/cors): strict, typed, no logic. Unlike
// ingress-nginx, which drops an invalid entry or falls back to its default silently, an invalid
// value is an error: the Ingress fails closed rather than being served with other CORS rules
// than its owner wrote.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <vector>

#include "annotations_cors_impl.hpp"
#include "annotations_impl.hpp"

namespace phigate::ingress::detail {

namespace {

constexpr std::size_t kMaxList = 4096;  // bytes of one list annotation
constexpr std::size_t kMaxEntries = 64;

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

/// RFC 9110 §5.6.2 tchar.
bool tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool token(std::string_view v) {
  return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), tchar);
}

/// A comma list of tokens, trimmed, joined again with ", ". Empty entries (",,") are refused.
std::string token_list(std::string_view v, std::string& out, const char* what) {
  if (v.empty() || v.size() > kMaxList) return std::string("expected a comma-separated list of ") + what;
  std::string joined;
  std::size_t n = 0;
  for (;;) {
    const auto comma = v.find(',');
    const auto item = trim(v.substr(0, comma));
    if (!token(item)) return std::string("expected a comma-separated list of ") + what;
    if (++n > kMaxEntries) return "more than 64 entries";
    if (!joined.empty()) joined += ", ";
    joined += item;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  out = std::move(joined);
  return {};
}

bool dns_chars(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

/// A DNS name: labels of [A-Za-z0-9-], none empty, none starting or ending with '-'.
bool dns_name(std::string_view v) {
  if (v.empty() || v.size() > 253 || !dns_chars(v)) return false;
  for (;;) {
    const auto dot = v.find('.');
    const auto label = v.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) return true;
    v.remove_prefix(dot + 1);
  }
}

std::string lower(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return s;
}

}  // namespace

bool parse_cors_origin(std::string_view v, config::CorsOrigin& out) {
  const auto sep = v.find("://");
  if (sep == std::string_view::npos || sep == 0 || sep > 16) return false;
  const auto scheme = v.substr(0, sep);
  if (!std::all_of(scheme.begin(), scheme.end(), [](char c) { return c >= 'a' && c <= 'z'; })) return false;
  auto rest = v.substr(sep + 3);
  std::string_view port;
  if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    std::uint32_t n = 0;
    if (port.empty() || port.size() > 5 || port.front() == '0' || !parse_digits(port, n) || n > 65535)
      return false;
  }
  bool wildcard = false;
  if (rest.substr(0, 2) == "*.") {
    wildcard = true;
    rest.remove_prefix(2);
    // "*.com" would be every site under a top-level domain: at least two labels after the '*'.
    if (rest.find('.') == std::string_view::npos) return false;
  }
  if (!dns_name(rest)) return false;
  out = config::CorsOrigin{lower(scheme), lower(rest), std::string(port), wildcard};
  return true;
}

std::string parse_enable_cors(std::string_view v, config::CorsPolicy& out) {
  return parse_bool(v, out.enabled);
}

std::string parse_cors_allow_origin(std::string_view v, config::CorsPolicy& out) {
  static constexpr const char* kExpected =
      "expected \"*\" or a comma-separated list of scheme://host[:port], scheme://*.domain[:port] or null";
  if (v.empty() || v.size() > kMaxList) return kExpected;
  config::CorsPolicy p;
  p.any_origin = false;
  std::size_t n = 0;
  for (;;) {
    const auto comma = v.find(',');
    const auto item = trim(v.substr(0, comma));
    if (++n > kMaxEntries) return "more than 64 entries";
    if (item == "*") {
      p.any_origin = true;  // as ingress-nginx: "*" anywhere means any origin
    } else if (item == "null") {
      p.allow_null = true;
    } else {
      config::CorsOrigin o;
      if (!parse_cors_origin(item, o)) return kExpected;
      p.origins.push_back(std::move(o));
    }
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  out.any_origin = p.any_origin;
  out.allow_null = p.allow_null;
  out.origins = std::move(p.origins);
  if (out.any_origin) {
    out.allow_null = false;
    out.origins.clear();
  }
  return {};
}

std::string parse_cors_allow_methods(std::string_view v, config::CorsPolicy& out) {
  return token_list(v, out.methods, "methods (RFC 9110 tokens)");
}

std::string parse_cors_allow_headers(std::string_view v, config::CorsPolicy& out) {
  return token_list(v, out.headers, "header names (RFC 9110 tokens)");
}

std::string parse_cors_expose_headers(std::string_view v, config::CorsPolicy& out) {
  return token_list(v, out.expose, "header names (RFC 9110 tokens) or \"*\"");
}

std::string parse_cors_allow_credentials(std::string_view v, config::CorsPolicy& out) {
  return parse_bool(v, out.credentials);
}

std::string parse_cors_max_age(std::string_view v, config::CorsPolicy& out) {
  std::uint32_t n = 0;
  if (v.size() > 10 || !parse_digits(v, n) || n > 2147483647u) return "expected seconds (0 to 2147483647)";
  out.max_age = n;
  return {};
}

namespace {

/// A URL or URL prefix for proxy_redirect: visible ASCII without quotes, `$`, `\`, `;`, braces or
/// blanks, at most 2048 bytes; not nginx's `~` regex form.
bool url_literal(std::string_view v) {
  if (v.empty() || v.size() > 2048 || v.front() == '~') return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return c > 0x20 && c < 0x7f && std::string_view("\"'$\\;{}`").find(c) == std::string_view::npos;
  });
}

/// A cookie Domain value: a DNS name, one leading '.' allowed.
bool cookie_domain(std::string_view v) {
  if (!v.empty() && v.front() == '.') v.remove_prefix(1);
  return dns_name(v);
}

/// A cookie Path value: starts with '/', visible ASCII without ';', ',', quotes, `$` or `\`.
bool cookie_path(std::string_view v) {
  if (v.empty() || v.size() > 1024 || v.front() != '/') return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return c > 0x20 && c < 0x7f && std::string_view(";,\"'$\\").find(c) == std::string_view::npos;
  });
}

/// "from to", one space (or blanks) between; false otherwise.
bool two_words(std::string_view v, std::string_view& a, std::string_view& b) {
  v = trim(v);
  const auto sp = v.find_first_of(" \t");
  if (sp == std::string_view::npos) return false;
  a = v.substr(0, sp);
  b = trim(v.substr(sp));
  return !b.empty() && b.find_first_of(" \t") == std::string_view::npos;
}

}  // namespace

std::string parse_proxy_redirect_from(std::string_view v, config::HeaderPolicy& out) {
  if (v == "off" || v == "default") {  // "default": nothing to rewrite (no proxy_pass URL)
    out.redirect_from.clear();
    return {};
  }
  if (!url_literal(v))
    return "expected \"off\", \"default\" or a URL prefix (no spaces, quotes, $variables or ~regex)";
  out.redirect_from.assign(v);
  return {};
}

std::string parse_proxy_redirect_to(std::string_view v, config::HeaderPolicy& out) {
  if (!url_literal(v)) return "expected a URL prefix (no spaces, quotes, $variables or ~regex)";
  out.redirect_to.assign(v);
  return {};
}

std::string parse_proxy_cookie_domain(std::string_view v, config::HeaderPolicy& out) {
  if (v == "off") {
    out.cookie_domain_from.clear();
    out.cookie_domain_to.clear();
    return {};
  }
  std::string_view a, b;
  if (!two_words(v, a, b) || !cookie_domain(a) || !cookie_domain(b))
    return "expected \"off\" or \"FROM TO\" (two domain names; no ~regex or $variables)";
  out.cookie_domain_from.assign(a);
  out.cookie_domain_to.assign(b);
  return {};
}

std::string parse_proxy_cookie_path(std::string_view v, config::HeaderPolicy& out) {
  if (v == "off") {
    out.cookie_path_from.clear();
    out.cookie_path_to.clear();
    return {};
  }
  std::string_view a, b;
  if (!two_words(v, a, b) || !cookie_path(a) || !cookie_path(b))
    return "expected \"off\" or \"FROM TO\" (two paths starting with /; no ~regex or $variables)";
  out.cookie_path_from.assign(a);
  out.cookie_path_to.assign(b);
  return {};
}

}  // namespace phigate::ingress::detail
