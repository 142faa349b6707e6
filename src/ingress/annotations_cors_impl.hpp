#pragma once
// Private to ingress: the value parsers of the CORS annotations (annotations_cors.cpp), named in
// the registry (annotation_registry.cpp). Each returns "" when the value is valid (and sets its
// field), else what is wrong (never the value). An invalid value is an error (the Ingress fails
// closed), not ingress-nginx's silent fall back to the default.
#include <string>
#include <string_view>

#include "phigate/config/policy_cors.hpp"
#include "phigate/config/policy_headers.hpp"

namespace phigate::ingress::detail {

std::string parse_enable_cors(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_allow_origin(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_allow_methods(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_allow_headers(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_expose_headers(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_allow_credentials(std::string_view v, config::CorsPolicy& out);
std::string parse_cors_max_age(std::string_view v, config::CorsPolicy& out);

// proxy-redirect-from/-to, proxy-cookie-domain, proxy-cookie-path (annotations_cors.cpp too:
// response fields). Literal forms only: nginx's `~regex` and `$variables` are errors.
std::string parse_proxy_redirect_from(std::string_view v, config::HeaderPolicy& out);
std::string parse_proxy_redirect_to(std::string_view v, config::HeaderPolicy& out);
std::string parse_proxy_cookie_domain(std::string_view v, config::HeaderPolicy& out);
std::string parse_proxy_cookie_path(std::string_view v, config::HeaderPolicy& out);

/// One origin entry without "*" (`scheme://host[:port]` or `scheme://*.suffix[:port]`), or false.
bool parse_cors_origin(std::string_view v, config::CorsOrigin& out);

}  // namespace phigate::ingress::detail
