#pragma once
// Private to upstream: the sans-I/O HTTP/2 client session of one connection to a gRPC backend
// (nghttp2 1.52 client session; no socket, no clock). The pool's reader feeds it what the backend
// sent (receive), its writer sends what it produces (produce); per-stream events are queued for the
// stream's call to pop. Hardened against a malicious backend: bounded response header lists and
// CONTINUATION runs (CVE-2024-27316), PUSH_PROMISE refused (we send ENABLE_PUSH 0: a push is a
// connection error, RFC 9113 §6.5.2), frames on streams we never opened (nghttp2: connection
// error), bounded RST_STREAM for unknown streams and control frames (SETTINGS/PING floods:
// nghttp2's max_outbound_ack and max_settings, plus a count), and a memory budget for everything
// nghttp2 allocates (nghttp2_mem). Receive windows are given back only when the caller consumed
// the bytes (no_auto_window_update + nghttp2_session_consume): a slow client slows the backend,
// memory stays bounded. Worker thread only.
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/http/headers.hpp"
#include "phigate/http/message.hpp"

namespace phigate::upstream::detail {

struct H2ClientLimits {
  std::size_t max_header_list_bytes = 64 * 1024;   // one response header block (name+value+32 each)
  std::size_t max_continuation_frames = 16;        // CONTINUATION frames in one header block
  std::size_t memory_bytes = 8u << 20;             // nghttp2's allocations on this connection
  std::uint32_t stream_window = 256 * 1024;        // per-stream receive window we advertise
  std::uint32_t connection_window = 1u << 20;      // connection receive window
  std::size_t max_unknown_resets = 100;            // RST_STREAM for streams not open (RST storm)
  std::size_t max_control_frames = 10000;          // SETTINGS/PING/PRIORITY/WINDOW_UPDATE(0) received
  std::size_t max_queued_events_bytes = 1u << 20;  // response bytes queued for one stream's caller
};

/// One response event of a stream, as queued for its caller.
struct H2StreamEvent {
  enum class Kind { Headers, Data, Trailers, End, Reset };
  Kind kind = Kind::Reset;
  int status = 0;
  http::HeaderList fields;
  std::string data;
  std::uint32_t error_code = 0;  // Reset: the RST_STREAM code (or INTERNAL_ERROR for our own limits)
  std::string reason;            // Reset: why, for logs (no PHI)
};

class H2ClientSession {
 public:
  explicit H2ClientSession(const H2ClientLimits& limits = {});
  ~H2ClientSession();
  H2ClientSession(const H2ClientSession&) = delete;
  H2ClientSession& operator=(const H2ClientSession&) = delete;

  /// The session was created (false: out of memory).
  bool ok() const noexcept { return session_ != nullptr; }

  /// Opens a stream carrying `head` (:method, :path = target, :scheme, :authority, then the
  /// regular fields, names lower-cased; connection-specific fields and Host dropped, te kept only
  /// as "trailers", RFC 9113 §8.2.2). `end_stream`: no body. Returns the stream id, or a negative
  /// nghttp2 error (no stream id left, GOAWAY received, session dead).
  std::int32_t submit(const http::MessageHead& head, std::string_view authority, std::string_view scheme,
                      bool end_stream);
  /// Queues request body bytes; `end` ends the request. False when the stream is gone.
  bool send_body(std::int32_t id, std::string_view bytes, bool end);
  /// Ends the request with trailers (after any queued body). False when the stream is gone.
  bool send_trailers(std::int32_t id, const http::HeaderList& trailers);
  /// Request body bytes queued and not yet framed for `id` (flow control or writer behind).
  std::size_t queued_body(std::int32_t id) const noexcept;

