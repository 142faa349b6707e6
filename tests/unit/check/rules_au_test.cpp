// AU001-AU007: the audit log's configuration, its keys (Cli scope) and the built-in controls; the
// AU fixtures (tests/fixtures/check/rules/AU*) loaded as the CLI loads their config file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "gen_certs.hpp"
#include "phigate/config/loader.hpp"

namespace phigate::check {
namespace {
using namespace gen;
namespace fs = std::filesystem;

const std::string kKey = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n";  // 32 bytes, base64

struct Fixture {
  config::Config cfg;
  Options opt;
  std::string dir;
  Fixture() {
    static int n = 0;
    opt.now = kNow;
    dir =
        (fs::temp_directory_path() / ("phigate-au-" + std::to_string(::getpid()) + "-" + std::to_string(++n)))
            .string();
    fs::create_directories(dir + "/keys");
    cfg.file = dir + "/phigate.yaml";
    cfg.audit.dir = dir + "/audit";
    cfg.audit.keys = dir + "/keys";
    cfg.audit.active_key = "k1";
    key("k1");
  }
  ~Fixture() { fs::remove_all(dir); }
  void key(const std::string& id, const std::string& text = kKey) {
    std::ofstream(dir + "/keys/" + id + ".key") << text;
  }
  void phi_host() {
    auto pol = std::make_shared<config::RoutePolicy>();
    pol->phi = true;
    cfg.routes.push_back(route("records.example.test", pol));
  }
  std::vector<Finding> run(std::string_view id) {
    const View v{.config = cfg, .options = opt};
    return run_rule(v, id);
  }
};

TEST(CheckAuditRules, AuditOffIsAnError) {
  Fixture f;
  EXPECT_TRUE(f.run("AU001").empty());
  f.cfg.audit = {};
  const auto out = f.run("AU001");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  EXPECT_EQ(out[0].where.field, "audit");
  // Nothing else about the audit log is reported while it is off.
  for (const char* id : {"AU003", "AU004", "AU006", "AU007"}) EXPECT_TRUE(f.run(id).empty()) << id;
}

TEST(CheckAuditRules, EncryptionAndOverflowAreBuiltInWithEvidence) {
  for (const char* id : {"AU002", "AU005"}) {
    const auto* r = find_rule(id);
    ASSERT_NE(r, nullptr) << id;
    EXPECT_FALSE(r->built_in.empty());
  }
  EXPECT_NE(find_rule("AU002")->built_in.find("AES-256-GCM"), std::string_view::npos);
  EXPECT_NE(find_rule("AU005")->built_in.find("503"), std::string_view::npos);
}

TEST(CheckAuditRules, UnreadableKeysOrAMissingActiveKeyAreErrorsInTheCliOnly) {
  Fixture f;
  EXPECT_TRUE(f.run("AU003").empty());
  f.cfg.audit.active_key = "k2";
  auto out = f.run("AU003");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].where.field, "audit.active_key");
  EXPECT_NE(out[0].message.find("'k2'"), std::string::npos);
  f.cfg.audit.active_key = "k1";
  f.key("k1", "not base64 at all\n");
  out = f.run("AU003");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].where.field, "audit.keys");
  EXPECT_NE(out[0].message.find("k1.key"), std::string::npos) << out[0].message;
  EXPECT_FALSE(find_rule("AU003")->runtime);
  EXPECT_FALSE(find_rule("AU004")->runtime);
  f.opt.scope = Scope::Runtime;  // evaluate() skips Cli-only rules at a snapshot build
  const View v{.config = f.cfg, .options = f.opt};
  for (const auto& x : evaluate(v)) EXPECT_NE(x.rule->id, "AU003");
}

