#include "phigate/net/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

namespace phigate::net::proxy_protocol {

namespace {

constexpr unsigned char kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1Max = 107;  // including CRLF (spec §2.1)

Result invalid(const char* why) {
  Result r;
  r.status = Status::Invalid;
  r.error = why;
  return r;
}

/// Decimal 0..65535 without sign or leading zeros (spec §2.1).
bool parse_port(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool valid_ip(std::string_view s, int family) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof buf) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char out[16];
  return inet_pton(family, buf, out) == 1;
}

Result parse_v1(const unsigned char* data, std::size_t n) {
  const std::string_view text(reinterpret_cast<const char*>(data), n);
  const auto crlf = text.find("\r\n");
  if (crlf == std::string_view::npos) {
    if (n >= kV1Max) return invalid("v1 header longer than 107 bytes");
    if (text.find('\n') != std::string_view::npos || text.find('\r') < n - 1) {
      return invalid("v1 header with a bare CR or LF");
    }
    return {};
  }
  if (crlf + 2 > kV1Max) return invalid("v1 header longer than 107 bytes");
  // A bare CR or LF before the CRLF is refused here as it is above while the CRLF has not arrived:
  // otherwise the verdict would depend on how the header was split into reads (found by
  // fuzz/proxy_protocol.cpp: `PROXY UNKNOWN x\ry\r\n` was Done in one read, Invalid in two).
  if (text.substr(0, crlf).find_first_of("\r\n") != std::string_view::npos) {
    return invalid("v1 header with a bare CR or LF");
  }
  std::string_view line = text.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
  std::string_view parts[5];
  std::size_t count = 0;
  while (!line.empty() && count < 5) {
    const auto sp = line.find(' ');
    parts[count++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(sp + 1);
    if (line.empty()) return invalid("v1 header ends with a space");
  }
  Result r;
  r.status = Status::Done;
  r.consumed = crlf + 2;
  if (count >= 1 && parts[0] == "UNKNOWN") {  // the rest of the line is ignored (spec §2.1)
    r.local = true;
    return r;
  }
  if (!line.empty() || count != 5) return invalid("v1 header needs protocol, two addresses and two ports");
  const int family = parts[0] == "TCP4" ? AF_INET : parts[0] == "TCP6" ? AF_INET6 : -1;
  if (family < 0) return invalid("v1 protocol is not TCP4, TCP6 or UNKNOWN");
  std::uint16_t dst_port = 0;
  if (!valid_ip(parts[1], family) || !valid_ip(parts[2], family)) return invalid("v1 address is invalid");
  if (!parse_port(parts[3], r.source_port) || !parse_port(parts[4], dst_port)) {
    return invalid("v1 port is invalid");
  }
  r.source_ip.assign(parts[1]);
  return r;
}

Result parse_v2(const unsigned char* data, std::size_t n) {
  if (n < 16) return {};
  const unsigned version = data[12] >> 4;
  const unsigned command = data[12] & 0x0F;
  if (version != 2) return invalid("v2 version is not 2");
  if (command > 1) return invalid("v2 command is neither LOCAL nor PROXY");
  const std::size_t len = static_cast<std::size_t>(data[14]) << 8 | data[15];
  if (16 + len > kMaxHeader) return invalid("v2 header longer than phigate accepts");
  if (n < 16 + len) return {};
  Result r;
  r.status = Status::Done;
  r.consumed = 16 + len;
  if (command == 0) {  // LOCAL: health checks from the balancer itself; addresses are ignored
    r.local = true;
    return r;
  }
  const unsigned family = data[13] >> 4;
  const unsigned transport = data[13] & 0x0F;
  const unsigned char* addr = data + 16;
  char text[INET6_ADDRSTRLEN];
  if (family == 0) {  // AF_UNSPEC: the receiver must use the real connection's addresses
    r.local = true;
    return r;
  }
  if (transport != 1) return invalid("v2 transport is not STREAM");
  if (family == 1) {
    if (len < 12) return invalid("v2 IPv4 address block too short");
    if (inet_ntop(AF_INET, addr, text, sizeof text) == nullptr) return invalid("v2 IPv4 address");
    r.source_port = static_cast<std::uint16_t>(addr[8] << 8 | addr[9]);
  } else if (family == 2) {
    if (len < 36) return invalid("v2 IPv6 address block too short");
    if (inet_ntop(AF_INET6, addr, text, sizeof text) == nullptr) return invalid("v2 IPv6 address");
    r.source_port = static_cast<std::uint16_t>(addr[32] << 8 | addr[33]);
  } else {
    return invalid("v2 family is not INET or INET6");
  }
  r.source_ip = text;
  return r;
}

}  // namespace

Result parse(const unsigned char* data, std::size_t n) {
  // Nothing received yet: an empty buffer may hand us a null `data`, and memcmp on a null pointer
  // is undefined even for 0 bytes (C11 §7.24.1p2); found by fuzz/proxy_protocol.cpp.
  if (n == 0) return {};
  // Decide the version on the bytes we have: a prefix of either signature needs more.
  const std::size_t v2_cmp = n < sizeof kV2Signature ? n : sizeof kV2Signature;
  if (std::memcmp(data, kV2Signature, v2_cmp) == 0) {
    return n < sizeof kV2Signature ? Result{} : parse_v2(data, n);
  }
  const std::size_t v1_cmp = n < kV1Prefix.size() ? n : kV1Prefix.size();
  if (std::memcmp(data, kV1Prefix.data(), v1_cmp) == 0) {
    return n < kV1Prefix.size() ? Result{} : parse_v1(data, n);
  }
  return invalid("no PROXY protocol header");
}

}  // namespace phigate::net::proxy_protocol
