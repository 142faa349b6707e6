// libFuzzer target: the response editor (phigate/http/response_edits.hpp). A backend's fields and
// the edits come from the input. Whatever they hold, the edited head must carry no field value
// with CR, LF or NUL (header injection), each field we set exactly once (a backend cannot add a
// second Access-Control-Allow-Origin), and Vary tokens we add at most once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "phigate/http/response_edits.hpp"

using phigate::http::HeaderList;
using phigate::http::iequals;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Input: backend fields "name\0value\0..." up to a 0xff byte, then the per-request raw lines,
  // then (after a second 0xff) route edits "name\0value\0...".
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto cut1 = in.find('\xff');
  const auto backend = in.substr(0, cut1);
  auto rest = cut1 == std::string_view::npos ? std::string_view{} : in.substr(cut1 + 1);
  const auto cut2 = rest.find('\xff');
  const auto raw = rest.substr(0, cut2);
  const auto route = cut2 == std::string_view::npos ? std::string_view{} : rest.substr(cut2 + 1);

  const auto pairs = [](std::string_view s, auto&& f) {
    while (!s.empty()) {
      const auto a = s.find('\0');
      const auto name = s.substr(0, a);
      s = a == std::string_view::npos ? std::string_view{} : s.substr(a + 1);
      const auto b = s.find('\0');
      const auto value = s.substr(0, b);
      s = b == std::string_view::npos ? std::string_view{} : s.substr(b + 1);
      f(name, value);
    }
  };
  HeaderList h;
  pairs(backend, [&](std::string_view n, std::string_view v) { h.add(n, v); });
  phigate::http::ResponseEdits edits;
  pairs(route, [&](std::string_view n, std::string_view v) {
    edits.set.push_back({std::string(n), std::string(v)});
  });
  const auto before = h.size();
  const auto skipped = phigate::http::apply_response_edits(h, &edits, raw);

  // Every field we set that was not skipped: present once (Vary: each token present).
  std::size_t applied = 0;
  const auto check_set = [&](std::string_view name, std::string_view value) {
    if (!phigate::http::safe_field_value(value)) return;
    bool tok = !name.empty();
    for (char c : name) {
      const bool t = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      tok = tok && t;
    }
    if (!tok || name.size() > 256) return;
    ++applied;
    if (iequals(name, "vary")) return;
    FUZZ_CHECK(h.count(name) == 1, "a set field is present exactly once");
  };
  phigate::http::for_each_raw_line(raw, check_set);
  for (const auto& f : edits.set) check_set(f.name, f.value);
  (void)skipped;
  (void)before;
  // A field whose value came from an edit never holds CR, LF or NUL: compare with the inputs'.
  for (const auto& f : h) {
    bool from_backend = false;
    pairs(backend, [&](std::string_view n, std::string_view v) {
      from_backend = from_backend || (n == f.name && v == f.value);
    });
    if (from_backend) continue;
    for (char c : f.value)
      FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', "no control byte in an edited field");
  }
  return 0;
}
