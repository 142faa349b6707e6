#pragma once
// Ingress annotations → RoutePolicy, with ingress-nginx's names and strict value grammars.
// Pure (no I/O, no resources): Secret references are only checked for syntax here; translate()
// resolves them. Reusable by `phigate validate`.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/annotation_registry.hpp"

namespace phigate::ingress {

inline constexpr std::string_view kNginxPrefix = "nginx.ingress.kubernetes.io/";
inline constexpr std::string_view kPhigatePrefix = "phigate.io/";

struct AnnotationProblem {
  config::Severity severity = config::Severity::Error;
  std::string key;      // the full annotation key, as written
  std::string value;    // quote_value() of the value: safe to log
  std::string message;  // why, without the value (unless `unsupported`)
  /// The value is not invalid: what it asks for is a feature phigate does not have (a rate limit,
  /// a WAF, TLS passthrough). `message` then reads `<key>="<value>": why` by itself and is
  /// reported as is, not as an invalid value.
  bool unsupported = false;
};

/// An annotation whose value is valid but that phigate does not act on yet (nothing reads its
/// field). Never an access-control one: those fail closed instead.
struct UnenforcedAnnotation {
  std::string key;      // the full annotation key, as written
  std::string message;  // why it has no effect
};

/// An annotation in effect that phigate does not fully honour, for `phigate validate`'s per-Ingress
/// summary: NoEffect and Unsupported ones (also warnings), and SupportedWithDifferences ones (not
/// warnings: their difference is documented, docs/annotations.md). In key order.
struct UnhonouredAnnotation {
  std::string key;  // the full annotation key, as written
  Support support;  // NoEffect, Unsupported or SupportedWithDifferences
  std::string why;  // one line: why it has no effect, what is ignored, or how it differs
};

/// Settings of parse_annotations() that come from the configuration (config::IngressSpec).
struct AnnotationOptions {
  /// What an unsupported annotation (Support::Unsupported, or an unknown name under our prefixes
  /// that does not look like access control) is: a warning, or an error (`ingress.unsupported_annotations`).
  config::UnsupportedAnnotations unsupported = config::UnsupportedAnnotations::Warn;
};

struct ParsedAnnotations {
  config::RoutePolicy policy;  // `resource`, `fail_closed` and the PEM fields are left for translate()
  std::vector<AnnotationProblem> problems;  // in key order; an Error means the Ingress fails closed
  std::string fail_closed;  // the first error as `invalid annotation <key>="<value>"`; "" when none
  /// In key order; translate() reports each as a warning (kept apart from `problems`: the value is
  /// valid, and the annotation is still parsed and kept in `policy`).
  std::vector<UnenforcedAnnotation> not_enforced;
  /// Every annotation in effect that is not fully honoured (see UnhonouredAnnotation), in key order.
  std::vector<UnhonouredAnnotation> unhonoured;
  /// The Ingress is an ingress-nginx canary (`is_canary`): translate() emits no route for it and
  /// attaches its paths to their main paths (`policy.canary` holds its rules).
  bool canary = false;
};

/// Parses the annotations of an Ingress in namespace `ns`, as the annotation registry
/// (annotation_registry.hpp) says. Keys under `nginx.ingress.kubernetes.io/` and `phigate.io/` are
/// read (the latter wins when both name the same annotation, but cannot switch off a Refused one the
/// former asks for); other keys are ignored unless they look like misprefixed access control (an
/// error). Errors: invalid values, snippets, Refused names (unless their value turns them off),
/// unknown names that look like access control, and, under `config::UnsupportedAnnotations::FailClosed`,
/// Unsupported and unknown names. Warnings: NoEffect names, and Unsupported and unknown ones under
/// `Warn`.
ParsedAnnotations parse_annotations(const std::map<std::string, std::string>& annotations,
                                    std::string_view ns, const AnnotationOptions& options = {});

/// Whether the `canary` annotation in effect (phigate.io/ wins over nginx.ingress.kubernetes.io/) is
/// true as Go's ParseBool reads it ("true", "True", "1", "t"…), as ingress-nginx does: a canary that
/// takes a share of the traffic of the Ingress with the same host and path (docs/canary.md).
bool is_canary(const std::map<std::string, std::string>& annotations);

/// `value` as it may appear in a log line or a fail_closed reason: in double quotes, at most `max`
/// bytes of it, '"', '\\' and bytes outside printable ASCII escaped, then " (truncated)" when cut.
std::string quote_value(std::string_view value, std::size_t max = 100);

}  // namespace phigate::ingress
