// libFuzzer target: the deployment-manifest reader of `phigate check` (phigate/ingress/workloads.hpp,
// load_workloads_text, what load_workloads runs per file).
// Properties: nothing throws; a file that is not YAML contributes no object and has an error;
// every diagnostic names the file and is one line (log injection); lines are never negative;
// label selectors evaluate without throwing; reading the same text twice gives the same result.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "check.hpp"
#include "phigate/ingress/workloads.hpp"

namespace ing = phigate::ingress;

namespace {

std::size_t objects(const ing::Workloads& w) {
  return w.workloads.size() + w.roles.size() + w.bindings.size() + w.network_policies.size() + w.pdbs.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ing::Workloads w;
    ing::load_workloads_text(text, "fuzz.yaml", w);
    for (const auto& d : w.diagnostics.entries()) {
      FUZZ_CHECK(d.file.starts_with("fuzz.yaml"), "diagnostic does not name the file");
      FUZZ_CHECK(!d.message.empty(), "diagnostic without a message");
      const std::string line = d.to_string();
      FUZZ_CHECK(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos,
                 "diagnostic is not one line (log injection)");
    }
    FUZZ_CHECK(w.broken_files <= 1, "one file counted broken twice");
    if (w.broken_files == 1) {
      FUZZ_CHECK(objects(w) == 0, "a broken file contributed objects");
      FUZZ_CHECK(w.diagnostics.has_errors(), "a broken file without an error diagnostic");
    }
    for (const auto& wl : w.workloads) {
      FUZZ_CHECK(wl.replicas_line >= 0 && wl.spec_line >= 0 && wl.pod_sc.line >= 0, "negative line");
      for (const auto& c : wl.containers) FUZZ_CHECK(c.line >= 0 && c.sc.line >= 0, "negative line");
      (void)wl.selector.matches(wl.pod_labels);
      for (const auto& np : w.network_policies) (void)np.pod_selector.matches(wl.pod_labels);
      for (const auto& pdb : w.pdbs) (void)pdb.selector.matches(wl.pod_labels);
    }
    for (const auto& r : w.roles) {
      for (const auto& rule : r.rules) FUZZ_CHECK(rule.line >= 0, "negative line");
    }
    ing::Workloads again;
    ing::load_workloads_text(text, "fuzz.yaml", again);
    FUZZ_CHECK(objects(again) == objects(w) && again.diagnostics.entries().size() == w.diagnostics.entries().size(),
               "the same text read twice differs");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception: %s\n", e.what());
    FUZZ_CHECK(false, "load_workloads_text threw");
  }
  return 0;
}
