#pragma once
// Sans-I/O HTTP/2 server codec (RFC 9113) over nghttp2's session API: one client connection's
// frames in, streams' requests and body bytes out as events; responses, data and trailers in,
// frames to write out. No sockets, no Asio, no clock reads (the caller passes its coarse clock),
// no metrics, no logs. It is the HTTP/2 counterpart of Http1Exchange: a stream's request becomes
// the same MessageHead, so the proxy runs the same phases and upstream layer on it.
//
// Protocol rules held here, before a request is ever reported:
//  - nghttp2's HTTP messaging checks (RFC 9113 §8.2, §8.3): pseudo-headers present, once, before
//    regular fields, valid; no connection-specific fields (Connection, Keep-Alive,
//    Proxy-Connection, Transfer-Encoding, Upgrade); `te` only "trailers"; content-length equal
//    to the DATA received; names lower-case; no CR, LF or NUL in names or values. A malformed
//    request is a stream error (RST_STREAM PROTOCOL_ERROR) reported as Event::Rejected.
//  - Ours: :authority and a `host` field must agree (else Rejected, "host_mismatch"); plain
//    CONNECT refused (400); extended CONNECT (RFC 8441, `:protocol`) only when offered
//    (H2Options::connect_protocol(): SETTINGS_ENABLE_CONNECT_PROTOCOL=1 announced) and only for
//    `websocket` listed in `upgrades`, with :scheme, :path and :authority and no content-length
//    (else 400); header list bounded by
//    Http2Spec::max_header_list_bytes and LimitsSpec::header_count (stream refused with 431 semantics:
//    Rejected "headers_too_large"); CONTINUATION frames per block bounded (connection error).
//  - Budgets (token buckets, Http2Spec): client resets and failed streams (rapid reset), control
//    frames (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty DATA without END_STREAM); an empty
//    bucket ends the connection with GOAWAY ENHANCE_YOUR_CALM. All nghttp2 allocations are counted
//    against connection_memory_bytes (nghttp2_mem); over it, GOAWAY.
//
// Flow control is manual: a stream's body bytes stay counted against its window until the caller
// has forwarded them and calls consume(), so one slow upstream cannot make the codec buffer more
// than initial_window_bytes per stream.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/http/message.hpp"

namespace phigate::http {

using H2Clock = std::chrono::steady_clock;

/// What the codec needs to know from the configuration (copied at construction).
struct H2Options {
  config::Http2Spec http2;
  std::size_t header_count = 100;  // LimitsSpec::header_count
  /// UpstreamSpec::upgrades: the protocols an extended CONNECT may name (compared without case;
  /// only `websocket` is ever accepted, RFC 8441).
  std::vector<std::string> upgrades{"websocket"};

  /// RFC 8441 is offered: http2.websocket, max_websockets_per_connection > 0, websocket listed.
  bool connect_protocol() const noexcept;
};

/// One stream's request as the client sent it.
struct H2Request {
  std::int32_t id = 0;
  /// method (:method), target (:path), version 2.0, headers: the regular fields in order with a
  /// `host` field first (from :authority when the client sent no host field), content_length from
  /// content-length; chunked always false; keep_alive true. The codec no longer reads it once
  /// Request was reported: the caller may move it out (the proxy does, instead of copying).
  MessageHead head;
  std::string scheme;            // :scheme
  std::string body;              // received body bytes not yet taken by the caller (take_body)
  HeaderList trailers;           // request trailers (after End)
  std::uint64_t body_bytes = 0;  // received so far
  bool head_complete = false;
  bool end_stream = false;  // the client's request is complete
  /// Extended CONNECT (RFC 8441): the `:protocol` accepted ("websocket"), else empty. Then
  /// head.method is "CONNECT", head.target the :path, and the stream's DATA is the tunnel's bytes.
  std::string protocol{};
};

/// Something the caller must act on, in the order it happened.
struct H2Event {
  enum class Kind {
    Request,   // request(stream).head is complete and valid (the caller may move it out): run the phases
    Data,      // body bytes arrived for `stream` (request(stream).body)
    End,       // the request is complete (trailers, if any, in request(stream).trailers)
    Rejected,  // the codec refused the request (RST_STREAM or 4xx sent already); `reason` says why
    Reset,     // the stream closed before its response completed (client RST_STREAM or GOAWAY)
    Writable,  // queued response bytes for `stream` fell below the low-water mark: send more
    Closed,    // the stream is fully closed (response sent): forget it (request(stream) is gone)
  };
  Kind kind;
  std::int32_t stream = 0;
  std::uint32_t error_code = 0;  // Reset/Rejected: the HTTP/2 error code
  std::string_view reason;       // Rejected: a core::Error reason-like word, never PHI
  int status = 0;  // Rejected: the status of the response the codec sent (431), 0 for RST_STREAM
};

class H2ServerSession {
 public:
  /// Queues our SETTINGS (max_concurrent_streams, initial window, header table, max frame size,
  /// max header list size, ENABLE_PUSH 0, ENABLE_CONNECT_PROTOCOL 1 when connect_protocol()) and
  /// the connection window update.
  explicit H2ServerSession(const H2Options& options);
  ~H2ServerSession();
  H2ServerSession(const H2ServerSession&) = delete;
  H2ServerSession& operator=(const H2ServerSession&) = delete;

  enum class Status { Ok, Closed };
  /// Feeds client bytes (the connection preface first). Closed: a connection error; GOAWAY is
  /// queued (take_output, then close). `now` drives the budgets' refill.
  Status feed(const char* data, std::size_t len, H2Clock::time_point now);
  /// Events since the last call, in order; the vector is cleared by the next feed or take_output.
  std::vector<H2Event>& events() noexcept { return events_; }

