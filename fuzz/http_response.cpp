// libFuzzer target: the HTTP/1 response parser, driven as the proxy drives it (see http_driver.hpp).
#include <cstddef>
#include <cstdint>

#include "http_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  phigate::fuzz::run(data, size, phigate::http::Parser::Kind::Response);
  return 0;
}
