#pragma once
// Sans-I/O HTTP/1 exchange codec: the rules of one client connection's request/response exchanges
// (request head acceptance, upstream framing and re-chunking, 100-continue, 1xx handling, response
// framing for the client, when either connection may be reused, local replies), with no sockets,
// no clock, no metrics and no logging. Bytes and events go in; bytes to write and decisions come
// out. The proxy drives it with its own I/O; HTTP/2 will be a second codec with the same role.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/http/message.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/response_edits.hpp"

namespace phigate::http {

/// The Upgrade protocols tunnelled when nothing else is configured: WebSocket only.
std::span<const std::string> default_upgrades() noexcept;

struct ExchangeOptions {
  ParserLimits request;                               // client request limits
  ParserLimits response{64 * 1024, 64 * 1024, 1000};  // upstream response limits
  int max_interim = 8;                                // 1xx responses tolerated before the final one
  /// Upgrade protocol names (RFC 9110 §7.8, compared without case, version ignored) a request may
  /// ask for; any other is refused (400). h2c is refused whatever this says (RFC 9113 §3.1). The
  /// strings must outlive the exchange (the connection's pinned snapshot holds them).
  std::span<const std::string> upgrades = default_upgrades();
};

/// One HTTP/1 client connection's exchanges, request by request (pipelining: bytes after a
/// complete request are left unconsumed for the next one). Also the response side of the current
/// exchange with the upstream. Owned by one connection on one worker.
class Http1Exchange {
 public:
  explicit Http1Exchange(ExchangeOptions options);
  Http1Exchange(const Http1Exchange&) = delete;
  Http1Exchange& operator=(const Http1Exchange&) = delete;

  /// Takes effect from the next request (snapshot reload): a head half parsed keeps its limits.
  void set_request_limits(ParserLimits l);

  // --- request head
  enum class HeadStatus { NeedMore, Ready, Error };
  /// Parses client bytes until the request head is complete. `used`: bytes consumed. Ready also
  /// requires the HTTP/1 rules that are not llhttp's (version 1.0/1.1, no Upgrade: h2c, at most
  /// one Upgrade field; an upgrade — Connection: upgrade + Upgrade — only as an HTTP/1.1 GET
  /// without a body naming one allowed protocol); every refusal is an Error of kind BadRequest
  /// (error()). Once Ready, later calls consume nothing until next_request(). After an upgrade
  /// request's head, the client's bytes are not HTTP any more: they stay unconsumed (`used` stops
  /// at the head) and belong to the tunnel if the upstream switches protocols.
  HeadStatus feed_head(const char* data, std::size_t len, std::size_t& used);
  bool at_message_start() const noexcept;  // no byte of the next request seen
  bool head_started() const noexcept;      // some byte of the current request seen
  MessageHead& request() noexcept;
  const MessageHead& request() const noexcept;
  bool request_head_complete() const noexcept;
  bool request_complete() const noexcept;  // head and whole body parsed
  /// The current request asks to switch to an allowed protocol (Connection: upgrade + Upgrade).
  bool upgrade_requested() const noexcept { return !upgrade_token_.empty(); }
  /// The protocol it asks for, as the client wrote it ("websocket"); empty when none.
  std::string_view upgrade_protocol() const noexcept { return upgrade_token_; }
  const core::Error& error() const noexcept;  // after any Error status

  // --- forwarding the request
  /// Appends the upstream request head: `method target HTTP/1.1`, the request's headers as they
  /// are now (the caller already removed hop-by-hop fields and added forwarding ones) and the
  /// framing (chunked when the client sent chunked, else Content-Length when it sent one, else
  /// none). Remembers that framing for feed_body. For an upgrade request, `Connection: upgrade`
  /// and `Upgrade: <protocol>` go out again (hop-by-hop removal took them off).
  /// `extra`: preformatted lines after the fields (the forwarding lines: http::forwarding_lines).
  void append_upstream_head(std::string& out, std::string_view target, std::string_view extra = {});
  /// proxy-request-buffering: from now on feed_body appends the body's bytes without any framing
  /// (a chunked body de-chunked, its trailers dropped), so that the caller can hold the whole body;
  /// call before the first feed_body. append_upstream_head, called once the request is complete,
  /// then frames it with Content-Length: body_bytes(), whatever the client's framing was.
  /// The parser adds a chunked body's trailer fields to the request's fields; they are dropped
  /// here as the body ends, so that a head built after the body never carries them.
  void buffer_body() noexcept {
    buffered_ = true;
    upstream_chunked_ = false;
    head_fields_ = req_.head().headers.size();
  }
  /// The next responses answer a head the caller wrote itself, an error page's `GET /`
  /// (proxy/error_page.hpp), not append_upstream_head's: it asked for no upgrade, so a 101 is an
  /// Error even when the client's request asked for one, and so is any 1xx but 100 (an error
  /// backend answers with its page, nothing else). Holds until next_request().
  void error_page_response() noexcept {
    upstream_upgrade_ = false;
    error_page_ = true;
  }
  /// True exactly once per request, when the caller must now write kContinue to the client before
  /// waiting for body bytes (RFC 9110 §10.1.1).
  bool take_continue() noexcept;
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  enum class BodyStatus { NeedMore, Done, Error };
  /// Feeds client bytes of the current request's body and appends them to `out` in the upstream
  /// framing (re-chunked when chunked). `body_limit` 0 = unlimited; over it: Error (BodyTooLarge).
  /// Done: body complete (last-chunk appended when chunked); bytes after it are not consumed.
  BodyStatus feed_body(const char* data, std::size_t len, std::size_t& used, std::string& out,
                       std::uint64_t body_limit);
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }  // request body bytes so far

