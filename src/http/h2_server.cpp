// HTTP/2 server codec over nghttp2's session API (RFC 9113). nghttp2 does all framing, HPACK,
// stream states and the HTTP messaging checks of §8; this file adds our own rules (host agreement,
// no plain CONNECT, extended CONNECT for WebSocket only, header list bounds), the per-connection budgets
// against the HTTP/2 attacks and the mapping to H2Events. Sans-I/O: bytes in (feed), bytes out (take_output).
#include "phigate/http/h2_server.hpp"

#include <nghttp2/nghttp2.h>

#include "phigate/core/assert.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>

namespace phigate::http {
namespace {

/// Token bucket over the caller's clock (the codec never reads a clock itself).
class TokenBucket {
 public:
  TokenBucket(std::uint32_t capacity, std::uint32_t per_second)
      : tokens_(capacity), capacity_(capacity), rate_(per_second) {}
  bool take(H2Clock::time_point now) {
    if (started_ && now > last_) {
      const double secs = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(static_cast<double>(capacity_), tokens_ + secs * rate_);
    }
    if (!started_ || now > last_) last_ = now;
    started_ = true;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double tokens_;
  std::uint32_t capacity_;
  std::uint32_t rate_;
  H2Clock::time_point last_{};
  bool started_ = false;
};

// RFC 9113 §8.2.2: connection-specific fields never appear in an HTTP/2 message.
bool connection_specific(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
         lower_name == "transfer-encoding" || lower_name == "upgrade" || lower_name == "te";
}

/// A value without leading or trailing SP/HTAB: RFC 9113 §8.2.1 forbids them in HTTP/2, and a
/// strict client resets a response that carries one; HTTP/1.1 never counts them as part of a value
/// (RFC 9110 §5.5), so a field phigate relays or adds loses them, not its place.
std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Per-field overhead of a header list size (RFC 9113 §6.5.2, SETTINGS_MAX_HEADER_LIST_SIZE).
constexpr std::size_t kFieldOverhead = 32;
// Allocations nghttp2 may still make past the budget (to queue the GOAWAY that ends the
// connection once memory() is over it); past this, allocations fail.
constexpr std::size_t kMemorySlack = 256 * 1024;
constexpr std::size_t kAllocHeader = alignof(std::max_align_t);
// WINDOW_UPDATEs owed for DATA frames sent, at most (a client that saves them up gains little).
constexpr std::uint32_t kMaxUpdateCredit = 64;
// A header block decoding to more than this many times max_header_list_bytes is
// an HPACK amplification attack, not an oversized request: the connection ends.
constexpr std::size_t kAmplification = 4;
// high_water(): never below this, so a stream still moves a frame's worth per wake-up.
constexpr std::size_t kMinHighWater = 16 * 1024;

}  // namespace

struct H2ServerSession::Impl {
  struct Stream {
    H2Request req;
    std::string authority;
    std::string host;              // the first client `host` field
    std::size_t header_bytes = 0;  // all decoded fields kept (memory)
    std::size_t reused_bytes = 0;  // storage of the recycled head it decodes into (memory)
    std::size_t block_bytes = 0;   // this header block (request head, then trailers): the limits
    std::size_t block_count = 0;
    std::size_t unconsumed = 0;  // body bytes counted against the windows, not yet consume()d
    std::string out;             // queued response body bytes [out_off, size)
    std::size_t out_off = 0;
    HeaderList trailers_out;
    bool has_authority = false;
    bool host_conflict = false;  // several `host` fields that differ
    int host_count = 0;
    bool has_protocol = false;
    std::string protocol;  // :protocol (extended CONNECT)
    bool too_large = false;
    bool reported = false;  // Request or Rejected emitted: the caller knows the stream
    bool rejected = false;
    bool remote_closed = false;
    bool response_started = false;
    bool response_done = false;       // our END_STREAM went out
    bool local_reset = false;         // reset() by the caller (or our RST NO_ERROR after a full response)
    bool charged = false;             // already drawn on the reset budget (client RST, refused by nghttp2)
    std::uint32_t update_credit = 0;  // DATA frames sent here not yet answered by a WINDOW_UPDATE
    bool data_eof = false;
    bool deferred = false;
    bool above_high = false;
    bool refused = false;  // opened after our GOAWAY was submitted: RST REFUSED_STREAM, never served
    std::size_t queued() const noexcept { return out.size() - out_off; }
  };

  Impl(const H2Options& o, std::vector<H2Event>& ev)
      : opts(o),
        events(ev),
        resets(o.http2.reset_budget, o.http2.reset_refill),
        control(o.http2.control_budget, o.http2.control_refill) {}

  ~Impl() {
    if (session != nullptr) nghttp2_session_del(session);
  }

  H2Options opts;
  std::vector<H2Event>& events;
  nghttp2_session* session = nullptr;
  nghttp2_mem mem{};
  std::size_t alloc_bytes = 0;
  // footprint() of every stream in `streams` and `closing`, kept as a running total: memory() is
  // checked per frame, and a walk over 100 streams per frame was O(streams) per request.
  std::size_t stream_bytes = 0;
  std::map<std::int32_t, Stream> streams;
  std::int32_t found_id = 0;  // find()'s last hit in `streams`
  Stream* found = nullptr;
  // Streams whose Closed is in the current batch of events: request() and take_body() still see
  // them until the next feed/take_output, so a caller walking the batch in order never finds a
  // Request (or Data) whose state is gone because Closed follows in the same batch.
  std::map<std::int32_t, Stream> closing;
  TokenBucket resets;
  TokenBucket control;
  H2Clock::time_point now{};
  std::size_t continuations = 0;
  std::uint32_t update_credit = 0;  // connection level: DATA frames sent, not yet answered by an update
  std::string pending;              // bytes nghttp2 framed that did not fit the caller's `max`
  std::size_t pending_off = 0;
  std::uint64_t data_taken = 0;  // DATA payload bytes framed (read_data), all streams
  std::string_view close_reason;
  // submit_response()'s nv array and name bytes, reused (nghttp2 copies them): no allocation per
  // response once they have grown to the usual header set.
  std::vector<nghttp2_nv> scratch_nva;
  std::string scratch_names;  // submit_response(): the lower-cased names the nv entries point into
  std::string scratch_name;   // clean_fields()
  struct Spare {
    MessageHead head;   // cleared; its strings keep their capacity
    std::size_t bytes;  // its head_storage(), counted in spare_bytes
  };
  std::vector<Spare> spare_heads;  // recycle()
  std::size_t spare_bytes = 0;     // their storage, counted in memory()
  bool failed = false;             // connection error: GOAWAY queued, nothing more is read
  bool shutdown = false;           // our graceful GOAWAY
  std::int32_t goaway_last = 0;    // shutdown(): the last stream id the GOAWAY names

