// Upstream-flow annotations (WP6a): proxy-http-version, connection-proxy-header, custom-http-errors,
// default-backend, disable-proxy-intercept-errors, proxy-request-buffering, client-body-buffer-size. Pure
// value parsers; translate() resolves the default-backend Service.
#include <algorithm>
#include <limits>

#include "annotations_impl.hpp"
#include "names_impl.hpp"

namespace phigate::ingress::detail {

std::string parse_proxy_http_version(std::string_view v, AnnotationContext& c) {
  if (v == "1.1") return {};  // what phigate speaks to HTTP backends anyway
  if (v == "1.0") {
    // Valid for ingress-nginx, but phigate has no HTTP/1.0 upstream side: the unsupported policy
    // decides (a warning, or the Ingress fails closed under fail_closed).
    c.unsupported_value = "HTTP/1.0 to backends is not supported (phigate speaks HTTP/1.1 to them)";
    return {};
  }
  return "expected \"1.1\" (or \"1.0\", which phigate does not support)";
}

std::string parse_connection_proxy_header(std::string_view v, AnnotationContext& c) {
  if (v == "close") {
    c.policy.connection_close = true;
  } else if (v == "keep-alive") {
    c.policy.connection_close = false;
  } else {
    return "expected \"close\" or \"keep-alive\"";
  }
  return {};
}

std::string parse_proxy_request_buffering(std::string_view v, AnnotationContext& c) {
  // ingress-nginx: on/off, default on; phigate streams unless "on" is given (off: no change).
  return parse_on_off(v, c.policy.request_buffering);
}

std::string parse_client_body_buffer_size(std::string_view v, AnnotationContext& c) {
  std::uint64_t n = 0;
  auto why = parse_nginx_size(v, n);
  if (why.empty() && n == 0) why = "must be more than 0 (a bound of 0 would refuse every request body)";
  if (why.empty()) c.policy.body_buffer_bytes = n;
  return why;
}

std::string parse_custom_http_errors(std::string_view v, AnnotationContext& c) {
  // ingress-nginx: a comma-separated list of status codes; phigate takes 400 to 599 (an error page
  // for a 2xx or 3xx would hide an answer), spaces around the commas allowed.
  std::vector<std::uint16_t> codes;
  std::size_t start = 0;
  for (;;) {
    const auto comma = v.find(',', start);
    auto item = v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    unsigned code = 0;
    if (item.size() != 3 || !parse_digits(item, code) || code < 400 || code > 599)
      return "expected a comma-separated list of status codes from 400 to 599";
    if (codes.size() >= 200) return "expected at most 200 status codes";
    codes.push_back(static_cast<std::uint16_t>(code));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::sort(codes.begin(), codes.end());
  codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
  c.policy.custom_http_errors = std::move(codes);
  return {};
}

std::string parse_default_backend(std::string_view v, AnnotationContext& c) {
  // A Service of the Ingress's own namespace (ingress-nginx: same namespace, "ns/name" is not read
  // as another namespace): a DNS-1035 label.
  if (!is_dns_label(v) || !(v.front() >= 'a' && v.front() <= 'z'))
    return "expected the name of a Service in the Ingress's namespace (a DNS-1035 label)";
  c.policy.default_backend = std::string(v);
  return {};
}

std::string parse_disable_intercept_errors(std::string_view v, AnnotationContext& c) {
  bool disable = false;
  auto why = parse_bool(v, disable);
  if (why.empty()) c.policy.intercept_errors = !disable;
  return why;
}

}  // namespace phigate::ingress::detail
