#pragma once
// ingress-nginx CORS annotations of one Ingress (enable-cors, cors-allow-origin, -methods,
// -headers, -expose-headers, -credentials, -max-age): validated values, no logic. The proxy's
// `cors` phase (proxy/phases_cors.cpp) matches the request's Origin and builds the fields.
#include <cstdint>
#include <string>
#include <vector>

namespace phigate::config {

/// One cors-allow-origin entry: `scheme://host[:port]`, or `scheme://*.suffix[:port]` (exactly one
/// DNS label before the suffix). Scheme and host lower-cased; port as written ("" when none).
struct CorsOrigin {
  std::string scheme;  // "https"
  std::string host;    // "app.example", or the suffix "example.com" when wildcard
  std::string port;    // "8443"; "" matches only an Origin without a port
  bool wildcard = false;
};

struct CorsPolicy {
  bool enabled = false;     // enable-cors: "true"
  bool any_origin = true;   // cors-allow-origin "*" (the default; "*" anywhere in the list)
  bool allow_null = false;  // "null" is listed
  std::vector<CorsOrigin> origins;
  // The field values as sent, lists joined with ", " (ingress-nginx's defaults until set).
  std::string methods = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
  std::string headers =
      "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,"
      "Authorization";
  std::string expose;       // "" : no Access-Control-Expose-Headers
  bool credentials = true;  // Access-Control-Allow-Credentials: true
  std::uint32_t max_age = 1728000;
};

}  // namespace phigate::config