  // --- memory accounting (nghttp2_mem): each block carries its size in a header
  void* alloc(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() - kAllocHeader ||
        alloc_bytes + n > opts.http2.connection_memory_bytes + kMemorySlack) {
      return nullptr;
    }
    auto* base = static_cast<unsigned char*>(std::malloc(n + kAllocHeader));
    if (base == nullptr) return nullptr;
    std::memcpy(base, &n, sizeof n);
    alloc_bytes += n;
    return base + kAllocHeader;
  }
  void release(void* p) {
    if (p == nullptr) return;
    auto* base = static_cast<unsigned char*>(p) - kAllocHeader;
    std::size_t n;
    std::memcpy(&n, base, sizeof n);
    alloc_bytes -= n;
    std::free(base);
  }
  void* resize(void* p, std::size_t n) {
    if (p == nullptr) return alloc(n);
    if (n == 0) {
      release(p);
      return nullptr;
    }
    auto* base = static_cast<unsigned char*>(p) - kAllocHeader;
    std::size_t old;
    std::memcpy(&old, base, sizeof old);
    if (n > std::numeric_limits<std::size_t>::max() - kAllocHeader ||
        alloc_bytes - old + n > opts.http2.connection_memory_bytes + kMemorySlack) {
      return nullptr;
    }
    auto* nb = static_cast<unsigned char*>(std::realloc(base, n + kAllocHeader));
    if (nb == nullptr) return nullptr;
    std::memcpy(nb, &n, sizeof n);
    alloc_bytes = alloc_bytes - old + n;
    return nb + kAllocHeader;
  }

  static std::size_t footprint(const Stream& s) noexcept {
    return sizeof(Stream) + s.header_bytes + s.reused_bytes + s.req.body.capacity() + s.out.capacity() +
           s.trailers_out.storage_bytes();
  }
  /// Every change of a stream's footprint goes through here (unsigned wrap-around is exact).
  void account(std::size_t before, const Stream& s) noexcept { stream_bytes += footprint(s) - before; }
  /// The walk stream_bytes replaces: debug builds check that the running total matches it.
  std::size_t walked_stream_bytes() const noexcept {
    std::size_t total = 0;
    for (const auto* m : {&streams, &closing}) {
      for (const auto& [id, s] : *m) total += footprint(s);
    }
    return total;
  }
  /// Forgets the streams whose Closed was in the previous batch.
  void clear_closing() noexcept {
    for (const auto& [id, s] : closing) stream_bytes -= footprint(s);
    closing.clear();
  }

  std::size_t memory() const noexcept {
    PHI_ASSERT(stream_bytes == walked_stream_bytes());
    return alloc_bytes + pending.capacity() + stream_bytes + spare_bytes;
  }

  Stream* find(std::int32_t id) {
    // A request's frames and the calls about it come one after another: the last hit is
    // remembered (the map's nodes stay put; forget_found() when a stream leaves `streams`).
    if (id == found_id) {
      PHI_ASSERT(found == nullptr ||
                 (streams.find(id) != streams.end() && &streams.find(id)->second == found));
      return found;
    }
    const auto it = streams.find(id);
    if (it == streams.end()) return nullptr;
    found_id = id;
    found = &it->second;
    return found;
  }
  void forget_found() noexcept {
    found_id = 0;  // no stream has id 0: find(0) stays nullptr
    found = nullptr;
  }

  void emit(H2Event::Kind k, std::int32_t id, std::uint32_t code = 0, std::string_view reason = {},
            int status = 0) {
    events.push_back(H2Event{k, id, code, reason, status});
  }

  /// A connection error of ours: GOAWAY (queued for take_output), nothing more is read.
  int fail(std::string_view reason, std::uint32_t code = kH2EnhanceYourCalm) {
    if (close_reason.empty()) close_reason = reason;
    if (!failed) {
      failed = true;
      nghttp2_session_terminate_session(session, code);
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  bool over_memory() const noexcept { return memory() > opts.http2.connection_memory_bytes; }
  /// over_memory(), after giving up the recycled heads first: they are a cache, never the reason
  /// a connection ends (review finding F3).
  bool out_of_memory() noexcept {
    if (!over_memory()) return false;
    if (spare_bytes != 0) {
      spare_heads = std::vector<Spare>{};
      spare_bytes = 0;
    }
    return over_memory();
  }
  std::size_t high_water() const noexcept {
    const std::size_t streams_max = std::max<std::size_t>(1, opts.http2.max_concurrent_streams);
    const std::size_t share = opts.http2.connection_memory_bytes / (2 * streams_max);
    return std::max(kMinHighWater, std::min(kHighWater, share));
  }

  /// After a connection error the open streams never close through nghttp2: the caller learns
  /// of each (Reset, then Closed) here, exactly once.
  void sweep(std::uint32_t code) {
    for (auto& [id, s] : streams) {
      if (!s.reported) continue;
      if (!s.rejected && !s.response_done && !s.local_reset) emit(H2Event::Kind::Reset, id, code);
      emit(H2Event::Kind::Closed, id);
    }
    closing.merge(streams);
    for (const auto& [id, s] : streams) stream_bytes -= footprint(s);  // none: stream ids are unique
    streams.clear();
    forget_found();
  }

  /// A stream the codec refuses counts against the rapid-reset budget like a client reset: a
  /// client can make the server do the same work by sending requests it knows we refuse.
  bool charge_reset() {
    if (resets.take(now)) return true;
    fail("rapid_reset");
    return false;
  }

  int reject_status(std::int32_t id, Stream& s, int status, std::string_view reason) {
    s.reported = s.rejected = s.response_started = s.data_eof = true;
    s.req.head.headers.clear();
    const std::string code = std::to_string(status);
    nghttp2_nv nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(":status")),
                  reinterpret_cast<std::uint8_t*>(const_cast<char*>(code.data())), 7, code.size(),
                  NGHTTP2_NV_FLAG_NONE};
    nghttp2_submit_response(session, id, &nv, 1, nullptr);
    emit(H2Event::Kind::Rejected, id, 0, reason, status);
    return charge_reset() ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  int reject_rst(std::int32_t id, Stream& s, std::uint32_t code, std::string_view reason) {
    s.reported = s.rejected = s.local_reset = true;
    s.req.head.headers.clear();
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, code);
    emit(H2Event::Kind::Rejected, id, code, reason, 0);
    return charge_reset() ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
  }

