#pragma once
// ingress-nginx canary annotations of one Ingress (canary, canary-by-header[-value|-pattern],
// canary-by-cookie, canary-weight[-total], affinity-canary-behavior): validated values, no logic.
// translate() attaches a canary to its main path; the router compiles the rules.
#include <cstdint>
#include <string>

namespace phigate::config {

struct CanaryPolicy {
  bool enabled = false;              // canary: "true" (Go ParseBool, as ingress-nginx reads it)
  std::string header;                // canary-by-header: a field name (BasicChars); empty: none
  std::string header_value;          // canary-by-header-value: exact value means canary
  std::string header_pattern;        // canary-by-header-pattern: RE2, unanchored, case-sensitive
  std::string cookie;                // canary-by-cookie: a cookie name; empty: none
  std::uint32_t weight = 0;          // canary-weight: 0..weight_total
  std::uint32_t weight_total = 100;  // canary-weight-total as written (the draw uses > 100 only)
  bool legacy_affinity = false;      // affinity-canary-behavior: legacy (default sticky)
};

}  // namespace phigate::config
