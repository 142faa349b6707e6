#include "phigate/ingress/annotations.hpp"

#include "phigate/config/loader.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "annotations_canary_impl.hpp"
#include "names_impl.hpp"

namespace phigate::ingress {

std::string quote_value(std::string_view value, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool cut = value.size() > max;
  if (cut) value = value.substr(0, max);
  std::string out = "\"";
  out.reserve(value.size() + 2);
  // The value is attacker-controlled (anyone who may create an Ingress): escape what could forge a
  // log line or break out of the quotes.
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  out += '"';
  if (cut) out += " (truncated)";
  return out;
}

namespace {

/// State shared by the value parsers of one Ingress.
struct Context {
  config::RoutePolicy& policy;
  std::string_view ns;
  bool verify_client_set = false;
  std::vector<std::string> allowlist;
  std::vector<std::string> whitelist;
};

/// Parses one value into the policy; returns "" when valid, else what is wrong (never the value).
using Parser = std::string (*)(std::string_view value, Context& c);

std::string parse_bool(std::string_view v, bool& out) {
  if (v == "true") {
    out = true;
  } else if (v == "false") {
    out = false;
  } else {
    return "expected \"true\" or \"false\"";
  }
  return {};
}

std::string parse_on_off(std::string_view v, bool& out) {
  if (v == "on") {
    out = true;
  } else if (v == "off") {
    out = false;
  } else {
    return "expected \"on\" or \"off\"";
  }
  return {};
}

/// Decimal digits only: no sign, no spaces, no "0x" (from_chars alone would accept a leading '-').
template <class Int>
bool parse_digits(std::string_view v, Int& out) {
  if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && ptr == v.data() + v.size();
}

std::string parse_depth(std::string_view v, int& out) {
  int d = 0;
  if (!parse_digits(v, d) || d < 1 || d > 10) return "expected an integer from 1 to 10";
  out = d;
  return {};
}

/// nginx time syntax restricted to one unit: "30" (seconds, ingress-nginx style), "30s", "500ms",
/// "2m", "1h"; between 1ms and 1h.
std::string parse_timeout(std::string_view v, std::optional<config::Duration>& out) {
  static constexpr std::string_view kWhat =
      "expected seconds (\"30\") or a duration (\"500ms\", \"30s\", \"2m\") from 1ms to 1h";
  config::Duration d{};
  if (!config::parse_duration(std::string(v), d) || d < std::chrono::milliseconds(1) ||
      d > std::chrono::hours(1)) {
    return std::string(kWhat);
  }
  out = d;
  return {};
}

/// nginx size syntax: an integer with an optional k/K, m/M or g/G (binary multiples); "0" is unlimited.
std::string parse_body_size(std::string_view v, Context& c) {
  static constexpr std::string_view kWhat = "expected a size such as 0 (unlimited), 1024, 512k, 8m or 1g";
  if (v.empty()) return std::string(kWhat);
  std::uint64_t mult = 1;
  switch (v.back()) {
    case 'k':
    case 'K':
      mult = 1ULL << 10;
      break;
    case 'm':
    case 'M':
      mult = 1ULL << 20;
      break;
    case 'g':
    case 'G':
      mult = 1ULL << 30;
      break;
    default:
      break;
  }
  if (mult != 1) v.remove_suffix(1);
  std::uint64_t n = 0;
  if (!parse_digits(v, n) || n > std::numeric_limits<std::uint64_t>::max() / mult) return std::string(kWhat);
  c.policy.body_size = n * mult;
  return {};
}

/// Comma-separated CIDRs or addresses, spaces allowed around the commas.
std::string parse_ranges(std::string_view v, std::vector<std::string>& out) {
  std::vector<std::string> ranges;
  for (;;) {
    const auto comma = v.find(',');
    auto item = v.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    auto cidr = detail::canonical_cidr(item);
    if (!cidr) {
      return "expected comma-separated IPv4/IPv6 CIDRs or addresses with the host bits zero, e.g. "
             "\"10.0.0.0/8, 2001:db8::/32\"";
    }
    ranges.push_back(std::move(*cidr));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  out = std::move(ranges);
  return {};
}

/// "ns/name" or "name" (the Ingress's namespace). Cross-namespace references are refused, as with
/// ingress-nginx's allow-cross-namespace-resources=false: otherwise anyone allowed to create an
/// Ingress could use another namespace's client key or CA (confused deputy).
std::string parse_secret_ref(std::string_view v, std::string_view ns, std::string& out) {
  const auto slash = v.find('/');
  const auto secret_ns = slash == std::string_view::npos ? ns : v.substr(0, slash);
  const auto name = slash == std::string_view::npos ? v : v.substr(slash + 1);
  if (!detail::is_dns_label(secret_ns) || !detail::is_dns_name(name)) {
    return "expected a Secret reference \"namespace/name\" or \"name\"";
  }
  if (secret_ns != ns) return "must name a Secret in the Ingress's own namespace";
  out = std::string(secret_ns) + "/" + std::string(name);
  return {};
}

std::string parse_verify_client(std::string_view v, Context& c) {
  using config::VerifyClient;
  if (v == "on") {
    c.policy.verify_client = VerifyClient::On;
  } else if (v == "off") {
    c.policy.verify_client = VerifyClient::Off;
  } else if (v == "optional") {
    c.policy.verify_client = VerifyClient::Optional;
  } else if (v == "optional_no_ca") {
    c.policy.verify_client = VerifyClient::OptionalNoCa;
  } else {
    return "expected on, off, optional or optional_no_ca";
  }
  c.verify_client_set = true;
  return {};
}

std::string parse_backend_protocol(std::string_view v, Context& c) {
  const auto lower = detail::to_lower(v);
  if (lower == "http") {
    c.policy.backend_protocol = config::BackendProtocol::Http;
  } else if (lower == "https") {
    c.policy.backend_protocol = config::BackendProtocol::Https;
  } else if (lower == "grpc") {
    c.policy.backend_protocol = config::BackendProtocol::Grpc;  // HTTP/2 with prior knowledge
  } else if (lower == "grpcs") {
    c.policy.backend_protocol = config::BackendProtocol::Grpcs;  // HTTP/2 over TLS, ALPN h2
  } else {
    return "expected HTTP, HTTPS, GRPC or GRPCS (AJP, FCGI and AUTO_HTTP are not supported)";
  }
  return {};
}

std::string parse_proxy_ssl_name(std::string_view v, Context& c) {
  const auto name = detail::to_lower(v);
  if (!detail::is_dns_name(name)) return "expected a DNS name";
  c.policy.proxy_ssl_name = name;
  return {};
}

std::string parse_proxy_ssl_protocols(std::string_view v, Context& c) {
  bool v12 = false;
  bool v13 = false;
  bool any = false;
  for (;;) {
    const auto space = v.find(' ');
    const auto token = v.substr(0, space);
    if (token == "TLSv1.2") {
      v12 = any = true;
    } else if (token == "TLSv1.3") {
      v13 = any = true;
    } else if (!token.empty()) {
      return "expected a space-separated subset of TLSv1.2 TLSv1.3";
    }
    if (space == std::string_view::npos) break;
    v.remove_prefix(space + 1);
  }
  if (!any) return "expected a space-separated subset of TLSv1.2 TLSv1.3";
  c.policy.proxy_ssl_protocols = v12 && v13 ? "TLSv1.2 TLSv1.3" : (v12 ? "TLSv1.2" : "TLSv1.3");
  return {};
}

std::string parse_cipher_list(std::string_view v, std::string& into) {
  const auto ok = [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           std::string_view(":+!@=_-").find(ch) != std::string_view::npos;
  };
  if (v.empty() || v.size() > 4096 || !std::all_of(v.begin(), v.end(), ok)) {
    return "expected an OpenSSL cipher list (letters, digits and : + ! @ = _ -)";
  }
  into = std::string(v);
  return {};
}

std::string parse_proxy_ssl_ciphers(std::string_view v, Context& c) {
  return parse_cipher_list(v, c.policy.proxy_ssl_ciphers);
}

std::string parse_load_balance(std::string_view v, Context& c) {
  if (v == "round_robin") {
    c.policy.load_balance = config::LoadBalance::RoundRobin;
  } else if (v == "least_request") {
    c.policy.load_balance = config::LoadBalance::LeastRequest;
  } else if (v == "ewma") {
    c.policy.load_balance = config::LoadBalance::Ewma;
  } else {
    return "expected round_robin, least_request or ewma";
  }
  c.policy.load_balance_set = true;
  return {};
}

// Cookie affinity. Every session-cookie-* value ends up in a Set-Cookie response field, and the
// Ingress author is an untrusted tenant: a CR/LF would add response headers (response splitting),
// a ';' or ',' would add cookie attributes (e.g. Domain= to plant the cookie on a parent domain),
// so each value is checked against a closed grammar and never pasted as text.

std::string parse_affinity(std::string_view v, Context& c) {
  if (v != "cookie") return "expected \"cookie\" (the only affinity type)";
  c.policy.affinity_cookie = true;
  return {};
}

std::string parse_affinity_mode(std::string_view v, Context& c) {
  if (v == "balanced") {
    c.policy.affinity_persistent = false;
  } else if (v == "persistent") {
    c.policy.affinity_persistent = true;
  } else {
    return "expected balanced or persistent";
  }
  return {};
}

/// RFC 6265 §4.1.1 cookie-name: an RFC 9110 token, at most 128 bytes.
std::string parse_cookie_name(std::string_view v, Context& c) {
  static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  const bool ok = !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           kTchar.find(ch) != std::string_view::npos;
  });
  if (!ok) return "expected a cookie name (1 to 128 letters, digits and !#$%&'*+-.^_`|~)";
  c.policy.session_cookie_name = std::string(v);
  return {};
}

/// RFC 6265 path-value, stricter: absolute, visible ASCII, no ';' ',' or space.
std::string parse_cookie_path(std::string_view v, Context& c) {
  const bool ok = !v.empty() && v.size() <= 1024 && v.front() == '/' &&
                  std::all_of(v.begin(), v.end(),
                              [](char ch) { return ch > 0x20 && ch < 0x7f && ch != ';' && ch != ','; });
  if (!ok) return "expected an absolute path (\"/app\"): visible ASCII without ';', ',' or spaces";
  c.policy.session_cookie_path = std::string(v);
  return {};
}

/// Seconds, 1 to 10 years (Max-Age=0 would delete the cookie at once).
std::string parse_cookie_seconds(std::string_view v, std::uint64_t& out) {
  constexpr std::uint64_t kTenYears = 10ULL * 366 * 24 * 3600;
  std::uint64_t n = 0;
  if (!parse_digits(v, n) || n == 0 || n > kTenYears)
    return "expected seconds from 1 to 316224000 (10 years)";
  out = n;
  return {};
}

std::string parse_cookie_samesite(std::string_view v, Context& c) {
  const auto lower = detail::to_lower(v);
  if (lower == "strict") {
    c.policy.session_cookie_samesite = "Strict";
  } else if (lower == "lax") {
    c.policy.session_cookie_samesite = "Lax";
  } else if (lower == "none") {
    c.policy.session_cookie_samesite = "None";
  } else {
    return "expected Strict, Lax or None";
  }
  return {};
}

/// One nginx variable from a closed list: the value is later used to pick an upstream, never
/// expanded as text, so anything else (e.g. "$request_uri$host" or a literal) is refused.
std::string parse_hash_by(std::string_view v, Context& c) {
  static constexpr std::array<std::string_view, 5> kPlain = {"$request_uri", "$uri", "$host", "$remote_addr",
                                                             "$binary_remote_addr"};
  static constexpr std::array<std::string_view, 3> kTokenPrefixes = {"$http_", "$cookie_", "$arg_"};
  bool ok = std::find(kPlain.begin(), kPlain.end(), v) != kPlain.end();
  for (const auto prefix : kTokenPrefixes) {
    if (ok || v.substr(0, prefix.size()) != prefix) continue;
    const auto token = v.substr(prefix.size());
    ok = !token.empty() && token.size() <= 256 && std::all_of(token.begin(), token.end(), [](char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
             ch == '-';
    });
  }
  if (!ok) {
    return "expected one of $request_uri, $uri, $host, $remote_addr, $binary_remote_addr, $http_<name>, "
           "$cookie_<name>, $arg_<name>";
  }
  c.policy.upstream_hash_by = std::string(v);
  return {};
}

/// phigate.io/health-check-path: the path probed with GET. It goes into a request line, so printable
/// ASCII without spaces only (a CR/LF would let an Ingress author forge probe requests).
std::string parse_health_path(std::string_view v, Context& c) {
  if (v.empty() || v.front() != '/' || v.size() > 1024 ||
      !std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; })) {
    return "expected a path starting with '/', printable ASCII without spaces, at most 1024 bytes";
  }
  c.policy.health_check_path = std::string(v);
  return {};
}

