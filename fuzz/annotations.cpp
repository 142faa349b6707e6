// libFuzzer target: Ingress annotation values (phigate/ingress/annotations.hpp).
// Input: lines of `name=value`; a name without '/' gets the nginx.ingress.kubernetes.io/ prefix,
// one starting with '+' the phigate.io/ prefix. Properties: nothing fails open (an access-control
// annotation either yields a restriction or an error), Secret references never leave the
// Ingress's namespace (confused deputy), and what reaches logs is quoted printable ASCII.
#include <arpa/inet.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "check.hpp"
#include "phigate/ingress/annotations.hpp"

namespace ing = phigate::ingress;

namespace {

constexpr std::string_view kNs = "fuzz-ns";

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool canonical_cidr(const std::string& s) {
  const auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  const std::string addr = s.substr(0, slash);
  unsigned char buf[16];
  const bool v4 = inet_pton(AF_INET, addr.c_str(), buf) == 1;
  if (!v4 && inet_pton(AF_INET6, addr.c_str(), buf) != 1) return false;
  unsigned bits = 0;
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data() + slash + 1, end, bits);
  return ec == std::errc() && p == end && bits <= (v4 ? 32u : 128u);
}

void check_quote(std::string_view value, std::size_t max) {
  const std::string q = ing::quote_value(value, max);
  FUZZ_CHECK(printable(q), "quote_value() output is not printable ASCII");
  FUZZ_CHECK(q.size() >= 2 && q.front() == '"', "quote_value() output is not quoted");
  FUZZ_CHECK(q.size() <= 2 + 4 * max + std::string_view(" (truncated)").size(),
             "quote_value() output longer than its bound");
}

bool has_error_for(const ing::ParsedAnnotations& p, const std::string& key) {
  for (const auto& pr : p.problems) {
    if (pr.key == key && pr.severity == phigate::config::Severity::Error) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_quote(text, 100);
  check_quote(text, 7);

  std::map<std::string, std::string> annotations;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto eol = text.find('\n', pos);
    const auto line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    const auto eq = line.find('=');
    std::string key(line.substr(0, eq));
    const std::string value(eq == std::string_view::npos ? std::string_view() : line.substr(eq + 1));
    if (!key.empty() && key.front() == '+') {
      key = std::string(ing::kPhigatePrefix) + key.substr(1);
    } else if (key.find('/') == std::string::npos) {
      key = std::string(ing::kNginxPrefix) + key;
    }
    annotations[key] = value;
  }

  const auto parsed = ing::parse_annotations(annotations, kNs);
  bool any_error = false;
  for (const auto& pr : parsed.problems) {
    FUZZ_CHECK(annotations.count(pr.key) == 1, "problem names a key that was not given");
    FUZZ_CHECK(printable(pr.value), "problem value is not quoted printable ASCII");
    any_error |= pr.severity == phigate::config::Severity::Error;
  }
  FUZZ_CHECK(any_error == !parsed.fail_closed.empty(), "fail_closed disagrees with the error problems");
  FUZZ_CHECK(printable(parsed.fail_closed), "fail_closed reason is not printable ASCII");

  const auto& policy = parsed.policy;
  for (const auto* list : {&policy.allow_source_ranges, &policy.deny_source_ranges}) {
    for (const auto& r : *list) FUZZ_CHECK(canonical_cidr(r), "source range is not an address/bits CIDR");
  }
  const std::string own = std::string(kNs) + "/";
  for (const auto* ref : {&policy.auth_tls_secret, &policy.proxy_ssl_secret}) {
    FUZZ_CHECK(ref->empty() || ref->starts_with(own), "Secret reference outside the Ingress's namespace");
  }
  // A source-range annotation that parsed without error must restrict something (fail closed,
  // never open), and a snippet is always an error.
  for (const auto& [key, value] : annotations) {
    const bool phigate = key.starts_with(ing::kPhigatePrefix);
    if (!phigate && !key.starts_with(ing::kNginxPrefix)) continue;
    const auto name =
        std::string_view(key).substr(phigate ? ing::kPhigatePrefix.size() : ing::kNginxPrefix.size());
    if (name.find("snippet") != std::string_view::npos) {
      FUZZ_CHECK(has_error_for(parsed, key), "snippet annotation accepted");
    }
    if (has_error_for(parsed, key) || !parsed.fail_closed.empty()) continue;
    if (name == "allowlist-source-range" || name == "whitelist-source-range") {
      FUZZ_CHECK(!policy.allow_source_ranges.empty(), "an allowlist annotation produced no restriction");
    }
  }
  for (const auto& u : parsed.unhonoured) {
    FUZZ_CHECK(annotations.count(u.key) == 1, "unhonoured names a key that was not given");
  }
  // ingress.unsupported_annotations: fail_closed: nothing unsupported is only ignored, and every
  // error under warn stays an error.
  const auto strict = ing::parse_annotations(
      annotations, kNs,
      ing::AnnotationOptions{.unsupported = phigate::config::UnsupportedAnnotations::FailClosed});
  for (const auto& u : strict.unhonoured) {
    FUZZ_CHECK(u.support != ing::Support::Unsupported,
               "unsupported annotation only ignored under fail_closed");
  }
  FUZZ_CHECK(parsed.fail_closed.empty() || !strict.fail_closed.empty(),
             "fail_closed policy opened an Ingress");
  return 0;
}
