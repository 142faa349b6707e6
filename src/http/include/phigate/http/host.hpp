#pragma once
// Host field syntax (RFC 9110 §7.2, RFC 3986 §3.2.2). Routing, TLS policy and access decisions are
// made on the Host value, and it is forwarded: a value that one parser reads as one host and
// another as a different one (`a.example:@b.example`, `a.example/..`, `a.example\b`) must never get
// that far. Sans-I/O, any thread.
#include <string_view>

namespace phigate::http {

/// True when `host` is empty, or `name[:port]` where name is a DNS-style reg-name (letters,
/// digits, `-`, `_`, `~`, dots between non-empty labels, one optional trailing dot; at most 253
/// characters) or an IPv4 address, or `[IPv6]`; port is at most 5 digits and ≤ 65535 (or empty,
/// as RFC 3986 allows). Everything else (userinfo, `/ \ ? # %`, whitespace, control bytes,
/// sub-delims, zone ids) is refused.
bool valid_host(std::string_view host) noexcept;

}  // namespace phigate::http