  /// The request's header block is complete and passed nghttp2's checks: ours, then Request.
  int finish_head(std::int32_t id, Stream& s) {
    auto& h = s.req.head;
    h.version_major = 2;
    h.version_minor = 0;
    h.chunked = false;
    h.keep_alive = true;
    if (s.too_large) return reject_status(id, s, 431, "headers_too_large");
    if (s.has_protocol) {
      // Extended CONNECT (RFC 8441). nghttp2 admits :protocol only once we announced
      // SETTINGS_ENABLE_CONNECT_PROTOCOL (else the stream was malformed before this), and only
      // with CONNECT and :authority; checked again here, with :scheme and :path (§4).
      if (!opts.connect_protocol()) return reject_rst(id, s, kH2ProtocolError, "extended_connect");
      if (h.method != "CONNECT" || s.req.scheme.empty() || h.target.empty() || !s.has_authority)
        return reject_status(id, s, 400, "extended_connect_malformed");
      // Only WebSocket is translated (to an HTTP/1.1 upgrade), and only when the operator allows it.
      bool listed = false;
      for (const auto& u : opts.upgrades) listed = listed || iequals(u, "websocket");
      if (!listed || !iequals(s.protocol, "websocket"))
        return reject_status(id, s, 400, "extended_connect_protocol");
      // A tunnel's DATA is the new protocol's bytes, not a message body of a declared length.
      if (h.headers.find("content-length") != nullptr)
        return reject_status(id, s, 400, "extended_connect_body");
      s.req.protocol = "websocket";
    } else if (h.method == "CONNECT") {
      // No plain CONNECT tunnels, as for HTTP/1 (the proxy forwards requests, never raw bytes).
      return reject_status(id, s, 400, "connect_refused");
    }
    // RFC 9113 §8.3.1: :authority and Host must not disagree; we require that they are equal so
    // routing and the upstream see one name (no Host confusion between hops).
    if (s.host_conflict) return reject_status(id, s, 400, "host_mismatch");
    if (s.has_authority) {
      if (s.host_count > 0 && !iequals(s.host, s.authority))
        return reject_status(id, s, 400, "host_mismatch");
    } else if (s.host_count > 0) {
      s.authority = s.host;
    } else {
      return reject_status(id, s, 400, "missing_host");
    }
    h.headers.add_front("host", s.authority);
    if (const auto* cl = h.headers.find("content-length")) {
      std::uint64_t v = 0;
      const auto r = std::from_chars(cl->data(), cl->data() + cl->size(), v);
      if (r.ec != std::errc{} || r.ptr != cl->data() + cl->size() || h.headers.count("content-length") != 1) {
        return reject_status(id, s, 400, "bad_content_length");
      }
      h.content_length = v;
    }
    s.req.head_complete = true;
    s.reported = true;
    emit(H2Event::Kind::Request, id);
    return 0;
  }

  // --- nghttp2 callbacks
  int on_begin_frame(const nghttp2_frame_hd& hd) {
    if (failed) return NGHTTP2_ERR_CALLBACK_FAILURE;
    bool control_frame = false;
    switch (hd.type) {
      case NGHTTP2_HEADERS:
        continuations = 0;
        if (Stream* s = find(hd.stream_id)) s->block_bytes = s->block_count = 0;  // trailers: a new list
        break;
      case NGHTTP2_CONTINUATION:
        // CVE-2024-27316: endless CONTINUATION frames make a server decode (and hold) an unbounded
        // header block before any request exists.
        if (++continuations > opts.http2.max_continuation_frames) return fail("continuation_flood");
        break;
      case NGHTTP2_SETTINGS:
      case NGHTTP2_PING:
      case NGHTTP2_PRIORITY:
        control_frame = true;
        break;
      case NGHTTP2_WINDOW_UPDATE: {
        // A client reading a long response returns window all along (with 64 KiB windows, an
        // update per 32 KiB it reads); one update per DATA frame we sent is free, only updates
        // that answer no DATA of ours are a flood.
        std::uint32_t* credit = &update_credit;
        if (hd.stream_id != 0) {
          Stream* s = find(hd.stream_id);
          credit = s != nullptr ? &s->update_credit : nullptr;
        }
        control_frame = credit == nullptr || *credit == 0;
        if (!control_frame) --*credit;
        break;
      }
      case NGHTTP2_DATA:
        // Empty DATA without END_STREAM does nothing but cost us work (CVE-2019-9518). A padded
        // frame with no data is charged in on_frame_recv (its pad length is not known yet).
        control_frame = hd.length == 0 && (hd.flags & NGHTTP2_FLAG_END_STREAM) == 0;
        break;
      case NGHTTP2_RST_STREAM:
        if (Stream* s = find(hd.stream_id)) {
          // CVE-2023-44487 rapid reset: open streams (END_STREAM or not) and cancel them at once.
          s->charged = true;
          if (!resets.take(now)) return fail("rapid_reset");
        } else {
          control_frame = true;  // RST for a stream that is not open: nothing to cancel
        }
        break;
      default:
        // Extension and unknown frame types (RFC 9113 §5.5: ignored, but read and parsed all the
        // same: PRIORITY_UPDATE, ALTSVC, ORIGIN, GREASE); they reach here only because they are
        // registered as user extension types (else nghttp2 skips them without a callback).
        control_frame = hd.type > NGHTTP2_CONTINUATION;
        break;
    }
    if (control_frame && !control.take(now)) return fail("control_flood");
    if (out_of_memory()) return fail("memory");
    return 0;
  }

