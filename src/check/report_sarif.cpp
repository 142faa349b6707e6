// SARIF 2.1.0 for GitHub code scanning: one run, every rule of the table as a reportingDescriptor
// (built-in rows too, without results), one result per finding with a relative, percent-encoded
// artifact URI (under %SRCROOT%), a region only when the line is known, the resource as a logical
// location and a stable partial fingerprint. A file that cannot be named relative to the working
// directory (outside it, or "..") keeps no physical location: the result names it in its message
// and properties instead, so that no URI points outside the checkout.
#include <filesystem>
#include <optional>
#include <system_error>

#include "report_impl.hpp"
#include "report_json_impl.hpp"

namespace phigate::check::detail {

namespace json = boost::json;

namespace {

// GitHub code scanning accepts at most this many results per run.
constexpr std::size_t kMaxResults = 25000;

std::string_view level(Severity s) noexcept {
  switch (s) {
    case Severity::Error:
      return "error";
    case Severity::Warning:
      return "warning";
    case Severity::Info:
      return "note";
  }
  return "error";
}

// GitHub's security-severity: critical >= 9.0, medium 4.0-6.9, low 0.1-3.9.
std::string_view security_severity(Severity s) noexcept {
  switch (s) {
    case Severity::Error:
      return "9.0";
    case Severity::Warning:
      return "5.0";
    case Severity::Info:
      return "1.0";
  }
  return "9.0";
}

// RFC 3986 relative reference: every byte but the unreserved characters and '/' percent-encoded.
std::string percent_encode(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || c == '/') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> sarif_uri(const std::string& file, const std::filesystem::path& cwd) {
  namespace fs = std::filesystem;
  if (file.empty()) return std::nullopt;
  fs::path p(file);
  if (p.is_absolute()) {
    if (cwd.empty() || !cwd.is_absolute()) return std::nullopt;
    p = p.lexically_normal().lexically_relative(cwd.lexically_normal());
  }
  p = p.lexically_normal();
  std::string s = p.generic_string();
  while (s.starts_with("./")) s.erase(0, 2);
  if (s.empty() || s == "." || s == ".." || s.starts_with("../") || s.starts_with("/")) return std::nullopt;
  return percent_encode(s);
}

namespace {

json::object rule_json(const RuleInfo& r) {
  json::object o;
  o["id"] = str(r.id);
  if (!r.name.empty()) o["name"] = str(r.name);
  o["shortDescription"] = json::object{{"text", str(r.title.empty() ? r.id : r.title)}};
  std::string full(r.title);
  full.append(full.empty() ? "" : ". ")
      .append("HIPAA 45 CFR ")
      .append(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa);
  full.append(" (").append(title(r.safeguard)).append(")");
  if (!r.nist.empty()) full.append("; NIST ").append(r.nist);
  full.append(".");
  if (!r.built_in.empty()) full.append(" Met by construction: ").append(r.built_in);
  o["fullDescription"] = json::object{{"text", str(full)}};

  std::string text = r.built_in.empty() ? std::string("Remedy: ").append(r.remedy) : std::string(r.built_in);
  text.append("\nHIPAA: 45 CFR ").append(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa);
  if (!r.nist.empty()) text.append("\nNIST: ").append(r.nist);
  std::string md = "**";
  md.append(md_escape(r.title)).append("**\n\n");
  if (r.built_in.empty()) {
    md.append("**Remedy:** ").append(md_escape(r.remedy)).append("\n\n");
  } else {
    md.append("**Met by construction:** ").append(md_escape(r.built_in)).append("\n\n");
  }
  md.append("**HIPAA:** 45 CFR ").append(md_escape(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa));
  md.append(" (").append(md_escape(title(r.safeguard))).append(")");
  if (!r.nist.empty()) md.append("  \n**NIST:** ").append(md_escape(r.nist));
  md.append("\n");
  o["help"] = json::object{{"text", str(text)}, {"markdown", str(md)}};
  o["defaultConfiguration"] = json::object{{"level", level(r.severity)}};
  json::array tags{"security", "hipaa"};
  tags.push_back(str(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa));
  json::object props;
  props["tags"] = std::move(tags);
  props["security-severity"] = security_severity(r.severity);
  props["precision"] = "high";
  props["hipaa"] = str(r.hipaa);
  props["nist"] = str(r.nist);
  props["safeguard"] = str(title(r.safeguard));
  o["properties"] = std::move(props);
  return o;
}

json::object result_json(const Finding& f, const RuleInfo& r, std::size_t rule_index,
                         const std::filesystem::path& cwd) {
  json::object o;
  o["ruleId"] = str(r.id);
  o["ruleIndex"] = rule_index;
  o["level"] = level(f.severity);
  const auto uri = sarif_uri(f.where.file, cwd);
  std::string text = display(f.message);
  if (!uri && !f.where.file.empty()) text.append(" (in ").append(display(file_line(f.where))).append(")");
  if (!r.remedy.empty()) text.append(" \xE2\x80\x94 ").append(display(r.remedy));
  o["message"] = json::object{{"text", str(text)}};

  json::object location;
  if (uri) {
    json::object physical;
    physical["artifactLocation"] = json::object{{"uri", str(*uri)}, {"uriBaseId", "%SRCROOT%"}};
    if (f.where.line >= 1) physical["region"] = json::object{{"startLine", f.where.line}};
    location["physicalLocation"] = std::move(physical);
  }
  if (!f.where.resource.empty()) {
    location["logicalLocations"] = json::array{json::object{{"name", str(f.where.resource)},
                                                            {"fullyQualifiedName", str(f.where.resource)},
                                                            {"kind", "resource"}}};
  } else if (!f.where.field.empty() || location.empty()) {
    // A config-file key, or nothing at all: the key (or the rule) keeps the result locatable.
    const std::string name = !f.where.field.empty() ? f.where.field : std::string(r.id);
    location["logicalLocations"] = json::array{
        json::object{{"name", str(name)}, {"fullyQualifiedName", str(name)}, {"kind", "property"}}};
  }
  o["locations"] = json::array{std::move(location)};
  o["partialFingerprints"] = json::object{{"phigateFinding/v1", str(f.fingerprint())}};
  json::object props;
  if (!f.host.empty()) props["host"] = str(f.host);
  if (!f.where.field.empty()) props["field"] = str(f.where.field);
  if (!uri && !f.where.file.empty()) props["file"] = str(f.where.file);
  if (f.where.doc >= 0) props["document"] = f.where.doc;
  if (f.where.item >= 0) props["item"] = f.where.item;
  props["hipaa"] = str(r.hipaa);
  o["properties"] = std::move(props);
  return o;
}

}  // namespace

std::string render_sarif(const std::vector<Finding>& findings, const Evidence& evidence) {
  const ReportModel model = ReportModel::build(findings, evidence.not_evaluated);
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (ec) cwd.clear();

  json::object driver;
  driver["name"] = "phigate";
  if (!evidence.version.empty()) driver["semanticVersion"] = str(evidence.version);
  json::array rules;
  for (const RuleInfo* r : model.rules) rules.push_back(rule_json(*r));
  driver["rules"] = std::move(rules);

  json::array results;
  for (std::size_t i = 0; i < findings.size() && i < kMaxResults; ++i) {
    const auto idx = model.rule_index(findings[i]);
    results.push_back(result_json(findings[i], *model.rules[idx], idx, cwd));
  }

  json::object run;
  run["tool"] = json::object{{"driver", std::move(driver)}};
  run["invocations"] =
      json::array{json::object{{"executionSuccessful", true}, {"endTimeUtc", str(rfc3339(evidence.time))}}};
  run["results"] = std::move(results);
  json::object props;
  props["configFile"] = str(evidence.config_file);
  props["configDigest"] = str(evidence.config_digest);
  props["phiHostsMode"] = evidence.phi_hosts_all ? "all" : "annotated";
  if (findings.size() > kMaxResults) props["omittedResults"] = findings.size() - kMaxResults;
  run["properties"] = std::move(props);

  json::object root;
  root["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  root["version"] = "2.1.0";
  root["runs"] = json::array{std::move(run)};
  return pretty(root);
}

}  // namespace phigate::check::detail
