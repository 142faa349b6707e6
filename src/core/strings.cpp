#include "phigate/core/strings.hpp"

namespace phigate::core {

std::string to_lower(std::string_view s) {
  std::string out(s);
  to_lower_in_place(out);
  return out;
}

void to_lower_in_place(std::string& s) noexcept {
  for (auto& c : s) c = to_lower(c);
}

}  // namespace phigate::core