  int on_begin_headers(const nghttp2_frame& f) {
    if (f.hd.type != NGHTTP2_HEADERS || f.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    const auto [it, added] = streams.try_emplace(f.hd.stream_id);
    Stream& s = it->second;
    if (added && !spare_heads.empty()) {
      s.req.head = std::move(spare_heads.back().head);
      s.reused_bytes = spare_heads.back().bytes;  // now the stream's (footprint)
      spare_heads.pop_back();
      spare_bytes -= s.reused_bytes;
    }
    if (added) stream_bytes += footprint(s);
    s.req.id = f.hd.stream_id;
    // RFC 9113 §6.8: nghttp2 still opens streams between our GOAWAY's submission and its write,
    // but the GOAWAY already told the client they were not processed (it retries them, even a
    // POST): never serve one.
    s.refused = shutdown && f.hd.stream_id > goaway_last;
    return 0;
  }

  int on_header(const nghttp2_frame& f, std::string_view name, std::string_view value) {
    if (f.hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = find(f.hd.stream_id);
    if (s == nullptr) return 0;
    const bool trailer = f.headers.cat != NGHTTP2_HCAT_REQUEST;
    if (s->refused || (trailer && (!s->reported || s->rejected))) return 0;
    s->block_bytes += name.size() + value.size() + kFieldOverhead;
    if (name.empty() || name[0] != ':') ++s->block_count;
    // HPACK amplification: a field in the dynamic table referenced by 1-byte indices decodes to
    // kilobytes each; a few frames of them are hundreds of megabytes to decode and check. Past a
    // modest excess (still a 431), the block is an attack: end the connection before decoding on.
    const std::size_t limit = opts.http2.max_header_list_bytes;
    // (The field count needs no bound of its own: each field costs kFieldOverhead bytes here.)
    if (s->block_bytes / kAmplification > limit) return fail("continuation_flood");
    if (s->block_bytes > limit || s->block_count > opts.header_count) {
      // Keep decoding (the HPACK state must follow the block) but keep nothing.
      if (!s->too_large) {
        s->too_large = true;
        s->req.head.headers.clear();
        s->req.trailers.clear();
      }
      return 0;
    }
    if (s->too_large) return 0;
    // Memory is checked once per frame (on_begin_frame): a block is bounded by 4 x
    // max_header_list_bytes, a frame by its size.
    s->header_bytes += name.size() + value.size() + kFieldOverhead;
    stream_bytes += name.size() + value.size() + kFieldOverhead;
    if (trailer) {
      s->req.trailers.add(name, value);
      return 0;
    }
    auto& h = s->req.head;
    if (name == ":method") {
      h.method.assign(value);
    } else if (name == ":path") {
      h.target.assign(value);
    } else if (name == ":scheme") {
      s->req.scheme.assign(value);
    } else if (name == ":authority") {
      s->authority.assign(value);
      s->has_authority = true;
    } else if (name == ":protocol") {
      s->has_protocol = true;
      s->protocol.assign(value);
    } else if (name == "host") {
      if (s->host_count++ == 0) {
        s->host.assign(value);
      } else if (!iequals(s->host, value)) {
        s->host_conflict = true;
      }
    } else {
      h.headers.add(name, value);
    }
    return 0;
  }

  int on_frame_recv(const nghttp2_frame& f) {
    const std::int32_t id = f.hd.stream_id;
    // DATA that is all padding carries nothing but costs a frame (and nghttp2 gives the padding's
    // window back by itself): the empty-DATA flood of CVE-2019-9518 with a pad byte.
    if (f.hd.type == NGHTTP2_DATA && f.hd.length > 0 && f.hd.length <= f.data.padlen &&
        (f.hd.flags & NGHTTP2_FLAG_END_STREAM) == 0 && !control.take(now)) {
      return fail("control_flood");
    }
    Stream* s = id != 0 ? find(id) : nullptr;
    if (s == nullptr) return 0;
    const bool end = (f.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f.hd.type == NGHTTP2_HEADERS) {
      if (end) s->remote_closed = true;
      if (s->refused) {
        // Not reported, not charged (the client did nothing wrong): its id is above our GOAWAY.
        if (f.headers.cat == NGHTTP2_HCAT_REQUEST) {
          s->local_reset = true;
          nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, kH2RefusedStream);
        }
        return 0;
      }
      if (f.headers.cat == NGHTTP2_HCAT_REQUEST) {
        const int rv = finish_head(id, *s);
        if (rv != 0) return rv;
      } else if (s->reported && !s->rejected && s->too_large) {
        s->req.trailers.clear();
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, kH2ProtocolError);
        return charge_reset() ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    } else if (f.hd.type == NGHTTP2_DATA) {
      if (end) s->remote_closed = true;
    } else {
      return 0;
    }
    if (end && s->reported && !s->rejected) {
      s->req.end_stream = true;
      emit(H2Event::Kind::End, id);
    }
    return 0;
  }

  int on_data_chunk(std::int32_t id, const std::uint8_t* data, std::size_t len) {
    Stream* s = find(id);
    if (s == nullptr || !s->reported || s->rejected) {
      // Nobody will read these bytes: give the window back now.
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    const std::size_t before = footprint(*s);
    s->req.body.append(reinterpret_cast<const char*>(data), len);
    account(before, *s);
    s->req.body_bytes += len;
    s->unconsumed += len;
    if (events.empty() || events.back().kind != H2Event::Kind::Data || events.back().stream != id) {
      emit(H2Event::Kind::Data, id);
    }
    return 0;  // memory: checked per frame (on_begin_frame); body bytes are bounded by the window
  }

  int on_stream_close(std::int32_t id, std::uint32_t code) {
    const auto it = streams.find(id);
    if (it == streams.end()) return 0;
    Stream& s = it->second;
    if (s.unconsumed > 0) nghttp2_session_consume_connection(session, s.unconsumed);
    if (s.reported) {
      if (!s.rejected && !s.response_done && !s.local_reset) emit(H2Event::Kind::Reset, id, code);
      emit(H2Event::Kind::Closed, id);
    } else if (s.refused) {
      // Never reported: nothing for the caller to forget.
    } else if (code != NGHTTP2_NO_ERROR) {
      // nghttp2 refused the request head (RFC 9113 §8.1.1 malformed: stream error).
      emit(H2Event::Kind::Rejected, id, code, "protocol_error", 0);
      emit(H2Event::Kind::Closed, id);
    }
    // Any other reset the client provoked without sending RST_STREAM (nghttp2 resets some streams
    // without telling on_invalid_frame_recv, e.g. DATA beyond content-length) costs a token too.
    const bool provoked =
        code != NGHTTP2_NO_ERROR && !s.charged && !s.local_reset && !s.refused && !shutdown && !failed;
    if (it->first == found_id) forget_found();
    closing.insert(streams.extract(it));
    if (provoked && !resets.take(now)) {
      // Inside nghttp2's send or receive loop: end the session without failing the callback.
      close_reason = "rapid_reset";
      failed = true;
      nghttp2_session_terminate_session(session, kH2EnhanceYourCalm);
      sweep(kH2EnhanceYourCalm);
    }
    return 0;
  }

  /// nghttp2 found a connection error itself and queued its GOAWAY: nothing more is read.
  void nghttp2_failed() {
    if (failed) return;
    failed = true;
    if (close_reason.empty()) close_reason = "protocol_error";
  }

  int on_invalid_frame(const nghttp2_frame& f, int lib_error) {
    // An invalid frame on stream 0 is always a connection error (nghttp2 terminates the session
    // right after this callback, with its own error code).
    if (f.hd.stream_id == 0) {
      nghttp2_failed();
      return 0;
    }
    // A stream nghttp2 refused or reset (malformed request, over the concurrency limit,
    // content-length mismatch, WINDOW_UPDATE 0 or a flow-control violation on a stream): the
    // client made us reset it, which costs what a client reset costs ("MadeYouReset",
    // CVE-2025-8671, the server-side twin of rapid reset).
    if (failed) return 0;
    (void)lib_error;
    if (Stream* s = find(f.hd.stream_id)) s->charged = true;
    if (!resets.take(now)) return fail("rapid_reset");
    return 0;
  }

  int on_frame_send(const nghttp2_frame& f) {
    if (f.hd.type == NGHTTP2_DATA && f.hd.length > 0) {
      update_credit = std::min<std::uint32_t>(update_credit + 1, kMaxUpdateCredit);
      if (Stream* s = find(f.hd.stream_id))
        s->update_credit = std::min<std::uint32_t>(s->update_credit + 1, kMaxUpdateCredit);
    }
    // A GOAWAY neither shutdown() nor our budgets asked for: nghttp2 ended the connection (a
    // connection error it found while reading, reported here at the latest).
    if (f.hd.type == NGHTTP2_GOAWAY && !shutdown && !failed) {
      nghttp2_failed();
      sweep(f.goaway.error_code);
      return 0;
    }
    if ((f.hd.type != NGHTTP2_HEADERS && f.hd.type != NGHTTP2_DATA) ||
        (f.hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    Stream* s = find(f.hd.stream_id);
    if (s == nullptr) return 0;
    s->response_done = true;
    if (!s->remote_closed) {
      // RFC 9113 §8.1: a complete response before the whole request; ask the client to stop
      // sending (NO_ERROR) instead of holding the stream open for bytes nobody reads.
      s->local_reset = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, f.hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  ssize_t read_data(std::int32_t id, std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
    Stream* s = find(id);
    if (s == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const std::size_t before = footprint(*s);
    const std::size_t n = std::min(length, s->queued());
    if (n > 0) std::memcpy(buf, s->out.data() + s->out_off, n);
    s->out_off += n;
    data_taken += n;
    if (s->out_off == s->out.size()) {
      // A drained queue gives its memory back (a download's burst must not stay reserved for an
      // idle stream: 100 of them would hold the connection's memory budget).
      if (s->out.capacity() > 2 * kLowWater) {
        std::string().swap(s->out);
      } else {
        s->out.clear();
      }
      s->out_off = 0;
    } else if (s->out_off >= kHighWater && s->out_off * 2 >= s->out.size()) {
      s->out.erase(0, s->out_off);
      s->out_off = 0;
    }
    account(before, *s);
    if (s->above_high && s->queued() < kLowWater) {
      s->above_high = false;
      emit(H2Event::Kind::Writable, id);
    }
    if (s->queued() == 0 && s->data_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->trailers_out.empty()) {
        std::vector<nghttp2_nv> nva;
        for (const auto& t : s->trailers_out) nva.push_back(nv(t.name, t.value));
        if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  static nghttp2_nv nv(std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  }

  /// Response fields as HTTP/2 allows them: lower-case names, no connection-specific field
  /// (§8.2.2), no pseudo-header from the caller, nothing nghttp2 would refuse as invalid.
  template <class Fields>
  static void clean_fields(const Fields& in, HeaderList& out, std::string& name) {
    for (const auto& f : in) {
      name.assign(f.name);
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      if (name.empty() || name[0] == ':' || connection_specific(name)) continue;
      const std::string_view value = trim_ows(f.value);
      if (nghttp2_check_header_name(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()) == 0 ||
          nghttp2_check_header_value_rfc9113(reinterpret_cast<const std::uint8_t*>(value.data()),
                                             value.size()) == 0) {
        continue;
      }
      out.add(name, value);
    }
  }

  /// A field submit_response takes as it is (a `vetted` one): what clean_fields would keep unchanged.
  static bool vetted_field(std::string_view name, std::string_view value) noexcept {
    for (const char c : name) {
      if (c >= 'A' && c <= 'Z') return false;
    }
    return !name.empty() && name[0] != ':' && !connection_specific(name) &&
           nghttp2_check_header_name(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()) != 0 &&
           nghttp2_check_header_value_rfc9113(reinterpret_cast<const std::uint8_t*>(value.data()),
                                              value.size()) != 0;
  }

  template <class Fields>
  void submit_response(std::int32_t stream, int status, const Fields& headers, bool end_stream,
                       std::size_t vetted = 0) {
    auto* s = find(stream);
    if (s == nullptr || !s->reported || s->rejected || s->response_started || failed) return;
    // clean_fields' rules, without copying the fields: lower-cased names go back to back into
    // scratch_names (reserved first, so the nv entries pointing into it stay valid), values are
    // referenced where they are; nghttp2 copies both before nghttp2_submit_response returns.
    std::string& names = scratch_names;
    names.clear();
    std::size_t name_bytes = 0;
    for (auto it = std::next(headers.begin(), static_cast<std::ptrdiff_t>(vetted)); it != headers.end(); ++it)
      name_bytes += it->name.size();
    names.reserve(name_bytes);
    char code[8];
    const auto code_end = std::to_chars(code, code + sizeof code, status).ptr;
    std::vector<nghttp2_nv>& nva = scratch_nva;
    nva.clear();
    nva.reserve(headers.size() + 1);
    nva.push_back(nv(":status", std::string_view(code, static_cast<std::size_t>(code_end - code))));
    std::size_t index = 0;
    for (const auto& f : headers) {
      if (index++ < vetted) {
        // Already a valid HTTP/2 field (an HTTP/1.1 parser's lower-cased head): no copy, no check.
        PHI_ASSERT(vetted_field(f.name, f.value));
        nva.push_back(nv(f.name, f.value));
        continue;
      }
      const std::size_t at = names.size();
      names.append(f.name);  // within the reserve: the nv entries before stay valid
      for (auto* c = names.data() + at; c != names.data() + names.size(); ++c) {
        if (*c >= 'A' && *c <= 'Z') *c = static_cast<char>(*c - 'A' + 'a');
      }
      const std::string_view name(names.data() + at, names.size() - at);
      const std::string_view value = trim_ows(f.value);
      if (name.empty() || name[0] == ':' || connection_specific(name) ||
          nghttp2_check_header_name(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()) == 0 ||
          nghttp2_check_header_value_rfc9113(reinterpret_cast<const std::uint8_t*>(value.data()),
                                             value.size()) == 0) {
        names.resize(at);
        continue;
      }
      nva.push_back(nv(name, value));
    }
    nghttp2_data_provider provider{};
    provider.read_callback = [](nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t length,
                                std::uint32_t* flags, nghttp2_data_source*,
                                void* u) { return Impl::of(u).read_data(id, buf, length, flags); };
    s->response_started = true;
    s->data_eof = end_stream;
    const int rv =
        nghttp2_submit_response(session, stream, nva.data(), nva.size(), end_stream ? nullptr : &provider);
    if (rv == 0) return;
    // Never a stream left waiting for a head nghttp2 did not take: its allocations are refused past
    // the memory budget, which ends the connection as any overrun does; anything else resets it.
    if (rv == NGHTTP2_ERR_NOMEM) {
      fail("memory");
      sweep(kH2EnhanceYourCalm);  // every stream the caller knows: Reset, then Closed
      return;
    }
    s->local_reset = true;
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream, NGHTTP2_INTERNAL_ERROR);
  }

  static Impl& of(void* user) { return *static_cast<Impl*>(user); }

  void resume(std::int32_t id, Stream& s) {
    if (s.deferred) {
      s.deferred = false;
      nghttp2_session_resume_data(session, id);
    }
  }
};

bool H2Options::connect_protocol() const noexcept {
  if (!http2.websocket || http2.max_websockets_per_connection == 0) return false;
  return std::any_of(upgrades.begin(), upgrades.end(),
                     [](const std::string& u) { return iequals(u, "websocket"); });
}

H2ServerSession::H2ServerSession(const H2Options& options) : impl_(std::make_unique<Impl>(options, events_)) {
  Impl& im = *impl_;
  const auto& h2 = options.http2;
  im.mem.mem_user_data = &im;
  im.mem.malloc = [](std::size_t n, void* u) { return Impl::of(u).alloc(n); };
  im.mem.free = [](void* p, void* u) { Impl::of(u).release(p); };
  im.mem.calloc = [](std::size_t n, std::size_t size, void* u) -> void* {
    if (size != 0 && n > std::numeric_limits<std::size_t>::max() / size) return nullptr;
    void* p = Impl::of(u).alloc(n * size);
    if (p != nullptr) std::memset(p, 0, n * size);
    return p;
  };
  im.mem.realloc = [](void* p, std::size_t n, void* u) { return Impl::of(u).resize(p, n); };

  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_frame_callback(
      cb,
      [](nghttp2_session*, const nghttp2_frame_hd* hd, void* u) { return Impl::of(u).on_begin_frame(*hd); });
  nghttp2_session_callbacks_set_on_begin_headers_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return Impl::of(u).on_begin_headers(*f); });
  nghttp2_session_callbacks_set_on_header_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
             const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* u) {
        return Impl::of(u).on_header(*f, {reinterpret_cast<const char*>(name), namelen},
                                     {reinterpret_cast<const char*>(value), valuelen});
      });
  // A field nghttp2 would silently drop (upper-case name, CR/LF/NUL or edge whitespace in a
  // value) makes the request malformed instead (RFC 9113 §8.2.1): never forward a request whose
  // fields we did not all see.
  nghttp2_session_callbacks_set_on_invalid_header_callback(
      cb, [](nghttp2_session*, const nghttp2_frame*, const std::uint8_t*, std::size_t, const std::uint8_t*,
             std::size_t, std::uint8_t,
             void*) { return static_cast<int>(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE); });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return Impl::of(u).on_frame_recv(*f); });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cb, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
             void* u) { return Impl::of(u).on_data_chunk(id, data, len); });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cb, [](nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
        return Impl::of(u).on_stream_close(id, code);
      });
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, int lib_error, void* u) {
        return Impl::of(u).on_invalid_frame(*f, lib_error);
      });
  nghttp2_session_callbacks_set_on_frame_send_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) { return Impl::of(u).on_frame_send(*f); });
  // Extension frames are read (so on_begin_frame charges them) and dropped: nothing is kept.
  nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(
      cb,
      [](nghttp2_session*, const nghttp2_frame_hd*, const std::uint8_t*, std::size_t, void*) { return 0; });
  nghttp2_session_callbacks_set_unpack_extension_callback(
      cb, [](nghttp2_session*, void**, const nghttp2_frame_hd*, void*) {
        return static_cast<int>(NGHTTP2_ERR_CANCEL);
      });

  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Manual flow control: a stream's window reopens only when the caller forwarded its bytes.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // No priority tree of closed streams to keep (memory a client could make us hold).
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 16);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  // Every type past the standard ones (RFC 9113 §5.5) goes through the callbacks above, so an
  // unknown-frame flood costs control tokens instead of being skipped for free.
  for (unsigned type = NGHTTP2_CONTINUATION + 1; type <= 0xff; ++type) {
    nghttp2_option_set_user_recv_extension_type(opt, static_cast<std::uint8_t>(type));
  }
  // nghttp2's own CONTINUATION and reset limits stay behind ours (ours name the reason).
  nghttp2_option_set_max_continuations(opt, h2.max_continuation_frames + 1);
  nghttp2_option_set_stream_reset_rate_limit(opt, std::max<std::uint64_t>(1000, 4ull * h2.reset_budget),
                                             std::max<std::uint64_t>(33, 4ull * h2.reset_refill));
  nghttp2_session_server_new3(&im.session, cb, &im, opt, &im.mem);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (im.session == nullptr) {
    // Only an allocation failure (a budget too small for an empty session): nothing is served.
    im.failed = true;
    im.close_reason = "memory";
    return;
  }

  const std::uint32_t frame = std::clamp<std::uint32_t>(h2.max_frame_bytes, 16384, 16777215);
  const std::uint32_t window = std::min<std::uint32_t>(h2.initial_window_bytes, 2147483647u);
  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, h2.header_table_bytes},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, frame},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(std::min<std::size_t>(h2.max_header_list_bytes, 0xffffffffu))},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      // RFC 9218 §2.1: no RFC 7540 priority tree (PRIORITY frames cost nothing but a token, and
      // a client cannot make us build and walk a dependency tree, CVE-2019-9513).
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  // RFC 8441 §3: the client may send :protocol only after it saw this setting; nghttp2 checks
  // :protocol (with CONNECT, :scheme, :path, :authority) only when we sent it.
  if (options.connect_protocol()) iv.push_back({NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1});
  nghttp2_submit_settings(im.session, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  const auto conn_window =
      static_cast<std::int32_t>(std::clamp<std::uint32_t>(h2.connection_window_bytes, 65535u, 2147483647u));
  nghttp2_session_set_local_window_size(im.session, NGHTTP2_FLAG_NONE, 0, conn_window);
}

