#include "phigate/config/diagnostics.hpp"

#include <string_view>

namespace phigate::config {

namespace {

/// Appends `text` with control bytes written as `\xNN`. Keys, resource names and paths come from the
/// files being loaded: a raw CR/LF would forge further lines in the log or in `phigate validate`
/// output (log injection), an ESC would drive the reader's terminal. Found by fuzz/config_loader.cpp.
void append_escaped(std::string& s, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      s += "\\x";
      s += kHex[b >> 4];
      s += kHex[b & 15];
    } else {
      s += c;
    }
  }
}

}  // namespace

std::string Diagnostic::to_string() const {
  std::string s;
  append_escaped(s, file);
  if (line > 0) s += ":" + std::to_string(line);
  s += severity == Severity::Error ? ": error: " : severity == Severity::Warning ? ": warning: " : ": info: ";
  if (!resource.empty()) {
    append_escaped(s, resource);
    s += ": ";
  }
  if (!field.empty()) {
    append_escaped(s, field);
    s += ": ";
  }
  append_escaped(s, message);
  return s;
}

void Diagnostics::error(std::string file, int line, std::string field, std::string message,
                        std::string resource) {
  entries_.push_back(
      {Severity::Error, std::move(file), line, std::move(resource), std::move(field), std::move(message)});
  ++errors_;
}

void Diagnostics::warning(std::string file, int line, std::string field, std::string message,
                          std::string resource) {
  entries_.push_back(
      {Severity::Warning, std::move(file), line, std::move(resource), std::move(field), std::move(message)});
}

std::string Diagnostics::to_string() const {
  std::string s;
  for (const auto& d : entries_) {
    s += d.to_string();
    s += '\n';
  }
  return s;
}

}  // namespace phigate::config