TEST(CheckAuditRules, KeyAgeFromADatedIdElseTheFileTime) {
  Fixture f;
  f.key("20200105-a");
  f.cfg.audit.active_key = "20200105-a";
  auto out = f.run("AU004");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
  EXPECT_EQ(out[0].where.field, "audit.active_key");
  EXPECT_NE(out[0].message.find("dated by its id"), std::string::npos) << out[0].message;
  f.key("2026-08-01.b");  // dated, recent (kNow is 2026-09-21)
  f.cfg.audit.active_key = "2026-08-01.b";
  EXPECT_TRUE(f.run("AU004").empty());
  f.opt.audit_key_max_age_days = 30;
  EXPECT_EQ(f.run("AU004").size(), 1u);
  f.opt.audit_key_max_age_days = 365;
  // Undated (or not a date: month 13): the file's modification time.
  f.key("20201301-c");
  f.cfg.audit.active_key = "20201301-c";
  const auto path = f.dir + "/keys/20201301-c.key";
  fs::last_write_time(path, fs::file_time_type::clock::now());
  f.opt.now = 0;  // the current time
  EXPECT_TRUE(f.run("AU004").empty());
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(24 * 400));
  out = f.run("AU004");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].message.find("modification time"), std::string::npos) << out[0].message;
}

TEST(CheckAuditRules, QueryKeptIsAnErrorWithPhiHostsAWarningWithout) {
  Fixture f;
  EXPECT_TRUE(f.run("AU006").empty());
  f.cfg.audit.query = config::AuditQuery::Keep;
  auto out = f.run("AU006");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
  EXPECT_EQ(out[0].where.field, "audit.query");
  f.phi_host();
  out = f.run("AU006");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Error);
  f.cfg.audit.query = config::AuditQuery::Hash;
  EXPECT_TRUE(f.run("AU006").empty());
}

TEST(CheckAuditRules, CredentialHeadersAreFlaggedOneByOne) {
  Fixture f;
  f.phi_host();
  f.cfg.audit.headers = {"authorization", "x-request-id", "cookie", "user-agent"};
  const auto out = f.run("AU007");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].where.field, "audit.headers[0]");
  EXPECT_EQ(out[1].where.field, "audit.headers[2]");
  EXPECT_EQ(out[0].severity, Severity::Error);
  f.cfg.routes.clear();
  EXPECT_EQ(f.run("AU007")[0].severity, Severity::Warning);
}

// The fixtures' config files, loaded as the CLI does (the manifests carry no audit setting): each
// AU fixture yields its rule among the AU rules, clean/ none.
std::optional<config::Config> load_fixture(const std::string& name, const std::string& gen) {
  std::ifstream in(std::string(PHIGATE_CHECK_FIXTURES_DIR) + "/" + name + "/phigate.yaml");
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  for (auto at = text.find("@GEN@"); at != std::string::npos; at = text.find("@GEN@", at + gen.size()))
    text.replace(at, 5, gen);
  config::Diagnostics diag;
  auto cfg = config::load_config_text(text, gen + "/phigate.yaml", diag);
  for (const auto& d : diag.entries()) ADD_FAILURE() << name << ": " << d.to_string();
  return cfg;
}

TEST(CheckAuditRules, EachAuditFixtureYieldsItsRule) {
  Fixture f;  // its folder stands in for the generated materials
  const std::string gen = f.dir;
  fs::create_directories(gen + "/audit");
  fs::create_directories(gen + "/audit-keys");
  fs::create_directories(gen + "/manifests");
  std::ofstream(gen + "/audit-keys/k1.key") << kKey;
  std::ofstream(gen + "/audit-keys/20200101-old.key") << kKey;
  std::ofstream(gen + "/server.crt") << "placeholder";
  std::ofstream(gen + "/server.key") << "placeholder";
  for (const std::string name :
       {"clean", "rules/AU001", "rules/AU003", "rules/AU004", "rules/AU006", "rules/AU007"}) {
    SCOPED_TRACE(name);
    const auto cfg = load_fixture(name, gen);
    ASSERT_TRUE(cfg);
    Options opt;  // the current time, as the CLI
    const View v{.config = *cfg, .options = opt};
    std::set<std::string> got;
    for (const char* id : {"AU001", "AU003", "AU004", "AU006", "AU007"}) {
      if (!run_rule(v, id).empty()) got.insert(id);
    }
    const std::set<std::string> want =
        name == "clean" ? std::set<std::string>{} : std::set<std::string>{name.substr(name.size() - 5)};
    EXPECT_EQ(got, want);
  }
}

}  // namespace
}  // namespace phigate::check
