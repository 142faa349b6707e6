#pragma once
// TLS ClientHello SNI reader for TLS passthrough (ssl-passthrough): sans-I/O, fed the first bytes
// a client sent on an HTTPS listener, it says whether they hold a complete ClientHello and which
// server_name it asks for (RFC 8446 §4.1.2, §5.1; RFC 6066 §3). The handshake message may span
// several TLS records (fragmentation, RFC 8446 §5.1) and arrive in any number of TCP segments.
// It decides nothing about the connection: any malformed input is `Invalid`, which the caller
// treats as "no SNI" (normal TLS termination, whose handshake then fails on its own).
#include <cstddef>
#include <string>

namespace phigate::net::client_hello {

/// At most this many bytes are read before deciding: a ClientHello larger than one full record
/// (2^14 bytes of handshake data) is not one phigate passes through.
inline constexpr std::size_t kMaxHelloBytes = 16 * 1024;
inline constexpr std::size_t kMaxPeekBytes = kMaxHelloBytes + 5;

enum class Status { NeedMore, Invalid, Done };

struct Result {
  Status status = Status::NeedMore;
  /// Done: the host_name of the server_name extension, lower-cased, one trailing dot removed;
  /// empty when the hello has none (or one that is not a valid host name).
  std::string server_name;
  const char* error = nullptr;  // Invalid: why (static text, no client bytes)
};

/// Parses the bytes at the start of a TLS connection (the first `n` received). NeedMore while they
/// are a valid prefix of a ClientHello of at most kMaxHelloBytes whose records fit in
/// kMaxPeekBytes; Invalid as soon as they cannot be. Any thread.
Result parse(const unsigned char* data, std::size_t n);

}  // namespace phigate::net::client_hello
