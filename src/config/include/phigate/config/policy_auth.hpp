#pragma once
// ingress-nginx basic authentication of one Ingress (auth-type: basic, auth-secret,
// auth-secret-type, auth-realm; phigate.io/auth-forward-authorization): validated values and the
// user table read from the Secret (translate), no logic. The proxy's `auth-basic` phase and
// verifier (proxy/basic_auth.{hpp,cpp}) check the request's credentials against it.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace phigate::config {

/// satisfy (ingress-nginx; nginx's `satisfy` directive): All (default) every access check must
/// pass; Any: a client in the path's allowlist (whitelist-/allowlist-source-range) needs no
/// authentication (auth-type: basic, auth-url), and one outside it is not refused by the allowlist
/// but must authenticate. Never relaxed: the denylist, the global access lists, client
/// certificates, a failed-closed Ingress. Without an allowlist or without authentication, Any is
/// All. The proxy's `access`, `auth-basic` and `auth-external` phases apply it (docs/auth-basic.md).
enum class Satisfy { All, Any };

/// One user of the Secret: its name and its password hash exactly as htpasswd wrote it (bcrypt
/// `$2y$`, `$apr1$`, `{SHA}`, crypt, or plain text), checked by APR's apr_password_validate.
struct BasicAuthUser {
  std::string name;
  std::string hash;
};

struct BasicAuthPolicy {
  bool enabled = false;   // auth-type: basic
  std::string secret;     // auth-secret, "ns/name" (the Ingress's own namespace)
  bool auth_map = false;  // auth-secret-type: auth-map (one key per user); default auth-file (key `auth`)
  std::string realm;      // auth-realm (ingress-nginx's default: "")
  bool forward_authorization = false;  // phigate.io/auth-forward-authorization: "true"
  /// The users, sorted by name, distinct (translate, from the Secret). Shared: the table can be
  /// large and every path of the Ingress points at the same one.
  std::shared_ptr<const std::vector<BasicAuthUser>> users{};
};

/// ingress-nginx external authentication (auth-url and its settings; docs/auth-external.md): every
/// request first goes, without its body, to a Service of the cluster that answers 2xx (allowed),
/// 401 (sign in), 403 (denied). Validated values, no logic; the proxy's `auth-external` phase and
/// its subrequest (proxy/auth_external.{hpp,cpp}) enforce it.
struct ExternalAuthPolicy {
  bool enabled = false;        // auth-url set (and valid)
  bool global_enabled = true;  // enable-global-auth (default true): ingress.global_auth applies
  bool global = false;         // these settings are ingress.global_auth's (the operator's)
  bool https = false;          // auth-url's scheme
  /// auth-url's host as written: "<svc>.<ns>.svc[.cluster.local]" (the Host of the subrequest,
  /// and the name the Service's certificate is verified against under https).
  std::string host;
  std::string service;                // <svc>
  std::string namespace_;             // <ns> (the Ingress's own, or one of ingress.auth_url_namespaces)
  int port = 0;                       // the Service port named (default 80 / 443)
  std::string target;                 // path and query of auth-url ("/oauth2/auth?x=1")
  std::string method = "GET";         // auth-method: an HTTP token
  std::string signin;                 // auth-signin: absolute http(s) URL; "" none (a 401 is relayed)
  std::string redirect_param = "rd";  // auth-signin-redirect-param
  std::string request_redirect;       // auth-request-redirect: X-Auth-Request-Redirect ("" the URI)
  /// auth-response-headers: lower-case field names copied from the auth answer to the backend
  /// request; the client's own fields of these names are always removed.
  std::vector<std::string> response_headers;
  bool always_set_cookie = false;  // auth-always-set-cookie
  /// auth-keepalive: "0" closes each auth connection after its answer (ingress-nginx's default);
  /// unset or N > 0: kept in the worker's upstream pool (docs/auth-external.md).
  bool keepalive = true;
  /// auth-proxy-set-headers: "ns/name" of a ConfigMap of the Ingress's namespace, and (translate)
  /// its fields as "Name: value\r\n" lines added to the subrequest.
  std::string proxy_set_headers_ref;
  std::string request_fields;
  /// auth-cache-key: literal text and the variables $http_<name>, $cookie_<name>, $remote_user,
  /// $host, $request_uri (validated); "" no cache. Answers are cached per worker under its
  /// expansion for the time auth-cache-duration gives their status.
  std::string cache_key;
  struct CacheRule {
    std::vector<int> statuses;  // 200 to 599
    std::chrono::seconds ttl{};
  };
  /// auth-cache-duration (default, with a key: "200 202 401 5m", as ingress-nginx).
  std::vector<CacheRule> cache_durations;
};

}  // namespace phigate::config
