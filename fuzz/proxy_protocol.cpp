// libFuzzer target: the PROXY protocol v1/v2 header parser (phigate/net/proxy_protocol.hpp).
// The connection re-parses its growing buffer after each read, so the verdict must not depend on
// how the header was split: NeedMore on every proper prefix of a header, then the same Done (or
// Invalid from the first impossible byte on) whatever follows. A header whose end moves with later
// bytes would let a client smuggle stream bytes into, or out of, the spoofed client address.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"
#include "phigate/net/proxy_protocol.hpp"

namespace pp = phigate::net::proxy_protocol;

namespace {

bool same(const pp::Result& a, const pp::Result& b) {
  return a.status == b.status && a.consumed == b.consumed && a.local == b.local &&
         a.source_ip == b.source_ip && a.source_port == b.source_port;
}

bool valid_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Prefixes checked exhaustively: all of a v1 header, and the v2 fixed part.
constexpr std::size_t kExhaustive = 128;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy so that ASan sees reads past the `n` bytes handed to parse().
  const std::vector<unsigned char> bytes(data, data + size);
  const auto at = [&](std::size_t n) {
    std::vector<unsigned char> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    return pp::parse(prefix.data(), n);
  };
  const pp::Result full = at(size);
  switch (full.status) {
    case pp::Status::NeedMore:
      FUZZ_CHECK(size < pp::kMaxHeader, "NeedMore after kMaxHeader bytes: an unbounded header");
      break;
    case pp::Status::Invalid:
      FUZZ_CHECK(full.error != nullptr && *full.error != '\0', "Invalid without a reason");
      break;
    case pp::Status::Done:
      FUZZ_CHECK(full.consumed > 0 && full.consumed <= size, "Done consumed more bytes than it was given");
      FUZZ_CHECK(full.consumed <= pp::kMaxHeader, "Done with a header over kMaxHeader");
      FUZZ_CHECK(full.local || valid_ip(full.source_ip), "Done with a source address that is not an IP");
      FUZZ_CHECK(!full.local || full.source_ip.empty(), "local header with a source address");
      FUZZ_CHECK(same(at(full.consumed), full), "header verdict depends on the bytes after it");
      FUZZ_CHECK(at(full.consumed - 1).status == pp::Status::NeedMore,
                 "the header minus its last byte is not NeedMore");
      break;
  }
  // Monotonic in the bytes received: NeedMore*, then Invalid* or Done (the same Done) for good.
  const std::size_t last = std::min(size, kExhaustive);
  pp::Status seen = pp::Status::NeedMore;
  for (std::size_t n = 0; n <= last; ++n) {
    const pp::Result r = at(n);
    if (seen == pp::Status::NeedMore) {
      seen = r.status;
    } else {
      FUZZ_CHECK(r.status == seen, "verdict changed after more bytes arrived");
    }
    if (r.status == pp::Status::Done) FUZZ_CHECK(same(r, full), "a prefix parses to a different header");
  }
  FUZZ_CHECK(seen == pp::Status::NeedMore || seen == full.status, "verdict changed after more bytes arrived");
  return 0;
}
