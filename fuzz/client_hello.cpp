// libFuzzer target: the TLS ClientHello SNI reader of TLS passthrough (phigate/net/client_hello.hpp).
// The connection re-parses its growing buffer after each read, so the verdict must not depend on
// how the bytes were split: NeedMore on every prefix until the verdict, then the same verdict (and
// the same server name) whatever follows, within the peek bound. A name that changed with later
// bytes would let a client be passed through to one host's backend while naming another.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"
#include "phigate/net/client_hello.hpp"

namespace ch = phigate::net::client_hello;

namespace {

bool same(const ch::Result& a, const ch::Result& b) {
  return a.status == b.status && a.server_name == b.server_name;
}

bool normalised(const std::string& s) {
  if (s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok || (c == '.' && i > 0 && s[i - 1] == '.')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy so that ASan sees reads past the `n` bytes handed to parse().
  const std::vector<unsigned char> bytes(data, data + size);
  const auto at = [&](std::size_t n) {
    std::vector<unsigned char> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    return ch::parse(prefix.data(), n);
  };
  const ch::Result full = at(size);
  switch (full.status) {
    case ch::Status::NeedMore:
      FUZZ_CHECK(size < ch::kMaxPeekBytes, "NeedMore after kMaxPeekBytes: an unbounded peek");
      FUZZ_CHECK(full.server_name.empty(), "NeedMore with a server name");
      break;
    case ch::Status::Invalid:
      FUZZ_CHECK(full.error != nullptr && *full.error != '\0', "Invalid without a reason");
      FUZZ_CHECK(full.server_name.empty(), "Invalid with a server name");
      break;
    case ch::Status::Done:
      FUZZ_CHECK(full.server_name.empty() || normalised(full.server_name),
                 "a server name that is not a normalised host name");
      break;
  }
  // Monotonic in the bytes received: NeedMore*, then one verdict for good. Prefixes are checked
  // at growing steps (every byte for the first 256, then every 61st) to keep runs fast.
  ch::Status seen = ch::Status::NeedMore;
  ch::Result first;
  for (std::size_t n = 0; n <= size; n += n < 256 ? 1 : 61) {
    const ch::Result r = at(n);
    if (seen == ch::Status::NeedMore) {
      seen = r.status;
      first = r;
    } else {
      FUZZ_CHECK(same(r, first), "verdict or server name changed after more bytes arrived");
    }
  }
  if (seen != ch::Status::NeedMore) FUZZ_CHECK(same(first, full), "verdict changed after more bytes arrived");
  return 0;
}
