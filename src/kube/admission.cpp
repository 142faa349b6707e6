#include "phigate/kube/admission.hpp"

#include "json_text_impl.hpp"

#include <simdjson.h>

#include <cstdint>

namespace phigate::kube {

namespace {

using detail::append_json_string;

constexpr std::string_view kApiVersion = "admission.k8s.io/v1";
constexpr std::string_view kKind = "AdmissionReview";

/// A string member of `obj`: "" when absent or null; false (with `error`) when present with
/// another type, so that a review with `"uid": 5` is refused rather than read as empty.
bool string_member(simdjson::dom::object obj, std::string_view key, std::string_view where, std::string& out,
                   std::string& error) {
  auto v = obj[key];
  if (v.error() == simdjson::NO_SUCH_FIELD) return true;
  if (v.error()) {
    error = std::string(where) + "." + std::string(key) + ": " + simdjson::error_message(v.error());
    return false;
  }
  if (v.value_unsafe().is_null()) return true;
  std::string_view s;
  if (v.get_string().get(s)) {
    error = std::string(where) + "." + std::string(key) + ": not a string";
    return false;
  }
  out.assign(s);
  return true;
}

}  // namespace

std::optional<AdmissionRequest> parse_admission_review(std::string_view body, std::string& error) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::dom::element root;
  if (const auto ec = parser.parse(padded).get(root); ec) {
    error = std::string("not JSON: ") + simdjson::error_message(ec);
    return std::nullopt;
  }
  simdjson::dom::object review;
  if (root.get_object().get(review)) {
    error = "not a JSON object";
    return std::nullopt;
  }
  std::string api_version, kind;
  if (!string_member(review, "apiVersion", "", api_version, error) ||
      !string_member(review, "kind", "", kind, error)) {
    return std::nullopt;
  }
  if (api_version != kApiVersion || kind != kKind) {
    // v1beta1 reviews differ in defaults; the ValidatingWebhookConfiguration must ask for v1
    // (admissionReviewVersions: ["v1"]).
    error = "not an AdmissionReview " + std::string(kApiVersion);
    return std::nullopt;
  }
  simdjson::dom::object request;
  if (review["request"].get_object().get(request)) {
    error = "request: missing or not an object";
    return std::nullopt;
  }
  AdmissionRequest out;
  if (!string_member(request, "uid", "request", out.uid, error) ||
      !string_member(request, "operation", "request", out.operation, error) ||
      !string_member(request, "namespace", "request", out.ns, error) ||
      !string_member(request, "name", "request", out.name, error)) {
    return std::nullopt;
  }
  if (out.uid.empty()) {
    error = "request.uid: missing";  // the answer must echo it (admission.k8s.io/v1 AdmissionResponse)
    return std::nullopt;
  }
  if (out.operation.empty()) {
    error = "request.operation: missing";
    return std::nullopt;
  }
  if (auto k = request["kind"]; k.error() != simdjson::NO_SUCH_FIELD) {
    simdjson::dom::object gvk;
    if (k.get_object().get(gvk)) {
      error = "request.kind: not an object";
      return std::nullopt;
    }
    if (!string_member(gvk, "group", "request.kind", out.group, error) ||
        !string_member(gvk, "kind", "request.kind", out.kind, error)) {
      return std::nullopt;
    }
  }
  if (auto obj = request["object"]; obj.error() != simdjson::NO_SUCH_FIELD && !obj.value_unsafe().is_null()) {
    if (!obj.value_unsafe().is_object()) {
      error = "request.object: not an object";
      return std::nullopt;
    }
    out.object = simdjson::to_string(obj.value_unsafe());
  }
  return out;
}

std::string admission_response(const std::string& uid, bool allowed, const std::vector<std::string>& messages,
                               const std::vector<std::string>& warnings) {
  std::string out = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":)";
  append_json_string(out, uid);
  out += allowed ? R"(,"allowed":true)" : R"(,"allowed":false)";
  if (!allowed) {
    std::string message;
    for (const auto& m : messages) {
      if (!message.empty()) message += '\n';
      message += m;
    }
    out += R"(,"status":{"code":400,"message":)";
    append_json_string(out, message);
    out += '}';
  }
  if (!warnings.empty()) {
    out += R"(,"warnings":[)";
    for (std::size_t i = 0; i < warnings.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, warnings[i]);
    }
    out += ']';
  }
  out += "}}";
  return out;
}

}  // namespace phigate::kube
