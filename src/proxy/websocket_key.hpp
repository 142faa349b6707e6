#pragma once
// Private to proxy: the WebSocket opening handshake's key and accept (RFC 6455 §4.1, §4.2.2), for
// the HTTP/1.1 upgrade phigate makes itself when it translates an RFC 8441 stream (the HTTP/2
// client sends no key, RFC 8441 §5; the key and its accept are this hop's).
#include <string>
#include <string_view>

namespace phigate::proxy::detail {

/// A fresh Sec-WebSocket-Key: 16 bytes from OpenSSL's CSPRNG (RAND_bytes), base64 (24 characters).
/// False (and `out` empty) when the generator failed: nothing is sent.
bool new_websocket_key(std::string& out);

/// The Sec-WebSocket-Accept a backend must answer `key` with: base64(SHA-1(key + the RFC 6455
/// GUID)).
std::string websocket_accept(std::string_view key);

}  // namespace phigate::proxy::detail
