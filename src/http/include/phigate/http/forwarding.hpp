#pragma once
// Header rewriting between client and upstream (RFC 9110 §7.6.1 hop-by-hop fields, and the
// de-facto X-Forwarded-* family). Pure functions on HeaderList.
#include <cstdint>
#include <optional>
#include <string>
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

/// The same decisions as set_forwarding_headers, for an HTTP/1.1 upstream head: the client's
/// fields leave `headers` alike, but ours are appended to `lines` as "Name: value\r\n" lines (for
/// append_request_head's `extra`) instead of being added to `headers`: no field strings to fill
/// and serialise again on the hot path. add_raw_lines puts them into a HeaderList when a later
/// head (an error backend's) has to replace some of them.
void forwarding_lines(HeaderList& headers, const ForwardInfo& info, std::string& lines);

/// A field set_forwarding_headers writes (Forwarded, X-Forwarded-For/-Proto/-Host/-Port,
/// X-Real-IP, X-Request-Id; any case). forwarding_lines puts these in no HeaderList.
bool is_forwarding_field(std::string_view name) noexcept;

/// Adds each "Name: value\r\n" line of `lines` (forwarding_lines' output) to `headers`.
void add_raw_lines(HeaderList& headers, std::string_view lines);

/// The forwarding field `name` (ASCII case insensitive) as the upstream head carried it: the
/// request field when `headers` has one (set_forwarding_headers, or a trusted proxy's kept),
/// else the first line of `lines` (forwarding_lines' output) so named, else nullopt. Valid until
/// either changes.
std::optional<std::string_view> forwarded_value(const HeaderList& headers, std::string_view lines,
                                                std::string_view name) noexcept;

}  // namespace phigate::http
