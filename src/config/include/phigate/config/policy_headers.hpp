#pragma once
// ingress-nginx response header rewrites of one Ingress (proxy-redirect-from/-to,
// proxy-cookie-domain, proxy-cookie-path): validated literal values, no logic. The proxy applies
// them to the backend's Location, Refresh and Set-Cookie fields (http/response_edits.hpp).
#include <string>

namespace phigate::config {

struct HeaderPolicy {
  std::string redirect_from, redirect_to;            // "" from: off (also "off" and "default")
  std::string cookie_domain_from, cookie_domain_to;  // "" from: off
  std::string cookie_path_from, cookie_path_to;      // "" from: off
  bool rewrites() const noexcept {
    return !redirect_from.empty() || !cookie_domain_from.empty() || !cookie_path_from.empty();
  }
};

}  // namespace phigate::config
