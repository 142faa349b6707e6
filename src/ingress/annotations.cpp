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
#include "annotations_impl.hpp"
#include "annotations_rewrite.hpp"
#include "names_impl.hpp"
#include "phigate/ingress/annotation_registry.hpp"

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

namespace detail {

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

std::string parse_nginx_size(std::string_view v, std::uint64_t& out) {
  // nginx's size syntax as ingress-nginx checks it (\d+[bkmg]?, upper-case accepted as nginx does):
  // digits and one optional unit, binary multiples; nothing else (no sign, spaces or fractions).
  static constexpr std::string_view kWhat =
      "expected a size such as 8192, 16k, 8m or 1g (digits, then b, k, m or g)";
  if (v.empty()) return std::string(kWhat);
  std::uint64_t mult = 0;  // 0: no unit
  switch (v.back()) {
    case 'b':
    case 'B':
      mult = 1;
      break;
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
  if (mult != 0) v.remove_suffix(1);
  if (mult == 0) mult = 1;
  std::uint64_t n = 0;
  if (!parse_digits(v, n) || n > std::numeric_limits<std::uint64_t>::max() / mult) return std::string(kWhat);
  out = n * mult;
  return {};
}

/// proxy-body-size: an nginx size; "0" is unlimited.
std::string parse_body_size(std::string_view v, AnnotationContext& c) {
  std::uint64_t n = 0;
  auto why = parse_nginx_size(v, n);
  if (why.empty()) c.policy.body_size = n;
  return why;
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

/// "ns/name" or "name" of a ConfigMap (custom-headers, proxy-set-headers): the Ingress's own
/// namespace only, as ingress-nginx ("Only ConfigMaps on the same namespace are allowed"): another
/// namespace's headers are not for this Ingress's author to use.
std::string parse_config_map_ref(std::string_view v, std::string_view ns, std::string& out) {
  const auto slash = v.find('/');
  const auto map_ns = slash == std::string_view::npos ? ns : v.substr(0, slash);
  const auto name = slash == std::string_view::npos ? v : v.substr(slash + 1);
  if (!detail::is_dns_label(map_ns) || !detail::is_dns_name(name)) {
    return "expected a ConfigMap reference \"namespace/name\" or \"name\"";
  }
  if (map_ns != ns) return "must name a ConfigMap in the Ingress's own namespace";
  out = std::string(map_ns) + "/" + std::string(name);
  return {};
}

std::string parse_verify_client(std::string_view v, AnnotationContext& c) {
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

std::string parse_backend_protocol(std::string_view v, AnnotationContext& c) {
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

std::string parse_proxy_ssl_name(std::string_view v, AnnotationContext& c) {
  const auto name = detail::to_lower(v);
  if (!detail::is_dns_name(name)) return "expected a DNS name";
  c.policy.proxy_ssl_name = name;
  return {};
}

std::string parse_proxy_ssl_protocols(std::string_view v, AnnotationContext& c) {
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

std::string parse_proxy_ssl_ciphers(std::string_view v, AnnotationContext& c) {
  return parse_cipher_list(v, c.policy.proxy_ssl_ciphers);
}

std::string parse_load_balance(std::string_view v, AnnotationContext& c) {
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

std::string parse_affinity(std::string_view v, AnnotationContext& c) {
  if (v != "cookie") return "expected \"cookie\" (the only affinity type)";
  c.policy.affinity_cookie = true;
  return {};
}

std::string parse_affinity_mode(std::string_view v, AnnotationContext& c) {
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
std::string parse_cookie_name(std::string_view v, AnnotationContext& c) {
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
std::string parse_cookie_path(std::string_view v, AnnotationContext& c) {
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

std::string parse_cookie_samesite(std::string_view v, AnnotationContext& c) {
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
std::string parse_hash_by(std::string_view v, AnnotationContext& c) {
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
std::string parse_health_path(std::string_view v, AnnotationContext& c) {
  if (v.empty() || v.front() != '/' || v.size() > 1024 ||
      !std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; })) {
    return "expected a path starting with '/', printable ASCII without spaces, at most 1024 bytes";
  }
  c.policy.health_check_path = std::string(v);
  return {};
}

std::string parse_health_port(std::string_view v, AnnotationContext& c) {
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
                                  std::optional<config::Duration>& out, config::Duration max) {
  config::Duration d{};
  if (!config::parse_duration(std::string(v), d) || d < min || d > max) {
    return "expected seconds (\"5\") or a duration (\"500ms\", \"5s\", \"1m\") from " +
           std::to_string(min.count()) + "ms to " + std::to_string(max.count() / 1000) + "s";
  }
  out = d;
  return {};
}

}  // namespace detail

namespace {

using detail::AnnotationContext;

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

namespace {}  // namespace

bool is_canary(const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kPhigatePrefix) + "canary");
  if (it == annotations.end()) it = annotations.find(std::string(kNginxPrefix) + "canary");
  // Only what ingress-nginx itself takes for a canary: an Ingress it serves as an ordinary one
  // (say "False", or a typo) must never vanish here, or its paths would fall through to a broader
  // route without its own access policy (review finding F1).
  return it != annotations.end() && detail::go_bool_true(it->second);
}

ParsedAnnotations parse_annotations(const std::map<std::string, std::string>& annotations,
                                    std::string_view ns, const AnnotationOptions& options) {
  ParsedAnnotations out;
  AnnotationContext c{out.policy, ns, false, {}, {}, {}};
  const auto problem = [&](config::Severity sev, const std::string& key, const std::string& value,
                           std::string message) {
    out.problems.push_back({sev, key, quote_value(value), std::move(message)});
  };
  // An error whose message reads `<key>="<value>": why` by itself (a feature phigate lacks).
  const auto refuse = [&](const std::string& key, const std::string& value, std::string_view why) {
    out.problems.push_back({config::Severity::Error, key, quote_value(value),
                            loggable_key(key) + "=" + quote_value(value) + ": " + std::string(why), true});
  };
  const auto unhonoured = [&](const std::string& key, Support support, std::string_view why) {
    // A later, stronger reason (no effect) replaces a documented difference for the same key.
    std::erase_if(out.unhonoured, [&](const UnhonouredAnnotation& u) { return u.key == key; });
    out.unhonoured.push_back({key, support, std::string(why)});
  };
  const bool fail_unsupported = options.unsupported == config::UnsupportedAnnotations::FailClosed;
  constexpr std::string_view kFailUnsupported =
      ": ingress.unsupported_annotations is fail_closed, so the Ingress fails closed";

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
    const std::string& key = kv->first;
    const std::string_view v = kv->second;
    const AnnotationInfo* a = find_annotation(name);
    if (a == nullptr) {
      if (is_access_control(name)) {
        problem(config::Severity::Error, key, kv->second,
                "unsupported access-control annotation: phigate cannot enforce it, so the Ingress fails "
                "closed");
      } else if (fail_unsupported) {
        refuse(key, kv->second, std::string("unknown annotation") + std::string(kFailUnsupported));
      } else {
        problem(config::Severity::Warning, key, kv->second, "unknown annotation: ignored");
        unhonoured(key, Support::Unsupported, "unknown annotation: ignored");
      }
      continue;
    }
    switch (a->support) {
      case Support::Supported:
      case Support::SupportedWithDifferences:
        c.unsupported_value.clear();
        if (auto message = a->parse(v, c); !message.empty()) {
          problem(config::Severity::Error, key, kv->second, std::move(message));
        } else if (!c.unsupported_value.empty()) {
          // A valid value asking for what phigate lacks: as an Unsupported row.
          if (fail_unsupported) {
            refuse(key, kv->second,
                   "unsupported value (" + c.unsupported_value + ")" + std::string(kFailUnsupported));
          } else {
            problem(config::Severity::Warning, key, kv->second,
                    "unsupported value, ignored: " + c.unsupported_value);
            unhonoured(key, Support::Unsupported, c.unsupported_value);
          }
        } else if (a->support == Support::SupportedWithDifferences) {
          unhonoured(key, a->support, a->difference);
        }
        break;
      case Support::NoEffect:
        // These only tune a feature another annotation asks for: said below, once that is known.
        if (name.rfind("canary-", 0) == 0 || name == "affinity-canary-behavior") {
          break;
        }
        problem(config::Severity::Warning, key, kv->second, "has no effect: " + std::string(a->behaviour));
        unhonoured(key, Support::NoEffect, a->behaviour);
        break;
      case Support::Unsupported:
        if (fail_unsupported) {
          refuse(
              key, kv->second,
              "unsupported annotation (" + std::string(a->behaviour) + ")" + std::string(kFailUnsupported));
        } else {
          problem(config::Severity::Warning, key, kv->second,
                  "unsupported annotation, ignored: " + std::string(a->behaviour));
          unhonoured(key, Support::Unsupported, a->behaviour);
        }
        break;
      case Support::Refused: {
        // The key under the other prefix: one prefix may not switch off what the other asks for
        // (a policy engine may require the nginx key; review finding F2).
        const bool phigate_key = std::string_view(key).substr(0, kPhigatePrefix.size()) == kPhigatePrefix;
        const auto other =
            annotations.find(std::string(phigate_key ? kNginxPrefix : kPhigatePrefix) + std::string(name));
        const bool other_asks = other != annotations.end() && other->second != a->off;
        const bool off = !a->off.empty() && v == a->off;
        if (off && other_asks) {
          problem(config::Severity::Error, key, kv->second,
                  "switches off what " + loggable_key(other->first) + "=" + quote_value(other->second) +
                      " asks for: the Ingress fails closed until the two agree");
        } else if (off) {
          problem(config::Severity::Warning, key, kv->second, quote_value(v) + " turns it off: no effect");
          unhonoured(key, Support::NoEffect, quote_value(v) + " turns it off");
        } else if (a->off == "false" && v != "true") {
          problem(config::Severity::Error, key, kv->second, "expected \"true\" or \"false\"");
        } else {
          refuse(key, kv->second, a->behaviour);
          limit_refused = limit_refused || a->group == "rate-limit";
        }
        break;
      }
    }
  }

  // ssl-passthrough decides who decrypts the connection: one prefix may not switch off what the
  // other asks for (as a Refused row; review finding F2).
  {
    const auto n = annotations.find(std::string(kNginxPrefix) + "ssl-passthrough");
    const auto ph = annotations.find(std::string(kPhigatePrefix) + "ssl-passthrough");
    if (n != annotations.end() && ph != annotations.end() && n->second != ph->second) {
      problem(config::Severity::Error, ph->first, ph->second,
              "disagrees with " + loggable_key(n->first) + "=" + quote_value(n->second) +
                  ": the Ingress fails closed until the two agree");
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
  // Basic authentication: auth-type: basic needs its Secret; a Secret without auth-type is refused
  // too (ingress-nginx would serve the paths without authentication: the owner asked for some).
  if (const auto* kv = key_of("auth-type"); kv != nullptr && p.basic_auth.enabled &&
                                            p.basic_auth.secret.empty() && key_of("auth-secret") == nullptr) {
    problem(config::Severity::Error, kv->first, kv->second, "requires auth-secret (the users)");
  }
  if (const auto* kv = key_of("auth-secret"); kv != nullptr && key_of("auth-type") == nullptr) {
    problem(config::Severity::Error, kv->first, kv->second,
            "requires auth-type: basic (ingress-nginx would serve the paths without authentication)");
  }
  if (key_of("auth-type") == nullptr) {
    for (const auto name : {"auth-realm", "auth-secret-type", "auth-forward-authorization"}) {
      const auto* kv = key_of(name);
      if (kv == nullptr || std::any_of(out.problems.begin(), out.problems.end(),
                                       [&](const AnnotationProblem& pr) { return pr.key == kv->first; })) {
        continue;
      }
      problem(config::Severity::Warning, kv->first, kv->second, "has no effect without auth-type: basic");
      unhonoured(kv->first, Support::NoEffect, "without auth-type: basic");
    }
  }
  // proxy-redirect-from without -to would cut the prefix off every Location: refused.
  if (!p.headers.redirect_from.empty() && p.headers.redirect_to.empty()) {
    const auto* kv = key_of("proxy-redirect-from");
    problem(config::Severity::Error, kv->first, kv->second,
            "requires proxy-redirect-to (what replaces the prefix)");
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
      unhonoured(kv->first, Support::NoEffect, "without affinity: cookie");
    }
  }
  // A rate limit decides who is served: one prefix may not loosen what the other asks for (a
  // policy engine may require the nginx key; phigate.io/limit-rps: "0" must not undo it).
  for (const auto name : {"limit-rps", "limit-rpm", "limit-connections", "limit-burst-multiplier",
                          "limit-allowlist", "limit-whitelist", "limit-rate", "limit-rate-after"}) {
    const auto n = annotations.find(std::string(kNginxPrefix) + name);
    const auto ph = annotations.find(std::string(kPhigatePrefix) + name);
    if (n != annotations.end() && ph != annotations.end() && n->second != ph->second) {
      problem(config::Severity::Error, ph->first, ph->second,
              "disagrees with " + loggable_key(n->first) + "=" + quote_value(n->second) +
                  ": the Ingress fails closed until the two agree");
    }
  }
  // limit-burst-multiplier only scales limit-rps/limit-rpm, limit-allowlist only exempts from the
  // limits: without one they do nothing (as in ingress-nginx); next to a refused limit they add
  // nothing to that error. canary-* only tune a canary: without `canary: "true"` they do nothing,
  // whatever their value (ingress-nginx drops them).
  if (const auto* kv = key_of("limit-burst-multiplier");
      kv != nullptr && !limit_refused && p.rate_limit.rps == 0 && p.rate_limit.rpm == 0) {
    problem(config::Severity::Warning, kv->first, kv->second,
            "has no effect: no limit-rps or limit-rpm is set");
    unhonoured(kv->first, Support::NoEffect, "no limit-rps or limit-rpm is set");
  }
  for (const auto name : {"limit-allowlist", "limit-whitelist"}) {
    if (const auto* kv = key_of(name); kv != nullptr && !limit_refused && !p.rate_limit.any()) {
      problem(config::Severity::Warning, kv->first, kv->second,
              "has no effect: no limit-rps, limit-rpm or limit-connections is set");
      unhonoured(kv->first, Support::NoEffect, "no limit-rps, limit-rpm or limit-connections is set");
    }
  }
  if (const auto* kv = key_of("canary"); kv != nullptr) {
    if (auto why = detail::canary_prefix_conflict(annotations); !why.empty()) {
      problem(config::Severity::Error, kv->first, kv->second, std::move(why));
      // Not a canary then: an ordinary Ingress that fails closed, its paths claimed (503), so
      // they never fall through to a broader route without its policy.
      out.canary = false;
    }
  }
  if (!out.canary) {
    for (const auto& [name, kv] : effective) {
      if (detail::is_canary_tuning(name)) {
        // Whatever their value (ingress-nginx drops them): a parse error here is only a warning.
        const auto& key = kv->first;
        std::erase_if(out.problems, [&](const AnnotationProblem& pr) { return pr.key == key; });
        problem(config::Severity::Warning, kv->first, kv->second,
                "has no effect: the Ingress is not a canary (canary is not \"true\")");
        unhonoured(kv->first, Support::NoEffect, "the Ingress is not a canary (canary is not \"true\")");
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
        unhonoured(kv->first, Support::NoEffect,
                   "the backend is plain HTTP (backend-protocol is not HTTPS or GRPCS)");
      }
    }
  }
  // connection-proxy-header: close is never applied to a WebSocket upgrade (ingress-nginx's would
  // break it): said out loud, since its owner may count on every backend connection closing.
  if (const auto* kv = key_of("connection-proxy-header"); kv != nullptr && p.connection_close) {
    out.not_enforced.push_back(
        {kv->first, "is not applied to WebSocket upgrades: they keep Connection: upgrade to the backend"});
  }
  // client-body-buffer-size bounds proxy-request-buffering only; gRPC streams are never buffered
  // (a stream of messages has no end to wait for).
  if (const auto* kv = key_of("client-body-buffer-size"); kv != nullptr && !p.request_buffering) {
    out.not_enforced.push_back(
        {kv->first, "has no effect: request bodies are streamed (proxy-request-buffering is not \"on\")"});
    unhonoured(kv->first, Support::NoEffect,
               "request bodies are streamed (proxy-request-buffering is not \"on\")");
  }
  if (const auto* kv = key_of("proxy-request-buffering");
      kv != nullptr && p.request_buffering &&
      (p.backend_protocol == config::BackendProtocol::Grpc ||
       p.backend_protocol == config::BackendProtocol::Grpcs)) {
    p.request_buffering = false;
    out.not_enforced.push_back({kv->first, "has no effect: gRPC requests are streamed, never buffered"});
    unhonoured(kv->first, Support::NoEffect, "gRPC requests are streamed, never buffered");
  }
  // custom-http-errors need an error backend: phigate has no global one, only default-backend.
  if (const auto* kv = key_of("custom-http-errors");
      kv != nullptr && !p.custom_http_errors.empty() && p.default_backend.empty()) {
    out.not_enforced.push_back(
        {kv->first,
         "has no effect: custom-http-errors has no error backend (no default-backend annotation): "
         "errors pass through"});
    unhonoured(kv->first, Support::NoEffect, "no default-backend annotation: errors pass through");
  }
  // allowlist- and whitelist- are two names of one list (ingress-nginx renamed it): merge them.
  for (auto* list : {&c.allowlist, &c.whitelist}) {
    for (auto& r : *list) p.allow_source_ranges.push_back(std::move(r));
  }
  for (auto* list : {&p.allow_source_ranges, &p.deny_source_ranges}) dedupe_in_order(*list);

  std::stable_sort(out.problems.begin(), out.problems.end(),
                   [](const AnnotationProblem& a, const AnnotationProblem& b) { return a.key < b.key; });
  std::stable_sort(
      out.unhonoured.begin(), out.unhonoured.end(),
      [](const UnhonouredAnnotation& a, const UnhonouredAnnotation& b) { return a.key < b.key; });
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