std::string parse_health_port(std::string_view v, Context& c) {
  int port = 0;
  if (!parse_digits(v, port) || port < 1 || port > 65535) return "expected a port from 1 to 65535";
  c.policy.health_check_port = port;
  return {};
}

std::string parse_health_threshold(std::string_view v, std::optional<unsigned>& out) {
  unsigned n = 0;
  if (!parse_digits(v, n) || n < 1 || n > 100) return "expected an integer from 1 to 100";
  out = n;
  return {};
}

/// Seconds ("5") or a duration ("500ms", "5s", "1m"), from `min` to `max`.
std::string parse_health_duration(std::string_view v, config::Duration min,
                                  std::optional<config::Duration>& out,
                                  config::Duration max = std::chrono::hours(1)) {
  config::Duration d{};
  if (!config::parse_duration(std::string(v), d) || d < min || d > max) {
    return "expected seconds (\"5\") or a duration (\"500ms\", \"5s\", \"1m\") from " +
           std::to_string(min.count()) + "ms to " + std::to_string(max.count() / 1000) + "s";
  }
  out = d;
  return {};
}

/// A canary annotation's parser (annotations_canary.cpp) as a table row's Parser.
template <std::string (*F)(std::string_view, config::CanaryPolicy&)>
std::string canary(std::string_view v, Context& c) {
  return F(v, c.policy.canary);
}

