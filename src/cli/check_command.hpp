#pragma once
// `phigate check`: the HIPAA technical safeguards of a configuration, rule by rule (docs/check.md).
#include <string_view>
#include <vector>

namespace phigate::cli {

/// Runs `phigate check` with the arguments after "check". Exit 0: no error finding (or -h/--help:
/// the usage on stdout); 1: an error finding (a configuration error included); 2: usage error or
/// input that cannot be read.
int check_command(const std::vector<std::string_view>& args);

}  // namespace phigate::cli
