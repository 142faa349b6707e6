#pragma once
// Private to proxy: the HTTP/2 driver of a client connection that negotiated ALPN "h2"
// (RFC 9113 §3.2). ProxyConnection::run() hands the connection over after the handshake: one
// reader feeds http::H2ServerSession, one writer sends its frames, and each stream becomes a
// request for the same phases, policies, upstream layer, audit record and metrics as HTTP/1.1
// (h2_connection.cpp). Worker thread only.
#include <memory>

#include "phigate/net/asio.hpp"

namespace phigate::proxy::detail {

class ProxyConnection;
class H2Connection;

/// Serves `conn` as HTTP/2 until the connection ends (streams still finishing keep it alive).
net::awaitable<void> serve_h2(std::shared_ptr<ProxyConnection> conn);
/// ProxyConnection::expire/drain while the HTTP/2 driver runs.
void h2_expire(H2Connection& c);
void h2_drain(H2Connection& c);

}  // namespace phigate::proxy::detail
