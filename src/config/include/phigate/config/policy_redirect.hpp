#pragma once
// RoutePolicy::redirect and RoutePolicy::hosts: ingress-nginx `permanent-redirect(-code)`,
// `temporal-redirect(-code)`, `from-to-www-redirect`, `upstream-vhost`, `server-alias` and
// `service-upstream`. Values are validated by the annotation parser (ingress/annotations_redirect.cpp); the
// proxy phase `annotation-redirect` and the upstream head read them.
#include <string>
#include <vector>

namespace phigate::config {

struct RedirectPolicy {
  std::string permanent_url;  // "https://host/x" or "/x"; empty: none
  int permanent_code = 301;   // 301, 302, 303, 307 or 308
  std::string temporal_url;   // wins over permanent_url when both are set
  int temporal_code = 302;
  bool from_to_www = false;  // from-to-www-redirect: "true"

  /// The redirect the route answers with (temporal wins, as in ingress-nginx), or none.
  const std::string& url() const noexcept { return temporal_url.empty() ? permanent_url : temporal_url; }
  int code() const noexcept { return temporal_url.empty() ? permanent_code : temporal_code; }
};

struct HostsPolicy {
  std::string upstream_vhost;  // upstream-vhost: host[:port], lower-case; empty: the client's Host
  /// server-alias: DNS names or "*.suffix", lower-case, sorted, distinct. translate copies every
  /// route of the host under each (ingress/translate.cpp, add_aliases).
  std::vector<std::string> aliases{};
  /// service-upstream: "true": the Service's cluster IP and port is the one backend (translate;
  /// a headless Service falls back to its endpoints with a warning).
  bool service_upstream = false;
};

}  // namespace phigate::config
