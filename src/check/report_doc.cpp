// The compliance report (HTML or Markdown, one model, two writers): title, evidence table, a
// summary per safeguard, then per safeguard its citation, the controls that meet it (rules with
// no finding and built-in controls with their evidence) and its findings. HTML is one
// self-contained page: inline CSS, no script (a Content-Security-Policy forbids any), every string
// escaped; Markdown escapes every character that could end a table cell or start markup.
#include "report_common.hpp"
#include "report_impl.hpp"

namespace phigate::check::detail {

namespace {

constexpr std::string_view kCss =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#111;max-width:80em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#eee}.error{color:#a00;font-weight:bold}.warning{color:#a60;font-weight:bold}"
    ".info{color:#036}.pass{color:#060;font-weight:bold}code{font-size:95%}";

// The document as a sequence of blocks; the writer escapes every cell.
class Doc {
 public:
  explicit Doc(bool html) : html_(html) {}

  void heading(int level, std::string_view text, std::string_view anchor = {}) {
    if (html_) {
      out_.append("<h").append(std::to_string(level));
      if (!anchor.empty()) out_.append(" id=\"").append(html_escape(anchor)).append("\"");
      out_.append(">").append(html_escape(text)).append("</h").append(std::to_string(level)).append(">\n");
    } else {
      out_.append(static_cast<std::size_t>(level), '#').append(" ").append(md_escape(text)).append("\n\n");
    }
  }

  // A paragraph; `cls` styles it in HTML ("pass", "error", ...).
  void paragraph(std::string_view text, std::string_view cls = {}) {
    if (html_) {
      out_.append("<p");
      if (!cls.empty()) out_.append(" class=\"").append(html_escape(cls)).append("\"");
      out_.append(">").append(html_escape(text)).append("</p>\n");
    } else {
      out_.append(md_escape(text)).append("\n\n");
    }
  }

  void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
             bool row_headers = false) {
    if (html_) {
      out_.append("<table>\n");
      if (!head.empty()) {
        out_.append("<tr>");
        for (const auto& h : head) out_.append("<th>").append(html_escape(h)).append("</th>");
        out_.append("</tr>\n");
      }
      for (const auto& row : rows) {
        out_.append("<tr>");
        for (std::size_t i = 0; i < row.size(); ++i) {
          const bool th = row_headers && i == 0;
          out_.append(th ? "<th>" : "<td>").append(html_escape(row[i])).append(th ? "</th>" : "</td>");
        }
        out_.append("</tr>\n");
      }
      out_.append("</table>\n");
    } else {
      const auto line = [&](const std::vector<std::string>& cells) {
        out_.append("|");
        for (const auto& c : cells) out_.append(" ").append(md_escape(c)).append(" |");
        out_.append("\n");
      };
      line(head);
      out_.append("|");
      for (std::size_t i = 0; i < head.size(); ++i) out_.append(" --- |");
      out_.append("\n");
      for (const auto& row : rows) line(row);
      out_.append("\n");
    }
  }

  void raw(std::string_view s) { out_.append(s); }
  std::string take() { return std::move(out_); }

 private:
  bool html_;
  std::string out_;
};

std::string hipaa_of(const RuleInfo& r) {
  return std::string(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa);
}

}  // namespace

