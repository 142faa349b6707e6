#pragma once
// YAML loader for phigate.yaml. Control thread only. Keeps file:line for every diagnostic.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"

namespace phigate::config {

/// Loads and validates `path`. Returns the config when there is no error; every error and
/// warning lands in `diag` either way. Relative paths in the file resolve against its folder.
std::optional<Config> load_config(const std::string& path, Diagnostics& diag);

/// Same, from text (for tests); `file` is used in diagnostics and as the base folder.
std::optional<Config> load_config_text(const std::string& text, const std::string& file, Diagnostics& diag);

/// "250ms", "10s", "5m", "1h" or a bare number of seconds. False on anything else.
bool parse_duration(const std::string& text, Duration& out);
/// "512", "16k", "10m", "1g" (binary multiples). False on anything else.
bool parse_size(const std::string& text, std::uint64_t& out);

/// nginx's proxy_next_upstream list ("error timeout http_502", tokens separated by spaces) into
/// kNextUpstream* bits. "off" alone is 0. Returns "" or what is wrong (never the value).
/// `non_idempotent` is refused: phigate never sends a second copy of a POST or PATCH.
std::string parse_next_upstream(std::string_view text, std::uint16_t& out);

}  // namespace phigate::config
