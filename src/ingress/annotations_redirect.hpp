#pragma once
// Private to ingress: the value parsers of permanent-redirect(-code), temporal-redirect(-code),
// from-to-www-redirect, upstream-vhost and server-alias (rows of the annotation registry). Each returns ""
// when the value is valid, else what is wrong (never the value).
#include <string>
#include <string_view>

#include "phigate/config/policy_redirect.hpp"

namespace phigate::ingress::detail {

/// An absolute http(s) URL (DNS name or IP literal, optional port, no userinfo) or an absolute
/// path that does not start with "//"; visible ASCII without space, `"<>\^`{|}` and `$`; at most
/// 2048 bytes.
std::string parse_redirect_url(std::string_view v, std::string& out);
/// 301, 302, 303, 307 or 308 (ingress-nginx silently defaults other values, or sends the URL as a
/// body: an error here).
std::string parse_redirect_code(std::string_view v, int& out);
/// host[:port] (a DNS name or IP address, port 1..65535), lower-cased; a `$variable` is an error.
std::string parse_upstream_vhost(std::string_view v, config::HostsPolicy& out);
/// A comma list of DNS names or "*.suffix" (trimmed, lower-cased, sorted, distinct); nginx's
/// `~regex` and other server_name forms are errors.
std::string parse_server_alias(std::string_view v, config::HostsPolicy& out);

}  // namespace phigate::ingress::detail
