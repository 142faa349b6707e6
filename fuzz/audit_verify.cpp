// libFuzzer target: `audit verify` (include/phigate/audit/verify.hpp) on mutated segments.
// The seed is a genuine sealed segment written by audit::Writer with a fixed test key; the fuzzer
// mutates it. verify() must never crash, and must never call a mutated segment intact: a forged or
// altered PHI access log that verifies clean defeats the log's purpose (HIPAA §164.312(b)). The
// only mutation allowed to pass without an error is cutting the tail (src/audit/README.md: the
// unsealed tail of the newest segment cannot be told from a writer crash; that includes a frame
// length altered so the tail reads as a torn append), and that one must still be reported (an
// Info `truncated` finding).
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.hpp"
#include "phigate/audit/key_ring.hpp"
#include "phigate/audit/verify.hpp"
#include "phigate/audit/writer.hpp"

namespace audit = phigate::audit;
namespace fs = std::filesystem;

namespace {

// The writer's clock is fixed so the segment's file name is too (the name carries seq and time).
constexpr auto kCreated = std::chrono::sys_days{std::chrono::November / 27 / 2026} + std::chrono::hours(8);
constexpr const char* kSegmentName = "audit-000000000001-20261127T080000Z.seg";

struct State {
  audit::KeyRing keys;
  std::string dir;                   // where each input is written, as kSegmentName
  std::vector<std::string> genuine;  // segments written by the writer: the only ones that are intact
};
State* g = nullptr;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out.flush()) {
    std::fprintf(stderr, "audit_verify: cannot write %s\n", path.c_str());
    std::abort();
  }
}

audit::KeyRing test_keys() {
  audit::Key k;
  k.id = "fuzz";
  for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<unsigned char>(i * 7 + 1);
  audit::KeyRing ring;
  ring.add(k);
  return ring;
}

/// A small sealed segment: three data frames (batch of two records) and the seal.
std::string write_segment(const audit::KeyRing& keys, const std::string& dir) {
  audit::WriterOptions o;
  o.dir = dir;
  o.active_key = "fuzz";
  o.batch_records = 2;
  o.flush_interval = std::chrono::milliseconds(1);
  o.clock_for_test = [] { return std::chrono::system_clock::time_point(kCreated); };
  auto w = audit::Writer::start(o, keys, 1);
  FUZZ_CHECK(w.ok(), "audit_verify: the writer does not start");
  for (int i = 0; i < 5; ++i) {
    const std::string rec = R"({"@timestamp":"2026-11-27T08:00:0)" + std::to_string(i) +
                            R"(.000000000Z","url":{"domain":"a.example","path":"/p)" + std::to_string(i) +
                            R"("},"n":)" + std::to_string(i) + "}";
    FUZZ_CHECK((*w)->submit(0, rec), "audit_verify: the writer refused a record");
    FUZZ_CHECK((*w)->flush(), "audit_verify: flush failed");
  }
  FUZZ_CHECK((*w)->stop(), "audit_verify: stop failed");
  const std::string path = dir + "/" + kSegmentName;
  FUZZ_CHECK(fs::exists(path), "audit_verify: the writer did not produce the expected segment name");
  return slurp(path);
}

audit::VerifyReport verify_bytes(const std::string& bytes) {
  const std::string path = g->dir + "/" + kSegmentName;
  spit(path, bytes);
  return audit::verify(g->keys, {path});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g = new State;
  g->keys = test_keys();
  std::string tmpl = (fs::temp_directory_path() / "phigate-fuzz-audit-XXXXXX").string();
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "audit_verify: mkdtemp failed");
  g->dir = tmpl + "/in";
  fs::create_directory(g->dir);
  const std::string fresh = write_segment(g->keys, tmpl + "/writer");
  // PHIGATE_FUZZ_WRITE_SEED=<file>: regenerate the checked-in seed (fuzz/README.md).
  if (const char* out = std::getenv("PHIGATE_FUZZ_WRITE_SEED")) {
    spit(out, fresh);
    std::exit(0);
  }
  const auto clean = verify_bytes(fresh);
  FUZZ_CHECK(clean.ok() && clean.findings.empty() && clean.records == 5,
             "audit_verify: a freshly written segment does not verify clean");
  g->genuine.push_back(fresh);
  // The checked-in seed is genuine too while the format and key are unchanged.
  const std::string seed = slurp(std::string(PHIGATE_FUZZ_CORPUS) + "/audit_verify/" + kSegmentName);
  const auto seed_report = verify_bytes(seed);
  if (seed_report.ok() && seed_report.findings.empty()) {
    g->genuine.push_back(seed);
  } else {
    std::fprintf(stderr,
                 "audit_verify: the checked-in seed no longer verifies; regenerate it (fuzz/README.md)\n");
  }
  fs::remove_all(tmpl + "/writer");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto report = verify_bytes(bytes);
  bool genuine = false;
  bool truncated = false;  // a proper prefix of a genuine segment
  for (const auto& s : g->genuine) {
    genuine |= bytes == s;
    truncated |= bytes.size() < s.size() && s.compare(0, bytes.size(), bytes) == 0;
  }
  if (genuine) return 0;
  FUZZ_CHECK(!report.findings.empty(), "a mutated segment verified without any finding");
  FUZZ_CHECK(report.records <= 5, "more records authenticated than were written");
  if (report.ok() && !truncated) {
    // Not a plain truncation, yet no error: only acceptable as the documented crash limit, i.e. a
    // tail that does not authenticate (an altered frame length reads as a torn append). It must
    // then be reported as truncated.
    bool reported = false;
    for (const auto& f : report.findings) reported |= f.kind == audit::Finding::Kind::Truncated;
    FUZZ_CHECK(reported, "a mutated segment (not a truncation) verified ok without a truncation finding");
  }
  return 0;
}
