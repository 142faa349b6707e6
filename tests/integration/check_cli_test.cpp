// `phigate check` as operators run it: every fixture of tests/fixtures/check/ through the real
// binary (each rule fixture yields exactly its rule, the clean one none), exit codes 0/1/2, the
// PHI-host switch, every output format, and SARIF that the schema validator accepts.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "check_materials.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = PHIGATE_CHECK_FIXTURES_DIR;

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') out.push_back(line);
  }
  return out;
}

struct Finding {
  std::string rule, severity, message, resource, field;
};

/// The findings of a JSON report; fails the test when it is not the JSON the format promises.
std::vector<Finding> findings_of(const std::string& json) {
  std::vector<Finding> out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) {
    ADD_FAILURE() << "not JSON:\n" << json.substr(0, 2000);
    return out;
  }
  simdjson::dom::array list;
  if (doc["findings"].get(list) != simdjson::SUCCESS) {
    ADD_FAILURE() << "no findings array";
    return out;
  }
  for (auto f : list) {
    Finding x;
    std::string_view s;
    if (f["rule"].get(s) == simdjson::SUCCESS) x.rule = s;
    if (f["severity"].get(s) == simdjson::SUCCESS) x.severity = s;
    if (f["message"].get(s) == simdjson::SUCCESS) x.message = s;
    if (f.at_pointer("/location/resource").get(s) == simdjson::SUCCESS) x.resource = s;
    if (f.at_pointer("/location/field").get(s) == simdjson::SUCCESS) x.field = s;
    out.push_back(std::move(x));
  }
  return out;
}

std::string describe(const std::vector<Finding>& fs) {
  std::string s;
  for (const auto& f : fs)
    s += "  " + f.rule + " " + f.severity + " [" + f.resource + " " + f.field + "] " + f.message + "\n";
  return s;
}

class CheckCli : public ::testing::Test {
 protected:
  void SetUp() override { make_check_materials(dir_.path("gen")); }

  /// Copies fixture `rel` (under tests/fixtures/check/) into the temp folder with its placeholders
  /// replaced; returns the copy's folder.
  std::string materialize_fixture(const std::string& rel) {
    const std::string to = dir_.path("fx/" + rel);
    materialize(kFixtures + "/" + rel, to, dir_.path("gen"));
    return to;
  }

  /// `phigate check --config <folder>/phigate.yaml` plus the fixture's `args`, run in the folder.
  RunResult check(const std::string& folder, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {bin("phigate"), "check", "--config", folder + "/phigate.yaml"};
    for (auto& a : lines_of(folder + "/args")) argv.push_back(a);
    for (auto& a : extra) argv.push_back(a);
    RunOptions o;
    o.cwd = folder;
    return run(argv, o);
  }

  TempDir dir_;
};

TEST_F(CheckCli, TheCleanFixtureHasNoFindingButTheWafNote) {
  const auto folder = materialize_fixture("clean");
  const auto r = check(folder, {"--format", "json"});
  const auto fs = findings_of(r.out);
  for (const auto& f : fs) EXPECT_EQ(f.rule, "IN005") << describe(fs) << r.err;
  EXPECT_EQ(r.exit_code, 0) << describe(fs) << r.err;
}

