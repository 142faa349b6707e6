#pragma once
// Rendering findings for people and tools: text (grouped by safeguard), JSON, SARIF 2.1.0 (GitHub
// code scanning), and a compliance report in HTML or Markdown with its evidence. Pure functions.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "phigate/check/check.hpp"

namespace phigate::check {

enum class Format : std::uint8_t { Text, Json, Sarif, Html, Markdown };
/// "text", "json", "sarif", "html", "markdown" (also "md"); false when unknown.
bool parse_format(std::string_view name, Format& out);

/// What a report states about the run it comes from.
struct Evidence {
  std::string version;                                         // phigate version
  std::int64_t time = 0;                                       // seconds since the epoch (Options::now)
  std::string config_file;                                     // as given
  std::string config_digest;                                   // hex SHA-256 of the config file's bytes
  std::vector<std::pair<std::string, std::string>> manifests;  // path, hex SHA-256; sorted by path
  bool phi_hosts_all = false;
  std::vector<std::string> phi_hosts;  // Context::phi_hosts()
  /// Rule ids that had nothing to examine (e.g. the deployment rules without deployment
  /// manifests): reported as not evaluated, never as controls met.
  std::vector<std::string> not_evaluated{};
};

/// The whole report; `findings` as evaluate() returns them (plus CFG000 findings). Every rule of
/// all_rules() is listed (a rule without findings is a control met, unless not evaluated).
std::string render(Format format, const std::vector<Finding>& findings, const Evidence& evidence);

}  // namespace phigate::check