/// Why a parsed annotation has no effect yet (nothing in phigate reads its field), or nullptr when
/// it is enforced. Only annotations that do not decide who can reach what may be here: an
/// unenforced access-control annotation is an error (fail closed), never a warning.
struct Known {
  std::string_view name;
  Parser parse;
  const char* not_enforced = nullptr;
};

// Sorted by name (binary search; checked below).
constexpr Known kKnown[] = {
    {"affinity", parse_affinity},
    {"affinity-canary-behavior", canary<detail::parse_affinity_canary_behavior>},
    {"affinity-mode", parse_affinity_mode},
    {"allowlist-source-range", [](std::string_view v, Context& c) { return parse_ranges(v, c.allowlist); }},
    {"auth-tls-pass-certificate-to-upstream",
     [](std::string_view v, Context& c) { return parse_bool(v, c.policy.auth_tls_pass_certificate); }},
    {"auth-tls-secret",
     [](std::string_view v, Context& c) { return parse_secret_ref(v, c.ns, c.policy.auth_tls_secret); }},
    {"auth-tls-verify-client", parse_verify_client},
    {"auth-tls-verify-depth",
     [](std::string_view v, Context& c) { return parse_depth(v, c.policy.auth_tls_verify_depth); }},
    {"backend-protocol", parse_backend_protocol},
    {"canary", canary<detail::parse_canary>},
    {"canary-by-cookie", canary<detail::parse_canary_cookie>},
    {"canary-by-header", canary<detail::parse_canary_header>},
    {"canary-by-header-pattern", canary<detail::parse_canary_header_pattern>},
    {"canary-by-header-value", canary<detail::parse_canary_header_value>},
    {"canary-weight", canary<detail::parse_canary_weight>},
    {"canary-weight-total", canary<detail::parse_canary_weight_total>},
    {"denylist-source-range",
     [](std::string_view v, Context& c) { return parse_ranges(v, c.policy.deny_source_ranges); }},
    {"force-ssl-redirect",
     [](std::string_view v, Context& c) { return parse_bool(v, c.policy.force_ssl_redirect); }},
    {"health-check-healthy-threshold",
     [](std::string_view v, Context& c) {
       return parse_health_threshold(v, c.policy.health_check_healthy_threshold);
     }},
    {"health-check-interval",
     [](std::string_view v, Context& c) {
       return parse_health_duration(v, std::chrono::milliseconds(100), c.policy.health_check_interval);
     }},
    {"health-check-path", parse_health_path},
    {"health-check-port", parse_health_port},
    {"health-check-timeout",
     [](std::string_view v, Context& c) {
       // At most 60 s: every probe holds a socket on the checker thread until its timeout, and an
       // Ingress author must not be able to park thousands of them for an hour.
       return parse_health_duration(v, std::chrono::milliseconds(10), c.policy.health_check_timeout,
                                    std::chrono::seconds(60));
     }},
    {"health-check-unhealthy-threshold",
     [](std::string_view v, Context& c) {
       return parse_health_threshold(v, c.policy.health_check_unhealthy_threshold);
     }},
    {"hsts", [](std::string_view v, Context& c) { return parse_bool(v, c.policy.hsts); }},
    {"load-balance", parse_load_balance},
    {"phi", [](std::string_view v, Context& c) { return parse_bool(v, c.policy.phi); }},
    {"proxy-body-size", parse_body_size},
    {"proxy-connect-timeout",
     [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.connect_timeout); }},
    {"proxy-next-upstream",
     [](std::string_view v, Context& c) {
       std::uint16_t bits = 0;
       auto why = config::parse_next_upstream(v, bits);
       if (why.empty()) c.policy.next_upstream = bits;
       return why;
     }},
    {"proxy-next-upstream-timeout",
     [](std::string_view v, Context& c) {
       // ingress-nginx: seconds, "0" = no limit.
       if (v == "0") {
         c.policy.next_upstream_timeout = config::Duration{0};
         return std::string();
       }
       return parse_timeout(v, c.policy.next_upstream_timeout);
     }},
    {"proxy-next-upstream-tries",
     [](std::string_view v, Context& c) {
       unsigned n = 0;
       if (!parse_digits(v, n) || n > 100)
         return std::string("expected an integer from 0 (as many as endpoints) to 100");
       c.policy.next_upstream_tries = n;
       return std::string();
     }},
    {"proxy-read-timeout",
     [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.read_timeout); }},
    {"proxy-send-timeout",
     [](std::string_view v, Context& c) { return parse_timeout(v, c.policy.send_timeout); }},
    {"proxy-ssl-ciphers", parse_proxy_ssl_ciphers},
    {"proxy-ssl-name", parse_proxy_ssl_name},
    {"proxy-ssl-protocols", parse_proxy_ssl_protocols},
    {"proxy-ssl-secret",
     [](std::string_view v, Context& c) { return parse_secret_ref(v, c.ns, c.policy.proxy_ssl_secret); }},
    {"proxy-ssl-server-name",
     [](std::string_view v, Context& c) { return parse_on_off(v, c.policy.proxy_ssl_server_name); }},
    {"proxy-ssl-verify",
     [](std::string_view v, Context& c) { return parse_on_off(v, c.policy.proxy_ssl_verify); }},
    {"proxy-ssl-verify-depth",
     [](std::string_view v, Context& c) { return parse_depth(v, c.policy.proxy_ssl_verify_depth); }},
    {"session-cookie-expires",
     [](std::string_view v, Context& c) { return parse_cookie_seconds(v, c.policy.session_cookie_expires); }},
    {"session-cookie-max-age",
     [](std::string_view v, Context& c) { return parse_cookie_seconds(v, c.policy.session_cookie_max_age); }},
    {"session-cookie-name", parse_cookie_name},
    {"session-cookie-path", parse_cookie_path},
    {"session-cookie-samesite", parse_cookie_samesite},
    {"session-cookie-secure",
     [](std::string_view v, Context& c) { return parse_bool(v, c.policy.session_cookie_secure); }},
    {"ssl-ciphers",
     [](std::string_view v, Context& c) { return parse_cipher_list(v, c.policy.ssl_ciphers); }},
    {"ssl-redirect", [](std::string_view v, Context& c) { return parse_bool(v, c.policy.ssl_redirect); }},
    {"upstream-hash-by", parse_hash_by},
    {"whitelist-source-range", [](std::string_view v, Context& c) { return parse_ranges(v, c.whitelist); }},
};
/// The annotation tables below are sorted by name (checked at compile time) and searched by it.
template <class Row, std::size_t N>
constexpr bool sorted_by_name(const Row (&table)[N]) {
  return std::is_sorted(std::begin(table), std::end(table),
                        [](const Row& a, const Row& b) { return a.name < b.name; });
}
template <class Row, std::size_t N>
const Row* find_by_name(const Row (&table)[N], std::string_view name) {
  const auto* it = std::lower_bound(std::begin(table), std::end(table), name,
                                    [](const Row& r, std::string_view n) { return r.name < n; });
  return it != std::end(table) && it->name == name ? it : nullptr;
}

