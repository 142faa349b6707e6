#pragma once
// Private to proxy: ingress-nginx custom-http-errors and default-backend (docs/annotations.md,
// "errors"). Sans-I/O: which answers are replaced by an error page, and the head of the request
// that fetches it from the error backend. The attempt loops (proxy_connection.cpp) do the I/O.
#include <string>
#include <string_view>

#include "phigate/config/spec.hpp"
#include "phigate/http/headers.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// What the error backend is told (ingress-nginx's X-* fields). Views into the request.
struct ErrorPageFields {
  int code = 0;                   // X-Code: the status being replaced
  std::string_view format;        // X-Format: the client's Accept ("" when none: not sent)
  std::string_view original_uri;  // X-Original-URI: the client's (normalised) target
  std::string_view ns;            // X-Namespace
  std::string_view ingress;       // X-Ingress-Name
  std::string_view service;       // X-Service-Name
  std::string_view service_port;  // X-Service-Port
  std::string_view request_id;    // X-Request-ID
};

/// Whether custom-http-errors replace `status`: listed, and (for a backend's own answer, `own`
/// false) interception not disabled. phigate's own upstream errors (`own` true: 502, 503, 504 from
/// connect, timeout or no endpoint) take the page whatever disable-proxy-intercept-errors says.
/// Never for a policy without a default-backend (there is nowhere to fetch a page from) or gRPC.
bool replaces_status(const config::RoutePolicy* policy, int status, bool own) noexcept;

/// Whether the backend's answer with `status` must be dropped unseen: `replaces_status` for a
/// backend answer, plus the policy naming an error backend. Its body is never read, so the
/// upstream connection must be discarded, never pooled.
inline bool intercepts(const config::RoutePolicy* policy, int status) noexcept {
  return replaces_status(policy, status, false);
}

/// The fields for request `r` (its Ingress, route Service and port, Accept), views into `r`.
ErrorPageFields error_page_fields(const Request& r, int code, std::string_view original_uri,
                                  std::string_view request_id);

/// Replaces whatever the client sent under the X-* names above by ours, in `headers` (the original
/// request sent to the default-backend when its path has no ready endpoint). A client cannot
/// choose X-Code or any of them.
void set_error_page_fields(http::HeaderList& headers, const ErrorPageFields& f);

/// The complete head of the error-page request: `GET /` (HEAD for a HEAD request) HTTP/1.1,
/// Host (the client's), the X-* fields, X-Forwarded-For (when known), no body. Appended to `out`.
void append_error_page_head(std::string& out, std::string_view method, std::string_view host,
                            std::string_view forwarded_for, const ErrorPageFields& f);

}  // namespace phigate::proxy::detail
