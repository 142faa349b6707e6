#pragma once
// The annotation value parsers (annotations.cpp) and the state they share, for the registry table
// (annotation_registry.cpp). Private to the ingress library. A new parser: define it in namespace
// detail (annotations.cpp, or a file of its group), declare it here, and name it in its registry row
// (`supported(name, parser, group, behaviour[, difference])`).
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/annotation_registry.hpp"

namespace phigate::ingress::detail {

/// State shared by the value parsers of one Ingress.
struct AnnotationContext {
  config::RoutePolicy& policy;
  std::string_view ns;
  bool verify_client_set = false;
  std::vector<std::string> allowlist;
  std::vector<std::string> whitelist;
  /// Set by a parser whose value is valid but asks for what phigate lacks (proxy-http-version
  /// "1.0"): that annotation is then handled as Unsupported (a warning, or an error under
  /// ingress.unsupported_annotations: fail_closed). Cleared before each parser runs.
  std::string unsupported_value{};
};

/// The parsers' own name for it (an AnnotationParser is `std::string (*)(std::string_view, Context&)`).
using Context = AnnotationContext;

/// Decimal digits only: no sign, no spaces, no "0x" (from_chars alone would accept a leading '-').
template <class Int>
bool parse_digits(std::string_view v, Int& out) {
  if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc{} && ptr == v.data() + v.size();
}

// Each returns "" when the value is valid, else what is wrong (never the value).
std::string parse_bool(std::string_view v, bool& out);
std::string parse_on_off(std::string_view v, bool& out);
std::string parse_depth(std::string_view v, int& out);
std::string parse_timeout(std::string_view v, std::optional<config::Duration>& out);
std::string parse_body_size(std::string_view v, AnnotationContext& c);
/// nginx size syntax (\d+[bBkKmMgG]?, binary multiples), e.g. client-body-buffer-size.
std::string parse_nginx_size(std::string_view v, std::uint64_t& out);
std::string parse_ranges(std::string_view v, std::vector<std::string>& out);
std::string parse_secret_ref(std::string_view v, std::string_view ns, std::string& out);
std::string parse_config_map_ref(std::string_view v, std::string_view ns, std::string& out);
std::string parse_verify_client(std::string_view v, AnnotationContext& c);
std::string parse_backend_protocol(std::string_view v, AnnotationContext& c);
std::string parse_proxy_ssl_name(std::string_view v, AnnotationContext& c);
std::string parse_proxy_ssl_protocols(std::string_view v, AnnotationContext& c);
std::string parse_cipher_list(std::string_view v, std::string& into);
std::string parse_proxy_ssl_ciphers(std::string_view v, AnnotationContext& c);
std::string parse_load_balance(std::string_view v, AnnotationContext& c);
std::string parse_affinity(std::string_view v, AnnotationContext& c);
std::string parse_affinity_mode(std::string_view v, AnnotationContext& c);
std::string parse_cookie_name(std::string_view v, AnnotationContext& c);
std::string parse_cookie_path(std::string_view v, AnnotationContext& c);
std::string parse_cookie_seconds(std::string_view v, std::uint64_t& out);
std::string parse_cookie_samesite(std::string_view v, AnnotationContext& c);
std::string parse_hash_by(std::string_view v, AnnotationContext& c);
std::string parse_health_path(std::string_view v, AnnotationContext& c);
std::string parse_health_port(std::string_view v, AnnotationContext& c);
std::string parse_health_threshold(std::string_view v, std::optional<unsigned>& out);
std::string parse_health_duration(std::string_view v, config::Duration min,
                                  std::optional<config::Duration>& out,
                                  config::Duration max = std::chrono::hours(1));
// annotations_upstream.cpp
std::string parse_proxy_http_version(std::string_view v, AnnotationContext& c);
std::string parse_connection_proxy_header(std::string_view v, AnnotationContext& c);
std::string parse_proxy_request_buffering(std::string_view v, AnnotationContext& c);
std::string parse_client_body_buffer_size(std::string_view v, AnnotationContext& c);
std::string parse_custom_http_errors(std::string_view v, AnnotationContext& c);
std::string parse_default_backend(std::string_view v, AnnotationContext& c);
std::string parse_disable_intercept_errors(std::string_view v, AnnotationContext& c);

}  // namespace phigate::ingress::detail
