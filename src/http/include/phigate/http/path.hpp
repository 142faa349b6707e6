#pragma once
// Request-target normalisation (RFC 3986 §6.2.2): routing and access decisions are made on the
// normalised path, and that is what is forwarded, so `/public/../admin` cannot reach a route it
// does not match. Sans-I/O.
#include <string>
#include <string_view>

namespace phigate::http {

/// Normalises an origin-form or absolute-form target into origin-form `path[?query]` in `out`:
/// percent-encoded unreserved characters decoded (and other escapes' hex upper-cased), `.` and
/// `..` segments resolved, runs of `/` collapsed. The query is kept as is. Returns nullptr, or why
/// the target is refused (encoded or raw `\`, encoded `/`, a malformed escape, `..` above the
/// root, a `.` or `..` segment with `;parameters`, a `#` fragment, no leading `/`).
const char* normalize_target(std::string_view target, std::string& out);

/// The path that routing and access decisions use for a normalised `path` (no query): `path`
/// itself, or, when it has `;parameters`, the path with them removed from every segment, as
/// Tomcat, Jetty and Spring resolve it (`/admin;x/secret` is `/admin/secret`). The result is a
/// view into `path` or `scratch`.
std::string_view routing_path(std::string_view path, std::string& scratch);

}  // namespace phigate::http