static_assert(sorted_by_name(kKnown));

const Known* find_known(std::string_view name) {
  return find_by_name(kKnown, name);
}

// ingress-nginx features phigate does not have, whose absence changes who can reach what or where
// traffic goes: served without them, clients over a rate or connection limit would get through,
// requests a WAF would block would reach the backend, TLS meant for the backend would end here. The
// rule: an unsupported setting that changes who can reach what fails closed; it is never silently
// ignored. So each of these is an error unless its value is exactly the one that turns it off
// (ingress-nginx: "0" = no limit, "false"), which only warns that it has no effect. An explicit
// list, not a pattern: names that only shape traffic (timeouts, CORS, rewrites) stay warnings.
struct Refused {
  std::string_view name;
  std::string_view off;  // the value that asks for nothing: a warning
  bool boolean;          // "true"/"false" only: another value is invalid (an error too)
  bool limit;            // a rate or connection limit (limit-burst-multiplier scales these)
  std::string_view why;  // the error for any other value, after `<key>="<value>": `
};

constexpr std::string_view kRateLimit = "rate limits are not enforced by phigate: the Ingress fails closed";
constexpr std::string_view kNoWaf =
    "phigate has no web application firewall (ModSecurity): the Ingress must not be served as if it "
    "were protected, so it fails closed";

