// all_rules(): the rule groups concatenated once, in report order (by safeguard: (a)(1), (b),
// (c)(1), (d), (e)(1); certificates belong to (e)(1), deployment rules to their safeguard).
#include <algorithm>

#include "phigate/check/check.hpp"

namespace phigate::check {
namespace {

constexpr Rule kConfigError{
    {.id = "CFG000",
     .name = "ConfigurationError",
     .title = "The configuration or a Kubernetes resource has an error",
     .safeguard = Safeguard::Integrity,
     .hipaa = "164.312(c)(1)",
     .nist = "SP 800-66r2 5.3.3",
     .severity = Severity::Error,
     .remedy = "Fix the field the message names; an Ingress with an error fails closed (503) until then",
     .runtime = false},
    nullptr};

constexpr Rule kNotEvaluated{
    {.id = "CFG001",
     .name = "InputNotExamined",
     .title = "Some rules had nothing to examine (no Kubernetes or deployment manifests given)",
     .safeguard = Safeguard::Integrity,
     .hipaa = "164.312(c)(1)",
     .nist = "",
     .severity = Severity::Info,
     .remedy =
         "Pass the manifests phigate serves from and is deployed with: --manifests DIR (e.g. kubectl get "
         "ingress,ingressclass,secret,service,endpointslice,configmap -A -o yaml; kubectl kustomize docker/)",
     .runtime = false},
    nullptr};

std::vector<Rule> build() {
  std::vector<Rule> all;
  for (auto group : {access_rules(), audit_rules(), integrity_rules(), authentication_rules(),
                     transmission_rules(), certificate_rules(), kubernetes_rules()}) {
    all.insert(all.end(), group.begin(), group.end());
  }
  all.push_back(kConfigError);
  all.push_back(kNotEvaluated);
  std::stable_sort(all.begin(), all.end(),
                   [](const Rule& a, const Rule& b) { return a.info.safeguard < b.info.safeguard; });
  return all;
}

}  // namespace

std::span<const Rule> all_rules() {
  static const std::vector<Rule> rules = build();
  return rules;
}

const RuleInfo* find_rule(std::string_view id) {
  for (const auto& r : all_rules()) {
    if (r.info.id == id) return &r.info;
  }
  return nullptr;
}

const RuleInfo& config_error_rule() {
  return *find_rule("CFG000");
}

const RuleInfo& not_evaluated_rule() {
  return *find_rule("CFG001");
}

}  // namespace phigate::check
