#pragma once
// AdmissionReview v1 (admission.k8s.io/v1), sans-I/O: parse a review request and write its answer.
// The webhook listener (src/server) feeds it the POST body of /validate.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::kube {

struct AdmissionRequest {
  std::string uid;
  std::string operation;  // CREATE, UPDATE, DELETE, CONNECT
  std::string kind;       // request.kind.kind ("Ingress")
  std::string group;      // request.kind.group ("networking.k8s.io")
  std::string ns, name;
  std::string object;     // request.object as JSON text (empty for DELETE)
};

/// nullopt with `error` set when the body is not an AdmissionReview v1 request.
std::optional<AdmissionRequest> parse_admission_review(std::string_view body, std::string& error);

/// The AdmissionReview answer: allowed, or denied with `messages` joined into status.message
/// (code 400); warnings go to response.warnings.
std::string admission_response(const std::string& uid, bool allowed, const std::vector<std::string>& messages,
                               const std::vector<std::string>& warnings = {});

}  // namespace phigate::kube
