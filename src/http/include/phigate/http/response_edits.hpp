#pragma once
// Edits to a backend's response head before it goes to the client (sans-I/O): fields a route sets
// (custom-headers) and fields one request sets (CORS, proxy/phases_cors.cpp). A field set here
// replaces every backend field of the same name, so a backend cannot add a second
// Access-Control-Allow-Origin next to ours; `Vary` is merged instead (the backend's tokens kept).
#include <cstddef>
#include <string_view>
#include <vector>

#include "phigate/http/headers.hpp"

namespace phigate::http {

/// A route's response edits, validated when the route was built. The views point into the
/// route's policy (alive while the request pins its snapshot).
struct ResponseEdits {
  std::vector<Header> set;  // replace-or-add, in this order
  // custom-headers: "Name: value\r\n" lines (the route's, checked when it was built), applied after
  // `set` with the same replace-or-add rule.
  std::string_view set_fields;
  // proxy-redirect-from/-to: a Location (or Refresh after "url=") starting with `redirect_from`
  // (case-sensitive) gets `redirect_to` instead of that prefix. "" from: off.
  std::string_view redirect_from, redirect_to;
  // proxy-cookie-domain: a Set-Cookie Domain= equal to `cookie_domain_from` (case-insensitively,
  // one leading '.' of either ignored, the cookie's kept) becomes `cookie_domain_to`. "" from: off.
  std::string_view cookie_domain_from, cookie_domain_to;
  // proxy-cookie-path: a Set-Cookie Path= starting with `cookie_path_from` (case-sensitive) gets
  // `cookie_path_to` instead of that prefix. "" from: off.
  std::string_view cookie_path_from, cookie_path_to;
  // enable-cors: every backend field named Access-Control-* is removed before the per-request
  // fields are applied, so only phigate's CORS answer (or none) reaches the client.
  bool drop_access_control = false;
  bool rewrites() const noexcept {
    return !redirect_from.empty() || !cookie_domain_from.empty() || !cookie_path_from.empty();
  }
  /// Whether applying these edits can change a head (callers skip the editor otherwise).
  bool any() const noexcept {
    return rewrites() || drop_access_control || !set.empty() || !set_fields.empty();
  }
};

/// Upper bound of one edited field's value.
inline constexpr std::size_t kMaxEditedValue = 8192;

/// Whether `v` may be sent as a field value: visible ASCII, space and tab, no leading or trailing
/// whitespace, at most kMaxEditedValue bytes.
bool safe_field_value(std::string_view v) noexcept;

/// Applies `per_request` (raw lines "Name: value\r\n") and then `edits` (may be null) to a response
/// head's fields: first the removal of Access-Control-* fields (drop_access_control), then the rewrites of
/// Location, Refresh and Set-Cookie (the rest of each field kept byte for byte; a result that is not a safe
/// value is not written, the field stays as the backend sent it and counts as skipped), then `per_request`,
/// then the set fields (`set`, then `set_fields`). Each named field replaces all of the backend's fields of
/// that name, except `Vary`, whose tokens are added when the backend's fields lack them (and nothing is added
/// to `Vary: *`). A line with an empty or non-token name or an unsafe value is skipped, never sent. Returns
/// the number of lines skipped.
std::size_t apply_response_edits(HeaderList& h, const ResponseEdits* edits, std::string_view per_request);

/// Calls f(name, value) for each "Name: value\r\n" line of `raw` (value without leading blanks).
template <class F>
void for_each_raw_line(std::string_view raw, F&& f) {
  while (!raw.empty()) {
    const auto eol = raw.find("\r\n");
    const auto line = raw.substr(0, eol);
    raw = eol == std::string_view::npos ? std::string_view{} : raw.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      f(std::string_view{}, line);  // no colon: an empty name, which the caller refuses
      continue;
    }
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    f(line.substr(0, colon), value);
  }
}

}  // namespace phigate::http
