#pragma once
// The annotation registry: one row for every ingress-nginx annotation name (documented, code-only,
// and a few older releases documented) and for phigate's own, saying what phigate does with it.
// The single source of truth for parse_annotations() (annotations.cpp), `phigate annotations`
// (docs/annotations.md is its output) and the conformance tests (tests/annotations/).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace phigate::ingress {

namespace detail {
struct AnnotationContext;  // annotations_impl.hpp: the policy being filled and per-Ingress state
}  // namespace detail

/// What phigate does with an annotation (docs/design/ingress-nginx-annotations-plan.md §3).
enum class Support : std::uint8_t {
  Supported,                 // applied, with ingress-nginx's semantics
  SupportedWithDifferences,  // applied; `difference` says how it differs (no warning)
  NoEffect,                  // accepted, nothing to do in phigate: a warning, never an error
  Refused,                   // the Ingress fails closed (unless the value is `off`)
  Unsupported,  // ignored: a warning, or an error under ingress.unsupported_annotations: fail_closed
};

enum class AnnotationOrigin : std::uint8_t {
  IngressNginx,          // documented by ingress-nginx (v1.15.1)
  IngressNginxCodeOnly,  // read by ingress-nginx's code, not in its docs
  IngressNginxRemoved,   // documented by older ingress-nginx releases
  Phigate,               // phigate's own
};

/// Parses one value into the policy; returns "" when valid, else what is wrong (never the value).
using AnnotationParser = std::string (*)(std::string_view value, detail::AnnotationContext& c);

struct AnnotationInfo {
  std::string_view name;   // without prefix; the registry is sorted by it
  Support support;         // SupportedWithDifferences exactly when `difference` is set on a supported row
  AnnotationParser parse;  // Supported rows: the value parser; others: nullptr (any value)
  std::string_view off;    // Refused rows: the value that asks for nothing (only a warning); "": none
  std::string_view group;  // docs section: "affinity", "access", "rate-limit", …
  /// One line: phigate's semantics (Supported), or why it has no effect / is refused / is ignored.
  std::string_view behaviour;
  std::string_view difference;  // "" or one line: how phigate differs from ingress-nginx
  AnnotationOrigin origin;
  std::string_view planned;  // "" or the work that will change this row (docs say "not yet")
};

/// Every row, sorted by name, names unique.
std::span<const AnnotationInfo> annotation_registry() noexcept;

/// The row for `name` (without prefix), or nullptr.
const AnnotationInfo* find_annotation(std::string_view name) noexcept;

std::string_view to_string(Support s) noexcept;           // "supported", "supported with differences", …
std::string_view to_string(AnnotationOrigin o) noexcept;  // "ingress-nginx", "ingress-nginx (code only)", …

/// The registry as Markdown: the text of docs/annotations.md (`phigate annotations`).
std::string annotations_markdown();

/// The registry as JSON: an array of rows (`phigate annotations --json`).
std::string annotations_json();

}  // namespace phigate::ingress
