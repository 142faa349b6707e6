// libFuzzer target: the phigate.yaml loader (phigate/config/loader.hpp) on arbitrary text.
// Properties: nothing throws past the loader (the control plane reports Diagnostics at its edge);
// a config comes back exactly when there is no error; every diagnostic is one line, so a key or
// value in the file cannot forge extra lines in `phigate validate` output or the log (log injection).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "check.hpp"
#include "phigate/config/loader.hpp"

namespace cfg = phigate::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A folder that does not exist: referenced files are then "not found", never read.
  const std::string file = "/nonexistent-phigate-fuzz/phigate.yaml";
  cfg::Diagnostics diag;
  std::optional<cfg::Config> config;
  try {
    config = cfg::load_config_text(text, file, diag);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception: %s\n", e.what());
    FUZZ_CHECK(false, "load_config_text() threw");
  }
  FUZZ_CHECK(config.has_value() == !diag.has_errors(),
             "a config was returned despite errors, or none without");
  for (const auto& d : diag.entries()) {
    FUZZ_CHECK(d.file == file, "diagnostic names another file");
    FUZZ_CHECK(!d.message.empty(), "diagnostic without a message");
    const std::string line = d.to_string();
    FUZZ_CHECK(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos,
               "diagnostic is not one line (log injection)");
  }
  return 0;
}
