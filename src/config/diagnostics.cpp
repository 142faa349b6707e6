#include "phigate/config/diagnostics.hpp"

namespace phigate::config {

std::string Diagnostic::to_string() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  s += severity == Severity::Error ? ": error: " : ": warning: ";
  if (!resource.empty()) s += resource + ": ";
  if (!field.empty()) s += field + ": ";
  s += message;
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
