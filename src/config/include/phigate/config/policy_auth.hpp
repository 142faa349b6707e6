#pragma once
// ingress-nginx basic authentication of one Ingress (auth-type: basic, auth-secret,
// auth-secret-type, auth-realm; phigate.io/auth-forward-authorization): validated values and the
// user table read from the Secret (translate), no logic. The proxy's `auth-basic` phase and
// verifier (proxy/basic_auth.{hpp,cpp}) check the request's credentials against it.
#include <memory>
#include <string>
#include <vector>

namespace phigate::config {

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

}  // namespace phigate::config
