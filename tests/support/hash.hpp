#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace phigate::test {

/// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);
/// Lower-case hex SHA-256 of a file's contents, streamed; throws std::runtime_error if it cannot be read.
std::string sha256_file_hex(const std::string& path);
/// The test upstream's deterministic body: byte i is "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36].
std::string pattern_bytes(std::size_t n);

}  // namespace phigate::test
