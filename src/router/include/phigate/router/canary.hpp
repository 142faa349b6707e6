#pragma once
// A route's compiled ingress-nginx canary rules (from config::CanaryPolicy): what the proxy's
// `canary` phase reads to choose the main or the canary cluster. Built once per snapshot on the
// control thread, immutable and shared by the workers (RE2 matching is thread-safe).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "phigate/config/spec.hpp"

namespace re2 {
class RE2;
}

namespace phigate::router {

struct CanaryRule {
  std::string header;        // lower case, '_' read as '-' (nginx $http_<name>); empty: no header rule
  std::string header_value;  // exact match means canary (value mode)
  std::shared_ptr<const re2::RE2> header_pattern;  // partial match means canary (pattern mode)
  std::string cookie;                              // cookie name; empty: no cookie rule
  std::uint32_t weight = 0;
  std::uint32_t total = 100;  // canary-weight-total when > 100, else 100 (ingress-nginx)
  std::string ingress;        // the canary Ingress, "ns/name" (audit)
};

/// Where a request goes by the canary rules alone (no affinity): main, canary, or (None) no rule
/// decided, which is the main.
enum class CanaryChoice { None, Main, Canary };

/// ingress-nginx's order: (1) header `rule.header` (`header_value`: the first field's value; null
/// when absent): value mode exact match → canary, pattern mode partial RE2 match → canary, plain
/// mode "always" → canary and "never" → main; anything else falls through. (2) cookie `rule.cookie`
/// (`cookie_value`, empty when absent): "always"/"never", else falls through. (3) weight: canary
/// when `random % total < weight`. Pure; worker threads.
CanaryChoice decide_canary(const CanaryRule& rule, const std::string* header_value,
                           std::string_view cookie_value, std::uint32_t random) noexcept;

/// The rules of an attached canary (PathSpec::canary), or null when it has no policy or its header
/// pattern does not compile (the canary then gets no traffic; translate() refuses such a value).
std::shared_ptr<const CanaryRule> compile_canary(const config::PathSpec& canary);

}  // namespace phigate::router
