// libFuzzer target: rewrite-target (phigate/router/regex.hpp). Input: pattern NUL template NUL
// request target. The path is normalised as the target phase does, the pattern compiled as the
// router compiles it, the template expanded from its captures; whatever the pieces, a result is
// either refused by unsafe_rewrite or starts with '/', has no control bytes, and normalises to
// itself (up to runs of '/'): no dot segment or encoded separator reaches a backend.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "phigate/http/path.hpp"
#include "phigate/router/regex.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto a = in.find('\0');
  if (a == std::string_view::npos) return 0;
  const auto b = in.find('\0', a + 1);
  if (b == std::string_view::npos) return 0;
  const auto pattern = in.substr(0, a);
  const auto templ = in.substr(a + 1, b - a - 1);
  const auto target = in.substr(b + 1);
  if (pattern.size() > 256 || templ.size() > 256) return 0;

  std::string normalised, scratch;
  if (phigate::http::normalize_target(target, normalised) != nullptr) return 0;
  const auto path =
      phigate::http::routing_path(std::string_view(normalised).substr(0, normalised.find('?')), scratch);

  const auto rw = phigate::router::Rewrite::compile(pattern, templ, templ);
  if (!rw) return 0;
  std::string out, prefix;
  if (!rw->apply(path, out, prefix)) return 0;
  // The target's leading run of '/' collapses to one (no `//host` reaches a backend); the
  // x-forwarded-prefix value is expanded verbatim, so compare them after that collapse.
  if (const auto first = prefix.find_first_not_of('/'); first > 1 && prefix.size() > 1) {
    prefix.erase(0, (first == std::string::npos ? prefix.size() : first) - 1);
  }
  FUZZ_CHECK(out == prefix, "the same template expanded twice differs");
  if (phigate::router::unsafe_rewrite(out) != nullptr) return 0;

  FUZZ_CHECK(!out.empty() && out.front() == '/', "accepted rewrite does not start with '/'");
  for (const char c : out) {
    FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '?' && c != '#', "accepted rewrite holds an unsafe byte");
  }
  std::string again;
  FUZZ_CHECK(phigate::http::normalize_target(out, again) == nullptr,
             "accepted rewrite is refused by normalisation");
  FUZZ_CHECK(again.find("/../") == std::string::npos && again.find("/./") == std::string::npos &&
                 !again.ends_with("/..") && !again.ends_with("/."),
             "dot segment after an accepted rewrite");
  std::string collapsed;
  for (const char c : out) {
    if (c == '/' && !collapsed.empty() && collapsed.back() == '/') continue;
    collapsed += c;
  }
  FUZZ_CHECK(again == collapsed, "normalisation changes an accepted rewrite beyond '//'");
  return 0;
}
