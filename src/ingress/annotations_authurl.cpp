// External authentication annotations (ingress-nginx auth-url and its settings;
// docs/auth-external.md). Restated from ingress-nginx's documented behaviour; no code copied.
// Deliberate difference: auth-url must name a Service of the cluster (an Ingress author must not
// make phigate send client cookies and credentials to an arbitrary address).
#include <algorithm>
#include <cctype>

#include "annotations_auth_impl.hpp"
#include "names_impl.hpp"

namespace phigate::ingress::detail {

namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), is_token_char);
}

/// A path+query of a URL: '/'-led, visible ASCII, no '#' (a fragment is never sent), no '$' (no
/// nginx variables), no '\'.
bool safe_target(std::string_view t) {
  if (t.empty() || t.front() != '/' || t.size() > 2048) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '#' && c != '$' && c != '\\' && c != '"';
  });
}

}  // namespace

constexpr std::string_view kAuthUrlRule =
    "must be http(s)://<service>.<namespace>.svc[.cluster.local][:port]/path, a Service of the Ingress's "
    "own namespace (or of ingress.auth_url_namespaces): phigate sends the client's cookies to it, so an "
    "external host, an IP address or a variable is refused (docs/auth-external.md)";

std::string parse_auth_url_value(std::string_view v, config::ExternalAuthPolicy& out) {
  std::string_view rest;
  bool https = false;
  if (v.starts_with("http://")) {
    rest = v.substr(7);
  } else if (v.starts_with("https://")) {
    rest = v.substr(8);
    https = true;
  } else {
    return std::string(kAuthUrlRule);
  }
  const auto slash = rest.find_first_of("/?#");
  const auto authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return std::string(kAuthUrlRule);
  std::string_view host = authority;
  int port = https ? 443 : 80;
  if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    if (!parse_digits(authority.substr(colon + 1), port) || port < 1 || port > 65535)
      return std::string(kAuthUrlRule);
  }
  std::string_view base = host;
  if (base.ends_with(".svc.cluster.local")) {
    base.remove_suffix(std::string_view(".cluster.local").size());
  }
  if (!base.ends_with(".svc")) return std::string(kAuthUrlRule);
  base.remove_suffix(4);
  const auto dot = base.find('.');
  if (dot == std::string_view::npos) return std::string(kAuthUrlRule);
  const auto svc = base.substr(0, dot);
  const auto ns = base.substr(dot + 1);
  if (!is_dns_label(svc) || !is_dns_label(ns)) return std::string(kAuthUrlRule);
  if (target.empty()) target = "/";
  if (target.front() == '?') return std::string(kAuthUrlRule);
  if (!safe_target(target)) return std::string(kAuthUrlRule);
  out.enabled = true;
  out.https = https;
  out.host.assign(host);
  out.service.assign(svc);
  out.namespace_.assign(ns);
  out.port = port;
  out.target.assign(target);
  return {};
}

std::string parse_auth_url(std::string_view v, AnnotationContext& c) {
  return parse_auth_url_value(v, c.policy.external_auth);
}

std::string parse_auth_method(std::string_view v, AnnotationContext& c) {
  if (!is_token(v) || v.size() > 32) return "expected an HTTP method (a token, e.g. GET or POST)";
  c.policy.external_auth.method.assign(v);
  return {};
}

std::string parse_auth_signin_value(std::string_view v, std::string& out) {
  constexpr std::string_view kRule =
      "expected an absolute http(s) URL (variables: $host, $scheme, $escaped_request_uri only)";
  std::string_view rest;
  if (v.starts_with("http://")) {
    rest = v.substr(7);
  } else if (v.starts_with("https://")) {
    rest = v.substr(8);
  } else {
    return std::string(kRule);
  }
  if (rest.empty() || rest.front() == '/' || v.size() > 2048) return std::string(kRule);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto u = static_cast<unsigned char>(v[i]);
    if (u <= 0x20 || u >= 0x7f || v[i] == '"' || v[i] == '\\' || v[i] == '#') return std::string(kRule);
    if (v[i] != '$') continue;
    const auto name = v.substr(i + 1);
    bool known = false;
    for (const std::string_view var : {"escaped_request_uri", "scheme", "host"}) {
      if (name.starts_with(var)) {
        known = true;
        i += var.size();
        break;
      }
    }
    if (!known) return std::string(kRule);
  }
  const auto authority = rest.substr(0, rest.find_first_of("/?"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::string(kRule);
  out.assign(v);
  return {};
}

std::string parse_auth_signin(std::string_view v, AnnotationContext& c) {
  return parse_auth_signin_value(v, c.policy.external_auth.signin);
}

std::string parse_auth_signin_redirect_param(std::string_view v, AnnotationContext& c) {
  const bool ok = !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_' || ch == '-' || ch == '.';
  });
  if (!ok) return "expected a query parameter name (letters, digits, '_', '-', '.')";
  c.policy.external_auth.redirect_param.assign(v);
  return {};
}

std::string parse_auth_request_redirect(std::string_view v, AnnotationContext& c) {
  const bool ok = !v.empty() && v.size() <= 2048 && std::all_of(v.begin(), v.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u > 0x20 && u < 0x7f && ch != '$';
  });
  if (!ok) return "expected a URL or path (visible ASCII, no variables)";
  c.policy.external_auth.request_redirect.assign(v);
  return {};
}

