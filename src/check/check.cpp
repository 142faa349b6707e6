// The engine: severity/safeguard names, options, fingerprints, evaluate().
#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "phigate/check/check.hpp"
#include "phigate/config/diagnostics.hpp"

namespace phigate::check {

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::Error:
      return "error";
    case Severity::Warning:
      return "warning";
    case Severity::Info:
      return "info";
  }
  return "error";
}

std::string_view citation(Safeguard s) noexcept {
  switch (s) {
    case Safeguard::AccessControl:
      return "164.312(a)(1)";
    case Safeguard::Audit:
      return "164.312(b)";
    case Safeguard::Integrity:
      return "164.312(c)(1)";
    case Safeguard::Authentication:
      return "164.312(d)";
    case Safeguard::Transmission:
      return "164.312(e)(1)";
  }
  return "";
}

std::string_view title(Safeguard s) noexcept {
  switch (s) {
    case Safeguard::AccessControl:
      return "Access control";
    case Safeguard::Audit:
      return "Audit controls";
    case Safeguard::Integrity:
      return "Integrity";
    case Safeguard::Authentication:
      return "Person or entity authentication";
    case Safeguard::Transmission:
      return "Transmission security";
  }
  return "";
}

Options Options::from(const config::CheckSpec& spec) {
  Options o;
  o.phi_hosts_all = spec.phi_hosts_all;
  o.min_cert_days = spec.min_cert_days;
  o.audit_key_max_age_days = spec.audit_key_max_age_days;
  o.system_ca_bundle = spec.system_ca_bundle;
  o.public_ca_count = spec.public_ca_count;
  return o;
}

std::string Finding::fingerprint() const {
  std::string in;
  for (std::string_view part :
       {rule ? rule->id : std::string_view{}, std::string_view{where.resource}, std::string_view{where.field},
        std::string_view{host}, std::string_view{where.file}}) {
    in.append(part);
    in.push_back('\x1f');
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Fetched once: EVP_sha256() in EVP_Digest looks the implementation up at every call (OpenSSL
  // 3), and a snapshot build fingerprints every finding.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_Digest(in.data(), in.size(), md, &len, sha256, nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string describe(const Finding& f) {
  config::Diagnostic d;
  // The finding's own severity where a diagnostic says it ("file:line: warning: ..."): a warning
  // logged as "error" would page whoever alerts on error lines.
  d.severity = f.severity == Severity::Error     ? config::Severity::Error
               : f.severity == Severity::Warning ? config::Severity::Warning
                                                 : config::Severity::Info;
  d.file = f.where.file;
  if (f.where.doc >= 0) d.file.append("#").append(std::to_string(f.where.doc));
  if (f.where.item >= 0) d.file.append(".items[").append(std::to_string(f.where.item)).append("]");
  d.line = f.where.line;
  d.resource = f.where.resource;
  d.field = f.where.field;
  const std::string_view id = f.rule ? f.rule->id : std::string_view{"?"};
  const std::string_view hipaa = f.rule ? f.rule->hipaa : std::string_view{};
  const std::string_view remedy = f.rule ? f.rule->remedy : std::string_view{};
  d.message.reserve(id.size() + hipaa.size() + f.message.size() + remedy.size() + 16);
  d.message.append(id).append(" ").append(hipaa).append(": ");
  d.message.append(f.message).append(" (").append(remedy).append(")");
  return d.to_string();  // escapes control bytes
}

Finding make_finding(const RuleInfo& rule, std::string message, Location where, std::string host) {
  Finding f;
  f.rule = &rule;
  f.severity = rule.severity;
  f.message = std::move(message);
  f.where = std::move(where);
  f.host = std::move(host);
  return f;
}

std::vector<Finding> evaluate(const View& v) {
  const Context ctx(v);
  std::vector<Finding> out;
  const auto rules = all_rules();
  for (const auto& r : rules) {
    if (!r.fn) continue;
    if (v.options.scope == Scope::Runtime && !r.info.runtime) continue;
    r.fn(v, r.info, ctx, out);
  }
  // Report order: the rule table's order (safeguard groups), then place. Ranks computed once
  // (thousands of findings at a snapshot build).
  std::unordered_map<const RuleInfo*, std::size_t> rank;
  for (std::size_t i = 0; i < rules.size(); ++i) rank.emplace(&rules[i].info, i);
  std::vector<std::pair<std::size_t, std::size_t>> order;  // rank, index
  order.reserve(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto it = rank.find(out[i].rule);
    order.emplace_back(it != rank.end() ? it->second : rules.size(), i);
  }
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    const Finding& x = out[a.second];
    const Finding& y = out[b.second];
    return std::forward_as_tuple(a.first, x.where.file, x.where.line, x.where.resource, x.message) <
           std::forward_as_tuple(b.first, y.where.file, y.where.line, y.where.resource, y.message);
  });
  std::vector<Finding> sorted;
  sorted.reserve(out.size());
  for (const auto& [r, i] : order) sorted.push_back(std::move(out[i]));
  out = std::move(sorted);
  return out;
}

}  // namespace phigate::check
