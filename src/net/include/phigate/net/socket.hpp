#pragma once
// Listening sockets and endpoint parsing. Control thread (binding) and workers (accepting).
#include <string>

#include "phigate/core/result.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::net {

/// Parses "ip:port" or "[v6]:port" (IP literal). Hostnames are not resolved here.
core::Result<tcp::endpoint> parse_endpoint(const std::string& text);

/// Resolves "host:port" (IP literal or name; blocking getaddrinfo — control thread only).
core::Result<tcp::endpoint> resolve_endpoint(const std::string& text);

/// Opens, binds and listens. With `reuse_port`, several workers bind the same address and the
/// kernel spreads connections (SO_REUSEPORT). Errors name the address ("127.0.0.1:8443: Address
/// already in use").
core::Result<tcp::acceptor> listen(asio::io_context& io, const tcp::endpoint& ep, bool reuse_port);

/// "1.2.3.4:80" / "[::1]:80".
std::string to_string(const tcp::endpoint& ep);

}  // namespace phigate::net
