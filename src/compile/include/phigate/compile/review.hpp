#pragma once
// Admission review of one Ingress: what `phigate run` would report about it if it were applied
// now. The candidate replaces the object of the same namespace/name in `current` (or is added;
// for DELETE it is removed and nothing is refused), the whole set is translated and compiled with
// `config` exactly as a reload would be, and the diagnostics that name this Ingress are returned.
// Pure apart from the compile step's own work (no I/O). Control thread.
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"

namespace phigate::compile {

struct Review {
  bool ours = false;                // the Ingress is phigate's by class selection (others are always allowed)
  bool allowed = true;              // no error names it (an Ingress that would fail closed is refused)
  std::vector<std::string> errors;  // one line each: field or annotation, and why
  std::vector<std::string> warnings;  // conflicts, annotations that do nothing, ...
};

/// `ingress_json`: the Ingress object (AdmissionReview request.object). A body that does not load
/// as an Ingress is refused with the loader's message.
Review review_ingress(const config::Config& config, const ingress::LoadResult& current,
                      std::string_view ingress_json);

}  // namespace phigate::compile