  // --- response (upstream -> client)
  /// Starts the response of the current request. `extra_fields`: raw header lines added to the
  /// response head (HSTS), skipped when the upstream sends Strict-Transport-Security itself.
  /// `close_client`: the client connection must close after this response (drain, shutdown).
  /// `edits` (may be null; must outlive the response head) and `response_fields` (raw lines, e.g.
  /// CORS; copied) replace the upstream's fields of their names (http/response_edits.hpp).
  void begin_response(std::string_view extra_fields, bool close_client, const ResponseEdits* edits = nullptr,
                      std::string_view response_fields = {});
  /// The caller learned, before the response head went out, that the client connection must
  /// close after this response (a drain began while waiting for the upstream).
  void set_close_client() noexcept { close_client_ = true; }
  enum class ResponseStatus { NeedMore, Complete, Error };
  /// Feeds upstream bytes; appends to `out` what the client gets (see the README of http/).
  /// Complete: the response ended; `used` stops there, so bytes after it are NOT consumed. After
  /// a 101 (upgraded()), those unconsumed bytes are the tunnel's first upstream bytes: the caller
  /// sends them to the client, after the head, before anything else. A 101 is accepted only for
  /// an upgrade request whose upstream head (append_upstream_head) asked for it, and only when its
  /// Upgrade names the protocol asked for; else Error.
  /// Error: error() with kind UpstreamBadResponse (or the parser's kind).
  ResponseStatus feed_response(const char* data, std::size_t len, std::size_t& used, std::string& out);
  /// The upstream closed cleanly (FIN; a reset or timeout is the caller's own error): Complete when the body
  /// was delimited by close (RFC 9112 §6.3 rule 8), appending what completes the client framing; else Error
  /// (UpstreamReset, "eof").
  ResponseStatus upstream_eof(std::string& out);
  bool response_head_sent() const noexcept { return head_sent_; }
  int response_status() const noexcept { return response_status_; }  // the final status, 0 before
  bool response_complete() const noexcept { return response_complete_; }
  /// The upstream answered an upgrade request with 101 and the head went to the client: from
  /// here the connection is a tunnel (bytes both ways, no HTTP), and the exchange is over.
  bool upgraded() const noexcept { return upgraded_; }
  /// The upstream's final response head as parsed (hop-by-hop fields removed once it was sent).
  const MessageHead& response() const noexcept { return resp_.head(); }
  /// After Complete: may the upstream connection carry another request? Never after an upgrade
  /// request, whatever the answer (101: it is a tunnel; otherwise the upstream may still expect
  /// the new protocol).
  bool upstream_reusable(bool leftover) const noexcept;
  /// After Complete (or a local reply): may the client connection carry another request? Never
  /// after an upgrade request: the client may already be sending the new protocol's bytes.
  bool client_keep_alive() const noexcept;

  // --- local replies (phigate answers itself)
  struct Reply {
    bool keep_alive;
    bool linger;
  };
  /// Appends a complete short response (status line in the request's version when its head was
  /// parsed, else 1.1; `body` with Content-Length, no body bytes for HEAD; Location when not empty;
  /// `extra_fields`; Connection: close when closing) and decides whether the connection carries on.
  Reply append_local_reply(std::string& out, int status, std::string_view body, std::string_view location,
                           std::string_view extra_fields, bool must_close, bool close_client);
  /// Forget the current request (after its reply/response): the next feed_head starts the next one.
  void next_request() noexcept;

 private:
  void fail(core::Error e) { error_ = std::move(e); }
  void emit_response_head(std::string& out);
  /// extra_fields_ for a response with these headers (without our HSTS when it sets its own).
  std::string_view fields_for(const HeaderList& response_headers) const;
  ResponseStatus switch_protocols(std::string& out);
  void emit_response_body(std::string& out);
  ResponseStatus complete_response(std::string& out);

  ExchangeOptions options_;
  Parser req_;
  Parser resp_;
  core::Error error_;
  std::string extra_fields_;     // copied: the caller's snapshot may be released before the head goes out
  std::string response_fields_;  // per-request edits (CORS), copied likewise
  const ResponseEdits* response_edits_ = nullptr;  // the route's edits (the pinned snapshot's)
  ParserLimits pending_limits_{};
  bool limits_pending_ = false;
  // Request side
  bool head_started_ = false;
  bool head_ready_ = false;
  bool request_failed_ = false;  // the request stream cannot be trusted any more: never kept alive
  bool upstream_chunked_ = false;
  bool buffered_ = false;        // buffer_body(): the body goes upstream with Content-Length, de-chunked
  std::size_t head_fields_ = 0;  // buffer_body(): the head's own fields (trailers come after them)
  bool body_seen_ = false;       // a byte after the head arrived through feed_body
  bool body_done_ = false;
  bool body_failed_ = false;  // over the body limit
  bool continue_taken_ = false;
  std::uint64_t body_bytes_ = 0;
  std::string
      upgrade_token_;  // the protocol an upgrade request asks for (copied: hop-by-hop removal drops it)
  // Response side
  bool response_begun_ = false;
  bool close_client_ = false;
  bool client_keep_alive_ = true;
  bool head_sent_ = false;
  bool rechunk_ = false;
  bool response_complete_ = false;
  bool response_failed_ = false;
  bool upgraded_ = false;
  bool upstream_upgrade_ = false;  // the upstream head sent for this request asked for the upgrade
  bool error_page_ = false;        // the upstream head was an error-page GET (error_page_response)
  int interim_ = 0;
  int response_status_ = 0;
};

}  // namespace phigate::http
