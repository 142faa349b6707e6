#include "phigate/core/version.hpp"

namespace phigate::core {
std::string_view version() noexcept {
  return PHIGATE_VERSION;
}
}  // namespace phigate::core
