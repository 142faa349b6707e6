#include "phigate/router/canary.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <string_view>

#include "phigate/core/strings.hpp"

namespace phigate::router {

std::shared_ptr<const CanaryRule> compile_canary(const config::PathSpec& canary) {
  if (canary.policy == nullptr) return nullptr;
  const auto& p = canary.policy->canary;
  auto rule = std::make_shared<CanaryRule>();
  constexpr std::string_view kIngress = "Ingress ";
  if (canary.policy->resource.rfind(kIngress, 0) == 0)
    rule->ingress = canary.policy->resource.substr(kIngress.size());
  rule->header = p.header;
  core::to_lower_in_place(rule->header);
  std::replace(rule->header.begin(), rule->header.end(), '_', '-');
  rule->header_value = p.header_value;
  if (p.header_value.empty() && !p.header_pattern.empty()) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(1 << 20);
    auto re = std::make_shared<const RE2>(p.header_pattern, o);
    if (!re->ok()) return nullptr;
    rule->header_pattern = std::move(re);
  }
  rule->cookie = p.cookie;
  rule->weight = p.weight;
  rule->total = p.weight_total > 100 ? p.weight_total : 100;
  return rule;
}

CanaryChoice decide_canary(const CanaryRule& rule, const std::string* header_value,
                           std::string_view cookie_value, std::uint32_t random) noexcept {
  if (!rule.header.empty() && header_value != nullptr) {
    const std::string& v = *header_value;
    if (!rule.header_value.empty()) {
      if (v == rule.header_value) return CanaryChoice::Canary;
    } else if (rule.header_pattern) {
      if (RE2::PartialMatch(v, *rule.header_pattern)) return CanaryChoice::Canary;
    } else if (v == "always") {
      return CanaryChoice::Canary;
    } else if (v == "never") {
      return CanaryChoice::Main;
    }
  }
  if (!rule.cookie.empty()) {
    if (cookie_value == "always") return CanaryChoice::Canary;
    if (cookie_value == "never") return CanaryChoice::Main;
  }
  if (rule.weight > 0 && rule.total > 0 && random % rule.total < rule.weight) return CanaryChoice::Canary;
  return CanaryChoice::None;
}

}  // namespace phigate::router
