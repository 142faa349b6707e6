#pragma once
// ingress-nginx response header rewrites of one Ingress (proxy-redirect-from/-to,
// proxy-cookie-domain, proxy-cookie-path), the response fields of custom-headers and the request
// fields of phigate.io/proxy-set-headers: validated literal values, no logic. The proxy applies the
// response side to the backend's head (http/response_edits.hpp) and the request side where the
// upstream head is built (proxy/upstream_head.cpp).
#include <string>

namespace phigate::config {

struct HeaderPolicy {
  std::string redirect_from, redirect_to;            // "" from: off (also "off" and "default")
  std::string cookie_domain_from, cookie_domain_to;  // "" from: off
  std::string cookie_path_from, cookie_path_to;      // "" from: off
  // custom-headers: "ns/name" of a ConfigMap of the Ingress's namespace ("" none), and, once
  // translate resolved it, its fields as "Name: value\r\n" lines (names and values checked: tokens
  // in ingress.allowed_response_headers, not on the deny list; visible ASCII values).
  std::string custom_headers_ref;
  std::string response_fields;
  // phigate.io/proxy-set-headers: "ns/name" of a ConfigMap of the Ingress's namespace ("" none), and
  // its fields as "Name: value\r\n" lines, sent to the backend (static values, deny-listed names
  // refused by translate).
  std::string proxy_set_headers_ref;
  std::string request_fields;
  bool rewrites() const noexcept {
    return !redirect_from.empty() || !cookie_domain_from.empty() || !cookie_path_from.empty();
  }
};

}  // namespace phigate::config
