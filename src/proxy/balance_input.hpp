#pragma once
// Private to proxy: what a request gives the balancer (upstream::PickInput) — the value
// upstream-hash-by names, the affinity cookie's value — read from the request. Pure.
#include <string>
#include <string_view>

#include "phigate/upstream/cluster.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// The consistent-hashing key of `r` under `b` (empty when `b` does not hash). `scratch` may hold
/// the bytes the view points into.
std::string_view balance_hash_key(const Request& r, const upstream::BalanceSettings& b, std::string& scratch);

/// The value of `b`'s affinity cookie in `r`, or empty.
std::string_view affinity_cookie_value(const Request& r, const upstream::BalanceSettings& b);

}  // namespace phigate::proxy::detail
