// libFuzzer target: Host field validation (phigate/http/host.hpp). Routing, TLS policy and
// access rules key on the Host value and it is forwarded; a value two parsers split differently
// (`a.example:@b.example`, `a.example/..`, `a.example\b`) is a routing-confusion attack. Property:
// an accepted value is empty, or a reg-name or IP literal with an optional port, checked here by an
// independent reading of RFC 3986 §3.2.2, and never contains `@ / \ ? # %` or whitespace.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "phigate/http/host.hpp"

namespace {

bool valid_port(std::string_view p) {
  if (p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

bool reg_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '~' || c == '.';
}

bool valid_reg_name(std::string_view n) {
  if (n.empty() || n.size() > 254) return false;
  if (n.back() == '.') n.remove_suffix(1);  // one trailing dot (fully qualified)
  if (n.empty() || n.front() == '.' || n.back() == '.' || n.find("..") != std::string_view::npos)
    return false;
  for (char c : n) {
    if (!reg_name_char(c)) return false;
  }
  return true;
}

bool well_formed(std::string_view h) {
  if (h.empty()) return true;
  if (h.front() == '[') {
    const auto close = h.find(']');
    if (close == std::string_view::npos) return false;
    const std::string addr(h.substr(1, close - 1));
    unsigned char buf[16];
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) return false;
    const auto rest = h.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
  }
  const auto colon = h.find(':');
  if (colon == std::string_view::npos) return valid_reg_name(h);
  return valid_reg_name(h.substr(0, colon)) && valid_port(h.substr(colon + 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view host(reinterpret_cast<const char*>(data), size);
  if (!phigate::http::valid_host(host)) return 0;
  for (unsigned char c : host) {
    FUZZ_CHECK(c > 0x20 && c < 0x7f, "accepted host contains whitespace or a control byte");
    FUZZ_CHECK(std::string_view("@/\\?#%").find(static_cast<char>(c)) == std::string_view::npos,
               "accepted host contains a delimiter (@ / \\ ? # %)");
  }
  FUZZ_CHECK_KNOWN(!host.empty() && host.front() == '[' ? "host-ipv6" : "host-syntax", well_formed(host),
                   "accepted host is not a reg-name or IP literal with an optional port");
  return 0;
}
