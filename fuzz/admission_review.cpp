// libFuzzer target: AdmissionReview bodies as the webhook listener receives them
// (phigate/kube/admission.hpp). Properties: nothing throws; a refused body names why; for an
// accepted one, the answer built from its uid and any message bytes is valid JSON that parses back
// (simdjson) to the same uid and allowed flag — no JSON injection through uid or messages.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "check.hpp"
#include "phigate/kube/admission.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    std::string error;
    const auto req = phigate::kube::parse_admission_review(text, error);
    if (!req) {
      FUZZ_CHECK(!error.empty(), "a refused review without a reason");
      return 0;
    }
    // The body's own bytes as messages and warnings: whatever an Ingress author wrote.
    const bool allowed = size % 2 == 0;
    const auto answer = phigate::kube::admission_response(req->uid, allowed, {text, req->object}, {req->name});
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    FUZZ_CHECK(parser.parse(answer).get(doc) == simdjson::SUCCESS, "the answer is not valid JSON");
    std::string_view uid;
    FUZZ_CHECK(doc["response"]["uid"].get(uid) == simdjson::SUCCESS, "the answer has no response.uid");
    FUZZ_CHECK(uid == req->uid, "the answer's uid differs from the request's");
    bool got = !allowed;
    FUZZ_CHECK(doc["response"]["allowed"].get(got) == simdjson::SUCCESS && got == allowed,
               "the answer's allowed flag differs");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception: %s\n", e.what());
    FUZZ_CHECK(false, "parse_admission_review or admission_response threw");
  }
  return 0;
}
