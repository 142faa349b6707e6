// libFuzzer target: the Kubernetes manifest loader (phigate/ingress/loader.hpp, load_text,
// which is what load_directory runs per file) followed by translate() on what it read.
// Properties: nothing throws; a broken file contributes no object (src/ingress/README.md: a file
// parses completely before any object is read); every diagnostic names its file and is one line
// (log injection); an Ingress with an annotation error is never served as valid (fail closed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <set>
#include <string>

#include "check.hpp"
#include "phigate/ingress/annotations.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"

namespace ing = phigate::ingress;

namespace {

void check_diagnostics(const phigate::config::Diagnostics& diag) {
  for (const auto& d : diag.entries()) {
    FUZZ_CHECK(d.file.starts_with("fuzz.yaml"), "diagnostic does not name the file");
    FUZZ_CHECK(!d.message.empty(), "diagnostic without a message");
    const std::string line = d.to_string();
    FUZZ_CHECK(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos,
               "diagnostic is not one line (log injection)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ing::LoadResult r;
    ing::load_text(text, "fuzz.yaml", r);
    check_diagnostics(r.diagnostics);
    FUZZ_CHECK(r.broken_files <= 1, "one file counted broken twice");
    if (r.broken_files == 1) {
      FUZZ_CHECK(r.resources.ingresses.empty() && r.resources.secrets.empty(),
                 "a broken file contributed objects");
      FUZZ_CHECK(r.diagnostics.has_errors(), "a broken file without an error diagnostic");
    }
    phigate::config::IngressSpec spec;
    spec.dir = "/fuzz";
    phigate::config::Diagnostics diag;
    const auto t = ing::translate(r.resources, spec, diag);
    check_diagnostics(diag);
    // Ingresses whose annotations do not parse: their paths must answer 503, never be served.
    std::set<std::string> invalid;
    for (const auto& in : r.resources.ingresses) {
      if (!ing::parse_annotations(in.meta.annotations, in.meta.ns).fail_closed.empty()) {
        invalid.insert("Ingress " + in.meta.key());
      }
    }
    for (const auto& route : t.routes) {
      for (const auto& path : route.paths) {
        if (path.policy && invalid.count(path.policy->resource) == 1) {
          FUZZ_CHECK(!path.policy->fail_closed.empty(), "an Ingress with an invalid annotation fails open");
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception: %s\n", e.what());
    FUZZ_CHECK(false, "the manifest loader or translate() threw");
  }
  return 0;
}
