// Phases `www-redirect` (ingress-nginx from-to-www-redirect) and `annotation-redirect`
// (permanent-redirect, temporal-redirect). www-redirect runs before `route`: the partner name has
// no routes (a name with routes is served, never redirected), so there is nothing of a route's to
// check. annotation-redirect runs after the access and fail-closed phases: a client refused by a
// source range gets 403 and learns nothing from the redirect target, and an invalid Ingress
// answers 503.
#include <string>
#include <string_view>

#include "phases.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

std::string same_host_location(bool tls, std::string_view host, std::string_view path) {
  if (host.empty()) return {};
  for (char ch : host) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '-' || ch == '.' || ch == '[' || ch == ']' || ch == ':';
    if (!ok) return {};
  }
  std::string loc = tls ? "https://" : "http://";
  loc += host;
  loc += path;
  return loc;
}

namespace phase {

PhaseResult www_redirect(Request& r, const Snapshot& s, const ConnectionView& c) {
  const auto to = s.routes.www_redirect(r.host_norm);
  if (to.empty()) return std::nullopt;
  // 308 to https://<host>[:port]<target>: the host named by the route table, never the client's
  // Host; the target is the normalised one (the target phase ran).
  auto& location = r.rare().location;
  location = https_location(to, r.target, c.https_port);
  if (location.empty()) return Decision{Outcome::Internal, Error::internal("www redirect host"), false};
  return Decision{
      Outcome::WwwRedirect,
      Error{ErrorKind::Internal, core::ErrorSource::Downstream, core::Retryable::No, "www redirect"}, false,
      308};
}

PhaseResult annotation_redirect(Request& r, const Snapshot&, const ConnectionView& c) {
  if (r.policy == nullptr) return std::nullopt;
  const auto& redirect = r.policy->redirect;
  const std::string& url = redirect.url();  // temporal wins over permanent
  if (url.empty()) return std::nullopt;
  // ingress-nginx: `return <code> <url>;` — the URL as written, never anything of the request's
  // target. A path is made absolute with the request's scheme and Host (absolute_redirect on).
  auto& location = r.rare().location;
  if (url.front() == '/') {
    location = same_host_location(c.tls, r.host, url);
    if (location.empty() || r.head.headers.count("host") != 1) {
      location.clear();
      return Decision{Outcome::HostHeader,
                      Error::downstream(ErrorKind::BadRequest, "redirect needs one valid Host"), true};
    }
  } else {
    location = url;
  }
  return Decision{
      Outcome::AnnotationRedirect,
      Error{ErrorKind::Internal, core::ErrorSource::Downstream, core::Retryable::No, "annotation redirect"},
      false, redirect.code()};
}

}  // namespace phase

}  // namespace phigate::proxy::detail
