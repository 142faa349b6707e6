#pragma once
// Private to ingress: basic authentication (auth-type, auth-secret, auth-secret-type, auth-realm,
// phigate.io/auth-forward-authorization). The value parsers for the registry rows, and the readers
// of the Secret's user table (translate.cpp), pure and unit-tested.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "annotations_impl.hpp"
#include "phigate/config/policy_auth.hpp"

namespace phigate::ingress::detail {

std::string parse_auth_type(std::string_view v, AnnotationContext& c);
std::string parse_auth_secret(std::string_view v, AnnotationContext& c);
std::string parse_auth_secret_type(std::string_view v, AnnotationContext& c);
std::string parse_auth_realm(std::string_view v, AnnotationContext& c);
std::string parse_auth_forward_authorization(std::string_view v, AnnotationContext& c);
/// satisfy: "any" or "all" (config::Satisfy).
std::string parse_satisfy(std::string_view v, AnnotationContext& c);

// External authentication (annotations_authurl.cpp; docs/auth-external.md).
/// auth-url: http(s)://<svc>.<ns>.svc[.cluster.local][:port][/path[?query]] only (the namespace is
/// checked against the Ingress's and ingress.auth_url_namespaces by translate); "" or why not.
std::string parse_auth_url_value(std::string_view v, config::ExternalAuthPolicy& out);
/// auth-signin: an absolute http(s) URL; $host, $scheme and $escaped_request_uri only.
std::string parse_auth_signin_value(std::string_view v, std::string& out);
/// auth-response-headers: comma list of field names, lower-cased, distinct; no framing fields.
std::string parse_auth_response_headers_value(std::string_view v, std::vector<std::string>& out);
/// auth-cache-key: literal text and $http_<name>, $cookie_<name>, $remote_user, $host,
/// $request_uri only (anything else would be a key phigate cannot expand: refused).
std::string parse_auth_cache_key_value(std::string_view v, std::string& out);
/// auth-cache-duration: "200 202 10m, 401 5m" (statuses 200-599; no status: 200; 1s to 24h).
std::string parse_auth_cache_duration_value(std::string_view v,
                                            std::vector<config::ExternalAuthPolicy::CacheRule>& out);
std::string parse_auth_cache_key(std::string_view v, AnnotationContext& c);
std::string parse_auth_cache_duration(std::string_view v, AnnotationContext& c);
std::string parse_auth_url(std::string_view v, AnnotationContext& c);
std::string parse_auth_method(std::string_view v, AnnotationContext& c);
std::string parse_auth_signin(std::string_view v, AnnotationContext& c);
std::string parse_auth_signin_redirect_param(std::string_view v, AnnotationContext& c);
std::string parse_auth_request_redirect(std::string_view v, AnnotationContext& c);
std::string parse_auth_response_headers(std::string_view v, AnnotationContext& c);
std::string parse_auth_always_set_cookie(std::string_view v, AnnotationContext& c);
std::string parse_auth_keepalive(std::string_view v, AnnotationContext& c);
std::string parse_auth_keepalive_requests(std::string_view v, AnnotationContext& c);
std::string parse_auth_keepalive_timeout(std::string_view v, AnnotationContext& c);
std::string parse_auth_keepalive_share_vars(std::string_view v, AnnotationContext& c);
std::string parse_auth_proxy_set_headers(std::string_view v, AnnotationContext& c);

/// An htpasswd file (auth-file: the Secret's `auth` key) into `out`, sorted by name. Lines are
/// `user:hash`; empty lines and lines starting with '#' are skipped; CR before LF is dropped.
/// Returns "" or what is wrong, naming the line number, never a hash: an empty user, a line
/// without ':', a user repeated, a control character, or no user at all.
std::string parse_htpasswd(std::string_view text, std::vector<config::BasicAuthUser>& out);

/// auth-map: each key of the Secret is a user, its value the hash. Same checks as parse_htpasswd
/// (a user name may not contain ':'); "" or what is wrong, naming the key.
std::string parse_auth_map(const std::map<std::string, std::string>& data,
                           std::vector<config::BasicAuthUser>& out);

}  // namespace phigate::ingress::detail
