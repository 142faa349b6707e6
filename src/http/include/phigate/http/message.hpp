#pragma once
// The head of one HTTP/1.x request or response, as parsed.
#include <cstdint>
#include <optional>
#include <string>

#include "phigate/http/headers.hpp"

namespace phigate::http {

struct MessageHead {
  // Request
  std::string method;
  std::string target;
  // Response
  int status = 0;
  std::string reason;
  // Both
  int version_major = 1;
  int version_minor = 1;
  HeaderList headers;
  std::optional<std::uint64_t> content_length;  // declared length, when framed by Content-Length
  bool chunked = false;                         // Transfer-Encoding: chunked
  bool keep_alive = true;                       // as llhttp decided from version and Connection
  bool expect_continue = false;                 // request: Expect: 100-continue
  bool framing_suspect = false;  // response: 204/304 announcing content it cannot have (never reuse)
  bool upgrade = false;          // Connection: upgrade + Upgrade (llhttp's verdict; a 101's for responses)

  bool has_body() const noexcept { return chunked || (content_length && *content_length > 0); }
  void clear() {
    method.clear();
    target.clear();
    status = 0;
    reason.clear();
    version_major = version_minor = 1;
    headers.clear();
    content_length.reset();
    chunked = false;
    keep_alive = true;
    expect_continue = false;
    framing_suspect = false;
    upgrade = false;
  }
};

/// Standard reason phrase for `status` ("Unknown" when we have none).
const char* reason_phrase(int status) noexcept;

}  // namespace phigate::http
