#pragma once
// Header rewriting between client and upstream (RFC 9110 §7.6.1 hop-by-hop fields, and the
// de-facto X-Forwarded-* family). Pure functions on HeaderList.
#include <cstdint>
#include <string_view>

#include "phigate/http/headers.hpp"

namespace phigate::http {

/// Removes hop-by-hop fields: Connection and every field it names (except Host, which is
/// end-to-end), Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade; and
/// Content-Length and Expect, whose job the proxy redoes itself (framing is re-emitted from the
/// parsed message).
void remove_hop_by_hop(HeaderList& headers);

struct ForwardInfo {
  std::string_view client_ip;   // the peer (socket, or PROXY protocol source): appended to X-Forwarded-For
  bool peer_trusted = false;    // the peer is a configured trusted proxy
  std::string_view proto;       // "https" or "http"
  std::string_view host;        // the request's Host value
  std::uint16_t port = 0;       // the local port the request arrived on
  std::string_view request_id;  // freshly generated id
  std::string_view real_ip;     // the client behind trusted proxies (X-Real-IP); "" = client_ip
};

/// Sets X-Forwarded-For/-Proto/-Host/-Port, Forwarded (RFC 7239), X-Real-IP and X-Request-Id.
/// From an untrusted peer, incoming values are replaced (spoofing defence); from a trusted proxy,
/// X-Forwarded-For and Forwarded are appended to and the others are kept when present. X-Real-IP
/// is always ours: `real_ip`. From an untrusted peer, X-Forwarded-Prefix/-Scheme/-Ssl/-Uri and
/// X-Original-URI go too. From everyone: fields whose names hold anything but letters, digits
/// and `-` (CGI-style spellings such as `ssl_client_verify`), X-Original-URL and X-Rewrite-URL.
void set_forwarding_headers(HeaderList& headers, const ForwardInfo& info);

}  // namespace phigate::http
