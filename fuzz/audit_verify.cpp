// libFuzzer target: `audit verify` (phigate/audit/verify.hpp) on mutated segments.
// The seed is a genuine sealed segment written by audit::Writer with a fixed test key, with the
// writer's state file (fuzz/audit_verify.state); the fuzzer mutates the segment. verify() must never
// crash and never call a mutated segment intact: a forged or altered PHI access log that verifies
// clean defeats the log's purpose (HIPAA §164.312(b)). Checked twice per input:
// - with the state file: any change, truncation included, is an error (the state records the end);
// - without it: the only change allowed to pass without an error is a lost tail, the documented
//   crash limit (src/audit/README.md), and it must still be reported as `truncated`.
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
  std::string dir;         // where each input is written, as kSegmentName (no state file there)
  std::string state_path;  // the genuine segment's state file
  std::string genuine;     // the one intact segment the fuzzer's inputs derive from
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

struct Written {
  std::string segment;
  std::string state;
};

/// A small sealed segment: three data frames (batch of two records) and the seal, and its state file.
Written write_segment(const audit::KeyRing& keys, const std::string& dir) {
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
  FUZZ_CHECK(fs::exists(dir + "/audit.state"), "audit_verify: the writer did not write audit.state");
  return {slurp(path), slurp(dir + "/audit.state")};
}

audit::VerifyReport verify_bytes(const std::string& bytes, bool with_state) {
  const std::string path = g->dir + "/" + kSegmentName;
  spit(path, bytes);
  audit::VerifyOptions options;
  if (with_state) options.state_file = g->state_path;
  return audit::verify(g->keys, {path}, options);
}

bool clean(const audit::VerifyReport& r) {
  return r.ok() && r.records == 5;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g = new State;
  g->keys = test_keys();
  std::string tmpl = (fs::temp_directory_path() / "phigate-fuzz-audit-XXXXXX").string();
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "audit_verify: mkdtemp failed");
  g->dir = tmpl + "/in";
  g->state_path = tmpl + "/audit.state";
  fs::create_directory(g->dir);
  const Written fresh = write_segment(g->keys, tmpl + "/writer");
  const std::string seed_path = std::string(PHIGATE_FUZZ_DIR) + "/corpus/audit_verify/" + kSegmentName;
  const std::string seed_state_path = std::string(PHIGATE_FUZZ_DIR) + "/audit_verify.state";
  // PHIGATE_FUZZ_WRITE_SEED=1: regenerate the checked-in seed and its state (fuzz/README.md).
  if (std::getenv("PHIGATE_FUZZ_WRITE_SEED") != nullptr) {
    spit(seed_path, fresh.segment);
    spit(seed_state_path, fresh.state);
    std::exit(0);
  }
  // The checked-in seed stays the reference while the format and key are unchanged; otherwise the
  // fresh segment is (the fuzzer then mostly sees a stale seed: regenerate it).
  g->genuine = slurp(seed_path);
  spit(g->state_path, slurp(seed_state_path));
  if (!clean(verify_bytes(g->genuine, true)) || !clean(verify_bytes(g->genuine, false))) {
    std::fprintf(stderr,
                 "audit_verify: the checked-in seed no longer verifies; regenerate it (fuzz/README.md)\n");
    g->genuine = fresh.segment;
    spit(g->state_path, fresh.state);
  }
  FUZZ_CHECK(clean(verify_bytes(g->genuine, true)) && clean(verify_bytes(g->genuine, false)),
             "audit_verify: a freshly written segment does not verify clean");
  fs::remove_all(tmpl + "/writer");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes == g->genuine) return 0;
  const auto with_state = verify_bytes(bytes, true);
  FUZZ_CHECK(!with_state.ok(), "a mutated segment verified ok against its state file");
  FUZZ_CHECK(with_state.records <= 5, "more records authenticated than were written");

  const auto without = verify_bytes(bytes, false);
  FUZZ_CHECK(without.records <= 5, "more records authenticated than were written");
  if (without.ok()) {
    // No error without the state file: only the documented crash limit (a tail that does not
    // authenticate, e.g. cut off or with an altered frame length), and it must be reported.
    bool reported = false;
    for (const auto& f : without.findings) reported |= f.kind == audit::Finding::Kind::Truncated;
    FUZZ_CHECK(reported, "a mutated segment verified ok without a truncation finding");
  }
  return 0;
}
