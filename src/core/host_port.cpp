#include "phigate/core/host_port.hpp"

#include <charconv>

namespace phigate::core {

bool split_host_port(std::string_view t, std::string& host, std::uint16_t& port) {
  std::string_view h;
  std::string_view p;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':') return false;
    h = t.substr(1, close - 1);
    p = t.substr(close + 2);
  } else {
    const auto colon = t.rfind(':');
    if (colon == std::string_view::npos || t.find(':') != colon) return false;
    h = t.substr(0, colon);
    p = t.substr(colon + 1);
  }
  if (h.empty() || p.empty()) return false;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc{} || ptr != p.data() + p.size() || value > 65535) return false;
  host.assign(h);
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace phigate::core
