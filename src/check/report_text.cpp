// Text for people: evidence, then per safeguard a summary line and one line per finding
// ("file:line: ERROR TX005 164.312(e)(1) [resource field] message — remedy (NIST SP ...)"), then
// the totals. Every string from configuration or manifests goes through display(): one line,
// controls escaped.
#include "report_common.hpp"
#include "report_impl.hpp"

namespace phigate::check::detail {

std::string render_text(const std::vector<Finding>& findings, const Evidence& evidence) {
  const ReportModel model = ReportModel::build(findings, evidence.not_evaluated);
  std::string out;
  out.append("phigate check ")
      .append(display(evidence.version))
      .append(" at ")
      .append(rfc3339(evidence.time));
  out.append("\n");
  out.append("config: ").append(display(evidence.config_file));
  if (!evidence.config_digest.empty())
    out.append(" (sha256 ").append(display(evidence.config_digest)).append(")");
  out.append("\n");
  for (const auto& [path, digest] : evidence.manifests) {
    out.append("manifest: ").append(display(path)).append(" (sha256 ").append(display(digest)).append(")\n");
  }
  out.append("PHI hosts: ").append(evidence.phi_hosts_all ? "all" : "annotated");
  for (std::size_t i = 0; i < evidence.phi_hosts.size(); ++i) {
    out.append(i == 0 ? ": " : ", ").append(display(evidence.phi_hosts[i]));
  }
  out.append("\n");

  for (const auto& sec : model.sections) {
    out.append("\n").append(citation(sec.safeguard)).append(" ").append(title(sec.safeguard)).append(": ");
    out.append(counts_text(sec.counts));
    const auto met = sec.rules_met();
    out.append(" (").append(std::to_string(met)).append(met == 1 ? " rule passed" : " rules passed");
    if (const auto skipped = sec.rules_not_evaluated(); skipped > 0) {
      out.append(", ").append(std::to_string(skipped)).append(" not evaluated: nothing to examine");
    }
    out.append(")\n");
    for (const auto i : sec.findings) {
      const Finding& f = findings[i];
      const RuleInfo& r = *model.rules[model.rule_index(f)];
      out.append("  ");
      if (const auto where = file_line(f.where); !where.empty()) out.append(display(where)).append(": ");
      out.append(upper(f.severity)).append(" ").append(display(r.id));
      out.append(" ").append(display(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa));
      if (!f.where.resource.empty() || !f.where.field.empty()) {
        out.append(" [").append(display(f.where.resource));
        if (!f.where.resource.empty() && !f.where.field.empty()) out.append(" ");
        out.append(display(f.where.field)).append("]");
      }
      out.append(" ").append(display(f.message));
      if (!r.remedy.empty()) out.append(" \xE2\x80\x94 ").append(display(r.remedy));
      if (!r.nist.empty()) out.append(" (NIST ").append(display(r.nist)).append(")");
      out.append("\n");
    }
  }
  out.append("\nTotal: ")
      .append(counts_text(model.counts))
      .append(" in ")
      .append(std::to_string(model.rules.size()));
  out.append(model.rules.size() == 1 ? " rule\n" : " rules\n");
  return out;
}

}  // namespace phigate::check::detail