H2ServerSession::~H2ServerSession() = default;

H2ServerSession::Status H2ServerSession::feed(const char* data, std::size_t len, H2Clock::time_point now) {
  events_.clear();
  Impl& im = *impl_;
  im.clear_closing();
  if (im.failed) return Status::Closed;
  im.now = now;
  const auto rv = nghttp2_session_mem_recv(im.session, reinterpret_cast<const std::uint8_t*>(data), len);
  if (rv < 0) {
    if (im.close_reason.empty()) {
      switch (rv) {
        case NGHTTP2_ERR_FLOODED:
        case NGHTTP2_ERR_TOO_MANY_SETTINGS:
          im.close_reason = "control_flood";
          break;
        case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
          im.close_reason = "continuation_flood";
          break;
        case NGHTTP2_ERR_NOMEM:
          im.close_reason = "memory";
          break;
        default:
          im.close_reason = "protocol_error";
          break;
      }
    }
    const std::uint32_t code = (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_SETTINGS ||
                                rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || rv == NGHTTP2_ERR_NOMEM ||
                                rv == NGHTTP2_ERR_CALLBACK_FAILURE)
                                   ? kH2EnhanceYourCalm
                                   : kH2ProtocolError;
    if (!im.failed) {
      im.failed = true;
      nghttp2_session_terminate_session(im.session, code);  // no-op when nghttp2 queued its own
    }
    im.sweep(code);
    return Status::Closed;
  }
  if (!im.failed && im.out_of_memory()) im.fail("memory");
  if (im.failed) {
    im.sweep(kH2ProtocolError);
    return Status::Closed;
  }
  return Status::Ok;
}