  /// Feeds bytes from the backend. False: the connection is dead (error() says why; a GOAWAY may
  /// be queued for produce()).
  bool receive(std::string_view bytes);
  /// Appends frames to send to `out` (at most `max` bytes at a time, roughly).
  void produce(std::string& out, std::size_t max = 64 * 1024);
  bool want_write() const noexcept;
  /// The session still reads or writes (nghttp2_session_want_read || want_write).
  bool alive() const noexcept;

  /// Next event of `id`; false when none is queued.
  bool pop(std::int32_t id, H2StreamEvent& e);
  /// Streams that got events (or closed) since the last call (cleared by it).
  std::vector<std::int32_t> take_touched();
  /// The caller forwarded `n` bytes of `id`'s Data: window back to the backend.
  void consume(std::int32_t id, std::size_t n);
  /// RST_STREAM `code` (CANCEL: deadline, client gone); queued events dropped.
  void cancel(std::int32_t id, std::uint32_t code = NGHTTP2_CANCEL);
  /// The caller is done with `id`: unconsumed bytes are given back, its state forgotten (the
  /// stream is reset with CANCEL if still open).
  void release(std::int32_t id);

  /// Streams open now (submitted and not closed) and the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
  std::size_t open_streams() const noexcept { return active_; }
  std::uint32_t peer_max_concurrent() const noexcept;
  /// The backend sent GOAWAY: no new streams (open ones at or below its last id may finish).
  bool goaway_received() const noexcept { return goaway_; }
  /// Graceful close: GOAWAY NO_ERROR, open streams finish.
  void shutdown();
  /// Why the connection failed (empty while healthy). No PHI: frame types and codes only.
  const std::string& error() const noexcept { return error_; }
  /// Bytes nghttp2 holds now (memory budget).
  std::size_t memory() const noexcept { return mem_used_; }

 private:
  struct Stream {
    std::deque<H2StreamEvent> events;
    std::size_t queued_bytes = 0;  // Data bytes in events
    std::string out;               // request body not yet framed
    std::size_t out_pos = 0;
    bool out_end = false;       // the request ends after `out`
    bool out_trailers = false;  // ...with `trailers`
    http::HeaderList trailers;
    bool deferred = false;    // the data provider returned DEFERRED
    bool got_final = false;   // a final (non-1xx) head arrived
    bool ended = false;       // End or Reset queued
    http::HeaderList fields;  // the header block being received
    int status = 0;
    std::size_t header_bytes = 0;
    std::size_t continuations = 0;
    bool header_too_large = false;
    std::size_t unconsumed = 0;  // Data received and not consumed yet
    bool closed = false;         // nghttp2 closed the stream
    bool released = false;       // the caller is done with it
  };

  static ssize_t read_body_cb(nghttp2_session*, std::int32_t, std::uint8_t*, std::size_t, std::uint32_t*,
                              nghttp2_data_source*, void*);
  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd*, void*);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const std::uint8_t*, std::size_t,
                       const std::uint8_t*, std::size_t, std::uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t, const std::uint8_t*, std::size_t,
                           void*);
  static int on_stream_close(nghttp2_session*, std::int32_t, std::uint32_t, void*);
  static void* mem_malloc(std::size_t, void*);
  static void mem_free(void*, void*);
  static void* mem_calloc(std::size_t, std::size_t, void*);
  static void* mem_realloc(void*, std::size_t, void*);

  Stream* find(std::int32_t id) noexcept;
  void push(std::int32_t id, Stream& s, H2StreamEvent e);
  void fail_stream(std::int32_t id, Stream& s, std::uint32_t code, std::string reason);
  void fail(std::string why);

  H2ClientLimits limits_;
  nghttp2_mem mem_{};
  std::size_t mem_used_ = 0;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, Stream> streams_;
  std::vector<std::int32_t> touched_;
  std::size_t active_ = 0;  // streams submitted and not closed by nghttp2
  std::size_t unknown_resets_ = 0;
  std::size_t control_frames_ = 0;
  bool goaway_ = false;
  std::string error_;
};

}  // namespace phigate::upstream::detail
