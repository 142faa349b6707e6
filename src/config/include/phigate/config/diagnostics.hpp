#pragma once
// Diagnostics: every problem found while loading configuration, with where it came from.
// The control plane collects all of them (it does not stop at the first) and reports them at
// its edge: `phigate validate` prints them all, `run` and reload log them.
#include <string>
#include <vector>

namespace phigate::config {

/// Info is never collected by Diagnostics (nothing at load is one); it lets one line of the same form
/// say "info" (check::describe of an info finding).
enum class Severity { Error, Warning, Info };

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string file;      // path as given by the operator
  int line = 0;          // 1-based, 0 when unknown
  std::string resource;  // e.g. "Ingress default/web" (empty for the main config file)
  std::string field;     // dotted key path, e.g. "tls.certificates[1].cert"
  std::string message;

  /// "file:line: error|warning|info: [resource: ][field: ]message" — one line, no trailing newline
  /// (control bytes in any part are written as `\xNN`).
  std::string to_string() const;
};

/// Accumulates diagnostics. Not thread-safe; one per load.
class Diagnostics {
 public:
  void error(std::string file, int line, std::string field, std::string message, std::string resource = {});
  void warning(std::string file, int line, std::string field, std::string message, std::string resource = {});
  void add(Diagnostic d) {
    if (d.severity == Severity::Error) ++errors_;
    entries_.push_back(std::move(d));
  }

  bool has_errors() const noexcept { return errors_ > 0; }
  std::size_t error_count() const noexcept { return errors_; }
  const std::vector<Diagnostic>& entries() const noexcept { return entries_; }
  /// Every entry, one per line.
  std::string to_string() const;

 private:
  std::vector<Diagnostic> entries_;
  std::size_t errors_ = 0;
};

}  // namespace phigate::config