H2Request* H2ServerSession::request(std::int32_t stream) noexcept {
  auto* s = impl_->find(stream);
  if (s == nullptr) {
    const auto it = impl_->closing.find(stream);
    s = it == impl_->closing.end() ? nullptr : &it->second;
  }
  return s != nullptr && s->reported ? &s->req : nullptr;
}

void H2ServerSession::take_body(std::int32_t stream, std::string& out) {
  auto* s = impl_->find(stream);
  if (s == nullptr) {
    const auto it = impl_->closing.find(stream);
    s = it == impl_->closing.end() ? nullptr : &it->second;
  }
  if (s == nullptr) return;
  const std::size_t before = Impl::footprint(*s);
  out.append(s->req.body);
  s->req.body.clear();
  if (s->req.body.capacity() > kHighWater) s->req.body.shrink_to_fit();
  impl_->account(before, *s);
}

void H2ServerSession::consume(std::int32_t stream, std::size_t n) {
  auto* s = impl_->find(stream);
  if (s == nullptr) return;
  n = std::min(n, s->unconsumed);
  if (n == 0) return;
  s->unconsumed -= n;
  nghttp2_session_consume(impl_->session, stream, n);
}

std::size_t H2ServerSession::head_storage(const MessageHead& h) noexcept {
  return sizeof(MessageHead) + h.method.capacity() + h.target.capacity() + h.reason.capacity() +
         h.headers.storage_bytes();
}

