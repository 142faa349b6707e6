#include "phigate/core/error.hpp"

#include <array>

namespace phigate::core {

namespace {
// Indexed by ErrorKind. Status 0: the connection is closed without a response.
constexpr std::array<KindInfo, 26> kKinds{{
    {400, "bad_request"},
    {414, "uri_too_long"},
    {431, "header_too_large"},
    {413, "body_too_large"},
    {404, "no_route"},
    {403, "denied"},
    {400, "client_certificate"},
    {421, "misdirected_request"},
    {503, "audit_unavailable"},
    {0, "client_closed"},
    {408, "client_timeout"},
    {0, "tls_handshake"},
    {502, "connect_refused"},
    {504, "connect_timeout"},
    {502, "upstream_reset"},
    {504, "upstream_timeout"},
    {502, "upstream_bad_response"},
    {502, "upstream_tls"},
    {503, "no_healthy_endpoint"},
    {503, "overloaded"},
    {503, "unavailable"},
    {503, "limit_exceeded"},
    {429, "too_many_requests"},
    {500, "internal"},
    {0, "config"},
    {401, "unauthorized"},
}};
static_assert(kKinds.size() == static_cast<std::size_t>(ErrorKind::Unauthorized) + 1);
}  // namespace

const KindInfo& kind_info(ErrorKind kind) noexcept {
  return kKinds[static_cast<std::size_t>(kind)];
}

std::string Error::to_string() const {
  std::string s(reason());
  if (!context.empty()) {
    s += ": ";
    s += context;
  }
  return s;
}

}  // namespace phigate::core