std::string render_doc(const std::vector<Finding>& findings, const Evidence& evidence, bool html) {
  const ReportModel model = ReportModel::build(findings, evidence.not_evaluated);
  const std::string heading = "HIPAA technical safeguards (45 CFR 164.312): phigate configuration report";
  Doc doc(html);
  if (html) {
    doc.raw(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
        "'unsafe-inline'\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    doc.raw(html_escape(heading));
    doc.raw("</title>\n<style>");
    doc.raw(kCss);
    doc.raw("</style>\n</head>\n<body>\n");
  }
  doc.heading(1, heading);

  doc.heading(2, "Evidence", "evidence");
  std::vector<std::vector<std::string>> ev;
  ev.push_back({"phigate version", evidence.version});
  ev.push_back({"Time (UTC)", rfc3339(evidence.time)});
  ev.push_back({"Configuration file", evidence.config_file});
  ev.push_back({"Configuration SHA-256", evidence.config_digest});
  for (const auto& [path, digest] : evidence.manifests)
    ev.push_back({"Manifest", path + " (SHA-256 " + digest + ")"});
  if (evidence.manifests.empty()) ev.push_back({"Manifests", "none given"});
  ev.push_back({"PHI hosts mode", evidence.phi_hosts_all ? "all (every host carries PHI)"
                                                         : "annotated (phigate.io/phi: \"true\")"});
  std::string hosts;
  for (const auto& h : evidence.phi_hosts) hosts.append(hosts.empty() ? "" : ", ").append(h);
  ev.push_back({"PHI hosts", hosts.empty() ? std::string("none") : hosts});
  ev.push_back({"Result", counts_text(model.counts) + " (" + std::to_string(model.rules.size()) + " rules)"});
  doc.table({"Item", "Value"}, ev, /*row_headers=*/true);

  doc.heading(2, "Summary", "summary");
  std::vector<std::vector<std::string>> summary;
  for (const auto& sec : model.sections) {
    summary.push_back({std::string(citation(sec.safeguard)) + " " + std::string(title(sec.safeguard)),
                       counts_text(sec.counts),
                       std::to_string(sec.rules_met()) + " of " + std::to_string(sec.rules.size())});
  }
  doc.table({"Safeguard", "Status", "Controls met"}, summary);

  for (const auto& sec : model.sections) {
    const std::string cite(citation(sec.safeguard));
    doc.heading(2, cite + " " + std::string(title(sec.safeguard)), cite);
    const std::string_view status = sec.counts.errors     ? "error"
                                    : sec.counts.warnings ? "warning"
                                    : sec.counts.infos    ? "info"
                                                          : "pass";
    doc.paragraph("45 CFR " + cite + ": " + counts_text(sec.counts) + ".", status);

    doc.heading(3, "Controls met");
    std::vector<std::vector<std::string>> met;
    std::vector<std::vector<std::string>> skipped;
    for (const auto& row : sec.rules) {
      if (!row.findings.empty()) continue;
      const RuleInfo& r = *row.info;
      if (!row.evaluated) {
        skipped.push_back(
            {std::string(r.id), std::string(r.title), "Not evaluated: nothing to examine (see CFG001)"});
        continue;
      }
      std::string how = r.built_in.empty() ? "Checked: no finding" : "Built in: " + std::string(r.built_in);
      std::string ref = hipaa_of(r);
      if (!r.nist.empty()) ref.append("; NIST ").append(r.nist);
      met.push_back({std::string(r.id), std::string(r.title), how, ref});
    }
    if (met.empty()) {
      doc.paragraph("None.");
    } else {
      doc.table({"Rule", "Checked for", "Evidence", "Reference"}, met);
    }
    if (!skipped.empty()) {
      doc.heading(3, "Not evaluated");
      doc.table({"Rule", "Checked for", "Why"}, skipped);
    }

    doc.heading(3, "Findings");
    std::vector<std::vector<std::string>> rows;
    for (const auto i : sec.findings) {
      const Finding& f = findings[i];
      const RuleInfo& r = *model.rules[model.rule_index(f)];
      std::string resource = f.where.resource;
      if (!f.where.field.empty()) resource.append(resource.empty() ? "" : " ").append(f.where.field);
      std::string rule(r.id);
      rule.append(" ").append(r.title);
      rows.push_back({std::string(to_string(f.severity)), rule, resource, file_line(f.where), f.host,
                      f.message, std::string(r.remedy)});
    }
    if (rows.empty()) {
      doc.paragraph("No finding.", "pass");
    } else {
      doc.table({"Severity", "Rule", "Resource", "Location", "Host", "Finding", "Remedy"}, rows);
    }
  }
  if (html) doc.raw("</body>\n</html>\n");
  return doc.take();
}

}  // namespace phigate::check::detail
