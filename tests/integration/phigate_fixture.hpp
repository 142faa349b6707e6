#pragma once
// Integration fixture: a temp dir with a CA and server certificates, a recording test upstream,
// and a phigate process on kernel-chosen loopback ports, all owned by PID.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/tls_client.hpp"

namespace phigate::test {

using namespace std::chrono_literals;

/// A running phigate-test-upstream, recording what it received into `record`.
struct Upstream {
  Process process;
  std::uint16_t port;
  std::string record;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  /// The record lines (JSON) written so far.
  std::vector<std::string> records() const;
};

/// A running phigate and the ports it bound.
struct Phigate {
  Process process;
  std::uint16_t https = 0;
  std::uint16_t http = 0;
  std::uint16_t admin = 0;
};

class PhigateTest : public ::testing::Test {
 protected:
  void SetUp() override;

  /// Starts a test upstream on a kernel-chosen port.
  Upstream start_upstream(const std::string& name = "upstream");
  /// Writes `yaml` as phigate.yaml in the temp dir, starts phigate, waits for its ready line.
  Phigate start_phigate(const std::string& yaml, ProcessOptions opts = {});
  /// A config with port-0 listeners, the app.example certificate as default, `routes` (YAML list
  /// items, indented by two spaces) and `extra` top-level keys.
  std::string config(const std::string& routes, const std::string& extra = "") const;
  /// Runs curl with --cacert and --resolve for app.example/other.example → 127.0.0.1, speaking
  /// HTTP/1.1 unless `args` name a protocol (--http2, --http1.0, ...).
  RunResult curl(const Phigate& pg, std::vector<std::string> args, std::chrono::milliseconds timeout = 30s);
  std::string https_url(const Phigate& pg, const std::string& path,
                        const std::string& host = "app.example") const {
    return "https://" + host + ":" + std::to_string(pg.https) + path;
  }

  TempDir dir_;
  CertPaths ca_;
  CertPaths app_cert_;    // app.example, *.app.example, 127.0.0.1
  CertPaths other_cert_;  // other.example
};

/// Value of `"key":<number>` or `"key":"string"` in a flat JSON line (test upstream records).
std::string json_field(const std::string& line, const std::string& key);
/// Value of a header in a record line's "headers" array ("" when absent; case-insensitive name).
std::string record_header(const std::string& line, const std::string& name);
/// Number of times header `name` appears in a record line.
int record_header_count(const std::string& line, const std::string& name);

}  // namespace phigate::test
