#pragma once
// Integration fixture with phigate's encrypted audit log on: a key in the temp dir, the config
// snippet that turns the log on, and `phigate audit verify/decrypt` to read it back.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "phigate_fixture.hpp"
#include "text_lines.hpp"

namespace phigate::test {

class AuditTest : public PhigateTest {
 protected:
  void SetUp() override {
    PhigateTest::SetUp();
    std::filesystem::create_directories(dir_.path("keys"));
    write_key("k1");
  }
  void write_key(const std::string& id) {
    auto r = run({"openssl", "rand", "-base64", "-out", dir_.path("keys/" + id + ".key"), "32"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string audit_yaml(const std::string& key = "k1", const std::string& extra = "") const {
    return "audit: { dir: " + dir_.path("audit") + ", keys: " + dir_.path("keys") + ", active_key: " + key +
           extra + " }\n";
  }
  std::string routes(const Upstream& up) const {
    return "  - host: app.example\n    paths:\n      - { path: /, backends: [\"" + up.address() +
           "\"] }\n      - { path: /down, backends: [\"127.0.0.1:1\"] }\n";
  }
  RunResult audit_cmd(const std::string& sub, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{bin("phigate"), "audit", sub, "--keys", dir_.path("keys")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(dir_.path("audit"));
    return run(argv);
  }
  /// Decrypted records, one JSON line each.
  std::vector<std::string> records() {
    auto r = audit_cmd("decrypt");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return split_lines(r.out);
  }
  /// Stops phigate (SIGTERM, a clean exit within 20 s) and reads its whole audit log.
  std::vector<std::string> stop_and_read_audit(Phigate& pg) {
    EXPECT_TRUE(pg.process.send_signal(SIGTERM));
    EXPECT_EQ(pg.process.wait_exit(std::chrono::seconds(20)), 0);
    return records();
  }
  /// The requests a recording test upstream received (its record lines with a method).
  static std::vector<std::string> proxied_requests(const Upstream& up) {
    std::vector<std::string> out;
    for (auto& line : up.records()) {
      if (!json_field(line, "method").empty()) out.push_back(std::move(line));
    }
    return out;
  }
  static std::string find(const std::vector<std::string>& recs, const std::string& fragment) {
    for (const auto& r : recs) {
      if (r.find(fragment) != std::string::npos) return r;
    }
    return {};
  }
  static bool has(const std::string& rec, const std::string& fragment) {
    return rec.find(fragment) != std::string::npos;
  }
  std::string metrics(const Phigate& pg) {
    return run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pg.admin) + "/metrics"}).out;
  }
  /// The value of an unlabelled or labelled sample in a Prometheus text page ("" when absent).
  static std::string metric(const std::string& page, const std::string& sample) {
    const auto at = page.find("\n" + sample + " ");
    if (at == std::string::npos) return {};
    const auto v = at + sample.size() + 2;
    return page.substr(v, page.find('\n', v) - v);
  }
  /// Polls /metrics until `sample` has value `want` (bounded: ~5 s), returns the last page.
  std::string wait_metric(const Phigate& pg, const std::string& sample, const std::string& want) {
    std::string page;
    for (int i = 0; i < 200; ++i) {
      page = metrics(pg);
      if (metric(page, sample) == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return page;
  }
};

}  // namespace phigate::test
