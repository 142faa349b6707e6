#pragma once
// PROXY protocol v1 (text) and v2 (binary) header parser, as sent by load balancers (HAProxy's
// specification, haproxy.org/download/2.9/doc/proxy-protocol.txt). Sans-I/O: fed the bytes at the
// start of a connection, it says how many belong to the header and who the client is.
#include <cstddef>
#include <cstdint>
#include <string>

namespace phigate::net::proxy_protocol {

/// Longest header accepted: v1 is at most 107 bytes; v2 is 16 + its length field, which we cap
/// (addresses plus the TLVs cloud load balancers add fit easily).
inline constexpr std::size_t kMaxHeader = 16 + 1024;

enum class Status { NeedMore, Invalid, Done };

struct Result {
  Status status = Status::NeedMore;
  std::size_t consumed = 0;  // Done: bytes of the header (what follows is the client's stream)
  bool local = false;        // Done: v2 LOCAL or v1 UNKNOWN: no client address, keep the peer
  std::string source_ip;     // Done, !local: textual client address
  std::uint16_t source_port = 0;
  const char* error = nullptr;  // Invalid: why (static text)
};

/// Parses the header at the start of `data` (the first `n` bytes received). NeedMore when the
/// bytes so far are a valid prefix; Invalid as soon as they cannot be. Any thread.
Result parse(const unsigned char* data, std::size_t n);

}  // namespace phigate::net::proxy_protocol