// Sorted by name (binary search; checked below).
constexpr Refused kRefused[] = {
    {"enable-modsecurity", "false", true, false, kNoWaf},
    {"enable-owasp-core-rules", "false", true, false, kNoWaf},
    {"global-rate-limit", "0", false, true, kRateLimit},
    {"global-rate-limit-ignored-cidrs", "0", false, true, kRateLimit},
    {"global-rate-limit-key", "0", false, true, kRateLimit},
    {"global-rate-limit-window", "0", false, true, kRateLimit},
    {"limit-connections", "0", false, true,
     "connection limits are not enforced by phigate: the Ingress fails closed"},
    {"limit-rate", "0", false, true,
     "response bandwidth limits are not enforced by phigate: the Ingress fails closed"},
    {"limit-rate-after", "0", false, true,
     "response bandwidth limits are not enforced by phigate: the Ingress fails closed"},
    {"limit-rpm", "0", false, true, kRateLimit},
    {"limit-rps", "0", false, true, kRateLimit},
    {"ssl-passthrough", "false", true, false,
     "TLS passthrough is not supported (phigate terminates TLS): the Ingress fails closed"},
};
static_assert(sorted_by_name(kRefused));

const Refused* find_refused(std::string_view name) {
  return find_by_name(kRefused, name);
}

