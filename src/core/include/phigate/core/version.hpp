#pragma once
#include <string_view>

namespace phigate::core {
/// The release version, e.g. "0.1.0".
std::string_view version() noexcept;
}  // namespace phigate::core
