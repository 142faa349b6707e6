#include "annotations_redirect.hpp"

#include "annotations_impl.hpp"
#include "names_impl.hpp"

#include <algorithm>

namespace phigate::ingress::detail {

namespace {

/// Visible ASCII a Location may carry as is: no space or control byte (header injection), no
/// `"<>\^`{|}` (browsers read `\` as `/`: "/\evil" would be another host), no `$` (an nginx
/// variable phigate would not expand).
bool url_char(char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
    case '$':
      return false;
    default:
      return true;
  }
}

/// `name[:port]` where name is a DNS name (any case) or an IPv4 address, or `[IPv6][:port]`;
/// port 1..65535. No userinfo, no percent-encoding, no trailing dot: a Host field and a Location
/// authority every parser reads the same way.
bool host_port_ok(std::string_view v) {
  std::string_view name = v, port;
  if (!v.empty() && v.front() == '[') {
    const auto close = v.find(']');
    if (close == std::string_view::npos) return false;
    name = v.substr(1, close - 1);
    const auto after = v.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
    if (name.find(':') == std::string_view::npos || !is_ip_address(name)) return false;
  } else {
    if (const auto colon = v.rfind(':'); colon != std::string_view::npos) {
      name = v.substr(0, colon);
      port = v.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (name.find(':') != std::string_view::npos) return false;
    const std::string lower = to_lower(name);
    if (!is_dns_name(lower) && !is_ip_address(lower)) return false;
  }
  if (!port.empty()) {
    unsigned n = 0;
    if (port.size() > 5 || !parse_digits(port, n) || n == 0 || n > 65535) return false;
  }
  return true;
}

}  // namespace

std::string parse_redirect_url(std::string_view v, std::string& out) {
  if (v.empty()) return "expected an http(s) URL or a path starting with '/'";
  if (v.size() > 2048) return "longer than 2048 bytes";
  for (const char c : v) {
    if (c == '$') return "nginx variables ('$') are not expanded by phigate";
    if (!url_char(c))
      return "only visible ASCII without spaces, quotes, '<', '>', '\\', '^', '`', '{', '|' and '}' is "
             "allowed";
  }
  if (v.front() == '/') {
    if (v.size() > 1 && v[1] == '/') return "must not start with \"//\" (a browser reads it as another host)";
    out.assign(v);
    return {};
  }
  std::string_view rest;
  if (v.substr(0, 7) == "http://") {
    rest = v.substr(7);
  } else if (v.substr(0, 8) == "https://") {
    rest = v.substr(8);
  } else {
    return "expected an http:// or https:// URL, or a path starting with '/'";
  }
  const auto end = rest.find_first_of("/?#");
  const auto authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos)
    return "a user name in the URL (\"user@\") is not allowed";
  if (!host_port_ok(authority))
    return "the URL's host must be a DNS name or an IP address, with an optional port";
  out.assign(v);
  return {};
}

std::string parse_redirect_code(std::string_view v, int& out) {
  if (v == "301" || v == "302" || v == "303" || v == "307" || v == "308") {
    out = (v[0] - '0') * 100 + (v[2] - '0');
    return {};
  }
  return "expected 301, 302, 303, 307 or 308";
}

std::string parse_upstream_vhost(std::string_view v, config::HostsPolicy& out) {
  if (v.find('$') != std::string_view::npos) {
    return "nginx variables ($service_name, $namespace, $host, ...) are not expanded by phigate: name the "
           "host to send";
  }
  if (!host_port_ok(v)) return "expected host[:port]";
  out.upstream_vhost.assign(v);
  for (auto& c : out.upstream_vhost) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return {};
}

std::string parse_server_alias(std::string_view v, config::HostsPolicy& out) {
  std::vector<std::string> names;
  while (true) {
    const auto comma = v.find(',');
    auto item = v.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty() && item.front() == '~')
      return "nginx regex server names (\"~...\") are not supported: list DNS names or \"*.suffix\"";
    if (!item.empty()) {
      auto name = to_lower(item);
      if (!is_dns_name(name, true) || is_ip_address(name))
        return "expected a comma-separated list of DNS names or \"*.suffix\"";
      names.push_back(std::move(name));
    }
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (names.empty()) return "expected a comma-separated list of DNS names or \"*.suffix\"";
  if (names.size() > 100) return "more than 100 aliases";
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  out.aliases = std::move(names);
  return {};
}

}  // namespace phigate::ingress::detail
