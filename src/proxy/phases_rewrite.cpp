// Phases `app-root` and `rewrite` (ingress-nginx app-root, rewrite-target, x-forwarded-prefix).
// Both run after the access and fail-closed phases: a refused client learns nothing from a
// redirect target, and an invalid Ingress answers 503 before anything is rewritten.
#include <string>
#include <string_view>

#include "phases.hpp"
#include "phigate/router/regex.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;

namespace {

bool safe_header_value(std::string_view v) {
  for (const char c : v) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

Decision rewrite_refused(Request& r, const char* why) {
  r.rare().upstream_target.clear();
  r.rare().forwarded_prefix.clear();
  return Decision{Outcome::RewriteRefused, Error::downstream(ErrorKind::BadRequest, why), false};
}

}  // namespace

namespace phase {

PhaseResult app_root(Request& r, const Snapshot&, const ConnectionView& c) {
  // ingress-nginx: `if ($uri = /) { return 302 $scheme://$http_host<app-root>; }` at server level.
  // Here it is the app-root of the route that "/" matched: only the Ingress that serves a host's
  // root (a literal "/", a regex like "/(.*)", or its defaultBackend) can redirect it, never
  // another Ingress with a deeper path on the same host.
  if (r.path != "/" || r.policy == nullptr) return std::nullopt;
  const std::string_view root = r.policy->regex.app_root;
  if (root.empty()) return std::nullopt;
  auto& location = r.rare().location;
  location = same_host_location(c.tls, r.host, root);
  if (location.empty() || r.head.headers.count("host") != 1) {
    location.clear();
    return Decision{Outcome::HostHeader,
                    Error::downstream(ErrorKind::BadRequest, "redirect needs one valid Host"), true};
  }
  return Decision{
      Outcome::AppRootRedirect,
      Error{ErrorKind::Internal, core::ErrorSource::Downstream, core::Retryable::No, "app-root redirect"},
      false, 302};
}

PhaseResult rewrite(Request& r, const Snapshot&, const ConnectionView&) {
  if (r.route == nullptr || r.policy == nullptr || !r.policy->regex.rewrites(r.route->path))
    return std::nullopt;
  // The route matched, so its regex matches too; if not (or it did not compile), nothing
  // unrewritten may go out.
  const auto* rw = r.route->rewrite.get();
  auto& x = r.rare();
  if (rw == nullptr || !rw->apply(r.path, x.upstream_target, x.forwarded_prefix)) {
    x.upstream_target.clear();
    x.forwarded_prefix.clear();
    return Decision{Outcome::Internal, Error::internal("rewrite did not match"), false};
  }
  if (const char* why = router::unsafe_rewrite(x.upstream_target)) return rewrite_refused(r, why);
  if (rw->has_prefix() && !safe_header_value(x.forwarded_prefix)) {
    return rewrite_refused(r, "x-forwarded-prefix produced an unsafe value");
  }
  // nginx keeps the query: the target cannot hold one.
  if (const auto q = r.target.find('?'); q != std::string::npos) {
    x.upstream_target.append(r.target, q, std::string::npos);
  }
  return std::nullopt;
}

}  // namespace phase

}  // namespace phigate::proxy::detail
