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
/// the target is refused (encoded `/` or `\`, a malformed escape, `..` above the root, no leading
/// `/`).
const char* normalize_target(std::string_view target, std::string& out);

}  // namespace phigate::http
