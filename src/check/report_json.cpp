// JSON for tools: {version, evidence, rules[], findings[], summary}. Keys are fixed; every value
// string is well-formed UTF-8 escaped by Boost.JSON.
#include "report_impl.hpp"
#include "report_json_impl.hpp"

namespace phigate::check::detail {

namespace json = boost::json;

namespace {

json::object evidence_json(const Evidence& e) {
  json::object o;
  o["phigate_version"] = str(e.version);
  o["time"] = str(rfc3339(e.time));
  o["config_file"] = str(e.config_file);
  o["config_digest"] = str(e.config_digest);
  json::array manifests;
  for (const auto& [path, digest] : e.manifests) {
    json::object m;
    m["path"] = str(path);
    m["sha256"] = str(digest);
    manifests.push_back(std::move(m));
  }
  o["manifests"] = std::move(manifests);
  o["phi_hosts_mode"] = e.phi_hosts_all ? "all" : "annotated";
  json::array hosts;
  for (const auto& h : e.phi_hosts) hosts.push_back(str(h));
  o["phi_hosts"] = std::move(hosts);
  json::array skipped;
  for (const auto& id : e.not_evaluated) skipped.push_back(str(id));
  o["not_evaluated"] = std::move(skipped);
  return o;
}

json::object counts_json(const Counts& c) {
  json::object o;
  o["errors"] = c.errors;
  o["warnings"] = c.warnings;
  o["infos"] = c.infos;
  return o;
}

}  // namespace

std::string render_json(const std::vector<Finding>& findings, const Evidence& evidence) {
  const ReportModel model = ReportModel::build(findings, evidence.not_evaluated);
  json::object root;
  root["version"] = 1;
  root["evidence"] = evidence_json(evidence);

  json::array rules;
  for (const RuleInfo* r : model.rules) {
    json::object o;
    o["id"] = str(r->id);
    o["name"] = str(r->name);
    o["title"] = str(r->title);
    o["safeguard"] = str(citation(r->safeguard));
    o["hipaa"] = str(r->hipaa);
    o["nist"] = str(r->nist);
    o["severity"] = str(to_string(r->severity));
    o["remedy"] = str(r->remedy);
    o["runtime"] = r->runtime;
    o["enforceable"] = r->enforceable;
    o["warning_off_phi"] = r->warning_off_phi;
    if (!r->built_in.empty()) o["built_in"] = str(r->built_in);
    rules.push_back(std::move(o));
  }
  root["rules"] = std::move(rules);

  json::array out;
  for (const auto& f : findings) {
    const RuleInfo& r = *model.rules[model.rule_index(f)];
    json::object o;
    o["rule"] = str(r.id);
    o["severity"] = str(to_string(f.severity));
    o["hipaa"] = str(r.hipaa.empty() ? citation(r.safeguard) : r.hipaa);
    o["nist"] = str(r.nist);  // "" when no NIST section applies
    o["host"] = str(f.host);
    o["message"] = str(f.message);
    json::object loc;
    loc["file"] = str(f.where.file);
    loc["doc"] = f.where.doc;
    loc["item"] = f.where.item;
    loc["line"] = f.where.line;
    loc["resource"] = str(f.where.resource);
    loc["field"] = str(f.where.field);
    o["location"] = std::move(loc);
    o["fingerprint"] = str(f.fingerprint());
    out.push_back(std::move(o));
  }
  root["findings"] = std::move(out);

  json::object summary = counts_json(model.counts);
  json::array safeguards;
  for (const auto& sec : model.sections) {
    json::object s;
    s["safeguard"] = str(citation(sec.safeguard));
    s["title"] = str(title(sec.safeguard));
    for (const auto& kv : counts_json(sec.counts)) s[kv.key()] = kv.value();
    s["rules_passed"] = sec.rules_met();
    s["rules_not_evaluated"] = sec.rules_not_evaluated();
    safeguards.push_back(std::move(s));
  }
  summary["safeguards"] = std::move(safeguards);
  root["summary"] = std::move(summary);
  return pretty(root);
}

}  // namespace phigate::check::detail
