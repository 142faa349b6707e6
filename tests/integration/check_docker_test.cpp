// `phigate check` on docker/: the shipped configuration and manifests pass their own check (no
// error finding, exit 0). docker/base/phigate.yaml names the pod's mounts (/etc/phigate/...,
// /var/lib/phigate/audit); a copy points them at freshly generated materials instead.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <utility>
#include <vector>

#include "check_materials.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

std::size_t replace_all(std::string& text, const std::string& from, const std::string& to) {
  std::size_t n = 0;
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    ++n;
  }
  return n;
}

TEST(CheckDocker, DockerBaseConfigAndManifestsPassTheirOwnCheck) {
  TempDir dir;
  const std::string gen = dir.path("gen");
  make_check_materials(gen);
  const std::string repo = std::string(PHIGATE_CHECK_FIXTURES_DIR) + "/../../..";
  const std::string base = repo + "/docker/base";
  std::string cfg = read_file(base + "/phigate.yaml");
  const std::vector<std::pair<std::string, std::string>> mounts = {
      {"/etc/phigate/tls/default/tls.crt", gen + "/server.crt"},
      {"/etc/phigate/tls/default/tls.key", gen + "/server.key"},
      {"/etc/phigate/tls/webhook/tls.crt", gen + "/server.crt"},
      {"/etc/phigate/tls/webhook/tls.key", gen + "/server.key"},
      {"/etc/phigate/audit-keys", gen + "/audit-keys"},
      {"/var/lib/phigate/audit", gen + "/audit"},
  };
  for (const auto& [from, to] : mounts) EXPECT_EQ(replace_all(cfg, from, to), 1u) << from;
  // Every path of the pod was rewritten: the check reads nothing outside the test's folder.
  EXPECT_EQ(cfg.find("/etc/phigate"), std::string::npos) << cfg;
  EXPECT_EQ(cfg.find("/var/lib/phigate"), std::string::npos) << cfg;
  const auto config = dir.write("phigate.yaml", cfg);

  const auto r = run({bin("phigate"), "check", "--config", config, "--manifests", base, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << "\n" << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array findings;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  ASSERT_EQ(doc["findings"].get(findings), simdjson::SUCCESS) << r.out;
  for (auto f : findings) {
    std::string_view severity, rule, message;
    EXPECT_EQ(f["severity"].get(severity), simdjson::SUCCESS);
    if (f["rule"].get(rule) != simdjson::SUCCESS) rule = "?";
    if (f["message"].get(message) != simdjson::SUCCESS) message = "?";
    EXPECT_NE(severity, "error") << rule << ": " << message;
  }
  // The deployment rules did read the manifests: the report lists docker/base's files.
  EXPECT_NE(r.out.find("deployment.yaml"), std::string::npos);
}

}  // namespace
}  // namespace phigate::test
