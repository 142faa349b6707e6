// libFuzzer target: request-target normalisation (phigate/http/path.hpp). Routing and
// access rules match the normalised path, so any way to make it differ from what the backend
// resolves (a dot segment, a double slash, an encoded '/' decoded late) bypasses a path rule.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "phigate/http/path.hpp"

namespace {

bool icontains(std::string_view s, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= s.size(); ++i) {
    bool eq = true;
    for (std::size_t j = 0; j < needle.size() && eq; ++j) {
      const char c = s[i + j] >= 'A' && s[i + j] <= 'Z' ? static_cast<char>(s[i + j] | 0x20) : s[i + j];
      eq = c == needle[j];  // `needle` is lower case
    }
    if (eq) return true;
  }
  return false;
}

bool is_hex_upper(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

std::size_t count_slashes(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += c == '/';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  std::string out;
  const char* why = phigate::http::normalize_target(target, out);
  const bool origin_form = !target.empty() && target.front() == '/';
  const std::string_view in_path = origin_form ? target.substr(0, target.find('?')) : std::string_view();
  if (origin_form && (icontains(in_path, "%2f") || icontains(in_path, "%5c"))) {
    FUZZ_CHECK(why != nullptr, "an encoded '/' or '\\' in the path was accepted");
  }
  if (why != nullptr) return 0;

  FUZZ_CHECK(!out.empty() && out.front() == '/', "normalised target does not start with '/'");
  const std::string_view path = std::string_view(out).substr(0, out.find('?'));
  FUZZ_CHECK(path.find("//") == std::string_view::npos, "'//' in the normalised path");
  FUZZ_CHECK(path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos,
             "dot segment in the normalised path");
  FUZZ_CHECK(!path.ends_with("/.") && !path.ends_with("/.."), "trailing dot segment in the normalised path");
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') continue;
    FUZZ_CHECK(i + 2 < path.size() && is_hex_upper(path[i + 1]) && is_hex_upper(path[i + 2]),
               "percent-escape in the output is not two upper-case hex digits");
  }
  // Every '/' of the output was a '/' of the input: none came from decoding (%2F).
  if (origin_form) {
    FUZZ_CHECK(count_slashes(path) <= std::max<std::size_t>(1, count_slashes(in_path)),
               "more '/' in the normalised path than in the input path");
    const auto q = target.find('?');
    if (q != std::string_view::npos) {
      FUZZ_CHECK(out.find('?') != std::string::npos &&
                     std::string_view(out).substr(out.find('?')) == target.substr(q),
                 "query changed by normalisation");
    }
  }

  // What routing and access rules see (`;parameters` stripped as Tomcat/Jetty/Spring do): the same
  // shape guarantees, or `/admin;x/..;y/secret`-style tricks reach a path a rule does not match.
  std::string scratch;
  const std::string_view route = phigate::http::routing_path(path, scratch);
  FUZZ_CHECK(!route.empty() && route.front() == '/', "routing path does not start with '/'");
  FUZZ_CHECK(route.find(';') == std::string_view::npos, "';' left in the routing path");
  FUZZ_CHECK(route.find("//") == std::string_view::npos, "'//' in the routing path");
  FUZZ_CHECK(route.find("/./") == std::string_view::npos && route.find("/../") == std::string_view::npos &&
                 !route.ends_with("/.") && !route.ends_with("/.."),
             "dot segment in the routing path");
  std::string scratch2;
  FUZZ_CHECK(phigate::http::routing_path(route, scratch2) == route, "routing_path() is not idempotent");

  std::string again;
  FUZZ_CHECK(phigate::http::normalize_target(out, again) == nullptr, "a normalised target is refused");
  FUZZ_CHECK(again == out, "normalisation is not idempotent");
  return 0;
}
