#include "balance_input.hpp"

namespace phigate::proxy::detail {

std::string_view balance_hash_key(const Request&, const upstream::BalanceSettings&, std::string&) {
  return {};
}

std::string_view affinity_cookie_value(const Request&, const upstream::BalanceSettings&) {
  return {};
}

}  // namespace phigate::proxy::detail
