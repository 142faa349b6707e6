// Phase `cors` (ingress-nginx enable-cors, cors-*). After the access and fail-closed phases: a
// refused client gets its 403/503, never a 204 that tells it what the origin may do. The Origin
// is matched exactly (never a suffix, never reflected unless listed); a match sets the CORS fields
// of the response (RequestRare::response_fields), and an OPTIONS request is answered here with 204. On
// a route with enable-cors the backend's own Access-Control-* fields are always removed
// (http/response_edits), and `Vary: Origin` is added whenever the origins are a list.
#include <string>
#include <string_view>

#include "phases.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

namespace {

bool ieq(std::string_view a, std::string_view b) {
  return http::iequals(a, b);
}

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/// The parts of an Origin value `scheme://host[:port]` (RFC 6454 §6.1), or false for anything
/// else (a path, userinfo, spaces, an IPv6 literal, an empty part).
bool split_origin(std::string_view o, std::string_view& scheme, std::string_view& host,
                  std::string_view& port) {
  const auto sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  scheme = o.substr(0, sep);
  for (char c : scheme) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  auto rest = o.substr(sep + 3);
  port = {};
  if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (port.empty()) return false;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
    }
  }
  if (rest.empty()) return false;
  for (char c : rest) {
    if (!label_char(c) && c != '.') return false;
  }
  host = rest;
  return true;
}

bool origin_matches(const config::CorsOrigin& e, std::string_view scheme, std::string_view host,
                    std::string_view port) {
  if (!ieq(scheme, e.scheme) || port != e.port) return false;
  if (!e.wildcard) return ieq(host, e.host);
  // "*.example.com": exactly one non-empty DNS label, then ".example.com".
  if (host.size() < e.host.size() + 2) return false;
  const auto label = host.substr(0, host.size() - e.host.size() - 1);
  if (host[label.size()] != '.' || !ieq(host.substr(label.size() + 1), e.host)) return false;
  for (char c : label) {
    if (!label_char(c)) return false;
  }
  return true;
}

void add_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

}  // namespace

bool cors_origin_allowed(const config::CorsPolicy& p, std::string_view origin) {
  if (p.any_origin) return true;
  if (origin == "null") return p.allow_null;  // RFC 6454 §7.3: exactly "null"
  std::string_view scheme, host, port;
  if (!split_origin(origin, scheme, host, port)) return false;
  for (const auto& e : p.origins) {
    if (origin_matches(e, scheme, host, port)) return true;
  }
  return false;
}

namespace phase {

PhaseResult cors(Request& r, const Snapshot&, const ConnectionView&) {
  if (r.policy == nullptr || !r.policy->cors.enabled) return std::nullopt;
  const auto& p = r.policy->cors;
  // The backend's own Access-Control-* fields never reach the client: ours, or none (a backend
  // must not open a route to an origin the Ingress did not list).
  r.rare().edits.drop_access_control = true;
  // A cache must not give one origin's answer to another (Fetch standard §3.2.5), including the
  // answer without CORS fields that an unlisted origin gets.
  if (!p.any_origin) add_field(r.rare().response_fields, "Vary", "Origin");
  std::string_view allow = "*";
  if (!p.any_origin) {
    // Two Origin fields are read differently by different parsers: no CORS at all.
    if (r.head.headers.count("origin") != 1) return std::nullopt;
    const std::string* origin = r.head.headers.find("origin");
    if (!cors_origin_allowed(p, *origin)) return std::nullopt;
    allow = *origin;  // checked: scheme://host[:port] or null, nothing else
  }
  auto& f = r.rare().response_fields;
  add_field(f, "Access-Control-Allow-Origin", allow);
  if (p.credentials) add_field(f, "Access-Control-Allow-Credentials", "true");
  add_field(f, "Access-Control-Allow-Methods", p.methods);
  add_field(f, "Access-Control-Allow-Headers", p.headers);
  add_field(f, "Access-Control-Max-Age", std::to_string(p.max_age));
  if (!p.expose.empty()) add_field(f, "Access-Control-Expose-Headers", p.expose);
  if (r.head.method != "OPTIONS") return std::nullopt;
  // ingress-nginx answers every matched OPTIONS (no Access-Control-Request-Method needed).
  return Decision{
      Outcome::CorsPreflight,
      Error{ErrorKind::Internal, core::ErrorSource::Downstream, core::Retryable::No, "cors preflight"}, false,
      204};
}

PhaseResult response_headers(Request& r, const Snapshot&, const ConnectionView&) {
  // proxy-redirect-*, proxy-cookie-*: what the response editor rewrites in the backend's head;
  // custom-headers: the fields it sets (checked by translate).
  if (r.policy == nullptr) return std::nullopt;
  const auto& h = r.policy->headers;
  if (!h.response_fields.empty()) r.rare().edits.set_fields = h.response_fields;
  if (!h.rewrites()) return std::nullopt;
  auto& e = r.rare().edits;
  e.redirect_from = h.redirect_from;
  e.redirect_to = h.redirect_to;
  e.cookie_domain_from = h.cookie_domain_from;
  e.cookie_domain_to = h.cookie_domain_to;
  e.cookie_path_from = h.cookie_path_from;
  e.cookie_path_to = h.cookie_path_to;
  return std::nullopt;
}

}  // namespace phase

}  // namespace phigate::proxy::detail
