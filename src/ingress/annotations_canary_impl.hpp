#pragma once
// Private to ingress: the value parsers of the canary annotations (annotations_canary.cpp), called
// from the annotation table of annotations.cpp. Each returns "" when the value is valid (and sets
// its field), else what is wrong (never the value).
#include <map>
#include <string>
#include <string_view>

#include "phigate/config/policy_canary.hpp"

namespace phigate::ingress::detail {

std::string parse_canary(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_header(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_header_value(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_header_pattern(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_cookie(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_weight(std::string_view v, config::CanaryPolicy& out);
std::string parse_canary_weight_total(std::string_view v, config::CanaryPolicy& out);
std::string parse_affinity_canary_behavior(std::string_view v, config::CanaryPolicy& out);

/// Go's strconv.ParseBool, which ingress-nginx reads `canary` with.
bool go_bool_true(std::string_view v);
bool go_bool_false(std::string_view v);

/// Whether an annotation name (without prefix) only tunes a canary: `canary-*` and
/// `affinity-canary-behavior`. Without `canary: "true"` they do nothing.
bool is_canary_tuning(std::string_view name);

/// An error message when the `canary` keys under the two prefixes disagree (one reads true, the
/// other does not): phigate.io/ must not switch off (or on) what the nginx key asks for. "" when not.
std::string canary_prefix_conflict(const std::map<std::string, std::string>& annotations);

}  // namespace phigate::ingress::detail
