#pragma once
// Private to proxy: what a request gives the balancer (upstream::PickInput) — the value
// upstream-hash-by names, the affinity cookie's value — read from the request. Pure.
#include <string>
#include <string_view>

#include "phigate/upstream/cluster.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// The value of cookie `name` in the request's Cookie field(s) (RFC 6265 §4.2.1), or empty.
std::string_view cookie_value(const http::HeaderList& headers, std::string_view name) noexcept;

/// The raw value of query argument `name` of `target` (nginx $arg_<name>: case-insensitive name),
/// or empty.
std::string_view query_argument(std::string_view target, std::string_view name) noexcept;

/// The consistent-hashing key of `r` under `b` (empty when `b` does not hash). `scratch` may hold
/// the bytes the view points into.
std::string_view balance_hash_key(const Request& r, const upstream::BalanceSettings& b, std::string& scratch);

/// The value of `b`'s affinity cookie in `r`, or empty.
std::string_view affinity_cookie_value(const Request& r, const upstream::BalanceSettings& b);

}  // namespace phigate::proxy::detail