TEST_F(CheckCli, EveryRuleFixtureYieldsExactlyItsRule) {
  std::set<std::string> fixtures;
  for (const auto& e : fs::directory_iterator(kFixtures + "/rules")) {
    if (e.is_directory()) fixtures.insert(e.path().filename().string());
  }
  // Every rule that can be evaluated has its fixture (built-in controls and CFG000 have none):
  // the rule table as the JSON report lists it.
  {
    const auto r = check(materialize_fixture("clean"), {"--format", "json"});
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array rules;
    ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
    ASSERT_EQ(doc["rules"].get(rules), simdjson::SUCCESS) << r.out;
    std::size_t n = 0;
    for (auto rule : rules) {
      std::string_view id, built_in;
      ASSERT_EQ(rule["id"].get(id), simdjson::SUCCESS);
      if (rule["built_in"].get(built_in) == simdjson::SUCCESS && !built_in.empty()) continue;
      // CFG000: every exit-code test below. IN005 (info, no WAF yet): the clean fixture's one
      // finding. TX009 (backend TLS below 1.2): both loaders already refuse such a setting, so no
      // configuration can hold it; the rule guards configurations built otherwise (unit tests).
      if (id == "CFG000" || id == "CFG001" || id == "IN005" || id == "TX009") continue;
      ++n;
      EXPECT_TRUE(fixtures.contains(std::string(id))) << "no fixture for " << id;
    }
    EXPECT_GT(n, 30u) << "the rule table is not in the JSON report";
  }
  for (const auto& id : fixtures) {
    SCOPED_TRACE(id);
    const auto folder = materialize_fixture("rules/" + id);
    auto expected_list = lines_of(kFixtures + "/rules/" + id + "/expect");
    std::set<std::string> expected(expected_list.begin(), expected_list.end());
    if (expected.empty()) expected.insert(id);
    const auto r = check(folder, {"--format", "json"});
    const auto fs = findings_of(r.out);
    std::set<std::string> got;
    bool error = false;
    for (const auto& f : fs) {
      if (f.rule != "IN005") got.insert(f.rule);  // the note every PHI deployment gets (no WAF yet)
      error = error || f.severity == "error";
    }
    EXPECT_EQ(got, expected) << describe(fs) << r.err;
    EXPECT_EQ(r.exit_code, error ? 1 : 0) << describe(fs) << r.err;
  }
}

TEST_F(CheckCli, TheDocsListEveryRule) {
  const auto r = check(materialize_fixture("clean"), {"--format", "json"});
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array rules;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  ASSERT_EQ(doc["rules"].get(rules), simdjson::SUCCESS);
  std::ifstream in(std::string(PHIGATE_SOURCE_DIR) + "/docs/check.md");
  std::stringstream text;
  text << in.rdbuf();
  for (auto rule : rules) {
    std::string_view id, hipaa, severity, built_in;
    bool enforceable = false, runtime = false, warning_off_phi = false;
    ASSERT_EQ(rule["id"].get(id), simdjson::SUCCESS);
    ASSERT_EQ(rule["hipaa"].get(hipaa), simdjson::SUCCESS);
    ASSERT_EQ(rule["severity"].get(severity), simdjson::SUCCESS);
    ASSERT_EQ(rule["enforceable"].get(enforceable), simdjson::SUCCESS);
    ASSERT_EQ(rule["runtime"].get(runtime), simdjson::SUCCESS);
    ASSERT_EQ(rule["warning_off_phi"].get(warning_off_phi), simdjson::SUCCESS);
    // The row's fixed columns as scripts/gen-check-rules.sh writes them: a stale table (a rule made
    // enforceable, E/W, or run-time since) fails here; rerun the script.
    std::string row = "| " + std::string(id) + " | " + std::string(hipaa) + " | ";
    if (rule["built_in"].get(built_in) == simdjson::SUCCESS && !built_in.empty()) {
      row += "built in | \xE2\x80\x93 | \xE2\x80\x93 |";
    } else {
      row += std::string(warning_off_phi ? "E/W" : severity) + " | " + (enforceable ? "yes" : "") + " | " +
             (runtime ? "CLI + run" : "CLI") + " |";
    }
    EXPECT_NE(text.str().find(row), std::string::npos)
        << "docs/check.md has no row starting \"" << row << "\" (scripts/gen-check-rules.sh)";
  }
}

