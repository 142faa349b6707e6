// libFuzzer target: the HTTP/1 response parser, driven as the proxy drives it (see http_driver.hpp),
// and the HTTP/2 relay's reader over the same bytes: every field H1ResponseReader::h2_fields hands
// on is one H2ServerSession::submit_response_refs takes unchecked (its `vetted` fields), so each
// must be a lower-case name and a value nghttp2 itself accepts under RFC 9113's rules (no
// leading or trailing whitespace), and none connection-specific.
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http_driver.hpp"
#include "phigate/http/h2_translate.hpp"

namespace {

void check_h2_fields(const std::uint8_t* data, std::size_t size) {
  phigate::http::H1ResponseReader rd({}, size % 2 == 1);  // HEAD or not, by the input's length
  std::string body;
  std::size_t used = 0;
  rd.feed(reinterpret_cast<const char*>(data), size, used, body);
  if (!rd.head_ready()) return;
  std::vector<phigate::http::FieldRef> fields;
  rd.h2_fields(fields);
  for (const auto& f : fields) {
    const auto* name = reinterpret_cast<const std::uint8_t*>(f.name.data());
    const auto* value = reinterpret_cast<const std::uint8_t*>(f.value.data());
    FUZZ_CHECK(nghttp2_check_header_name(name, f.name.size()) != 0, "relayed field name nghttp2 refuses");
    FUZZ_CHECK(nghttp2_check_header_value_rfc9113(value, f.value.size()) != 0,
               "relayed field value nghttp2 refuses (RFC 9113: no CTL, no leading or trailing whitespace)");
    for (const char c : f.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), "relayed field name not lower-case");
    for (const std::string_view hop :
         {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}) {
      FUZZ_CHECK(f.name != hop, "connection-specific field relayed");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  phigate::fuzz::run(data, size, phigate::http::Parser::Kind::Response);
  check_h2_fields(data, size);
  return 0;
}
