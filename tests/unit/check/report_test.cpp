// The report writers (text, JSON, SARIF, HTML, Markdown): content, counts per safeguard, and that
// hostile names from configuration and manifests (markup, quotes, newlines, NUL and escape bytes,
// invalid UTF-8, '|', backticks, "../" and absolute paths) are escaped and cannot break the
// structure of any format. The rule table grows as rule groups land, so the tests use their own
// rules (ids no real rule has) and compute whatever depends on all_rules().
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "phigate/check/report.hpp"
#include "report_common.hpp"
#include "report_json_impl.hpp"

namespace phigate::check {
namespace {

constexpr RuleInfo kTxError{.id = "ZZT01",
                            .name = "TestPlainHttp",
                            .title = "Test: a PHI host served on plain HTTP",
                            .safeguard = Safeguard::Transmission,
                            .hipaa = "164.312(e)(1)",
                            .nist = "SP 800-52r2 3.1",
                            .severity = Severity::Error,
                            .remedy = "Redirect HTTP to HTTPS"};
constexpr RuleInfo kTxWarning{.id = "ZZT02",
                              .name = "TestHstsShort",
                              .title = "Test: HSTS max-age under a year",
                              .safeguard = Safeguard::Transmission,
                              .hipaa = "164.312(e)(1)",
                              .severity = Severity::Warning,
                              .remedy = "Set max-age to 31536000"};
constexpr RuleInfo kAuditInfo{.id = "ZZA01",
                              .name = "TestWafPending",
                              .title = "Test: not built yet",
                              .safeguard = Safeguard::Audit,
                              .hipaa = "164.312(b)",
                              .severity = Severity::Info,
                              .remedy = "Nothing to do yet"};

// Markup, quotes, line breaks, NUL, an escape sequence, invalid UTF-8 (a lone 0xFF, 0xFE, a cut
// two-byte sequence), Markdown's cell separator and code span, and a right-to-left override.
const std::string kHostile =
    std::string("</script><script>alert(1)</script><img src=x onerror=alert(2)> \"q\" 'a' ") +
    "| `b` [l](http://x) *e* _u_ $m$ &amp; \n# new line\r\x1b[31m NUL:" + std::string(1, '\0') +
    "\xff\xfe bad \xc3\x28 ../../etc/passwd \xE2\x80\xAE end";
// kHostile as well-formed UTF-8: each byte outside a well-formed sequence is U+FFFD.
const std::string kHostileUtf8 =
    std::string("</script><script>alert(1)</script><img src=x onerror=alert(2)> \"q\" 'a' ") +
    "| `b` [l](http://x) *e* _u_ $m$ &amp; \n# new line\r\x1b[31m NUL:" + std::string(1, '\0') +
    "\xEF\xBF\xBD\xEF\xBF\xBD bad \xEF\xBF\xBD( ../../etc/passwd \xE2\x80\xAE end";

Finding make(const RuleInfo& r, Severity s, std::string message, Location where, std::string host = {}) {
  Finding f = make_finding(r, std::move(message), std::move(where), std::move(host));
  f.severity = s;
  return f;
}

Location at(std::string file, int line, std::string resource, std::string field, int doc = -1) {
  Location l;
  l.file = std::move(file);
  l.line = line;
  l.resource = std::move(resource);
  l.field = std::move(field);
  l.doc = doc;
  return l;
}

Evidence evidence() {
  Evidence e;
  e.version = "0.1.0";
  e.time = 1796523900;  // 2026-12-06T02:25:00Z
  e.config_file = "phigate.yaml";
  e.config_digest = std::string(64, 'a');
  e.manifests = {{"k8s/ingress.yaml", std::string(64, 'b')}, {"k8s/secrets.yaml", std::string(64, 'c')}};
  e.phi_hosts = {"api.example", "records.example"};
  return e;
}

// Two errors and a warning in (e)(1), an info in (b); a config key, an Ingress annotation, an
// API-source object without file, a file outside the working directory.
std::vector<Finding> sample() {
  std::vector<Finding> v;
  v.push_back(
      make(kTxError, Severity::Error, "TLS 1.0 allowed", at("phigate.yaml", 12, "", "tls.min_version")));
  v.push_back(make(kTxError, Severity::Error, "records.example is served on plain HTTP",
                   at("k8s/ingress.yaml", 7, "Ingress default/web",
                      "metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect", 1),
                   "records.example"));
  v.push_back(make(kTxWarning, Severity::Warning, "HSTS max-age 300 on api.example",
                   at("", 0, "Ingress prod/api", "metadata.annotations"), "api.example"));
  v.push_back(make(kAuditInfo, Severity::Info, "the WAF is not built yet",
                   at("/etc/phigate/phigate.yaml", 0, "", "")));
  return v;
}

// Findings whose every string is hostile, in each safeguard that has a test rule.
std::vector<Finding> hostile() {
  std::vector<Finding> v;
  v.push_back(make(kTxError, Severity::Error, kHostile,
                   at("../../" + kHostile, 3, "Ingress " + kHostile, kHostile), kHostile));
  v.push_back(
      make(kTxWarning, Severity::Warning, kHostile, at("/abs/" + kHostile, 0, kHostile, ""), kHostile));
  v.push_back(make(kAuditInfo, Severity::Info, kHostile, at("", 0, "", kHostile)));
  return v;
}

Evidence hostile_evidence() {
  Evidence e = evidence();
  e.version = kHostile;
  e.config_file = kHostile;
  e.config_digest = kHostile;
  e.manifests = {{kHostile, kHostile}};
  e.phi_hosts = {kHostile, "*"};
  return e;
}

std::size_t rules_in(Safeguard s) {
  return static_cast<std::size_t>(std::count_if(all_rules().begin(), all_rules().end(),
                                                [&](const Rule& r) { return r.info.safeguard == s; }));
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// No byte below 0x20 but '\n', no DEL, and well-formed UTF-8.
void expect_clean_text(const std::string& s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    ASSERT_TRUE((u >= 0x20 && u != 0x7F) || u == '\n') << "raw control byte " << int(u);
  }
  EXPECT_TRUE(simdjson::validate_utf8(s));
  EXPECT_EQ(s.find("\xE2\x80\xAE"), std::string::npos) << "a bidi override passed through";
}

std::string_view sv(simdjson::dom::element e) {
  return std::string_view(e.get_string().value());
}

// --- text -------------------------------------------------------------------------------------

TEST(CheckReportText, GroupsBySafeguardWithASummaryLineAndOneLinePerFinding) {
  const auto out = render(Format::Text, sample(), evidence());
  const auto ls = lines(out);
  EXPECT_EQ(ls.at(0), "phigate check 0.1.0 at 2026-12-06T02:25:00Z");
  EXPECT_EQ(ls.at(1), "config: phigate.yaml (sha256 " + std::string(64, 'a') + ")");
  EXPECT_EQ(ls.at(2), "manifest: k8s/ingress.yaml (sha256 " + std::string(64, 'b') + ")");
  EXPECT_EQ(ls.at(4), "PHI hosts: annotated: api.example, records.example");

  const auto passed = [](Safeguard s, std::size_t test_rules_met) {
    const auto n = rules_in(s) + test_rules_met;
    return " (" + std::to_string(n) + (n == 1 ? " rule passed)" : " rules passed)");
  };
  const std::string tx =
      "164.312(e)(1) Transmission security: 2 errors, 1 warning" + passed(Safeguard::Transmission, 0);
  const std::string au = "164.312(b) Audit controls: 1 info" + passed(Safeguard::Audit, 0);
  const std::string ac = "164.312(a)(1) Access control: pass" + passed(Safeguard::AccessControl, 0);
  const std::string in = "164.312(c)(1) Integrity: pass" + passed(Safeguard::Integrity, 0);
  const std::string pa =
      "164.312(d) Person or entity authentication: pass" + passed(Safeguard::Authentication, 0);
  std::vector<std::string> order;
  for (const auto& l : ls) {
    if (l.starts_with("164.312")) order.push_back(l);
  }
  EXPECT_EQ(order, (std::vector<std::string>{ac, au, in, pa, tx}));

  const auto at = [&](const std::string& line) { return std::find(ls.begin(), ls.end(), line) - ls.begin(); };
  const auto tx_at = at(tx);
  ASSERT_LT(tx_at + 3, static_cast<long>(ls.size()));
  // Each finding names its rule's HIPAA paragraph and, when the rule has one, its NIST reference.
  EXPECT_EQ(ls[tx_at + 1],
            "  phigate.yaml:12: ERROR ZZT01 164.312(e)(1) [tls.min_version] TLS 1.0 allowed \xE2\x80\x94 "
            "Redirect HTTP to HTTPS (NIST SP 800-52r2 3.1)");
  EXPECT_EQ(ls[tx_at + 2],
            "  k8s/ingress.yaml:7: ERROR ZZT01 164.312(e)(1) [Ingress default/web "
            "metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect] records.example is served on "
            "plain HTTP "
            "\xE2\x80\x94 Redirect HTTP to HTTPS (NIST SP 800-52r2 3.1)");
  EXPECT_EQ(ls[tx_at + 3],
            "  WARNING ZZT02 164.312(e)(1) [Ingress prod/api metadata.annotations] HSTS max-age 300 on "
            "api.example \xE2\x80\x94 Set max-age to 31536000");
  EXPECT_EQ(ls[at(au) + 1],
            "  /etc/phigate/phigate.yaml: INFO ZZA01 164.312(b) the WAF is not built yet \xE2\x80\x94 "
            "Nothing to do yet");
  EXPECT_EQ(ls.back(),
            "Total: 2 errors, 1 warning, 1 info in " + std::to_string(all_rules().size() + 3) + " rules");
}

TEST(CheckReportText, NoFindingsPassesEverySafeguard) {
  const auto out = render(Format::Text, {}, evidence());
  for (const auto s : kSafeguards) {
    EXPECT_NE(out.find(std::string(citation(s)) + " " + std::string(title(s)) + ": pass ("),
              std::string::npos);
  }
  EXPECT_NE(out.find("Total: pass in "), std::string::npos);
}

TEST(CheckReportText, HostileStringsStayOnTheirLineAndAreVisible) {
  const auto findings = hostile();
  const auto out = render(Format::Text, findings, hostile_evidence());
  expect_clean_text(out);
  // One line per finding: a newline, CR or escape in a name cannot start another line.
  const auto ls = lines(out);
  EXPECT_EQ(std::count_if(ls.begin(), ls.end(),
                          [](const std::string& l) { return l.find(" ZZ") != std::string::npos; }),
            3);
  EXPECT_EQ(
      std::count_if(ls.begin(), ls.end(), [](const std::string& l) { return l.starts_with("# new line"); }),
      0);
  EXPECT_NE(out.find("\\n# new line\\r\\x1b[31m NUL:\\x00\xEF\xBF\xBD\xEF\xBF\xBD bad \xEF\xBF\xBD("),
            std::string::npos);
  EXPECT_NE(out.find("\\u{202e} end"), std::string::npos);
}

// --- JSON -------------------------------------------------------------------------------------

TEST(CheckReportJson, ParsesBackWithEveryRuleFindingAndCount) {
  const auto findings = sample();
  const auto out = render(Format::Json, findings, evidence());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;
  EXPECT_EQ(doc["version"].get_int64().value(), 1);
  EXPECT_EQ(sv(doc["evidence"]["time"]), "2026-12-06T02:25:00Z");
  EXPECT_EQ(sv(doc["evidence"]["config_digest"]), std::string(64, 'a'));
  EXPECT_EQ(sv(doc["evidence"]["manifests"].at(1)["path"]), "k8s/secrets.yaml");
  EXPECT_EQ(sv(doc["evidence"]["phi_hosts_mode"]), "annotated");
  EXPECT_EQ(sv(doc["evidence"]["phi_hosts"].at(1)), "records.example");

  std::multiset<std::string> ids;
  for (auto r : doc["rules"].get_array()) {
    ids.insert(std::string(sv(r["id"])));
    // The "E/W" mark of docs/check.md's table (scripts/gen-check-rules.sh reads it from here).
    if (const RuleInfo* info = find_rule(sv(r["id"]))) {
      EXPECT_EQ(r["warning_off_phi"].get_bool().value(), info->warning_off_phi) << info->id;
    }
  }
  std::multiset<std::string> want{"ZZT01", "ZZT02", "ZZA01"};
  for (const auto& r : all_rules()) want.insert(std::string(r.info.id));
  EXPECT_EQ(ids, want);

  auto fs = doc["findings"].get_array();
  ASSERT_EQ(fs.size(), findings.size());
  std::size_t i = 0;
  for (auto f : fs) {
    SCOPED_TRACE(i);
    EXPECT_EQ(sv(f["rule"]), findings[i].rule->id);
    EXPECT_EQ(sv(f["severity"]), to_string(findings[i].severity));
    EXPECT_EQ(sv(f["hipaa"]), findings[i].rule->hipaa);  // on each finding, not only in rules[]
    EXPECT_EQ(sv(f["nist"]), findings[i].rule->nist);
    EXPECT_EQ(sv(f["message"]), findings[i].message);
    EXPECT_EQ(sv(f["host"]), findings[i].host);
    EXPECT_EQ(sv(f["location"]["file"]), findings[i].where.file);
    EXPECT_EQ(f["location"]["line"].get_int64().value(), findings[i].where.line);
    EXPECT_EQ(f["location"]["doc"].get_int64().value(), findings[i].where.doc);
    EXPECT_EQ(sv(f["location"]["resource"]), findings[i].where.resource);
    EXPECT_EQ(sv(f["location"]["field"]), findings[i].where.field);
    EXPECT_EQ(sv(f["fingerprint"]), findings[i].fingerprint());
    ++i;
  }
  EXPECT_EQ(sv(fs.at(0)["hipaa"]), "164.312(e)(1)");
  EXPECT_EQ(sv(fs.at(0)["nist"]), "SP 800-52r2 3.1");
  EXPECT_EQ(sv(fs.at(2)["nist"]), "");  // ZZT02 has no NIST reference
  EXPECT_EQ(sv(fs.at(3)["hipaa"]), "164.312(b)");
  EXPECT_EQ(doc["summary"]["errors"].get_int64().value(), 2);
  EXPECT_EQ(doc["summary"]["warnings"].get_int64().value(), 1);
  EXPECT_EQ(doc["summary"]["infos"].get_int64().value(), 1);
  std::map<std::string, std::int64_t> errors, infos;
  for (auto s : doc["summary"]["safeguards"].get_array()) {
    errors[std::string(sv(s["safeguard"]))] = s["errors"].get_int64().value();
    infos[std::string(sv(s["safeguard"]))] = s["infos"].get_int64().value();
  }
  EXPECT_EQ(errors, (std::map<std::string, std::int64_t>{{"164.312(a)(1)", 0},
                                                         {"164.312(b)", 0},
                                                         {"164.312(c)(1)", 0},
                                                         {"164.312(d)", 0},
                                                         {"164.312(e)(1)", 2}}));
  EXPECT_EQ(infos["164.312(b)"], 1);
}

TEST(CheckReportJson, HostileStringsRoundTripAsWellFormedUtf8) {
  const auto out = render(Format::Json, hostile(), hostile_evidence());
  // simdjson refuses invalid UTF-8 and raw control characters inside strings.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(sv(doc["findings"].at(0)["message"]), kHostileUtf8);
  EXPECT_EQ(sv(doc["findings"].at(0)["host"]), kHostileUtf8);
  EXPECT_EQ(sv(doc["findings"].at(0)["location"]["file"]), "../../" + kHostileUtf8);
  EXPECT_EQ(sv(doc["findings"].at(2)["location"]["field"]), kHostileUtf8);
  EXPECT_EQ(sv(doc["evidence"]["config_file"]), kHostileUtf8);
  EXPECT_EQ(sv(doc["evidence"]["manifests"].at(0)["sha256"]), kHostileUtf8);
  EXPECT_EQ(sv(doc["evidence"]["phi_hosts"].at(0)), kHostileUtf8);
  EXPECT_EQ(out.find('\0'), std::string::npos);
}

// --- SARIF ------------------------------------------------------------------------------------

TEST(CheckReportSarif, UrisAreRelativeNormalisedAndPercentEncoded) {
  using detail::sarif_uri;
  const std::filesystem::path cwd = "/w/repo";
  EXPECT_EQ(sarif_uri("a/b.yaml", cwd), "a/b.yaml");
  EXPECT_EQ(sarif_uri("./a//b/../c.yaml", cwd), "a/c.yaml");
  EXPECT_EQ(sarif_uri("/w/repo/sub dir/\xC3\xA9.yaml", cwd), "sub%20dir/%C3%A9.yaml");
  EXPECT_EQ(sarif_uri("c:evil/x#?%\\.yaml", cwd), "c%3Aevil/x%23%3F%25%5C.yaml");
  EXPECT_EQ(sarif_uri(std::string("n\nl\0\xff", 5), cwd), "n%0Al%00%FF");
  EXPECT_EQ(sarif_uri("../x.yaml", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("a/../../x.yaml", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("/etc/phigate/phigate.yaml", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("/w/repo/../other/x.yaml", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("/w/repo", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("", cwd), std::nullopt);
  EXPECT_EQ(sarif_uri("/w/repo/x.yaml", ""), std::nullopt);
}

TEST(CheckReportSarif, RulesResultsLocationsAndFingerprintsAsCodeScanningReadsThem) {
  auto findings = sample();
  const auto cwd = std::filesystem::current_path();
  findings.push_back(make(kTxError, Severity::Error, "absolute under the working directory",
                          at((cwd / "deploy" / "my app.yaml").string(), 0, "", "")));
  const auto out = render(Format::Sarif, findings, evidence());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;
  EXPECT_EQ(sv(doc["version"]), "2.1.0");
  EXPECT_EQ(sv(doc["$schema"]), "https://json.schemastore.org/sarif-2.1.0.json");
  auto run = doc["runs"].at(0);
  EXPECT_EQ(sv(run["tool"]["driver"]["name"]), "phigate");
  EXPECT_EQ(sv(run["tool"]["driver"]["semanticVersion"]), "0.1.0");
  EXPECT_EQ(sv(run["invocations"].at(0)["endTimeUtc"]), "2026-12-06T02:25:00Z");
  EXPECT_TRUE(run["invocations"].at(0)["executionSuccessful"].get_bool().value());
  EXPECT_EQ(sv(run["properties"]["configDigest"]), std::string(64, 'a'));

  std::vector<std::string> rule_ids;
  for (auto r : run["tool"]["driver"]["rules"].get_array()) {
    rule_ids.emplace_back(sv(r["id"]));
    EXPECT_FALSE(sv(r["shortDescription"]["text"]).empty());
    EXPECT_FALSE(sv(r["help"]["text"]).empty());
    EXPECT_FALSE(sv(r["help"]["markdown"]).empty());
    const auto level = sv(r["defaultConfiguration"]["level"]);
    EXPECT_TRUE(level == "error" || level == "warning" || level == "note") << level;
    const auto sev = sv(r["properties"]["security-severity"]);
    EXPECT_TRUE(sev == "9.0" || sev == "5.0" || sev == "1.0") << sev;
  }
  EXPECT_EQ(rule_ids.size(), all_rules().size() + 3);
  const auto zzt01 = std::find(rule_ids.begin(), rule_ids.end(), "ZZT01") - rule_ids.begin();
  auto r01 = run["tool"]["driver"]["rules"].at(static_cast<std::size_t>(zzt01));
  EXPECT_EQ(sv(r01["name"]), "TestPlainHttp");
  EXPECT_EQ(sv(r01["properties"]["security-severity"]), "9.0");
  EXPECT_EQ(sv(r01["properties"]["hipaa"]), "164.312(e)(1)");
  EXPECT_NE(sv(r01["fullDescription"]["text"]).find("SP 800-52r2 3.1"), std::string_view::npos);
  EXPECT_NE(sv(r01["help"]["markdown"]).find("**Remedy:** Redirect HTTP to HTTPS"), std::string_view::npos);

  auto results = run["results"].get_array();
  ASSERT_EQ(results.size(), findings.size());
  std::vector<std::string> levels;
  for (auto r : results) {
    const auto id = std::string(sv(r["ruleId"]));
    EXPECT_EQ(rule_ids.at(static_cast<std::size_t>(r["ruleIndex"].get_int64().value())), id);
    levels.emplace_back(sv(r["level"]));
    EXPECT_EQ(sv(r["partialFingerprints"]["phigateFinding/v1"]).size(), 64u);
  }
  EXPECT_EQ(levels, (std::vector<std::string>{"error", "error", "warning", "note", "error"}));

  // A config key: relative uri, region, the key as logical location.
  auto loc0 = results.at(0)["locations"].at(0);
  EXPECT_EQ(sv(loc0["physicalLocation"]["artifactLocation"]["uri"]), "phigate.yaml");
  EXPECT_EQ(sv(loc0["physicalLocation"]["artifactLocation"]["uriBaseId"]), "%SRCROOT%");
  EXPECT_EQ(loc0["physicalLocation"]["region"]["startLine"].get_int64().value(), 12);
  EXPECT_EQ(sv(loc0["logicalLocations"].at(0)["fullyQualifiedName"]), "tls.min_version");
  EXPECT_EQ(sv(results.at(0)["message"]["text"]), "TLS 1.0 allowed \xE2\x80\x94 Redirect HTTP to HTTPS");
  // An Ingress: the resource as logical location.
  auto loc1 = results.at(1)["locations"].at(0);
  EXPECT_EQ(sv(loc1["physicalLocation"]["artifactLocation"]["uri"]), "k8s/ingress.yaml");
  EXPECT_EQ(sv(loc1["logicalLocations"].at(0)["fullyQualifiedName"]), "Ingress default/web");
  EXPECT_EQ(sv(loc1["logicalLocations"].at(0)["kind"]), "resource");
  EXPECT_EQ(sv(results.at(1)["properties"]["host"]), "records.example");
  // No file (API source): logical location only.
  auto loc2 = results.at(2)["locations"].at(0);
  EXPECT_EQ(loc2["physicalLocation"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(sv(loc2["logicalLocations"].at(0)["fullyQualifiedName"]), "Ingress prod/api");
  // A file outside the working directory: no URI pointing outside, the file named instead.
  auto r3 = results.at(3);
  EXPECT_EQ(r3["locations"].at(0)["physicalLocation"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(sv(r3["locations"].at(0)["logicalLocations"].at(0)["fullyQualifiedName"]), "ZZA01");
  EXPECT_EQ(sv(r3["properties"]["file"]), "/etc/phigate/phigate.yaml");
  EXPECT_NE(sv(r3["message"]["text"]).find("(in /etc/phigate/phigate.yaml)"), std::string_view::npos);
  // An absolute path under the working directory becomes relative; line 0: no region.
  auto loc4 = results.at(4)["locations"].at(0);
  EXPECT_EQ(sv(loc4["physicalLocation"]["artifactLocation"]["uri"]), "deploy/my%20app.yaml");
  EXPECT_EQ(loc4["physicalLocation"]["region"].error(), simdjson::NO_SUCH_FIELD);
}

TEST(CheckReportSarif, HostileStringsKeepTheLogValid) {
  const auto out = render(Format::Sarif, hostile(), hostile_evidence());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS);
  auto results = doc["runs"].at(0)["results"].get_array();
  ASSERT_EQ(results.size(), 3u);
  for (auto r : results) {
    // "../../x" and "/abs/x" cannot be named relative to the checkout.
    EXPECT_EQ(r["locations"].at(0)["physicalLocation"].error(), simdjson::NO_SUCH_FIELD);
    EXPECT_FALSE(sv(r["locations"].at(0)["logicalLocations"].at(0)["fullyQualifiedName"]).empty());
    // The message is one visible line.
    const auto text = sv(r["message"]["text"]);
    EXPECT_EQ(text.find('\n'), std::string_view::npos);
    EXPECT_NE(text.find("\\n# new line"), std::string_view::npos);
  }
  EXPECT_EQ(sv(results.at(0)["properties"]["file"]), "../../" + kHostileUtf8);
  EXPECT_EQ(sv(results.at(1)["locations"].at(0)["logicalLocations"].at(0)["fullyQualifiedName"]),
            kHostileUtf8);
  EXPECT_EQ(sv(results.at(2)["locations"].at(0)["logicalLocations"].at(0)["fullyQualifiedName"]),
            kHostileUtf8);
  EXPECT_EQ(sv(doc["runs"].at(0)["tool"]["driver"]["semanticVersion"]), kHostileUtf8);
}

// --- HTML -------------------------------------------------------------------------------------

const std::set<std::string> kHtmlTags{"!DOCTYPE", "html", "head", "meta",  "title", "style", "body", "h1",
                                      "h2",       "h3",   "p",    "table", "tr",    "th",    "td"};

// Every tag is one the writer emits; text between tags holds no quote and every '&' starts an
// entity the writer emits.
std::size_t occurrences(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// (No std::regex: GCC 12 reports maybe-uninitialized inside <regex> under ASan.)
void expect_html_structure(const std::string& out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '<') {
      std::size_t j = i + 1;
      if (j < out.size() && out[j] == '/') ++j;
      std::size_t k = j;
      while (k < out.size() && (std::isalnum(static_cast<unsigned char>(out[k])) || out[k] == '!')) ++k;
      EXPECT_TRUE(kHtmlTags.count(out.substr(j, k - j))) << "unexpected tag at " << out.substr(i, 40);
    } else if (out[i] == '&') {
      const auto rest = std::string_view(out).substr(i);
      EXPECT_TRUE(rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;") ||
                  rest.starts_with("&quot;") || rest.starts_with("&#39;"))
          << "bare & at " << out.substr(i, 40);
    }
  }
  bool in_tag = false;
  for (const char c : out) {
    if (c == '<') in_tag = true;
    if (c == '>') in_tag = false;
    if (!in_tag) {
      EXPECT_TRUE(c != '"' && c != '\'') << "quote in text";
    }
  }
  for (const std::string t : {"table", "tr", "td", "th", "p", "h2", "h3"}) {
    EXPECT_EQ(occurrences(out, "<" + t + ">") + occurrences(out, "<" + t + " "),
              occurrences(out, "</" + t + ">"))
        << t;
  }
}

TEST(CheckReportHtml, EvidenceControlsMetAndFindingsPerSafeguard) {
  const auto out = render(Format::Html, sample(), evidence());
  expect_html_structure(out);
  expect_clean_text(out);
  EXPECT_TRUE(out.starts_with("<!DOCTYPE html>"));
  // No script can run even if a string escaped the escaper.
  EXPECT_NE(out.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
                     "'unsafe-inline'\">"),
            std::string::npos);
  EXPECT_NE(out.find("<tr><th>Time (UTC)</th><td>2026-12-06T02:25:00Z</td></tr>"), std::string::npos);
  EXPECT_NE(out.find("<tr><th>Configuration SHA-256</th><td>" + std::string(64, 'a') + "</td></tr>"),
            std::string::npos);
  EXPECT_NE(
      out.find("<tr><th>Manifest</th><td>k8s/secrets.yaml (SHA-256 " + std::string(64, 'c') + ")</td></tr>"),
      std::string::npos);
  EXPECT_NE(out.find("<tr><th>PHI hosts</th><td>api.example, records.example</td></tr>"), std::string::npos);
  EXPECT_NE(out.find("<h2 id=\"164.312(e)(1)\">164.312(e)(1) Transmission security</h2>\n"
                     "<p class=\"error\">45 CFR 164.312(e)(1): 2 errors, 1 warning.</p>"),
            std::string::npos);
  EXPECT_NE(
      out.find(
          "<tr><td>error</td><td>ZZT01 Test: a PHI host served on plain HTTP</td><td>Ingress default/web "
          "metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect</td><td>k8s/ingress.yaml:7</td>"
          "<td>records.example</td><td>records.example is served on plain HTTP</td>"
          "<td>Redirect HTTP to HTTPS</td></tr>"),
      std::string::npos);
  // CFG000 had no finding: a control met of (c)(1), as is every built-in row with its evidence.
  EXPECT_NE(out.find("<tr><td>CFG000</td>"), std::string::npos);
  for (const auto& r : all_rules()) {
    if (!r.info.built_in.empty()) {
      EXPECT_NE(out.find("Built in: " + detail::html_escape(r.info.built_in)), std::string::npos);
    }
  }
  // Only safeguards without findings say so.
  const auto ls = lines(out);
  EXPECT_EQ(std::count(ls.begin(), ls.end(), "<p class=\"pass\">No finding.</p>"), 3);
}

TEST(CheckReportHtml, HostileStringsCannotOpenMarkupOrEndAnAttribute) {
  const auto out = render(Format::Html, hostile(), hostile_evidence());
  expect_html_structure(out);
  expect_clean_text(out);
  EXPECT_EQ(out.find("<script"), std::string::npos);
  EXPECT_EQ(out.find("<img"), std::string::npos);
  EXPECT_NE(out.find("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; "
                     "&quot;q&quot; &#39;a&#39; | `b`"),
            std::string::npos);
  EXPECT_NE(out.find("&amp;amp; \\n# new line\\r\\x1b[31m NUL:\\x00"), std::string::npos);
  // Each finding is one row of seven cells.
  std::size_t rows = 0;
  for (const auto& l : lines(out)) {
    if (!l.starts_with("<tr><td>error</td>") && !l.starts_with("<tr><td>warning</td>") &&
        !l.starts_with("<tr><td>info</td>")) {
      continue;
    }
    ++rows;
    EXPECT_TRUE(l.ends_with("</td></tr>")) << l;
    std::size_t cells = 0;
    for (auto at = l.find("<td>"); at != std::string::npos; at = l.find("<td>", at + 1)) ++cells;
    EXPECT_EQ(cells, 7u) << l;
    EXPECT_EQ(std::count(l.begin(), l.end(), '<'), 7 * 2 + 2) << l;  // the cells' tags and <tr></tr> only
  }
  EXPECT_EQ(rows, 3u);
}

// --- Markdown ---------------------------------------------------------------------------------

// Cell separators: '|' not preceded by an odd number of backslashes.
std::size_t unescaped(const std::string& line, char c) {
  std::size_t n = 0, backslashes = 0;
  for (const char ch : line) {
    if (ch == c && backslashes % 2 == 0) ++n;
    backslashes = ch == '\\' ? backslashes + 1 : 0;
  }
  return n;
}

// Every table row has as many cells as its header row; nothing opens a code span or raw HTML.
void expect_markdown_structure(const std::string& out) {
  std::size_t want = 0;
  for (const auto& l : lines(out)) {
    if (!l.starts_with("|")) {
      want = 0;
      continue;
    }
    if (want == 0) want = unescaped(l, '|');
    EXPECT_EQ(unescaped(l, '|'), want) << l;
    EXPECT_TRUE(l.ends_with(" |")) << l;
  }
  for (const char c : {'`', '<', '>', '*', '_', '[', '$', '&'}) {
    for (const auto& l : lines(out)) EXPECT_EQ(unescaped(l, c), 0u) << c << " in " << l;
  }
}

TEST(CheckReportMarkdown, EvidenceControlsMetAndFindingsPerSafeguard) {
  const auto out = render(Format::Markdown, sample(), evidence());
  expect_markdown_structure(out);
  expect_clean_text(out);
  EXPECT_TRUE(
      out.starts_with("# HIPAA technical safeguards (45 CFR 164.312): phigate configuration report\n"));
  EXPECT_NE(out.find("| Time (UTC) | 2026-12-06T02:25:00Z |"), std::string::npos);
  EXPECT_NE(out.find("| Configuration file | phigate.yaml |"), std::string::npos);
  EXPECT_NE(out.find("| PHI hosts mode | annotated (phigate.io/phi: \"true\") |"), std::string::npos);
  EXPECT_NE(
      out.find("## 164.312(e)(1) Transmission security\n\n45 CFR 164.312(e)(1): 2 errors, 1 warning.\n"),
      std::string::npos);
  EXPECT_NE(
      out.find("| warning | ZZT02 Test: HSTS max-age under a year | Ingress prod/api metadata.annotations |  "
               "| api.example | HSTS max-age 300 on api.example | Set max-age to 31536000 |"),
      std::string::npos);
  EXPECT_NE(out.find("| 164.312(b) Audit controls | 1 info | "), std::string::npos);
  EXPECT_NE(out.find("| CFG000 | "), std::string::npos);
}

TEST(CheckReportMarkdown, HostileStringsCannotEndACellOrOpenMarkup) {
  const auto out = render(Format::Markdown, hostile(), hostile_evidence());
  expect_markdown_structure(out);
  expect_clean_text(out);
  EXPECT_NE(
      out.find("\\<img src=x onerror=alert(2)\\> \"q\" 'a' \\| \\`b\\` \\[l\\](http://x) \\*e\\* \\_u\\_ "
               "\\$m\\$ \\&amp; \\\\n\\# new line\\\\r\\\\x1b\\[31m NUL:\\\\x00"),
      std::string::npos);
}

TEST(CheckReportFormats, ParseFormatNames) {
  Format f{};
  EXPECT_TRUE(parse_format("md", f));
  EXPECT_EQ(f, Format::Markdown);
  EXPECT_TRUE(parse_format("sarif", f));
  EXPECT_EQ(f, Format::Sarif);
  EXPECT_FALSE(parse_format("xml", f));
}

}  // namespace
}  // namespace phigate::check