  /// The stream's state; null once Closed was reported (or for an unknown id). "Reported": the
  /// batch of events holding Closed was cleared (next feed/take_output), so a caller walking one
  /// batch in order still finds the request of a Request or Data that Closed follows.
  H2Request* request(std::int32_t stream) noexcept;
  /// Moves the received body bytes out (appending to `out`); they still count against the
  /// stream's window until consume().
  void take_body(std::int32_t stream, std::string& out);
  /// The caller forwarded `n` body bytes of `stream`: give the client that much window back.
  void consume(std::int32_t stream, std::size_t n);

  /// Submits the response head: `status`, then `headers` (names lower-cased here; hop-by-hop and
  /// connection-specific fields dropped). `end_stream`: no body follows.
  void submit_response(std::int32_t stream, int status, const HeaderList& headers, bool end_stream);
  /// Gives back a head moved out of request(): a later stream's head is decoded into its strings,
  /// so a connection at 100 streams does not allocate every field of every request anew. Kept
  /// only while small (kSpareHeadBytes) and up to max_concurrent_streams of them, counted in
  /// memory(); drop_spare_heads() frees them (an idle connection). `storage`: head_storage(head),
  /// when the caller took it while the head was last in cache (0: walked here, when the head is
  /// usually cold again: one cache line per field; debug builds check the caller's figure).
  void recycle(MessageHead&& head, std::size_t storage = 0);
  /// The bytes a head holds (its strings' capacities and its field vector's), as recycle counts them.
  static std::size_t head_storage(const MessageHead& h) noexcept;
  void drop_spare_heads() noexcept;
  static constexpr std::size_t kSpareHeadBytes = 4096;
  /// The same from references (nghttp2 copies what it keeps before this returns). The first
  /// `vetted` fields are taken as they are: the caller guarantees lower-case token names, values
  /// nghttp2_check_header_value_rfc9113 accepts, and no pseudo-header or connection-specific field
  /// (H1ResponseReader::h2_fields' output; debug builds check it). The rest are cleaned as above.
  void submit_response_refs(std::int32_t stream, int status, const std::vector<FieldRef>& headers,
                            bool end_stream, std::size_t vetted = 0);
  /// Queues response body bytes (sent as the client's flow-control windows allow).
  void send_data(std::int32_t stream, std::string_view bytes);
  /// Ends the response body; with trailers when `trailers` is not null and not empty.
  void end_response(std::int32_t stream, const HeaderList* trailers);
  /// Bytes queued for `stream` not yet framed (backpressure: wait for Writable when high).
  std::size_t queued(std::int32_t stream) const noexcept;
  /// queued(), also for a stream that closed in this batch of events (reset by the client or by
  /// the codec): what it still had queued when it closed, i.e. response bytes that never left.
  std::size_t queued_at_close(std::int32_t stream) const noexcept;
  /// Response body bytes framed so far, all streams together: a change means some stream's bytes
  /// went towards the client (the connection's write progress, without a look at every stream).
  std::uint64_t data_taken() const noexcept;
  static constexpr std::size_t kLowWater = 16 * 1024;
  static constexpr std::size_t kHighWater = 64 * 1024;
  /// This connection's high-water mark: min(kHighWater, connection_memory_bytes / (2 x
  /// max_concurrent_streams)), at least 16 KiB, so every stream's queue at its mark together stays
  /// within half the memory budget. Writable comes (after queued() fell below kLowWater) for a
  /// stream that went above either mark.
  std::size_t high_water() const noexcept;
  /// Resets the stream (RST_STREAM `error_code`, e.g. INTERNAL_ERROR after an upstream failure
  /// mid-response, CANCEL).
  void reset(std::int32_t stream, std::uint32_t error_code);
  /// Graceful shutdown: GOAWAY with the last stream id seen; open streams finish, new ones are
  /// refused.
  void shutdown(std::uint32_t error_code = 0);

  /// Frames to send: appends to `out` (at most `max` bytes beyond its current size, framing
  /// whole frames when possible).
  void take_output(std::string& out, std::size_t max);
  bool want_write() const noexcept;
  /// Neither side wants anything more (GOAWAY exchanged and streams done, or a connection error
  /// whose GOAWAY has been taken): close the connection.
  bool finished() const noexcept;
  /// Streams open now.
  std::size_t open_streams() const noexcept;
  /// nghttp2 plus the codec's buffers, in bytes (counted against connection_memory_bytes).
  std::size_t memory() const noexcept;
  /// Why the connection ended, when it did: "" or e.g. "rapid_reset", "control_flood",
  /// "continuation_flood", "memory", "protocol_error".
  std::string_view close_reason() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<H2Event> events_;
};

/// HTTP/2 error codes (RFC 9113 §7) the proxy uses.
inline constexpr std::uint32_t kH2NoError = 0x0;
inline constexpr std::uint32_t kH2ProtocolError = 0x1;
inline constexpr std::uint32_t kH2InternalError = 0x2;
inline constexpr std::uint32_t kH2RefusedStream = 0x7;
inline constexpr std::uint32_t kH2Cancel = 0x8;
inline constexpr std::uint32_t kH2ConnectError = 0xa;  // RFC 9113 §8.5: the tunnel's TCP connection failed
inline constexpr std::uint32_t kH2EnhanceYourCalm = 0xb;

}  // namespace phigate::http
