#pragma once
// Sans-I/O translation between one HTTP/2 client stream (http::H2ServerSession's MessageHead) and
// an HTTP/1.1 upstream exchange: the request head and body framing out, the response head, body
// and trailers back. No sockets, no clock. The proxy (h2_connection.cpp) moves the bytes.
//
// Why a translation at all: HTTP/2 framing (DATA frames, END_STREAM) means nothing on an HTTP/1.1
// hop; the upstream's message must be framed again (RFC 9113 §8.2.2, RFC 9112 §6), and the
// fields HTTP/2 forbids (connection-specific ones, RFC 9113 §8.2.2) must never reach the client.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/http/message.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"

namespace phigate::http {

/// The HTTP/1.1 framing of a request that came over HTTP/2: Content-Length when the client
/// declared one; when the whole request is already here (`end_stream`), Content-Length of the
/// `body_bytes` received (none for an empty body); else chunked, the DATA frames re-chunked.
Framing h1_request_framing(const MessageHead& head, bool end_stream, std::uint64_t body_bytes) noexcept;

/// RFC 9113 §8.2.3: HTTP/2 may split Cookie into several fields; HTTP/1.1 has exactly one,
/// joined with "; ". Call before forwarding to an HTTP/1.1 hop.
void join_cookie_fields(HeaderList& headers);

/// Appends "METHOD target HTTP/1.1", `head`'s fields (the caller removed hop-by-hop fields
/// first), the framing field and `extra` (the forwarding lines: http::forwarding_lines).
void append_h1_request_head(std::string& out, const MessageHead& head, std::string_view target,
                            Framing framing, std::string_view extra = {});
/// Appends body bytes in `framing` (a chunk when chunked; nothing for an empty piece).
void append_h1_body(std::string& out, std::string_view bytes, Framing framing);
/// Ends a chunked body: the last chunk, then `trailers` (when not null) as chunked trailer fields
/// (fields that would change framing, routing or authentication dropped: RFC 9110 §6.5.1).
/// Nothing for other framings (their trailers are dropped: HTTP/1.1 cannot carry them).
void append_h1_body_end(std::string& out, const HeaderList* trailers, Framing framing);

/// May a field travel as a trailer? Not the framing, routing, hop-by-hop or authentication ones.
bool trailer_allowed(std::string_view name) noexcept;
/// May a field travel as a request trailer to an HTTP/1.1 backend? trailer_allowed, and none of
/// the fields set_forwarding_headers drops from a head: only letters, digits and `-` (so no
/// `ssl_client_verify`, `x_forwarded_for`), no x-rewrite-url or x-original-*.
bool request_trailer_allowed(std::string_view name) noexcept;

/// Adds raw "Name: value\r\n" lines (the proxy's preformatted extra fields: HSTS, an affinity
/// Set-Cookie) to `out` as fields.
void add_raw_fields(HeaderList& out, std::string_view raw);
/// The same, as references into `raw` (valid while `raw` is).
void add_raw_fields(std::vector<FieldRef>& out, std::string_view raw);

/// Reads one HTTP/1.1 response from an upstream for an HTTP/2 client: 1xx dropped (bounded),
/// no body after HEAD or for 204/304, body bytes decoded from their framing, chunked trailers kept.
class H1ResponseReader {
 public:
  enum class Status { NeedMore, Complete, Error };
  static constexpr unsigned kMaxInterim = 8;

  H1ResponseReader(ParserLimits limits, bool head_request);

  /// Parses from `data`; `used`: bytes taken (bytes after the response are not taken); decoded
  /// body bytes are appended to `body`. After it, head_ready() says whether the final head is in.
  Status feed(const char* data, std::size_t len, std::size_t& used, std::string& body);
  /// The upstream closed: completes a body delimited by the close (RFC 9112 §6.3 rule 8), else Error.
  Status eof(std::string& body);

  /// The request was phigate's own WebSocket upgrade (an RFC 8441 stream): a 101 is the final
  /// answer (head_ready and Complete, no body; `used` stops at its head, so the bytes after it stay
  /// with the caller as the tunnel's first) instead of an error. Check it with
  /// websocket_switch_violation before opening the tunnel.
  void accept_switch() noexcept { accept_switch_ = true; }
  /// The request was an error page's `GET /` (proxy/error_page.hpp): any 1xx but 100 is an Error
  /// (an error backend answers with its page, nothing else), as the HTTP/1 codec's
  /// Http1Exchange::error_page_response.
  void error_page_response() noexcept { error_page_ = true; }

  bool head_ready() const noexcept { return head_ready_; }
  /// The final response head (valid once head_ready()).
  const MessageHead& head() const noexcept { return parser_.head(); }
  bool complete() const noexcept { return complete_; }
  int status() const noexcept { return parser_.head().status; }
  /// The response fields as HTTP/2 may carry them: hop-by-hop and connection-specific ones
  /// (Connection and what it names, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE,
  /// Trailer) removed; Content-Length kept only for a body framed by it.
  void h2_fields(HeaderList& out) const;
  /// The same fields as references into head() (valid while this reader is and feeds no more),
  /// appended to `out`. Each is one HTTP/2 allows as is: a lower-case token name (the parser
  /// lower-cases names), a value without CR, LF, NUL or another control character but HTAB and
  /// without leading or trailing whitespace (trimmed here: RFC 9113 §8.2.1), no connection-specific
  /// name (H2ServerSession::submit_response_refs' `vetted` fields).
  void h2_fields(std::vector<FieldRef>& out) const;
  /// The response has no body at all (HEAD, 204, 304, or Content-Length: 0 with the message done).
  bool bodyless() const noexcept;
  /// Chunked trailers (valid after Complete), as HTTP/2 trailers may carry them.
  const HeaderList& trailers() const noexcept { return trailers_; }
  /// The upstream connection may serve another request: the message ended exactly at its framing.
  bool reusable(bool leftover) const noexcept;
  const core::Error& error() const noexcept { return error_; }

 private:
  Status fail(core::Error e);
  void take_body(std::string& body);

  Parser parser_;
  bool head_request_;
  bool head_ready_ = false;
  bool complete_ = false;
  bool failed_ = false;
  unsigned interim_ = 0;
  bool accept_switch_ = false;
  bool error_page_ = false;
  std::size_t head_fields_ = 0;  // fields of the head; the parser appends chunked trailers after them
  HeaderList trailers_;
  core::Error error_;
};

/// RFC 6455 §4.2.2 and RFC 9110 §15.2.2: a backend's 101 to phigate's own WebSocket upgrade
/// request. It must carry `Connection: upgrade`, exactly one Upgrade field naming exactly
/// `protocol` (without case), and one Sec-WebSocket-Accept equal to `accept` (computed from the
/// key phigate sent: a backend that did not do the handshake, or answers another request, fails
/// here). Returns why it is refused (502), or nullptr.
const char* websocket_switch_violation(const MessageHead& response, std::string_view protocol,
                                       std::string_view accept);

}  // namespace phigate::http
