#include "translate_headers_impl.hpp"

#include <algorithm>

namespace phigate::ingress::detail {

namespace {

bool tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// The deny-list entry `lowered` falls under, or "" when none.
std::string_view denied_by(const std::vector<std::string_view>& list, std::string_view lowered) {
  for (const auto d : list) {
    if (d.ends_with('*') ? lowered.starts_with(d.substr(0, d.size() - 1)) : lowered == d) return d;
  }
  return {};
}

std::string check_name_syntax(std::string_view name) {
  if (name.empty() || name.size() > 256 || !std::all_of(name.begin(), name.end(), tchar))
    return "is not a header name (an RFC 9110 token of at most 256 characters)";
  return {};
}

}  // namespace

const std::vector<std::string_view>& denied_response_headers() {
  static const std::vector<std::string_view> k = {
      // Framing and hop-by-hop: a second or wrong one desynchronises the client's connection.
      "connection", "content-length", "content-encoding", "keep-alive", "proxy-connection", "te", "trailer",
      "transfer-encoding", "upgrade",
      // Owned by phigate or another annotation: affinity and backend cookies, HSTS (tls.hsts), CORS,
      // redirects (proxy-redirect-*, app-root), and which protocols the client may switch to.
      "set-cookie", "set-cookie2", "strict-transport-security", "access-control-*", "location", "refresh",
      "alt-svc"};
  return k;
}

const std::vector<std::string_view>& denied_request_headers() {
  static const std::vector<std::string_view> k = {
      // The backend's Host is upstream-vhost's; framing and hop-by-hop fields are the proxy's.
      "host", "connection", "content-length", "content-encoding", "expect", "keep-alive", "proxy-connection",
      "te", "trailer", "transfer-encoding", "upgrade", "http2-settings",
      // What the backend trusts to come from phigate (http/forwarding.cpp, proxy_connection.cpp).
      "forwarded", "x-forwarded-*", "x-real-ip", "x-request-id", "x-original-*", "x-rewrite-url",
      "ssl-client-*",
      // The client's credentials: replacing them would act as someone else.
      "authorization", "proxy-authorization", "cookie"};
  return k;
}

std::string check_response_header_name(std::string_view name, const std::vector<std::string>& allowed) {
  if (auto why = check_name_syntax(name); !why.empty()) return why;
  const auto l = lower(name);
  if (const auto d = denied_by(denied_response_headers(), l); !d.empty())
    return "is a field phigate owns (" + std::string(d) + "): never set from a ConfigMap";
  if (std::find(allowed.begin(), allowed.end(), l) == allowed.end())
    return "is not listed in ingress.allowed_response_headers";
  return {};
}

std::string check_request_header_name(std::string_view name) {
  if (auto why = check_name_syntax(name); !why.empty()) return why;
  if (const auto d = denied_by(denied_request_headers(), lower(name)); !d.empty())
    return "is a field phigate owns (" + std::string(d) + "): never set from a ConfigMap";
  return {};
}

std::string check_header_value(std::string_view v, bool request) {
  if (v.empty()) return "has an empty value";
  if (v.size() > kMaxConfigMapHeaderValue)
    return "has a value over " + std::to_string(kMaxConfigMapHeaderValue) + " bytes";
  for (const char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return "has a value with CR, LF or NUL";
    if (c != '\t' && (c < 0x20 || c >= 0x7f)) return "has a value that is not visible ASCII";
  }
  if (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t')
    return "has a value with leading or trailing blanks";
  if (request && v.find('$') != std::string_view::npos)
    return "has a value with '$' (nginx variables are not supported: values are static)";
  return {};
}

std::string render_config_map_headers(const std::map<std::string, std::string>& data, bool request,
                                      const std::vector<std::string>& allowed, std::string& out) {
  if (data.size() > kMaxConfigMapHeaders)
    return "has more than " + std::to_string(kMaxConfigMapHeaders) + " entries";
  std::string lines;
  for (const auto& [name, value] : data) {
    auto why = request ? check_request_header_name(name) : check_response_header_name(name, allowed);
    if (why.empty()) why = check_header_value(value, request);
    if (!why.empty()) return "data." + name + " " + why;
    lines += name;
    lines += ": ";
    lines += value;
    lines += "\r\n";
  }
  out += lines;
  return {};
}

}  // namespace phigate::ingress::detail
