#pragma once
// What `phigate check` fixtures (tests/fixtures/check/) refer to, generated fresh per test into
// one folder: certificates, keys, CRLs, audit keys. Fixture files name them through the
// placeholders @GEN@ (the folder) and @B64:<file>@ (a file's bytes, base64 on one line), replaced
// by materialize(). tests/fixtures/check/README.md lists every file.
#include <string>

namespace phigate::test {

/// Writes every material file into `dir` (created). Throws std::runtime_error on failure.
void make_check_materials(const std::string& dir);

/// Copies fixture folder `from` to `to`, replacing @GEN@ with `gen` and @B64:name@ with the
/// base64 of `gen`/name in every file. Throws std::runtime_error on failure.
void materialize(const std::string& from, const std::string& to, const std::string& gen);

}  // namespace phigate::test
