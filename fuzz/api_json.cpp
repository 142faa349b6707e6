// libFuzzer target: JSON from the Kubernetes API (phigate/ingress/loader.hpp load_json: simdjson
// into the loader's tree, then the same object readers as YAML manifests), followed by translate().
// Properties: nothing throws; every diagnostic names its file and is one line (log injection);
// malformed JSON contributes no object; an Ingress with an annotation error never fails open.
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

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ing::LoadResult r;
    ing::load_json(text, "kubernetes:fuzz", r);
    const auto check = [](const phigate::config::Diagnostics& diag) {
      for (const auto& d : diag.entries()) {
        FUZZ_CHECK(!d.message.empty(), "diagnostic without a message");
        const std::string line = d.to_string();
        FUZZ_CHECK(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos,
                   "diagnostic is not one line (log injection)");
      }
    };
    check(r.diagnostics);
    phigate::config::IngressSpec spec;
    phigate::config::Diagnostics diag;
    const auto t = ing::translate(r.resources, spec, diag);
    check(diag);
    std::set<std::string> invalid;
    for (const auto& in : r.resources.ingresses) {
      if (!ing::parse_annotations(in.meta.annotations, in.meta.ns).fail_closed.empty()) {
        invalid.insert("Ingress " + in.meta.key());
      }
      for (const auto& s : ing::referenced_secrets(in)) {
        FUZZ_CHECK(s.find('/') != std::string::npos, "a referenced Secret without its namespace");
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
    FUZZ_CHECK(false, "load_json or translate() threw");
  }
  return 0;
}