void dedupe_in_order(std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (auto& s : v) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  v = std::move(out);
}

/// The key as written when it is plain printable ASCII (always, from the API server, which validates
/// keys); quoted and escaped like a value otherwise. Manifest files read from a directory are not
/// validated, and fail_closed reaches the log: a raw CR/LF there forges log lines. Found by
/// fuzz/annotations.cpp.
std::string loggable_key(const std::string& key) {
  const bool plain = std::all_of(key.begin(), key.end(),
                                 [](char c) { return c > 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  return plain ? key : quote_value(key, 320);
}

/// Lower case with '_' read as '-': how a typo such as "Auth_TLS_Secret" is recognised.
std::string fold(std::string_view s) {
  auto out = detail::to_lower(s);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

bool names_source_ranges(std::string_view folded) {
  for (const auto word : {"source-range", "allowlist", "whitelist", "denylist", "blacklist"}) {
    if (folded.find(word) != std::string_view::npos) return true;
  }
  return false;
}

/// Annotations that restrict who may reach a backend. Dropping one with a warning would serve the
/// backend without the restriction its owner asked for (fail open), so an unsupported one is an
/// error. Matched loosely (case, '_' for '-', any "…source-range…"), so that a misspelled
/// "whitelist-source-ranges" or "Auth-TLS-Secret" fails closed instead of being ignored.
bool is_access_control(std::string_view name) {
  const auto n = fold(name);
  return n.rfind("auth", 0) == 0 || n == "satisfy" || names_source_ranges(n);
}

/// A key outside our two prefixes that still reads as an ingress-nginx access-control annotation
/// ("nginx.ingress.kubernetes.io.auth-tls-secret", "ingress.kubernetes.io/whitelist-source-range",
/// a bare "auth-tls-secret"): its author expects a restriction that nothing would enforce.
bool is_misprefixed_access_control(std::string_view key) {
  const auto k = fold(key);
  const bool meant_for_us = k.find('/') == std::string::npos || k.find("nginx") != std::string::npos ||
                            k.find("phigate") != std::string::npos || k.find("ingress") != std::string::npos;
  if (!meant_for_us) return false;
  for (const auto word : {"auth-tls", "auth-url", "auth-type", "auth-secret", "satisfy"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  return names_source_ranges(k);
}

}  // namespace

bool is_canary(const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kPhigatePrefix) + "canary");
  if (it == annotations.end()) it = annotations.find(std::string(kNginxPrefix) + "canary");
  // Only what ingress-nginx itself takes for a canary: an Ingress it serves as an ordinary one
  // (say "False", or a typo) must never vanish here, or its paths would fall through to a broader
  // route without its own access policy (review finding F1).
  return it != annotations.end() && detail::go_bool_true(it->second);
}

ParsedAnnotations parse_annotations(const std::map<std::string, std::string>& annotations,
                                    std::string_view ns) {
  ParsedAnnotations out;
  Context c{out.policy, ns, false, {}, {}};
  const auto problem = [&](config::Severity sev, const std::string& key, const std::string& value,
                           std::string message) {
    out.problems.push_back({sev, key, quote_value(value), std::move(message)});
  };

  // name → the key that sets it; phigate.io/ wins over nginx.ingress.kubernetes.io/.
  std::map<std::string_view, const std::pair<const std::string, std::string>*> effective;
  for (const auto& kv : annotations) {
    const std::string_view key = kv.first;
    const bool phigate = key.substr(0, kPhigatePrefix.size()) == kPhigatePrefix;
    const bool nginx = key.substr(0, kNginxPrefix.size()) == kNginxPrefix;
    if (!phigate && !nginx) {
      if (is_misprefixed_access_control(key)) {
        problem(config::Severity::Error, kv.first, kv.second,
                "looks like an access-control annotation, but its prefix is neither " +
                    std::string(kNginxPrefix) + " nor " + std::string(kPhigatePrefix) +
                    ": nothing would enforce it, so the Ingress fails closed");
      }
      continue;
    }
    const auto name = key.substr(phigate ? kPhigatePrefix.size() : kNginxPrefix.size());
    // CVE-2025-1974 ("IngressNightmare"): snippets paste raw text into the proxy configuration.
    // Refuse them under either prefix, whatever the value, even when overridden.
    if (name.find("snippet") != std::string_view::npos) {
      problem(config::Severity::Error, kv.first, kv.second,
              "snippet annotations are not supported (raw configuration injection, CVE-2025-1974)");
      continue;
    }
    auto [it, inserted] = effective.emplace(name, &kv);
    if (!inserted && phigate) it->second = &kv;
  }

  out.canary = is_canary(annotations);
  bool limit_refused = false;  // a rate or connection limit is an error (the Ingress fails closed)
  for (const auto& [name, kv] : effective) {
    if (const Known* k = find_known(name)) {
      if (auto message = k->parse(kv->second, c); !message.empty()) {
        problem(config::Severity::Error, kv->first, kv->second, std::move(message));
      } else if (k->not_enforced != nullptr) {
        // Accepted (ingress-nginx manifests carry it) but said out loud: its owner may rely on it.
        out.not_enforced.push_back({kv->first, k->not_enforced});
      }
    } else if (const Refused* r = find_refused(name)) {
      const std::string_view v = kv->second;
      // The key under the other prefix: one prefix may not switch off what the other asks for
      // (a policy engine may require the nginx key; review finding F2).
      const bool phigate_key = std::string_view(kv->first).substr(0, kPhigatePrefix.size()) == kPhigatePrefix;
      const auto other =
          annotations.find(std::string(phigate_key ? kNginxPrefix : kPhigatePrefix) + std::string(name));
      const bool other_asks = other != annotations.end() && other->second != r->off;
      const bool off = v == r->off;
      if (off && other_asks) {
        problem(config::Severity::Error, kv->first, kv->second,
                "switches off what " + loggable_key(other->first) + "=" + quote_value(other->second) +
                    " asks for: the Ingress fails closed until the two agree");
      } else if (off) {
        problem(config::Severity::Warning, kv->first, kv->second,
                quote_value(v) + " turns it off: no effect");
      } else if (r->boolean && v != "true") {
        problem(config::Severity::Error, kv->first, kv->second, "expected \"true\" or \"false\"");
      } else {
        out.problems.push_back(
            {config::Severity::Error, kv->first, quote_value(kv->second),
             loggable_key(kv->first) + "=" + quote_value(kv->second) + ": " + std::string(r->why), true});
        limit_refused = limit_refused || r->limit;
      }
    } else if (name == "limit-burst-multiplier") {
      continue;  // they only modify a refused feature: below
    } else if (name == "modsecurity-transaction-id") {
      problem(config::Severity::Warning, kv->first, kv->second,
              "has no effect: phigate has no web application firewall (ModSecurity)");
    } else if (is_access_control(name)) {
      problem(
          config::Severity::Error, kv->first, kv->second,
          "unsupported access-control annotation: phigate cannot enforce it, so the Ingress fails closed");
    } else {
      problem(config::Severity::Warning, kv->first, kv->second, "unknown or unsupported annotation: ignored");
    }
  }

  auto& p = out.policy;
  const auto key_of = [&](std::string_view name) -> const std::pair<const std::string, std::string>* {
    const auto it = effective.find(name);
    return it == effective.end() ? nullptr : it->second;
  };
  // ingress-nginx: auth-tls-verify-client defaults to "on" once auth-tls-secret is set.
  if (!p.auth_tls_secret.empty() && !c.verify_client_set) p.verify_client = config::VerifyClient::On;
  if (p.auth_tls_secret.empty() && c.verify_client_set &&
      (p.verify_client == config::VerifyClient::On || p.verify_client == config::VerifyClient::Optional)) {
    const auto* kv = key_of("auth-tls-verify-client");
    problem(config::Severity::Error, kv->first, kv->second,
            "requires auth-tls-secret (the CA to verify against)");
  }
  // Cookie settings without `affinity: cookie` do nothing (as in ingress-nginx): say so.
  if (!p.affinity_cookie) {
    for (const auto name :
         {"affinity-mode", "session-cookie-expires", "session-cookie-max-age", "session-cookie-name",
          "session-cookie-path", "session-cookie-samesite", "session-cookie-secure"}) {
      const auto* kv = key_of(name);
      if (kv == nullptr || std::any_of(out.problems.begin(), out.problems.end(),
                                       [&](const AnnotationProblem& pr) { return pr.key == kv->first; })) {
        continue;  // absent, or already an error
      }
      problem(config::Severity::Warning, kv->first, kv->second, "has no effect without affinity: cookie");
    }
  }
  // limit-burst-multiplier only scales limit-rps/limit-rpm: next to a refused limit it adds nothing
  // to that error; without one it does nothing (as in ingress-nginx). canary-* only tune a canary:
  // without `canary: "true"` they do nothing, whatever their value (ingress-nginx drops them).
  if (const auto* kv = key_of("limit-burst-multiplier"); kv != nullptr && !limit_refused) {
    problem(config::Severity::Warning, kv->first, kv->second,
            "has no effect: no rate limit is set (and phigate enforces none)");
  }
  if (const auto* kv = key_of("canary"); kv != nullptr) {
    if (auto why = detail::canary_prefix_conflict(annotations); !why.empty()) {
      problem(config::Severity::Error, kv->first, kv->second, std::move(why));
    }
  }
  if (!out.canary) {
    for (const auto& [name, kv] : effective) {
      if (detail::is_canary_tuning(name)) {
        const auto& key = kv->first;
        std::erase_if(out.problems, [&](const AnnotationProblem& pr) { return pr.key == key; });
        problem(config::Severity::Warning, kv->first, kv->second,
                "has no effect: the Ingress is not a canary (canary is not \"true\")");
      }
    }
  }
  // proxy-ssl-* shape the TLS connection to an HTTPS backend; over plain HTTP they do nothing,
  // and their owner may believe the backend traffic is encrypted: said out loud.
  if (p.backend_protocol != config::BackendProtocol::Https &&
      p.backend_protocol != config::BackendProtocol::Grpcs) {
    for (const auto& [name, kv] : effective) {
      if (name.rfind("proxy-ssl-", 0) == 0) {
        out.not_enforced.push_back(
            {kv->first, "has no effect: the backend is plain HTTP (backend-protocol is not HTTPS or GRPCS)"});
      }
    }
  }
  // allowlist- and whitelist- are two names of one list (ingress-nginx renamed it): merge them.
  for (auto* list : {&c.allowlist, &c.whitelist}) {
    for (auto& r : *list) p.allow_source_ranges.push_back(std::move(r));
  }
  for (auto* list : {&p.allow_source_ranges, &p.deny_source_ranges}) dedupe_in_order(*list);

  std::stable_sort(out.problems.begin(), out.problems.end(),
                   [](const AnnotationProblem& a, const AnnotationProblem& b) { return a.key < b.key; });
  for (const auto& pr : out.problems) {
    if (pr.severity == config::Severity::Error) {
      out.fail_closed = (pr.unsupported ? "unsupported annotation " : "invalid annotation ") +
                        loggable_key(pr.key) + "=" + pr.value;
      break;
    }
  }
  return out;
}

}  // namespace phigate::ingress