TEST_F(CheckCli, HelpPrintsTheUsageAndExitsZero) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"-h"}, {"--config", "absent.yaml", "--help"}}) {
    std::vector<std::string> argv = {bin("phigate"), "check"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv);
    EXPECT_EQ(r.exit_code, 0) << args.back() << ": " << r.err;
    EXPECT_TRUE(r.out.starts_with("usage: phigate check --config FILE")) << r.out;
    EXPECT_NE(r.out.find("--manifests DIR"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--min-cert-days N"), std::string::npos) << r.out;
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
  // A usage error still exits 2 and points at the help.
  const auto bad = run({bin("phigate"), "check", "--bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("phigate check --help"), std::string::npos) << bad.err;
}

TEST_F(CheckCli, UnreadableInputExitsTwoAndConfigurationErrorsAreFindings) {
  // No config file, a config that is not YAML, a manifest that is not YAML: the input cannot be read.
  auto r = run({bin("phigate"), "check", "--config", dir_.path("missing.yaml")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing.yaml"), std::string::npos) << r.err;
  r = run({bin("phigate"), "check", "--config", dir_.write("bad.yaml", "listeners: [\n")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("invalid YAML"), std::string::npos) << r.err;
  const auto clean = materialize_fixture("clean");
  { std::ofstream(clean + "/manifests/zz-broken.yaml") << "kind: Ingress\nmetadata: [\n"; }
  r = check(clean, {"--format", "json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("zz-broken.yaml"), std::string::npos) << r.err;
  // A configuration that loads as YAML but has an error: a CFG000 finding naming the field, exit 1.
  r = run(
      {bin("phigate"), "check", "--format", "json", "--config", dir_.write("err.yaml", "workers: many\n")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto fs = findings_of(r.out);
  const auto cfg000 = std::find_if(fs.begin(), fs.end(), [](const Finding& f) { return f.rule == "CFG000"; });
  ASSERT_NE(cfg000, fs.end()) << r.out;
  EXPECT_EQ(cfg000->field, "workers");
  // A folder given as the config file, a missing ingress.dir: unreadable input, not a finding.
  EXPECT_EQ(run({bin("phigate"), "check", "--config", dir_.path("gen")}).exit_code, 2);
  // A missing ingress.dir is a configuration error the loader names (CFG000 at its line).
  r = run({bin("phigate"), "check", "--format", "json", "--config",
           dir_.write("nodir.yaml", "listeners: { https: [\"127.0.0.1:0\"] }\ningress: { dir: " +
                                        dir_.path("absent") + " }\n")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  {
    const auto nodir = findings_of(r.out);
    EXPECT_TRUE(std::any_of(nodir.begin(), nodir.end(), [](const Finding& f) {
      return f.rule == "CFG000" && f.field == "ingress.dir";
    })) << describe(nodir);
  }
  // A symlink loop in a manifest folder ends that branch of the walk, not the run.
  {
    const auto looped = materialize_fixture("clean");
    fs::remove(looped + "/manifests/zz-broken.yaml");  // from the test above (same copy)
    fs::create_directory_symlink("..", looped + "/manifests/loop");
    const auto l = check(looped, {"--format", "json"});
    EXPECT_EQ(l.exit_code, 0) << l.err;
    EXPECT_FALSE(findings_of(l.out).empty());
  }
  // Usage errors.
  EXPECT_EQ(run({bin("phigate"), "check"}).exit_code, 2);
  EXPECT_EQ(run({bin("phigate"), "check", "--config", clean + "/phigate.yaml", "--format", "pdf"}).exit_code,
            2);
  EXPECT_EQ(run({bin("phigate"), "check", "--config", clean + "/phigate.yaml", "--bogus"}).exit_code, 2);
  EXPECT_EQ(
      run({bin("phigate"), "check", "--config", clean + "/phigate.yaml", "--manifests", dir_.path("nope")})
          .exit_code,
      2);
}

TEST_F(CheckCli, WhatWasNotExaminedIsSaidNeverPassed) {
  // The Kubernetes source without --manifests: only the config file could be examined.
  const auto folder = materialize_fixture("clean");
  std::string cfg;
  {
    std::ifstream in(folder + "/phigate.yaml");
    std::stringstream s;
    s << in.rdbuf();
    cfg = s.str();
  }
  cfg.replace(cfg.find("  source: directory\n  dir: manifests\n"), 36, "  source: kubernetes\n");
  std::ofstream(folder + "/kube.yaml") << cfg;
  auto r = run({bin("phigate"), "check", "--config", folder + "/kube.yaml", "--format", "json"});
  auto fs = findings_of(r.out);
  EXPECT_TRUE(std::any_of(fs.begin(), fs.end(), [](const Finding& f) {
    return f.rule == "CFG001" && f.message.find("no --manifests") != std::string::npos;
  })) << describe(fs);
  // No Deployment in the manifests: the deployment rules are "not evaluated", never passed.
  fs::remove(folder + "/manifests/workloads.yaml");
  r = check(folder, {"--format", "json"});
  EXPECT_NE(r.out.find("\"not_evaluated\": [\n      \"K8S001\""), std::string::npos) << r.out.substr(0, 1500);
  r = check(folder, {"--format", "markdown"});
  EXPECT_NE(r.out.find("Not evaluated"), std::string::npos);
  r = check(folder, {"--format", "text"});
  EXPECT_NE(r.out.find("not evaluated"), std::string::npos) << r.out;
}

TEST_F(CheckCli, PhiHostsAllAppliesPhiRulesToEveryHost) {
  // A second host without phigate.io/phi that turns HSTS off: a PHI rule does not apply to it...
  const auto folder = materialize_fixture("clean");
  std::ofstream(folder + "/manifests/www.yaml") << R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: www
  namespace: clinic
  annotations:
    phigate.io/hsts: "false"
spec:
  ingressClassName: phigate
  tls: [{ hosts: [www.example.test], secretName: records-tls }]
  rules:
  - host: www.example.test
    http:
      paths:
      - { path: /, pathType: Prefix, backend: { service: { name: records, port: { number: 443 } } } }
)";
  auto r = check(folder, {"--format", "json"});
  auto fs = findings_of(r.out);
  for (const auto& f : fs) {
    EXPECT_NE(f.severity, "error") << describe(fs);
  }
  EXPECT_EQ(r.exit_code, 0) << describe(fs) << r.err;
  // ... until every host carries PHI.
  r = check(folder, {"--format", "json", "--phi-hosts", "all"});
  fs = findings_of(r.out);
  bool hsts = false;
  for (const auto& f : fs)
    hsts = hsts || (f.rule == "TX005" && f.severity == "error" && f.resource == "Ingress clinic/www");
  EXPECT_TRUE(hsts) << describe(fs);
  EXPECT_EQ(r.exit_code, 1);
}

TEST_F(CheckCli, EveryFormatRendersAndOutputWritesTheFile) {
  const auto folder = materialize_fixture("rules/TX005");
  for (const char* format : {"text", "json", "sarif", "html", "markdown"}) {
    SCOPED_TRACE(format);
    const std::string out = dir_.path(std::string("report.") + format);
    const auto r = check(folder, {"--format", format, "--output", out, "--now", "2026-12-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(r.out.empty());
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    EXPECT_NE(s.str().find("TX005"), std::string::npos) << s.str().substr(0, 1000);
    EXPECT_NE(s.str().find("164.312(e)(1)"), std::string::npos);
  }
}

TEST_F(CheckCli, SarifOfEveryFixturePassesTheSchemaAndCodeScanningChecks) {
  const std::string validator = std::string(PHIGATE_SOURCE_DIR) + "/tests/sarif/validate_sarif.mjs";
  ASSERT_TRUE(fs::exists(std::string(PHIGATE_SOURCE_DIR) + "/tests/sarif/node_modules"))
      << "run scripts/bootstrap.sh (npm ci --prefix tests/sarif)";
  std::vector<std::string> argv = {"node", validator};
  std::vector<std::string> fixtures = {"clean"};
  for (const auto& e : fs::directory_iterator(kFixtures + "/rules")) {
    fixtures.push_back("rules/" + e.path().filename().string());
  }
  for (const auto& rel : fixtures) {
    const auto folder = materialize_fixture(rel);
    const std::string out = folder + "/report.sarif";
    const auto r = check(folder, {"--format", "sarif", "--output", out});
    ASSERT_NE(r.exit_code, 2) << rel << ": " << r.err;
    argv.push_back(out);
  }
  const auto v = run(argv);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace phigate::test