void H2ServerSession::recycle(MessageHead&& head, std::size_t storage) {
  Impl& im = *impl_;
  const std::size_t limit = std::min<std::size_t>(im.opts.http2.max_concurrent_streams, 256);
  if (im.spare_heads.size() >= limit) return;
  PHI_ASSERT(storage == 0 || storage == head_storage(head));
  const std::size_t bytes = storage != 0 ? storage : head_storage(head);
  if (bytes > kSpareHeadBytes) return;  // a large head is not kept: memory, not speed
  // All spares together stay a small share of the connection's budget (review finding F3).
  if (im.spare_bytes + bytes > im.opts.http2.connection_memory_bytes / 8) return;
  head.clear();
  im.spare_heads.push_back(Impl::Spare{std::move(head), bytes});
  im.spare_bytes += bytes;
}

void H2ServerSession::drop_spare_heads() noexcept {
  impl_->spare_heads = std::vector<Impl::Spare>{};
  impl_->spare_bytes = 0;
}

void H2ServerSession::submit_response(std::int32_t stream, int status, const HeaderList& headers,
                                      bool end_stream) {
  impl_->submit_response(stream, status, headers, end_stream);
}

void H2ServerSession::submit_response_refs(std::int32_t stream, int status,
                                           const std::vector<FieldRef>& headers, bool end_stream,
                                           std::size_t vetted) {
  impl_->submit_response(stream, status, headers, end_stream, std::min(vetted, headers.size()));
}

