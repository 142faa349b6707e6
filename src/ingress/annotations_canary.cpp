// The canary annotations' value grammars (ingress-nginx AN/canary): strict, typed, no logic.
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "annotations_canary_impl.hpp"
#include "phigate/ingress/annotations.hpp"

namespace phigate::ingress::detail {

namespace {

/// A field or cookie name: RFC 9110 token characters that ingress-nginx's BasicChars also allows.
bool name_chars(std::string_view v) {
  return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
  });
}

/// ingress-nginx's BasicChars class: `/-._~a-zA-Z0-9:`.
bool basic_chars(std::string_view v) {
  return !v.empty() && v.size() <= 256 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == ':';
  });
}

bool digits(std::string_view v, std::uint32_t& out) {
  if (v.empty() || v.size() > 9 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && ptr == v.data() + v.size();
}

constexpr std::uint32_t kMaxWeight = 1'000'000;

}  // namespace

bool go_bool_true(std::string_view v) {
  return v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "true" || v == "True";
}
bool go_bool_false(std::string_view v) {
  return v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "false" || v == "False";
}

bool is_canary_tuning(std::string_view name) {
  return name.rfind("canary-", 0) == 0 || name == "affinity-canary-behavior";
}

std::string parse_canary(std::string_view v, config::CanaryPolicy& out) {
  if (go_bool_true(v)) {
    out.enabled = true;
  } else if (go_bool_false(v)) {
    out.enabled = false;
  } else {
    // ingress-nginx serves it as an ordinary Ingress (an invalid value defaults to false); which
    // was meant is unknowable, so it fails closed: its paths stay claimed and answer 503.
    return "expected \"true\" or \"false\" (ingress-nginx: an invalid value is not a canary): the Ingress "
           "fails closed";
  }
  return {};
}

std::string parse_canary_header(std::string_view v, config::CanaryPolicy& out) {
  if (!name_chars(v))
    return "expected a header field name (letters, digits, '-', '_', '.', '~'; at most 128)";
  out.header.assign(v);
  return {};
}

std::string parse_canary_header_value(std::string_view v, config::CanaryPolicy& out) {
  if (!basic_chars(v)) return "expected letters, digits and /-._~: (at most 256)";
  out.header_value.assign(v);
  return {};
}

std::string parse_canary_header_pattern(std::string_view v, config::CanaryPolicy& out) {
  if (v.empty() || v.size() > 1024 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return "expected a regular expression of printable ASCII (at most 1024 bytes)";
  }
  RE2::Options o;
  o.set_log_errors(false);
  o.set_max_mem(1 << 20);
  const RE2 re(re2::StringPiece(v.data(), v.size()), o);
  if (!re.ok())
    return "not a regular expression RE2 accepts (no backreferences or lookaround): " + re.error();
  out.header_pattern.assign(v);
  return {};
}

std::string parse_canary_cookie(std::string_view v, config::CanaryPolicy& out) {
  if (!name_chars(v)) return "expected a cookie name (letters, digits, '-', '_', '.', '~'; at most 128)";
  out.cookie.assign(v);
  return {};
}

std::string parse_canary_weight(std::string_view v, config::CanaryPolicy& out) {
  std::uint32_t w = 0;
  if (!digits(v, w) || w > kMaxWeight) return "expected an integer from 0 to 1000000";
  out.weight = w;
  return {};
}

std::string parse_canary_weight_total(std::string_view v, config::CanaryPolicy& out) {
  std::uint32_t w = 0;
  if (!digits(v, w) || w < 1 || w > kMaxWeight) return "expected an integer from 1 to 1000000";
  out.weight_total = w;
  return {};
}

std::string parse_affinity_canary_behavior(std::string_view v, config::CanaryPolicy& out) {
  if (v == "sticky") {
    out.legacy_affinity = false;
  } else if (v == "legacy") {
    out.legacy_affinity = true;
  } else {
    return "expected \"sticky\" or \"legacy\"";
  }
  return {};
}

std::string canary_prefix_conflict(const std::map<std::string, std::string>& annotations) {
  const auto p = annotations.find(std::string(kPhigatePrefix) + "canary");
  const auto n = annotations.find(std::string(kNginxPrefix) + "canary");
  if (p == annotations.end() || n == annotations.end()) return {};
  if (go_bool_true(p->second) == go_bool_true(n->second)) return {};
  return "disagrees with " + n->first + "=" + quote_value(n->second) +
         " (one is a canary, the other not): the Ingress fails closed until the two agree";
}

}  // namespace phigate::ingress::detail
