// TX* rules. Each rule: a RuleInfo row and a small function over the View (check.hpp).
#include "phigate/check/check.hpp"

namespace phigate::check {

std::span<const Rule> transmission_rules() {
  return {};
}

}  // namespace phigate::check
