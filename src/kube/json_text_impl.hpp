#pragma once
// Private to kube: JSON text for the bodies phigate writes (AdmissionReview answers, Lease updates,
// status patches, Events). Written here, never parsed here: parsing is simdjson's.
#include <cstddef>
#include <string>
#include <string_view>

#include "phigate/core/strings.hpp"

namespace phigate::kube::detail {

/// Appends `s` as a JSON string (RFC 8259 §7). The text may hold any byte an Ingress author wrote:
/// control characters are \u-escaped, and a byte that is not part of well-formed UTF-8 becomes
/// U+FFFD so the answer stays valid JSON (the API server rejects a response it cannot decode,
/// and with failurePolicy Fail that would refuse every Ingress).
inline void append_json_string(std::string& out, std::string_view s) {
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
    } else if (const auto n = core::utf8_sequence_length(s, i); n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

/// `s` as a JSON string literal (append_json_string into a new string).
inline std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

}  // namespace phigate::kube::detail
