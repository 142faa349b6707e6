// AU001-AU008: the audit log's configuration, its keys (Cli scope) and the built-in controls; the
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
  for (const char* id : {"AU003", "AU004", "AU006", "AU007", "AU008"}) EXPECT_TRUE(f.run(id).empty()) << id;
}

TEST(CheckAuditRules, EncryptionAndOverflowAreBuiltInWithEvidence) {
  for (const char* id : {"AU002", "AU005"}) {
    const auto* r = find_rule(id);
    ASSERT_NE(r, nullptr) << id;
    EXPECT_FALSE(r->built_in.empty());
  }
  EXPECT_NE(find_rule("AU002")->built_in.find("AES-256-GCM"), std::string_view::npos);
  EXPECT_NE(find_rule("AU005")->built_in.find("503"), std::string_view::npos);
  // A record too long for the writer is replaced by a stand-in (proxy/worker.cpp): the evidence says
  // so rather than "never dropped".
  EXPECT_NE(find_rule("AU005")->built_in.find("longer than min(audit.queue_bytes / 4, 1 MiB) is replaced"),
            std::string_view::npos);
  EXPECT_NE(find_rule("AU005")->built_in.find("record-too-large stand-in"), std::string_view::npos);
}

TEST(CheckAuditRules, ARecordLongerThanTheWriterTakesIsAWarning) {
  Fixture f;
  // Defaults: an 8k target escapes to at most 16 KiB, 32k of fields to 192 KiB (HTTP/2's 32k too),
  // with 16 KiB for the rest 224 KiB: within the 1 MiB the default 4m queue takes.
  EXPECT_TRUE(f.run("AU008").empty());
  f.cfg.audit.queue_bytes = 4 * 229376;  // takes 224 KiB: exactly enough
  EXPECT_TRUE(f.run("AU008").empty());
  f.cfg.audit.queue_bytes = 4 * 229376 - 4;  // one byte too few
  EXPECT_EQ(f.run("AU008").size(), 1u);
  f.cfg.audit.queue_bytes = 64u << 10;  // the loader's floor: 16 KiB records
  auto out = f.run("AU008");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
  EXPECT_EQ(out[0].where.field, "audit.queue_bytes");
  EXPECT_EQ(out[0].message,
            "one request (limits.request_line_bytes 8192, limits.request_header_bytes 32768) can make an "
            "audit record of up to 229376 bytes (its target, Host, User-Agent and audit.headers values, "
            "JSON-escaped), over the 16384 bytes the audit writer takes (min(audit.queue_bytes / 4, 1 MiB)): "
            "such a request's record is replaced by a record-too-large stand-in (its length, SHA-256 and first "
            "2 KiB): who, when and which route stay, the rest of the record is lost");
  // A warning with PHI hosts too: the request keeps its one record (a stand-in), only detail is lost.
  f.phi_host();
  out = f.run("AU008");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, Severity::Warning);
  // No queue helps past 1 MiB: large header allowances are reported with any queue, HTTP/2's when it
  // is the larger.
  f.cfg.audit.queue_bytes = 64u << 20;
  EXPECT_TRUE(f.run("AU008").empty());
  f.cfg.http2.max_header_list_bytes = 1u << 20;
  out = f.run("AU008");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].message.find("one request (http2.max_header_list_bytes 1048576) can make an audit record "
                                "of up to 6307840 bytes"),
            std::string::npos)
      << out[0].message;
  f.cfg.http2.enabled = false;
  EXPECT_TRUE(f.run("AU008").empty());
  f.cfg.limits.request_header_bytes = 256u << 10;
  EXPECT_EQ(f.run("AU008").size(), 1u);
  f.cfg.audit = {};  // audit off: AU001's
  EXPECT_TRUE(f.run("AU008").empty());
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
  auto out = f.run("AU007");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].where.field, "audit.headers[0]");
  EXPECT_EQ(out[1].where.field, "audit.headers[2]");
  EXPECT_EQ(out[0].severity, Severity::Error);
  // API keys, bearer and session tokens in headers of their own (oauth2-proxy's among them).
  const std::vector<std::string> carriers{"x-api-key",
                                          "x-auth-token",
                                          "x-access-token",
                                          "x-amz-security-token",
                                          "x-forwarded-access-token",
                                          "x-auth-request-access-token",
                                          "x-csrf-token"};
  f.cfg.audit.headers = {"x-request-id", "proxy-authorization", "set-cookie"};
  f.cfg.audit.headers.insert(f.cfg.audit.headers.end(), carriers.begin(), carriers.end());
  f.cfg.audit.headers.push_back("x-forwarded-for");
  out = f.run("AU007");
  ASSERT_EQ(out.size(), 2 + carriers.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].where.field, "audit.headers[" + std::to_string(i + 1) + "]");
    EXPECT_EQ(out[i].message, "audit.headers records the value of " + f.cfg.audit.headers[i + 1] +
                                  " (credentials, session tokens)");
  }
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
       {"clean", "rules/AU001", "rules/AU003", "rules/AU004", "rules/AU006", "rules/AU007", "rules/AU008"}) {
    SCOPED_TRACE(name);
    const auto cfg = load_fixture(name, gen);
    ASSERT_TRUE(cfg);
    Options opt;  // the current time, as the CLI
    const View v{.config = *cfg, .options = opt};
    std::set<std::string> got;
    for (const char* id : {"AU001", "AU003", "AU004", "AU006", "AU007", "AU008"}) {
      if (!run_rule(v, id).empty()) got.insert(id);
    }
    const std::set<std::string> want =
        name == "clean" ? std::set<std::string>{} : std::set<std::string>{name.substr(name.size() - 5)};
    EXPECT_EQ(got, want);
  }
}

}  // namespace
}  // namespace phigate::check
