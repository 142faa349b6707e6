#pragma once
// Private to the ingress library: the ConfigMap fields of custom-headers (response) and
// phigate.io/proxy-set-headers (request), checked and rendered as "Name: value\r\n" lines
// (translate_headers.cpp). Pure: no I/O.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::ingress::detail {

/// At most this many fields per ConfigMap, and this many bytes per value.
inline constexpr std::size_t kMaxConfigMapHeaders = 64;
inline constexpr std::size_t kMaxConfigMapHeaderValue = 4096;

/// Response field names custom-headers never sets, whatever ingress.allowed_response_headers says:
/// framing and hop-by-hop fields (they would desynchronise the client), and fields phigate or
/// another annotation owns (cookies, HSTS, CORS, redirects, protocol advertisement). Lower case;
/// a name ending in '*' is a prefix.
const std::vector<std::string_view>& denied_response_headers();
/// Request field names proxy-set-headers never sets: the backend trusts them to be phigate's
/// (forwarding, request id, client certificate), they frame the request, or they carry the
/// client's credentials. Lower case; a name ending in '*' is a prefix.
const std::vector<std::string_view>& denied_request_headers();

/// Why `name` may not be set ("" when it may), for one side.
std::string check_response_header_name(std::string_view name, const std::vector<std::string>& allowed);
std::string check_request_header_name(std::string_view name);
/// Why `value` is not a literal field value ("" when it is): 1 to kMaxConfigMapHeaderValue bytes
/// of visible ASCII, space or tab, no leading or trailing blank (so no CR, LF or NUL); for the
/// request side also no '$' (an nginx variable is not expanded).
std::string check_header_value(std::string_view value, bool request);

/// Checks every entry of `data` and appends "Name: value\r\n" lines to `out`; returns "" or the
/// first problem, naming the key (never the value).
std::string render_config_map_headers(const std::map<std::string, std::string>& data, bool request,
                                      const std::vector<std::string>& allowed, std::string& out);

}  // namespace phigate::ingress::detail
