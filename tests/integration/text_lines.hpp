#pragma once
// Splits a tool's output (curl -w lines, decrypted audit records) into lines, without their '\n'.
// A trailing newline ends the last line (no empty line after it); text without one keeps its tail.
#include <string>
#include <vector>

namespace phigate::test {

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace phigate::test
