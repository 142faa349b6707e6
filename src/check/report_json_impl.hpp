#pragma once
// JSON output for report_json.cpp and report_sarif.cpp: Boost.JSON values (compiled once in
// audit/json_impl.cpp) written with two-space indentation. Every string from configuration or
// manifests enters through str(), which makes it well-formed UTF-8; Boost.JSON escapes quotes,
// backslashes and control characters.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "report_common.hpp"

namespace phigate::check::detail {

/// A JSON string value holding `s` as well-formed UTF-8 (invalid bytes become U+FFFD).
inline boost::json::string str(std::string_view s) {
  const std::string clean = valid_utf8(s);
  return boost::json::string(boost::json::string_view(clean.data(), clean.size()));
}

inline void write_pretty(std::string& out, const boost::json::value& v, std::size_t indent) {
  const auto newline = [&](std::size_t n) {
    out.push_back('\n');
    out.append(n, ' ');
  };
  if (const auto* o = v.if_object()) {
    if (o->empty()) {
      out.append("{}");
      return;
    }
    out.push_back('{');
    bool first = true;
    for (const auto& kv : *o) {
      if (!first) out.push_back(',');
      first = false;
      newline(indent + 2);
      out.append(boost::json::serialize(boost::json::value(kv.key())));
      out.append(": ");
      write_pretty(out, kv.value(), indent + 2);
    }
    newline(indent);
    out.push_back('}');
  } else if (const auto* a = v.if_array()) {
    if (a->empty()) {
      out.append("[]");
      return;
    }
    out.push_back('[');
    bool first = true;
    for (const auto& e : *a) {
      if (!first) out.push_back(',');
      first = false;
      newline(indent + 2);
      write_pretty(out, e, indent + 2);
    }
    newline(indent);
    out.push_back(']');
  } else {
    out.append(boost::json::serialize(v));
  }
}

/// SARIF artifact URI of `file` relative to `cwd` (normalised, '/' separators, percent-encoded);
/// nullopt when `file` is empty or lies outside `cwd` ("..", another absolute tree).
std::optional<std::string> sarif_uri(const std::string& file, const std::filesystem::path& cwd);

/// `v` indented, with a final newline.
inline std::string pretty(const boost::json::value& v) {
  std::string out;
  write_pretty(out, v, 0);
  out.push_back('\n');
  return out;
}

}  // namespace phigate::check::detail
