#pragma once
// A response head as curl dumped it (`-D -`), for tests of response fields.
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace phigate::test {

/// A response as curl dumped it (-D -): status and fields, names lower-cased.
struct Head {
  std::string status;
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& f : fields) n += f.first == name;
    return n;
  }
  std::string get(const std::string& name) const {
    for (const auto& f : fields) {
      if (f.first == name) return f.second;
    }
    return "(none)";
  }
  /// All values of `name`, joined with ", " (Vary may come as several fields).
  std::string all(const std::string& name) const {
    std::string s;
    for (const auto& f : fields) {
      if (f.first != name) continue;
      if (!s.empty()) s += ", ";
      s += f.second;
    }
    return s;
  }
};

inline Head parse_head(const std::string& dump) {
  Head h;
  std::size_t at = 0;
  bool first = true;
  while (at < dump.size()) {
    auto eol = dump.find('\n', at);
    if (eol == std::string::npos) eol = dump.size();
    std::string line = dump.substr(at, eol - at);
    at = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    if (first) {
      const auto sp = line.find(' ');
      h.status = line.substr(sp + 1, 3);
      first = false;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    h.fields.emplace_back(std::move(name), std::move(value));
  }
  return h;
}

}  // namespace phigate::test