std::string parse_auth_response_headers_value(std::string_view v, std::vector<std::string>& out) {
  std::vector<std::string> names;
  while (true) {
    const auto comma = v.find(',');
    auto item = v.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!is_token(item) || item.size() > 128) return "expected a comma-separated list of header names";
    std::string name(item);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    // Framing and hop-by-hop fields are the connection's, never the auth service's to set.
    for (const std::string_view framing : {"content-length", "transfer-encoding", "connection", "host",
                                           "upgrade", "keep-alive", "te", "trailer", "proxy-connection"}) {
      if (name == framing) return "\"" + name + "\" cannot be copied to the backend request";
    }
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (names.size() > 32) return "at most 32 header names";
  out = std::move(names);
  return {};
}

std::string parse_auth_response_headers(std::string_view v, AnnotationContext& c) {
  return parse_auth_response_headers_value(v, c.policy.external_auth.response_headers);
}

std::string parse_auth_always_set_cookie(std::string_view v, AnnotationContext& c) {
  return parse_bool(v, c.policy.external_auth.always_set_cookie);
}

// auth-keepalive*: how nginx keeps connections to the auth service. phigate keeps them in the
// worker's upstream pool like a backend's (upstream.keepalive_* apply); auth-keepalive "0" turns
// that off for the Ingress, the others are validated (ingress-nginx's ranges) and documented.
std::string parse_auth_keepalive(std::string_view v, AnnotationContext& c) {
  unsigned n = 0;
  if (!parse_digits(v, n) || n > 10000) return "expected a number of connections, 0 to 10000";
  c.policy.external_auth.keepalive = n > 0;
  return {};
}

std::string parse_auth_keepalive_requests(std::string_view v, AnnotationContext&) {
  unsigned n = 0;
  if (!parse_digits(v, n) || n < 1 || n > 1000000) return "expected a number of requests, 1 to 1000000";
  return {};
}

std::string parse_auth_keepalive_timeout(std::string_view v, AnnotationContext&) {
  unsigned n = 0;
  if (!parse_digits(v, n) || n < 1 || n > 3600) return "expected seconds, 1 to 3600";
  return {};
}

std::string parse_auth_keepalive_share_vars(std::string_view v, AnnotationContext&) {
  bool b = false;
  return parse_bool(v, b);
}

std::string parse_auth_proxy_set_headers(std::string_view v, AnnotationContext& c) {
  return parse_config_map_ref(v, c.ns, c.policy.external_auth.proxy_set_headers_ref);
}

std::string parse_auth_cache_key_value(std::string_view v, std::string& out) {
  constexpr std::string_view kRule =
      "expected text and the variables $http_<name>, $cookie_<name>, $remote_user, $host, $request_uri";
  if (v.empty() || v.size() > 512) return std::string(kRule);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto u = static_cast<unsigned char>(v[i]);
    if (u < 0x20 || u >= 0x7f) return std::string(kRule);
    if (v[i] != '$') continue;
    std::size_t end = i + 1;
    while (end < v.size() && (std::isalnum(static_cast<unsigned char>(v[end])) != 0 || v[end] == '_')) ++end;
    const auto name = v.substr(i + 1, end - i - 1);
    const bool ok = name == "remote_user" || name == "host" || name == "request_uri" ||
                    (name.starts_with("http_") && name.size() > 5) ||
                    (name.starts_with("cookie_") && name.size() > 7);
    if (!ok) return std::string(kRule);
    i = end - 1;
  }
  out.assign(v);
  return {};
}

std::string parse_auth_cache_duration_value(std::string_view v,
                                            std::vector<config::ExternalAuthPolicy::CacheRule>& out) {
  constexpr std::string_view kRule =
      "expected \"[status ...] time\" groups separated by commas (\"200 202 401 5m\"; time 1s to 24h; "
      "status 200 to 599)";
  std::vector<config::ExternalAuthPolicy::CacheRule> rules;
  while (true) {
    const auto comma = v.find(',');
    auto group = v.substr(0, comma);
    std::vector<std::string_view> words;
    while (!group.empty()) {
      while (!group.empty() && group.front() == ' ') group.remove_prefix(1);
      const auto sp = group.find(' ');
      if (!group.empty()) words.push_back(group.substr(0, sp));
      group = sp == std::string_view::npos ? std::string_view{} : group.substr(sp);
    }
    if (words.empty()) return std::string(kRule);
    config::ExternalAuthPolicy::CacheRule rule;
    auto time = words.back();
    std::uint64_t unit = 1;
    if (!time.empty()) {
      switch (time.back()) {
        case 's':
          unit = 1;
          time.remove_suffix(1);
          break;
        case 'm':
          unit = 60;
          time.remove_suffix(1);
          break;
        case 'h':
          unit = 3600;
          time.remove_suffix(1);
          break;
        case 'd':
          unit = 86400;
          time.remove_suffix(1);
          break;
        default:
          return std::string(kRule);  // a unit is required: "200" is no time
      }
    }
    std::uint64_t n = 0;
    if (!parse_digits(time, n) || n == 0 || n > 86400 || n * unit > 86400) return std::string(kRule);
    rule.ttl = std::chrono::seconds(n * unit);
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
      int code = 0;
      if (!parse_digits(words[i], code) || code < 200 || code > 599) return std::string(kRule);
      rule.statuses.push_back(code);
    }
    // nginx's proxy_cache_valid without codes: 200, 301 and 302 (only 200 is an answer here).
    if (rule.statuses.empty()) rule.statuses = {200};
    rules.push_back(std::move(rule));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (rules.size() > 16) return std::string(kRule);
  out = std::move(rules);
  return {};
}

std::string parse_auth_cache_key(std::string_view v, AnnotationContext& c) {
  return parse_auth_cache_key_value(v, c.policy.external_auth.cache_key);
}

std::string parse_auth_cache_duration(std::string_view v, AnnotationContext& c) {
  return parse_auth_cache_duration_value(v, c.policy.external_auth.cache_durations);
}

}  // namespace phigate::ingress::detail
