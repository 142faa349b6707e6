#include "phigate/kube/admission.hpp"

#include <simdjson.h>

#include <cstdint>

namespace phigate::kube {

namespace {

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

/// Decodes one UTF-8 sequence at `s[i]`; its length, or 0 when it is not well-formed (RFC 3629 §4:
/// overlong forms, surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

/// Appends `s` as a JSON string (RFC 8259 §7). The text may hold any byte an Ingress author wrote:
/// control characters are \u-escaped, and a byte that is not part of well-formed UTF-8 becomes
/// U+FFFD so the answer stays valid JSON (the API server rejects a response it cannot decode,
/// and with failurePolicy Fail that would refuse every Ingress).
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
      }
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (const auto n = utf8_length(s, i); n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
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