void H2ServerSession::send_data(std::int32_t stream, std::string_view bytes) {
  Impl& im = *impl_;
  auto* s = im.find(stream);
  if (s == nullptr || !s->response_started || s->data_eof || bytes.empty()) return;
  const std::size_t before = Impl::footprint(*s);
  s->out.append(bytes);
  im.account(before, *s);
  // high_water() <= kHighWater: a caller waiting at either mark gets its Writable.
  if (s->queued() > im.high_water()) s->above_high = true;
  im.resume(stream, *s);
}

void H2ServerSession::end_response(std::int32_t stream, const HeaderList* trailers) {
  Impl& im = *impl_;
  auto* s = im.find(stream);
  if (s == nullptr || !s->response_started || s->data_eof) return;
  s->data_eof = true;
  if (trailers != nullptr) {
    const std::size_t before = Impl::footprint(*s);
    Impl::clean_fields(*trailers, s->trailers_out, im.scratch_name);
    im.account(before, *s);  // response trailers count against the budget too (review finding F7)
  }
  im.resume(stream, *s);
}

std::uint64_t H2ServerSession::data_taken() const noexcept {
  return impl_->data_taken;
}

std::size_t H2ServerSession::queued(std::int32_t stream) const noexcept {
  const auto it = impl_->streams.find(stream);
  return it == impl_->streams.end() ? 0 : it->second.queued();
}

std::size_t H2ServerSession::queued_at_close(std::int32_t stream) const noexcept {
  if (const auto it = impl_->streams.find(stream); it != impl_->streams.end()) return it->second.queued();
  const auto it = impl_->closing.find(stream);  // kept until the next feed or take_output
  return it == impl_->closing.end() ? 0 : it->second.queued();
}

void H2ServerSession::reset(std::int32_t stream, std::uint32_t error_code) {
  Impl& im = *impl_;
  auto* s = im.find(stream);
  if (s == nullptr || im.failed) return;
  s->local_reset = true;
  nghttp2_submit_rst_stream(im.session, NGHTTP2_FLAG_NONE, stream, error_code);
}

void H2ServerSession::shutdown(std::uint32_t error_code) {
  Impl& im = *impl_;
  if (im.shutdown || im.failed) return;
  im.shutdown = true;
  // Not nghttp2_submit_shutdown_notice: one final GOAWAY naming the last stream we processed,
  // so the streams open now finish and new ones are refused (RFC 9113 §6.8).
  im.goaway_last = nghttp2_session_get_last_proc_stream_id(im.session);
  nghttp2_submit_goaway(im.session, NGHTTP2_FLAG_NONE, im.goaway_last, error_code, nullptr, 0);
}

void H2ServerSession::take_output(std::string& out, std::size_t max) {
  events_.clear();
  Impl& im = *impl_;
  im.clear_closing();
  if (im.session == nullptr) return;
  std::size_t added = 0;
  if (im.pending_off < im.pending.size()) {
    const std::size_t n = std::min(max, im.pending.size() - im.pending_off);
    out.append(im.pending, im.pending_off, n);
    im.pending_off += n;
    added += n;
    if (im.pending_off == im.pending.size()) {
      im.pending.clear();
      im.pending_off = 0;
    }
  }
  // Bounded: each round frames at least one byte or stops.
  while (added < max && im.pending.empty()) {
    const std::uint8_t* p = nullptr;
    const auto n = nghttp2_session_mem_send(im.session, &p);
    if (n < 0) {
      if (im.close_reason.empty()) im.close_reason = n == NGHTTP2_ERR_NOMEM ? "memory" : "protocol_error";
      if (!im.failed) {
        im.failed = true;
        im.sweep(kH2InternalError);
      }
      break;
    }
    if (n == 0) break;
    const auto len = static_cast<std::size_t>(n);
    const std::size_t take = std::min(len, max - added);
    out.append(reinterpret_cast<const char*>(p), take);
    added += take;
    if (take < len) im.pending.assign(reinterpret_cast<const char*>(p) + take, len - take);
  }
}

bool H2ServerSession::want_write() const noexcept {
  const Impl& im = *impl_;
  if (im.session == nullptr) return false;
  return im.pending_off < im.pending.size() || nghttp2_session_want_write(im.session) != 0;
}

bool H2ServerSession::finished() const noexcept {
  const Impl& im = *impl_;
  if (im.session == nullptr) return true;
  if (im.pending_off < im.pending.size() || nghttp2_session_want_write(im.session) != 0) return false;
  return im.failed || nghttp2_session_want_read(im.session) == 0;
}

std::size_t H2ServerSession::open_streams() const noexcept {
  return impl_->streams.size();
}

std::size_t H2ServerSession::high_water() const noexcept {
  return impl_->high_water();
}

std::size_t H2ServerSession::memory() const noexcept {
  return impl_->memory();
}

std::string_view H2ServerSession::close_reason() const noexcept {
  return impl_->close_reason;
}

}  // namespace phigate::http
