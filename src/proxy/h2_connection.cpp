#include "h2_connection.hpp"

#include <algorithm>
#include <array>
#include <new>
#include <type_traits>
#include <unordered_map>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "auth_external.hpp"
#include "balance_input.hpp"
#include "basic_auth.hpp"
#include "body_buffer.hpp"
#include "client_stream.hpp"
#include "error_backend.hpp"
#include "error_page.hpp"
#include "grpc_forward.hpp"
#include "pacer.hpp"
#include "phases.hpp"
#include "phigate/core/assert.hpp"
#include "phigate/core/log.hpp"
#include "phigate/http/forwarding.hpp"
#include "phigate/http/h2_server.hpp"
#include "phigate/http/h2_translate.hpp"
#include "phigate/http/response_edits.hpp"
#include "phigate/http/serializer.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/health.hpp"
#include "phigate/upstream/retry.hpp"
#include "proxy_connection.hpp"
#include "upstream_attempt.hpp"
#include "upstream_head.hpp"
#include "websocket_key.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Outcome;
using core::Retryable;
using TimePoint = Clock::time_point;
using TunnelClose = metrics::WorkerShard::TunnelClose;

namespace {

constexpr TimePoint kNever = TimePoint::max();
constexpr std::size_t kWriteBytes = 64 * 1024;  // frames taken from the codec per client write
// proxy-request-buffering: one HTTP/2 connection's streams hold at most an eighth of the worker's
// budget together (or one request's bound, when that is more): a connection cannot shed every other
// client's uploads on its own.
constexpr std::uint64_t kConnectionShareDivisor = 8;

http::H2Options h2_options(const config::Config& cfg) {
  http::H2Options o;
  o.http2 = cfg.http2;
  o.header_count = cfg.limits.header_count;
  o.upgrades = cfg.upstream.upgrades;
  return o;
}

metrics::WorkerShard::H2Error h2_error_of(std::string_view reason) noexcept {
  using E = metrics::WorkerShard::H2Error;
  if (reason == "rapid_reset") return E::RapidReset;
  if (reason == "control_flood") return E::ControlFlood;
  if (reason == "continuation_flood") return E::ContinuationFlood;
  if (reason == "memory") return E::Memory;
  return E::Protocol;
}

}  // namespace

class H2Stream;

class H2Connection : public std::enable_shared_from_this<H2Connection> {
 public:
  explicit H2Connection(std::shared_ptr<ProxyConnection> pc)
      : pc_(std::move(pc)),
        c_(*pc_),
        worker_(c_.worker_),
        snap_(c_.snap_),
        codec_(h2_options(*snap_->config)),
        writer_wake_(worker_.io()),
        writer_done_(worker_.io()) {
    c_.h2_conn_ = this;
    // Per-stream high-water of queued response bytes: max_concurrent_streams streams each at their
    // mark stay within half the connection's memory budget (review finding 4), capped at the
    // codec's own mark and never below one frame's worth.
    const auto& h2 = snap_->config->http2;
    const std::size_t streams = std::max<std::size_t>(1, h2.max_concurrent_streams);
    high_water_ = std::clamp<std::size_t>(h2.connection_memory_bytes / (2 * streams), 16 * 1024,
                                          http::H2ServerSession::kHighWater);
    low_water_ = high_water_ / 4;
  }
  ~H2Connection() { c_.h2_conn_ = nullptr; }

  net::awaitable<void> serve();
  void expire();
  void drain();

  // For the streams.
  void wake_writer() noexcept { writer_wake_.cancel(); }
  /// Hot path: keeps c_.deadline no later than every real deadline, in O(1) (a stale, early one
  /// costs one spurious expire(), which recomputes); exact while the worker drains.
  void update_deadline() noexcept;
  void lower_deadline(TimePoint t) noexcept;
  /// The exact earliest deadline of the connection and its streams: O(streams).
  void recompute_deadline() noexcept;
  /// The connection cannot go on: stop reading and writing, end every stream.
  void close_now() noexcept;
  /// The codec ended the connection with an error (ours or one nghttp2 raised, which may only show
  /// once its GOAWAY was taken): counted by reason, and audited when no stream recorded it. Once.
  void connection_error(std::string_view reason);
  void stream_done(H2Stream& s);

  std::shared_ptr<ProxyConnection> pc_;
  ProxyConnection& c_;
  WorkerImpl& worker_;
  SnapshotPtr snap_;  // the connection's (codec options); each stream pins its own
  http::H2ServerSession codec_;
  // proxy-request-buffering: what this connection's streams hold of the worker's budget together
  // (declared before the streams: destroyed after them, whose holds give their bytes back to it).
  ConnShare buffer_share_;
  std::unordered_map<std::int32_t, std::shared_ptr<H2Stream>> streams_;
  std::vector<std::shared_ptr<H2Stream>> starting_;  // Request seen in this batch of events
  // Streams whose response is handed to the codec but not yet all taken: the write loop finishes
  // them once it took their bytes (settle_flushing), so that a stream costs no resumption of its
  // own after its response (docs/perf-h2-many-streams.md, round 12).
  std::vector<std::shared_ptr<H2Stream>> flushing_;
  std::vector<std::shared_ptr<H2Stream>> settling_;  // settle_flushing's batch (capacity kept)
  std::vector<http::FieldRef> field_refs_;           // a stream's response head on its way to the codec
  net::asio::steady_timer writer_wake_;
  net::asio::steady_timer writer_done_;
  std::string out_;
  TimePoint idle_deadline_ = kNever;   // no stream open: keepalive_idle (request_header before the first)
  TimePoint write_deadline_ = kNever;  // a write to the client is in progress: body_idle
  TimePoint spare_deadline_ = kNever;  // idle since: the codec's recycled heads go then
  static constexpr std::chrono::seconds kSpareHeadsIdle{1};
  std::uint64_t streams_seen_ = 0;
  std::uint32_t websockets_ = 0;   // RFC 8441 tunnels forwarding now (http2.max_websockets_per_connection)
  TimePoint data_progress_{};      // the last time a stream's queued response bytes went down
  std::uint64_t data_taken_ = 0;   // the codec's data_taken() at the write loop's last look
  std::size_t write_waiters_ = 0;  // streams whose write deadline (kWrite) is armed
  std::size_t high_water_ = http::H2ServerSession::kHighWater;  // per-stream queued bytes: send_body waits
  std::size_t low_water_ = http::H2ServerSession::kLowWater;    // ... until they drain to this
  bool closing_ = false;  // GOAWAY sent (drain, idle): close once the streams are done
  bool fatal_ = false;    // connection error: close once the GOAWAY is written
  // Closed by us because the client took none of our bytes for body_idle (its socket or the
  // connection's window): the streams it ends were cut by a slow reader, not left by the client.
  bool slow_reader_ = false;
  bool error_counted_ = false;
  bool dead_ = false;
  bool writer_running_ = false;

 private:
  net::awaitable<void> write_loop(std::shared_ptr<H2Connection> self);
  /// The write loop took output (or is about to wait): the flushing streams whose bytes are all
  /// taken (or that can no longer send them) finish now; each of the others (held by the client's
  /// flow-control windows, or behind the writer's round limit) waits on in a coroutine of its own
  /// under the write deadline, as before this pass existed: a stream's tail is never left without
  /// a deadline while other streams keep the writer busy.
  void settle_flushing() noexcept;
  void handle_events();
  void start_stream(std::int32_t id);
  void audit_rejected(const http::H2Event& ev);
  void set_idle() noexcept;
  H2Stream* find(std::int32_t id) noexcept {
    const auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
};

struct H2ErrorBackend;

class H2Stream final : public ClientStream {
  friend struct H2ErrorBackend;  // the error-backend attempts (error_backend.hpp) use its link and relay

 public:
  /// Takes the request head from the codec (it keeps the body, trailers and framing state).
  H2Stream(H2Connection& c, std::int32_t id, http::H2Request& r)
      : c_(c), id_(id), head_(std::move(r.head)), link_(c.worker_.io(), c.worker_.pool(), c.worker_.stats()) {
    c_.worker_.stats().h2_streams_open.add(1);
    end_ = r.end_stream;
    protocol_ = r.protocol;
  }
  ~H2Stream() {
    if (dl_[kWrite] != kNever) write_disarmed();
    c_.worker_.stats().h2_streams_open.add(-1);
  }

  /// The stream's coroutine, co_spawned with `self` (its owner) and its connection: the phases,
  /// an answer of phigate's own or the forwarding, then the end (the audit record once the
  /// response left), in one frame.
  net::awaitable<void> run(std::shared_ptr<H2Connection> conn, std::shared_ptr<H2Stream> self);
  /// A flushing stream the client's windows hold: waits for its bytes under the write deadline.
  static net::awaitable<void> finish_when_flushed(std::shared_ptr<H2Connection> conn,
                                                  std::shared_ptr<H2Stream> self) {
    co_await self->flush();
    self->complete();
    self.reset();  // before the connection, as in run()
    (void)conn;
  }
  /// `n` response bytes were still in the codec when the stream closed: they never left.
  void note_undelivered(std::size_t n) noexcept { undelivered_ = std::max<std::uint64_t>(undelivered_, n); }
  /// Some of the response is still queued in the codec for a client that may take it.
  bool flush_pending() const noexcept {
    return !reset_ && !closed_ && !c_.dead_ && c_.codec_.queued(id_) != 0;
  }
  /// The stream's end: its audit record, its memory, its place in the connection.
  void complete() {
    finish();
    release();
    done_ = true;
    c_.stream_done(*this);
  }

  // --- ClientStream ---
  Request& request() noexcept override { return *req_; }
  RequestFacts& facts() noexcept override { return facts_; }
  net::awaitable<std::optional<Error>> read_body(std::string& out, bool& done) override;
  /// proxy-request-buffering: the whole body into body_ within the request's bound (else 413)
  /// and the worker's budget (else 503, shed), under the body timeouts.
  net::awaitable<std::optional<Error>> buffer_body();
  /// Runs the phases under the worker's current snapshot (re-pinned into snap_) for head_: fills
  /// req_ and the audit facts; a Decision to answer, or nullopt to proxy.
  PhaseResult decide(bool again = false);
  void answer(const Decision& decision);
  /// After decide(): auth-type: basic verifies the credentials it accepted (req_->auth_pending),
  /// then auth-url's subrequest runs (req_->auth_external_pending; auth_external.hpp).
  net::awaitable<PhaseResult> authorize();
  bool needs_authorize() const noexcept {
    return req_->auth_pending || req_->auth_external_pending ||
           req_->rare_or_empty().auth_external.by != nullptr;
  }
  void body_forwarded(std::size_t n) noexcept override {
    if (closed_ || n == 0) return;
    c_.codec_.consume(id_, n);  // the client gets the window back only for bytes that went on
    c_.wake_writer();
  }
  const http::HeaderList* request_trailers() const noexcept override {
    return trailers_.empty() ? nullptr : &trailers_;
  }
  void send_head(int status, const http::HeaderList& fields, bool end_stream) override {
    submit_head(status, fields, end_stream);
  }
  /// send_head's work, for a HeaderList or field references (the relayed response head).
  /// `vetted`: with references, how many leading fields are H1ResponseReader::h2_fields' own.
  template <class Fields>
  void submit_head(int status, const Fields& fields, bool end_stream, std::size_t vetted = 0) {
    head_sent_ = true;
    if (status_ == 0) status_ = status;
    if (end_stream) ended_ = true;
    if (closed_ || c_.dead_) return;
    if constexpr (std::is_same_v<Fields, http::HeaderList>) {
      c_.codec_.submit_response(id_, status, fields, end_stream);
    } else {
      c_.codec_.submit_response_refs(id_, status, fields, end_stream, vetted);
    }
    c_.wake_writer();
  }
  net::awaitable<std::optional<Error>> send_body(std::string_view bytes) override;
  /// send_body without waiting: Done (queued under the high-water mark), Wait (queued, above it:
  /// co_await wait_queued(low water)), Gone (nothing queued: the client reset or went away).
  enum class Push { Done, Wait, Gone };
  Push push_body(std::string_view bytes);
  void end_response(const http::HeaderList* trailers) override {
    ended_ = true;
    if (closed_ || c_.dead_) return;
    c_.codec_.end_response(id_, trailers);
    c_.wake_writer();
  }
  void reset(std::uint32_t code) override {
    if (!closed_ && !c_.dead_) c_.codec_.reset(id_, code);
    reset_ = true;
    c_.wake_writer();
  }
  bool head_sent() const noexcept override { return head_sent_; }
  bool client_gone() const noexcept override { return reset_ || closed_ || c_.dead_; }
  void failed_attempt(const FailedAttempt& a) override { attempts_.push_back(a); }

  // --- upstream::Deadline: the upstream waits arm this stream's deadline slots ---
  // Send and Read have their own slots: a gRPC stream's request pump and response relay wait at
  // the same time (review finding 2).
  void arm_upstream(Wait w, std::chrono::milliseconds d) noexcept override {
    arm(w == Wait::Read ? kUpRead : kUpSend, d);
  }
  bool upstream_timed_out() const noexcept override { return fired_[kUpRead] || fired_[kUpSend]; }

  /// One deadline per kind of wait, so that two coroutines of one stream (gRPC's pump and relay)
  /// never overwrite each other's deadline or share a timer.
  enum Slot : std::size_t { kBody, kWrite, kUpSend, kUpRead, kSlots };

  TimePoint deadline() const noexcept { return *std::min_element(dl_.begin(), dl_.end()); }

  /// Deadlines at or before `now` passed (the connection's expire()).
  void expire(TimePoint now) noexcept {
    for (std::size_t i = 0; i < kSlots; ++i) {
      if (dl_[i] > now) continue;
      if (i == kWrite) write_disarmed();
      dl_[i] = kNever;
      fired_[i] = true;
      switch (i) {
        case kBody:
          if (body_wake_) body_wake_->cancel();
          break;
        case kWrite:
          if (write_wake_)
            write_wake_->cancel();  // send_body / flush decide: RST_STREAM, or the connection goes
          break;
        default:
          // An RFC 8441 tunnel's slots are its idle timeouts (no byte one way for proxy-send /
          // proxy-read timeout): the tunnel ends, both directions stop.
          if (tunnel_) {
            end_tunnel(TunnelClose::Idle);
          } else {
            link_.cancel();  // HTTP/1.1 upstream; a gRPC call's own waits hold the same deadline
          }
          break;
      }
    }
  }
  /// The client is gone or reset the stream: stop whatever it waits for.
  void kill() noexcept {
    // Mid-tunnel the splice's aborted waits must not read as the backend's failure: say first why
    // the tunnel ends (the client reset or went away; or the drain grace ended).
    if (tunnel_ && !tunnel_closed_)
      end_tunnel(c_.dead_ && c_.worker_.draining() ? TunnelClose::Drain : TunnelClose::ClientError);
    reset_ = true;
    link_.cancel();
    wake();
  }
  void wake() noexcept {
    if (body_wake_) body_wake_->cancel();
    if (write_wake_) write_wake_->cancel();
    if (pace_timer_) pace_timer_->cancel();
  }
  /// The write loop took frames: when this stream's queued bytes went down since its write
  /// deadline was armed, the deadline moves; anything else (PINGs, other streams) leaves it
  /// (review finding 3). Then the waiter looks again.
  void on_output(TimePoint now, std::chrono::milliseconds body_idle) noexcept {
    if (dl_[kWrite] == kNever) return;
    const auto q = closed_ ? 0 : c_.codec_.queued(id_);
    if (q < write_mark_) {
      write_mark_ = q;
      dl_[kWrite] = now + body_idle;
    }
    if (write_wake_) write_wake_->cancel();
  }

  H2Connection& c_;
  std::int32_t id_;
  std::uint64_t undelivered_ = 0;  // response bytes still queued when the stream was given up
  http::MessageHead head_;         // moved out of the codec at Request; the request and audit keep it
  SnapshotPtr snap_;
  std::optional<Request> req_;
  RequestFacts facts_;
  std::string request_id_;
  std::string set_cookie_;  // extra fields with an affinity Set-Cookie (else empty)
  std::string_view extra_fields_;
  std::string auth_fields_;  // extra_fields_ plus an auth answer's Set-Cookie lines (auth-url), when any
  http::HeaderList trailers_;
  std::vector<FailedAttempt> attempts_;
  upstream::Link link_;
  // Wake-ups (a wait for ever, cancelled by wake()), made by the first wait: most streams never
  // wait for a body or a window, and each timer costs a service lookup under Asio's registry lock.
  std::optional<net::asio::steady_timer> body_wake_;   // read_body, end_early, the tunnel's reads
  std::optional<net::asio::steady_timer> write_wake_;  // send_body, flush
  // limit-rate (pacer.hpp): this stream's pacing and its own timer (made on first use; wake()
  // cancels it), so a paced stream never holds the connection's reader, writer or other streams.
  Pacer pacer_;
  std::optional<net::asio::steady_timer> pace_timer_;
  std::array<TimePoint, kSlots> dl_{kNever, kNever, kNever, kNever};
  std::array<bool, kSlots> fired_{};
  std::size_t write_mark_ = 0;  // queued bytes when the write deadline was last set
  // head_'s storage for recycle(), taken by append_upstream_head (0: recycle walks the head). A
  // later change of head_ must measure again (debug builds check the figure at recycle).
  std::size_t head_bytes_ = 0;
  TimePoint started_{};
  TimePoint up_sent_{};
  Clock::duration body_wait_{};
  std::uint64_t body_taken_ = 0;
  std::uint64_t response_bytes_ = 0;
  // proxy-request-buffering: "on": the whole body, read before the upstream was connected and
  // sent with Content-Length (again on a retry), and its share of the worker's budget. Both go
  // with the stream.
  bool buffered_ = false;
  std::string body_;
  BodyHold body_hold_;
  std::uint64_t attempt_sent_ = 0;
  std::uint16_t retry_statuses_ = 0;
  int status_retry_ = 0;
  const config::RoutePolicy* intercept_ = nullptr;  // custom-http-errors live on this attempt
  int intercepted_ = 0;  // the attempt's answer was dropped for an error page: its status
  int status_ = 0;
  std::string_view reason_;
  bool read_now_ = false;            // relay_response's first read tries the socket at once (Link::try_read)
  bool end_ = false;                 // the client's request is complete
  bool reset_ = false;               // the client reset the stream (or the connection went)
  bool rejected_ = false;            // the codec refused it after its head (e.g. content-length mismatch)
  bool cut_by_slow_reader_ = false;  // ended by our close of a connection whose client did not read
  bool closed_ = false;              // the codec reported Closed: the id is gone
  bool done_ = false;                // the coroutine ended
  bool head_sent_ = false;
  bool ended_ = false;         // the response is complete (or was reset)
  bool grpc_request_ = false;  // content-type application/grpc: refusals are trailers-only
  // --- RFC 8441 (WebSocket over HTTP/2), forward_ws ---
  std::string protocol_;  // the accepted :protocol ("websocket"); empty: an ordinary request
  bool tunnel_ = false;   // splicing: kUpSend / kUpRead are the per-direction idle deadlines
  std::optional<TunnelClose> tunnel_closed_;
  std::uint64_t tunnel_to_upstream_ = 0;
  std::uint64_t tunnel_to_client_ = 0;
  /// The tunnel's link waits: no per-wait deadline (the slots are idle deadlines armed as bytes
  /// move, tunnel.cpp's rule); timed out when one fired.
  struct TunnelWait final : upstream::Deadline {
    explicit TunnelWait(H2Stream& s) : s_(s) {}
    void arm_upstream(Wait, std::chrono::milliseconds) noexcept override {}
    bool upstream_timed_out() const noexcept override { return s_.fired_[kUpSend] || s_.fired_[kUpRead]; }
    H2Stream& s_;
  };
  TunnelWait tunnel_wait_{*this};

 private:
  void arm(Slot slot, std::chrono::milliseconds d) noexcept {
    if (slot == kWrite && dl_[kWrite] == kNever) ++c_.write_waiters_;
    fired_[slot] = false;
    dl_[slot] = c_.worker_.now() + d;
    c_.lower_deadline(dl_[slot]);
  }
  void disarm(Slot slot) noexcept {
    if (dl_[slot] == kNever) return;
    if (slot == kWrite) write_disarmed();
    dl_[slot] = kNever;
    // A stale (early) connection deadline costs one spurious expire(), which recomputes; while
    // draining update_deadline() is exact (an expire() with nothing due means drain is over).
    c_.update_deadline();
  }
  /// Every way out of an armed kWrite comes here once (the connection's count of write waiters).
  void write_disarmed() noexcept {
    PHI_ASSERT(c_.write_waiters_ > 0);
    --c_.write_waiters_;
  }
  void disarm_upstream() noexcept {
    disarm(kUpSend);
    disarm(kUpRead);
  }
  void disarm_all() noexcept {
    if (dl_[kWrite] != kNever) write_disarmed();
    for (std::size_t i = 0; i < kSlots; ++i) dl_[i] = kNever;
    c_.update_deadline();
  }
  /// Waits on `timer` (each waiter its own: re-arming a timer cancels its pending wait), made now
  /// if it was not yet.
  net::awaitable<void> wait(std::optional<net::asio::steady_timer>& t) {
    auto& timer = t ? *t : t.emplace(c_.worker_.io());
    timer.expires_at(TimePoint::max());
    auto [ec] = co_await timer.async_wait(net::deferred_tuple);
    (void)ec;  // cancelled: something changed (or the deadline passed)
  }
  /// Waits until this stream's queued response bytes are at most `target`, under the write
  /// deadline (body_idle, moved only by this stream's progress). Error when the client is gone or
  /// does not read.
  net::awaitable<std::optional<Error>> wait_queued(std::size_t target);
  /// relay_response's push_body under limit-rate: `bytes` in pacer slices, waiting on pace_timer_
  /// before a slice that would go over the rate, and for the client's windows as push_body says.
  net::awaitable<std::optional<Error>> push_paced(std::string_view bytes);
  net::awaitable<void> flush();
  void release() noexcept;

  void finish();
  /// The HTTP/1.1 upstream head from head_, after its last change; head_ is measured for
  /// recycle() then, its fields just read and in cache (a walk at release finds them cold).
  void append_upstream_head(std::string& out, std::string_view target, http::Framing framing,
                            std::string_view extra = {}) {
    http::append_h1_request_head(out, head_, target, framing, extra);
    head_bytes_ = http::H2ServerSession::head_storage(head_);
  }
  void local_reply(int status, std::string_view body, std::string_view location,
                   std::string_view more_fields = {});
  void reply_error(const Error& error, std::string_view more_fields = {});
  /// After a local reply to a request whose body is still coming: RFC 9113 §8.1 lets the server
  /// answer early and then reset with NO_ERROR once the response is out.
  net::awaitable<void> end_early();
  /// end_early's loop would not run (the request ended, or the stream or connection did): what
  /// is left of it is waking the writer, done without a coroutine frame.
  bool nothing_to_drain() const noexcept { return end_ || reset_ || closed_ || c_.dead_; }
  net::awaitable<void> forward_h1();
  /// custom-http-errors: the page for `code` from the route's error backend, else phigate's own
  /// answer with that status (`own`: phigate's error, replied as such). Nothing was sent yet.
  /// `fwd_lines`: the forwarding fields of the upstream head (http::forwarding_lines).
  net::awaitable<void> serve_error_page(int code, const Error* own, std::string_view fwd_lines);
  /// default-backend: a path whose cluster has no usable endpoint sends the original request
  /// (head `upstream_target`, body `framing`) to the route's error backend with X-Code: 503.
  /// `fwd_lines`: the forwarding fields of the original head (http::forwarding_lines).
  net::awaitable<void> proxy_to_error_backend(std::string_view upstream_target, http::Framing framing,
                                              std::string_view fwd_lines);
  net::awaitable<std::optional<Error>> send_request(const upstream::Timeouts& t, std::string_view head,
                                                    http::Framing framing);
  net::awaitable<std::optional<Error>> relay_response(const upstream::Timeouts& t,
                                                      http::H1ResponseReader& rd);
  // RFC 8441: an extended CONNECT stream to an HTTP/1.1 WebSocket backend.
  net::awaitable<void> forward_ws();
  /// The next endpoint of `plan` for attempt `attempt` (facts, affinity cookie, balancer told), or
  /// kNoEndpoint (none usable; the caller answers).
  upstream::Pick begin_attempt(AttemptPlan& plan, const upstream::Cluster& cluster, int attempt);
  net::awaitable<void> tunnel(const upstream::Timeouts& t);
  net::awaitable<void> tunnel_to_upstream(const upstream::Timeouts& t);
  net::awaitable<void> tunnel_to_client(const upstream::Timeouts& t);
  void end_tunnel(TunnelClose why) noexcept {
    if (tunnel_closed_) return;
    tunnel_closed_ = why;
    link_.cancel();
    wake();
  }
};

// ---------------------------------------------------------------------------------------------
// Connection

net::awaitable<void> serve_h2(std::shared_ptr<ProxyConnection> conn) {
  auto h2 = std::make_shared<H2Connection>(std::move(conn));
  co_await h2->serve();
}

void h2_expire(H2Connection& c) {
  c.expire();
}
void h2_drain(H2Connection& c) {
  c.drain();
}

void H2Connection::update_deadline() noexcept {
  // Every upstream wait of every stream arms a deadline: a full scan each time was O(streams) per
  // wait, O(streams^2) per round of requests (7-11 % of the worker's CPU at 100 streams per
  // connection, docs/perf-h2-many-streams.md). The worker's tick only needs c_.deadline never later
  // than the earliest real deadline. While draining an expire() with nothing due means "drain grace
  // over", so there no stale deadline is allowed: exact.
  if (worker_.draining()) {
    recompute_deadline();
    return;
  }
  c_.deadline = std::min({c_.deadline, idle_deadline_, write_deadline_, spare_deadline_});
}

void H2Connection::lower_deadline(TimePoint t) noexcept {
  if (worker_.draining()) {
    recompute_deadline();
    return;
  }
  if (t < c_.deadline) c_.deadline = t;
}

void H2Connection::recompute_deadline() noexcept {
  auto d = std::min({idle_deadline_, write_deadline_, spare_deadline_});
  for (const auto& [id, s] : streams_) d = std::min(d, s->deadline());
  c_.deadline = d;
}

void H2Connection::set_idle() noexcept {
  const auto& t = snap_->config->timeouts;
  // Before the first stream a client gets request_header, not keepalive_idle (as HTTP/1.1: a
  // client that completes TLS and sends nothing must not hold a slot for a minute).
  idle_deadline_ =
      worker_.now() + (streams_seen_ == 0 ? std::min(t.request_header, t.keepalive_idle) : t.keepalive_idle);
  c_.link_.release_memory();
  // Recycled request heads outlive a pause between a client's batches of streams (dropping them
  // at every idle moment made them useless at 100 streams), not an idle second.
  if (spare_deadline_ == kNever) spare_deadline_ = worker_.now() + kSpareHeadsIdle;
  update_deadline();
}

void H2Connection::close_now() noexcept {
  if (dead_) return;
  dead_ = true;
  ProxyConnection::cancel_socket(c_.stream_.socket());
  for (auto& [id, s] : streams_) {
    if (slow_reader_ && !s->reset_) s->cut_by_slow_reader_ = true;  // not already reset by the client
    s->kill();
  }
  wake_writer();
}

void H2Connection::stream_done(H2Stream& s) {
  if (s.closed_ || dead_) streams_.erase(s.id_);
  if (streams_.empty()) {
    if (closing_) wake_writer();  // drained: the GOAWAY is out, close
    if (!dead_) set_idle();
  }
  update_deadline();
}

void H2Connection::expire() {
  const auto now = worker_.now();
  bool due = false;
  if (write_deadline_ <= now || dead_) {
    // The client has not taken our bytes for body_idle: it does not read (slow read).
    if (write_deadline_ <= now && !dead_) slow_reader_ = true;
    close_now();
    for (auto& [id, s] : streams_) s->kill();
    c_.deadline = kNever;
    return;
  }
  if (spare_deadline_ <= now) {
    due = true;
    spare_deadline_ = kNever;
    if (streams_.empty()) {
      codec_.drop_spare_heads();
    } else {
      spare_deadline_ = now + kSpareHeadsIdle;  // busy again: look once more later
    }
  }
  if (idle_deadline_ <= now) {
    due = true;
    idle_deadline_ = kNever;
    closing_ = true;
    codec_.shutdown();  // GOAWAY NO_ERROR, then close
    wake_writer();
  }
  // Collect first: a stream's expire may close the connection (and kill the others).
  std::vector<H2Stream*> expired;
  for (auto& [id, s] : streams_) {
    if (s->deadline() <= now) expired.push_back(s.get());
  }
  for (auto* s : expired) {
    due = true;
    s->expire(now);
  }
  if (!due && worker_.draining()) {
    close_now();  // the worker's drain grace is over (it expires every connection)
    c_.deadline = kNever;
    return;
  }
  recompute_deadline();
}

void H2Connection::drain() {
  recompute_deadline();  // exact from now on (update_deadline)
  if (closing_) return;
  closing_ = true;
  codec_.shutdown();  // GOAWAY with the last stream id: open streams finish, new ones are refused
  wake_writer();
}

void H2Connection::start_stream(std::int32_t id) {
  auto* r = codec_.request(id);
  if (r == nullptr || dead_) return;
  worker_.stats().requests_h2.inc();
  // From the first request on, no failing read after each one: a FIN (or reset) that came with the
  // client's last bytes then shows when a write fails or a deadline passes, as a silent client's
  // would. Not before it: a client that sends part of its preface and resets would otherwise hold
  // the connection until request_header without keeping a socket of its own (review).
  if (++streams_seen_ == 1) c_.stream_.hint_short_reads();
  idle_deadline_ = kNever;
  update_deadline();  // a stale idle deadline must not fire on the new stream
  auto s = std::make_shared<H2Stream>(*this, id, *r);
  streams_[id] = s;
  // Started once the whole batch of events was handled (handle_events): co_spawn from the worker's
  // thread runs the coroutine at once, and a pooled upstream connection would carry the request
  // before a RST_STREAM read in the same batch was seen (review finding 5).
  starting_.push_back(std::move(s));
}

void H2Connection::audit_rejected(const http::H2Event& ev) {
  // A stream refused before its head was complete: one record, as HTTP/1.1's malformed requests.
  count_outcome(worker_.stats(), Outcome::ClientBadRequest);
  if (ev.status != 0) worker_.stats().count_response(ev.status);
  if (!worker_.audit_on()) return;
  RequestFacts rf;
  rf.start = std::chrono::system_clock::now();
  rf.h2_stream = ev.stream;
  rf.status = ev.status;
  rf.reason = ev.reason;
  rf.outcome = Outcome::ClientBadRequest;
  c_.req_snap_ = worker_.snapshot();
  worker_.audit_submit(render_request(worker_.audit_json(), c_.connection_facts({}), rf, nullptr,
                                      c_.req_snap_->config->audit));
}

void H2Connection::handle_events() {
  using K = http::H2Event::Kind;
  auto& evs = codec_.events();
  for (std::size_t i = 0; i < evs.size(); ++i) {
    const auto ev = evs[i];
    auto* s = find(ev.stream);
    switch (ev.kind) {
      case K::Request:
        start_stream(ev.stream);
        break;
      case K::Data:
      case K::Writable:
        if (s != nullptr) s->wake();
        break;
      case K::End:
        if (s != nullptr) {
          s->end_ = true;
          if (const auto* r = codec_.request(ev.stream)) s->trailers_ = r->trailers;
          s->wake();
        }
        break;
      case K::Rejected:
        worker_.stats().h2_streams_rejected.inc();
        if (s == nullptr) {
          audit_rejected(ev);
        } else {
          s->rejected_ = true;
          s->reason_ = ev.reason;
          s->kill();
        }
        break;
      case K::Reset:
        if (s != nullptr) {
          s->note_undelivered(codec_.queued_at_close(ev.stream));
          s->kill();
        }
        break;
      case K::Closed:
        if (s != nullptr) {
          // What the codec still held for the stream never reaches the client: its record counts
          // only what left (once Closed, queued() no longer knows the stream).
          if (!s->closed_) s->note_undelivered(codec_.queued_at_close(ev.stream));
          s->closed_ = true;
          if (!s->ended_) s->kill();  // closed before the response completed
          s->wake();                  // a flush wait ends
          if (s->done_) {
            streams_.erase(ev.stream);
            if (streams_.empty() && !dead_) {
              if (closing_) wake_writer();
              set_idle();
            }
          }
        }
        break;
    }
  }
  evs.clear();
  // Bounded: the streams whose Request was in this batch.
  for (auto& s : starting_) {
    auto& stream = *s;
    net::asio::co_spawn(worker_.io(), stream.run(shared_from_this(), std::move(s)), on_coroutine_done);
  }
  starting_.clear();
}

net::awaitable<void> H2Connection::write_loop(std::shared_ptr<H2Connection> self) {
  writer_running_ = true;
  const auto body_idle = snap_->config->timeouts.body_idle;
  // Bounded: every write is under body_idle (expire() closes a client that does not read), and a
  // wait ends when a stream, the reader or expire() wakes it.
  while (!dead_) {
    if (codec_.want_write()) {
      out_.clear();
      codec_.take_output(out_, kWriteBytes);
      handle_events();
      if (!flushing_.empty()) settle_flushing();
      const auto now = worker_.now();
      if (const auto taken = codec_.data_taken(); taken != data_taken_) {
        data_taken_ = taken;
        data_progress_ = now;  // some stream's bytes reach the client
      }
      // Streams waiting for their queued bytes to drain look again (their write deadline moves
      // only if their own bytes went out). Only when one waits: the look touches every open stream
      // (cold at 100 streams per connection: docs/perf-h2-many-streams.md, round 9).
      if (write_waiters_ != 0) {
        for (auto& [id, s] : streams_) s->on_output(now, body_idle);
      }
      update_deadline();
      if (!out_.empty()) {
        write_deadline_ = worker_.now() + body_idle;
        update_deadline();
        const auto ec = co_await c_.stream_.write_all(out_.data(), out_.size());
        write_deadline_ = kNever;
        update_deadline();
        if (ec) {
          close_now();
          break;
        }
        continue;
      }
    }
    if (codec_.finished() || (fatal_ && !codec_.want_write()) ||
        (closing_ && streams_.empty() && !codec_.want_write())) {
      // nghttp2's own connection errors (an even stream id, streams over an acknowledged limit)
      // surface here, after their GOAWAY was taken.
      if (!codec_.close_reason().empty()) connection_error(codec_.close_reason());
      close_now();
      break;
    }
    if (!flushing_.empty()) settle_flushing();
    if (closing_ && streams_.empty() && !codec_.want_write()) continue;  // the last ones just finished
    writer_wake_.expires_at(TimePoint::max());
    auto [ec] = co_await writer_wake_.async_wait(net::deferred_tuple);
    (void)ec;
  }
  if (out_.capacity() > kWriteBytes * 2) std::string().swap(out_);
  writer_running_ = false;
  settle_flushing();  // the connection is gone (dead_): every flushing stream finishes now
  writer_done_.cancel();
  (void)self;
}

void H2Connection::settle_flushing() noexcept {
  // Bounded: the streams that ended their response since the last round. Taken out first (into a
  // batch whose capacity stays for the next round): a finishing stream may reach back into the
  // connection (stream_done wakes the writer).
  settling_.swap(flushing_);
  for (auto& s : settling_) {
    if (!s->flush_pending()) {
      try {
        s->complete();
      } catch (...) {
        on_coroutine_done(std::current_exception());  // logged as a stream coroutine's would be
      }
      continue;
    }
    try {
      net::asio::co_spawn(worker_.io(), H2Stream::finish_when_flushed(shared_from_this(), s),
                          on_coroutine_done);
    } catch (...) {
      // No coroutine to wait in (out of memory): the stream finishes now, its record saying what
      // left so far, rather than stay here without a deadline.
      on_coroutine_done(std::current_exception());
      try {
        s->complete();
      } catch (...) {
        on_coroutine_done(std::current_exception());
      }
    }
  }
  settling_.clear();
}

net::awaitable<void> H2Connection::serve() {
  worker_.stats().h2_connections.inc();
  c_.link_.release_memory();  // the HTTP/1 link is never used on this connection
  set_idle();
  net::asio::co_spawn(worker_.io(), write_loop(shared_from_this()), on_coroutine_done);
  auto& in = c_.in_;
  bool client_gone = false;
  // Bounded: each read waits under the connection's deadline (idle, streams, writes).
  for (;;) {
    in.consume(in.size());
    auto [ec, n] = co_await c_.stream_.read_some(in.space(), in.space_size());
    if (ec || n == 0 || dead_) {
      client_gone = true;
      break;
    }
    const auto st = codec_.feed(in.space(), n, http::H2Clock::now());
    handle_events();
    // The writer only when it has something to do: bytes to send (a SETTINGS or PING ack, a
    // window update that lets queued DATA go), the end of the session, a drain, streams waiting
    // for it to take their bytes. A request's HEADERS alone give it nothing: one stream at a time,
    // the wake-up (a timer's cancel and re-arm) was one of two per request (round 12).
    if (closing_ || codec_.want_write() || codec_.finished() || !flushing_.empty()) wake_writer();
    if (st == http::H2ServerSession::Status::Closed) {
      connection_error(codec_.close_reason());
      fatal_ = true;
      for (auto& [id, s] : streams_) s->kill();
      wake_writer();
      break;
    }
    if (codec_.finished()) {
      if (!codec_.close_reason().empty()) connection_error(codec_.close_reason());
      break;
    }
  }
  if (client_gone && !fatal_) close_now();  // the client went away (or the socket failed)
  // The writer flushes what is queued (a GOAWAY), bounded by body_idle, then ends.
  if (writer_running_) {
    writer_done_.expires_at(TimePoint::max());
    auto [ec] = co_await writer_done_.async_wait(net::deferred_tuple);
    (void)ec;
  }
  close_now();
  for (auto& [id, s] : streams_) s->kill();
}

void H2Connection::connection_error(std::string_view reason) {
  if (error_counted_) return;
  error_counted_ = true;
  worker_.stats().h2_connection_errors[static_cast<std::size_t>(h2_error_of(reason))].inc();
  PHI_LOG_DEBUG("[w{} c{}] HTTP/2 connection error: {}", worker_.id(), c_.id_, reason);
  if (streams_seen_ == 0 && worker_.audit_on()) {
    // Nothing else records it: a bad preface or a flood before any request.
    c_.req_snap_ = worker_.snapshot();
    worker_.audit_submit(render_connection_event(worker_.audit_json(), c_.connection_facts({}),
                                                 std::chrono::system_clock::now(), "h2-connection", "error",
                                                 "http2", reason.empty() ? "protocol_error" : reason, ""));
  }
}

// ---------------------------------------------------------------------------------------------
// Stream

net::awaitable<std::optional<Error>> H2Stream::read_body(std::string& out, bool& done) {
  const auto& cfg = *snap_->config;
  const auto limit = req_ ? req_->limits.body_bytes : 0;
  disarm(kUpSend);  // the caller's upstream send (if any) ended before it asked for more body
  // Bounded: each wait ends with bytes, the end, a reset or the body deadline.
  for (;;) {
    done = false;
    if (reset_ || c_.dead_) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
    auto* r = closed_ ? nullptr : c_.codec_.request(id_);
    if (r != nullptr && !r->body.empty()) {
      const auto before = out.size();
      c_.codec_.take_body(id_, out);
      body_taken_ += out.size() - before;
      if (limit != 0 && body_taken_ > limit) {
        co_return Error::downstream(ErrorKind::BodyTooLarge, "request body over the limit");
      }
      done = end_ && c_.codec_.request(id_) != nullptr && c_.codec_.request(id_)->body.empty();
      co_return std::nullopt;
    }
    if (end_) {
      done = true;
      co_return std::nullopt;
    }
    // Slow bodies, as HTTP/1.1: body_idle between pieces, and in all body_idle plus one second per
    // min_body_rate bytes of time spent waiting for the client.
    auto wait_for = cfg.timeouts.body_idle;
    if (const auto rate = cfg.limits.min_body_rate; rate != 0) {
      const auto allowed = cfg.timeouts.body_idle + std::chrono::milliseconds(body_taken_ * 1000 / rate);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(allowed - body_wait_);
      wait_for = std::clamp(left, std::chrono::milliseconds(0), wait_for);
    }
    arm(kBody, wait_for);
    const auto start = Clock::now();
    co_await wait(body_wake_);
    body_wait_ += Clock::now() - start;
    const bool late = fired_[kBody];
    disarm(kBody);
    if (late) co_return ConnectionCore::timeout_error(Phase::Body);
  }
}

H2Stream::Push H2Stream::push_body(std::string_view bytes) {
  if (reset_ || closed_ || c_.dead_) return Push::Gone;
  disarm(kUpRead);  // the caller's upstream read ended: it is relaying what it got
  if (bytes.empty()) return Push::Done;
  c_.codec_.send_data(id_, bytes);
  response_bytes_ += bytes.size();
  c_.wake_writer();
  return c_.codec_.queued(id_) <= c_.high_water_ ? Push::Done : Push::Wait;
}

net::awaitable<std::optional<Error>> H2Stream::send_body(std::string_view bytes) {
  switch (push_body(bytes)) {
    case Push::Gone:
      co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
    case Push::Done:
      co_return std::nullopt;
    case Push::Wait:
      break;
  }
  // Backpressure: the client's windows hold our bytes; wait until they drain to the low-water
  // mark, under a body_idle deadline that only this stream's progress moves.
  co_return co_await wait_queued(c_.low_water_);
}

net::awaitable<std::optional<Error>> H2Stream::wait_queued(std::size_t target) {
  const auto body_idle = snap_->config->timeouts.body_idle;
  // Bounded: each wait ends when frames were taken (the deadline moves only when this stream's
  // queued bytes went down), the stream or connection ends, or body_idle passes without progress.
  while (c_.codec_.queued(id_) > target) {
    if (reset_ || closed_ || c_.dead_) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
    if (tunnel_ && tunnel_closed_) co_return Error::downstream(ErrorKind::ClientClosed, "tunnel closed");
    if (dl_[kWrite] == kNever) {
      write_mark_ = c_.codec_.queued(id_);
      arm(kWrite, body_idle);
    }
    co_await wait(write_wake_);
    if (!fired_[kWrite]) continue;
    fired_[kWrite] = false;
    // body_idle without one byte of this stream taken by the client: a slow (or zero-window)
    // reader. When no stream of the connection made progress either, the connection window is
    // the culprit: the connection goes (its other streams are the same client's); else only this
    // stream is cancelled.
    undelivered_ = c_.codec_.queued(id_);
    if (c_.worker_.now() - c_.data_progress_ >= body_idle) {
      if (!c_.dead_) c_.slow_reader_ = true;
      c_.close_now();
    } else {
      reset(http::kH2Cancel);
    }
    co_return Error::downstream(ErrorKind::ClientTimeout, "client not reading");
  }
  disarm(kWrite);
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> H2Stream::push_paced(std::string_view bytes) {
  // Bounded: every round queues one slice (at least 1 byte) or ends; a wait is at most a slice's
  // time at the rate, and ends early when the stream is reset or the connection goes (wake()).
  while (!bytes.empty()) {
    const auto delay = pacer_.before_write(Clock::now());
    if (delay > Clock::duration::zero()) {
      if (!pace_timer_) pace_timer_.emplace(c_.worker_.io());
      pace_timer_->expires_after(delay);
      auto [ec] = co_await pace_timer_->async_wait(net::deferred_tuple);
      (void)ec;  // cancelled: the stream or connection ended (checked by push_body), or a spurious wake
      if (reset_ || closed_ || c_.dead_) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      continue;  // the delay is asked again: a cancelled wait never skips the rate
    }
    const auto n = pacer_.slice(bytes.size());
    const auto pushed = push_body(bytes.substr(0, n));
    if (pushed == Push::Gone) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
    pacer_.sent(n);
    bytes.remove_prefix(n);
    if (pushed == Push::Wait) {
      if (auto err = co_await wait_queued(c_.low_water_)) co_return err;
    }
  }
  co_return std::nullopt;
}

net::awaitable<void> H2Stream::flush() {
  // The coroutine is done but the client's windows may still hold the response's tail (up to
  // the high-water mark): without a deadline here, a client that never opens its window would
  // keep the stream, its buffers and the connection for ever (review finding 1).
  // The usual stream does not come here: the writer's round finishes it (run, settle_flushing).
  if (!flush_pending()) co_return;
  auto err = co_await wait_queued(0);
  if (err && err->kind == ErrorKind::ClientTimeout && facts_.outcome == Outcome::Proxied) {
    facts_.outcome = Outcome::ClientTimeout;
    reason_ = err->reason();
  }
}

void H2Stream::release() noexcept {
  // The stream may stay in the connection's map until the codec reports Closed: keep nothing
  // that was only the request's (review finding 4).
  req_.reset();
  // Its strings serve a later stream's head (the codec bounds and counts what it keeps).
  if (!c_.dead_) {
    try {
      c_.codec_.recycle(std::move(head_), head_bytes_);
    } catch (const std::bad_alloc&) {
      // Only a cache: a stream ends the same without it (review finding F5).
    }
  }
  head_ = http::MessageHead{};
  trailers_ = http::HeaderList{};
  attempts_ = std::vector<FailedAttempt>{};
  std::string().swap(set_cookie_);
  link_.discard();
  link_.release_memory();
  snap_.reset();
}

void H2Stream::local_reply(int status, std::string_view body, std::string_view location,
                           std::string_view more_fields) {
  status_ = status;
  c_.worker_.stats().count_response(status);
  http::HeaderList f;
  f.add("server", "phigate");
  f.add("content-type", "text/plain");
  if (status != 204) f.add("content-length", std::to_string(body.size()));  // RFC 9110 §8.6
  if (!location.empty()) f.add("location", location);
  http::add_raw_fields(f, extra_fields_);
  http::add_raw_fields(f, more_fields);
  const bool no_body = head_.method == "HEAD" || body.empty();
  send_head(status, f, no_body);
  if (!no_body && !closed_ && !c_.dead_) {
    c_.codec_.send_data(id_, body);
    response_bytes_ += body.size();
    end_response(nullptr);
  }
}

void H2Stream::reply_error(const Error& error, std::string_view more_fields) {
  reason_ = error.reason();
  const int status = error.status();
  if (status == 0 || reset_) return;
  if (head_sent_) {
    reset(http::kH2InternalError);  // too late for a status: end the stream abruptly
    return;
  }
  if (req_ && grpc_request_) {
    reply_grpc_error(*this, error);
    ended_ = true;
    return;
  }
  std::string body = std::to_string(status) + " " + http::reason_phrase(status);
  if (error.kind == ErrorKind::ClientCertificate || error.kind == ErrorKind::Misdirected) {
    body += ": ";
    body += error.context;  // tells the client what to fix; never PHI
  }
  body += "\n";
  local_reply(status, body, {}, more_fields);
}

net::awaitable<void> H2Stream::end_early() {
  // The client may still be sending the body we answered without: take and drop the rest for a
  // moment (HTTP/1.1's lingering close, per stream: up to 1 s and 1 MiB), crediting the window so
  // the client can finish, then RST_STREAM NO_ERROR (RFC 9113 §8.1). (The codec itself resets a
  // stream whose response completed before its request; then Closed ends this at once.)
  std::size_t dropped = 0;
  std::string scratch;
  // Bounded: 1 MiB of bytes or one second of waiting, whichever comes first.
  while (!end_ && !reset_ && !closed_ && !c_.dead_ && dropped < (1u << 20)) {
    scratch.clear();
    if (auto* r = c_.codec_.request(id_); r != nullptr && !r->body.empty()) {
      c_.codec_.take_body(id_, scratch);
      dropped += scratch.size();
      body_taken_ += scratch.size();
      body_forwarded(scratch.size());
      continue;
    }
    arm(kBody, std::chrono::seconds(1));
    co_await wait(body_wake_);
    const bool late = fired_[kBody];
    disarm(kBody);
    if (late) break;
  }
  // Not after our END_STREAM (the codec resets with NO_ERROR once it has gone out: a reset now
  // would drop response bytes still queued behind the client's window), nor a second time.
  if (!end_ && !ended_ && !reset_ && !closed_ && !c_.dead_) c_.codec_.reset(id_, http::kH2NoError);
  c_.wake_writer();
}

PhaseResult H2Stream::decide(bool again) {
  // Pinned for this stream: routes and clusters come from one generation, whatever reloads do
  // while it runs (each stream pins its own, as each HTTP/1.1 request does).
  auto& worker = c_.worker_;
  snap_ = worker.snapshot();
  const auto& snap = *snap_;
  auto& pc = c_.c_;
  pc.req_snap_ = snap_;  // peer_trusted() reads the request's snapshot
  extra_fields_ = snap.hsts_field;
  // A second decision: who verified the first one's Basic credentials (the field may be gone).
  const void* verified_by = again && req_ ? req_->auth_verified : nullptr;
  std::string verified_user = verified_by != nullptr ? req_->rare_or_empty().auth_user : std::string();
  // ... and what auth-url's answer allowed (the subrequest is not sent again under the same policy).
  ExternalAuthResult external_prev;
  if (again && req_ && req_->has_rare()) external_prev = std::move(req_->rare().auth_external);
  auto& r = req_.emplace(head_);
  grpc_request_ = is_grpc_request(head_.headers);
  ConnectionView view;
  view.tls = true;  // HTTP/2 is only offered over TLS (ALPN)
  view.peer_ip = pc.peer_ip_;
  view.peer_addr = &pc.peer_addr_;
  view.peer_trusted = pc.peer_trusted();
  view.conn_policy = pc.conn_policy_;
  if (pc.conn_policy_ != nullptr && pc.conn_policy_->verify() != config::VerifyClient::Off) {
    if (!pc.client_cert_) pc.client_cert_ = tls::describe_client(pc.stream_.native(), *pc.conn_policy_);
    view.client_cert = &*pc.client_cert_;
  }
  view.audit_on = worker.audit_on();
  view.audit_healthy = worker.audit_healthy();
  view.https_port = worker.https_port();
  view.random = static_cast<std::uint32_t>(worker.rng().next());
  view.again = again;
  view.now = std::chrono::steady_clock::now();
  view.auth_verified = verified_by;
  view.auth_verified_user = verified_user;
  view.auth_external_prev = &external_prev;
  auto decision = run_phases(r, snap, view);
  // A second decision (after a buffered body) starts from nothing of the first one's snapshot.
  facts_.route = {};
  facts_.ingress = {};
  facts_.canary = {};
  const auto& x = r.rare_or_empty();
  facts_.user_name = x.auth_user;
  facts_.user_email = {};
  facts_.host = r.host_norm;
  facts_.target = r.target.empty() ? std::string_view(r.head.target) : std::string_view(r.target);
  facts_.rewritten = !x.upstream_target.empty();
  facts_.satisfied_by_allowlist = r.satisfied_by_allowlist;
  if (r.route != nullptr) {
    facts_.route = r.route->name;
    if (r.policy != nullptr && r.policy->resource.rfind("Ingress ", 0) == 0) {
      facts_.ingress = std::string_view(r.policy->resource).substr(8);
    }
    if (r.canary && r.route->canary) facts_.canary = r.route->canary->ingress;
  }
  extra_fields_ = r.hsts ? snap.hsts_field : std::string_view{};
  facts_.outcome = decision ? decision->outcome : Outcome::Proxied;
  return decision;
}

void H2Stream::answer(const Decision& decision) {
  auto& r = *req_;
  const auto& x = r.rare_or_empty();
  if (is_redirect(decision) && !grpc_request_) {
    const int status = decision_status(decision);
    local_reply(status, redirect_body(decision), x.location);
  } else if (is_preflight(decision)) {
    local_reply(204, {}, {}, x.response_fields);
  } else if (is_auth_challenge(decision) && !grpc_request_) {
    reason_ = decision.error.reason();
    std::string fields(x.response_fields);
    fields += www_authenticate_field(r.policy->basic_auth.realm);
    local_reply(401, "401 Unauthorized\n", {}, fields);
  } else {
    reply_error(decision.error, x.reply_fields);
    // gRPC: auth_required stays auth_required (reply_grpc_error infers auth_failed from the kind).
    if (is_auth_challenge(decision)) facts_.outcome = decision.outcome;
  }
}

net::awaitable<PhaseResult> H2Stream::authorize() {
  // auth-type: basic: the credentials the phases accepted are verified off the event loop; then
  // auth-url's subrequest. Both before anything of the request (its body included) reaches a
  // backend or is buffered (basic_auth.hpp, auth_external.hpp).
  auto& r = *req_;
  PhaseResult decision;
  if (r.auth_pending) decision = co_await verify_basic_auth(r, c_.worker_.stats());
  if (!decision && r.auth_external_pending) {
    const AuthRequestInfo info{true, request_id_, r.client_ip, this};
    decision = co_await run_external_auth(c_.worker_, link_, *this, r, *snap_, info);
    // The subrequest's deadline slots are not the backend exchange's.
    disarm_upstream();
    fired_[kUpSend] = fired_[kUpRead] = false;
  }
  const auto& x = r.rare_or_empty();
  if (x.auth_user.empty() && !x.auth_external.user.empty()) facts_.user_name = x.auth_external.user;
  facts_.user_email = x.auth_external.email;
  if (!x.auth_external.set_cookie.empty()) {
    // auth-always-set-cookie, or an allowed request: the auth answer's cookies go to the client.
    auth_fields_.assign(extra_fields_);
    auth_fields_ += x.auth_external.set_cookie;
    extra_fields_ = auth_fields_;
  }
  if (decision) facts_.outcome = decision->outcome;
  co_return decision;
}

net::awaitable<void> H2Stream::run(std::shared_ptr<H2Connection> conn, std::shared_ptr<H2Stream> self) {
  auto& worker = c_.worker_;
  facts_.h2_stream = id_;
  facts_.start = std::chrono::system_clock::now();
  started_ = Clock::now();
  core::make_request_id(worker.rng(), request_id_);
  auto decision = decide();
  if (!decision && needs_authorize()) decision = co_await authorize();
  if (decision && !client_gone()) {
    answer(*decision);
    if (nothing_to_drain()) {
      c_.wake_writer();
    } else {
      co_await end_early();
    }
  } else if (client_gone()) {
    // Reset (or the connection went) while the phases ran: never forwarded (review finding 5);
    // the record says so.
    facts_.outcome = Outcome::ClientClosed;
    reason_ = "client_closed";
  } else {
    facts_.outcome = Outcome::Proxied;
    // No reference into the snapshot outlives this choice: forward_h1 may decide again under a newer
    // one (proxy-request-buffering), which can free this one.
    const bool grpc_cluster = snap_->clusters[req_->cluster].grpc;
    if (!protocol_.empty() && grpc_cluster) {
      // A gRPC backend speaks HTTP/2 only: an HTTP/1.1 upgrade must never be written to it (as an
      // HTTP/1.x client on a gRPC route is refused).
      const auto err = Error::downstream(ErrorKind::Unavailable, "grpc backend needs an HTTP/2 client");
      facts_.outcome = core::outcome_of(err);
      reply_error(err);
    } else if (!protocol_.empty()) {
      co_await forward_ws();
    } else if (grpc_cluster) {
      co_await forward_grpc(*this, *snap_, worker);
    } else {
      co_await forward_h1();
    }
    // A buffered body is no longer needed: its bytes go back to the worker's budget now, not after
    // the lingering below.
    body_hold_.release();
    std::string().swap(body_);
    if (!ended_ && !reset_) reset(http::kH2InternalError);  // never leave a stream half answered
    if (nothing_to_drain()) {
      c_.wake_writer();  // all end_early would do
    } else {
      co_await end_early();
    }
  }
  disarm_upstream();
  // The response is handed to the codec; the audit record waits until its bytes left (or the
  // client is found not to read them: review finding 1). The usual stream's bytes are taken by
  // the writer's next round, which was woken when they were queued: it finishes the stream then
  // (settle_flushing) and this coroutine ends here.
  if (flush_pending() && conn->writer_running_) {
    conn->flushing_.push_back(std::move(self));
    // Usually woken already (the response's submit did it); not if the writer took what it
    // could and went to sleep while this stream lingered (end_early): it settles the list.
    conn->wake_writer();
    co_return;
  }
  co_await flush();
  complete();
  // The stream (its destructor reaches the connection) goes before the connection: this frame
  // may hold the last reference to both (a tunnel that outlived its client connection), and
  // parameters are destroyed connection first. Nothing of *this is touched after it.
  self.reset();
}

void H2Stream::finish() {
  auto& worker = c_.worker_;
  disarm_all();
  link_.discard();
  // Bytes still in the codec (the client's windows held them) never reached the client: the
  // record counts only what left.
  if (!closed_) undelivered_ = std::max<std::uint64_t>(undelivered_, c_.codec_.queued(id_));
  response_bytes_ -= std::min(response_bytes_, undelivered_);
  // Reset (by the client, or with its connection) before the whole response left: a failure, also
  // when the response was complete in the codec but its tail never reached the client.
  // (An RFC 8441 tunnel ended by its idle timeout or a drain stays proxied: closed_by says why.)
  if (reset_ && (!ended_ || (undelivered_ > 0 && !tunnel_)) && facts_.outcome == Outcome::Proxied) {
    facts_.outcome = rejected_ ? Outcome::ClientBadRequest : Outcome::ClientClosed;
    if (reason_.empty()) reason_ = rejected_ ? "rejected" : "client_closed";
  }
  // Cut when we closed the connection on a slow reader (body_idle without a byte taken): the
  // stream timed out as its own write would have, whichever wait saw the connection go ("client
  // gone" there); the client did not leave it.
  if (cut_by_slow_reader_ && facts_.outcome == Outcome::ClientClosed) {
    facts_.outcome = Outcome::ClientTimeout;
    reason_ = "client_timeout";
  }
  count_outcome(worker.stats(), facts_.outcome);
  if (!worker.audit_on()) return;
  facts_.total = Clock::now() - started_;
  facts_.status = status_;
  facts_.reason = reason_;
  facts_.response_bytes = response_bytes_;
  facts_.request_bytes = body_taken_;
  facts_.request_id = request_id_;
  facts_.failed_attempts = attempts_;
  auto& pc = c_.c_;
  pc.req_snap_ = snap_;
  worker.audit_submit(render_request(worker.audit_json(),
                                     pc.connection_facts(req_ ? std::string_view(req_->client_ip) : ""),
                                     facts_, &head_, snap_->config->audit));
}

net::awaitable<std::optional<Error>> H2Stream::buffer_body() {
  const auto& lim = req_->limits;
  const auto budget = snap_->config->limits.request_buffer_worker_bytes;
  auto& stats = c_.worker_.stats();
  const auto shed = [&] {
    stats.request_buffer_shed.inc();
    return Error::downstream(ErrorKind::Overloaded, "request buffer budget spent");
  };
  const auto bound = lim.body_bytes != 0 ? std::min(lim.body_bytes, lim.buffer_bytes) : lim.buffer_bytes;
  buffered_ = true;
  // Nothing is charged for an announced length: memory is allocated, and charged, as bytes arrive
  // (review F1); and the connection's streams together hold at most their share of the budget.
  auto most = bound;
  if (head_.content_length) most = std::min(most, *head_.content_length);
  auto& share = c_.buffer_share_;
  share.limit = std::max(snap_->config->limits.request_buffer_bytes, budget / kConnectionShareDivisor);
  // Bounded: each round takes received bytes (at most the stream's window) or ends.
  std::string piece;
  for (bool done = false; !done;) {
    piece.clear();
    if (auto err = co_await read_body(piece, done)) co_return err;
    if (body_.size() + piece.size() > bound)
      co_return Error::downstream(ErrorKind::BodyTooLarge, "request body over the limit");
    if (!make_body_room(body_, body_.size() + piece.size(), most, body_hold_, stats.request_buffer_bytes,
                        budget, &share))
      co_return shed();
    body_.append(piece);
    // The window comes back only as bytes are held (they count against the budget from now).
    body_forwarded(piece.size());
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> H2Stream::send_request(const upstream::Timeouts& t,
                                                            std::string_view head, http::Framing framing) {
  if (buffered_) {
    // The body is whole in memory (buffer_body): head and body, as often as attempts need.
    const std::array<std::string_view, 2> parts{head, std::string_view(body_)};
    for (const auto bytes : parts) {
      if (bytes.empty()) continue;
      if (client_gone()) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
      auto [ec, n] = co_await link_.send(bytes, t, *this);
      attempt_sent_ += n;
      disarm_upstream();
      if (reset_) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
      if (auto err = link_.sent(ec, Retryable::OnlyIfReused, *this)) co_return err;
    }
    co_return std::nullopt;
  }
  std::string up_out(head);
  const bool has_body = framing.kind != http::Framing::Kind::None;
  bool first = true;
  std::uint64_t body_out = 0;
  // Bounded: each round forwards received bytes or ends with the body's end, an error or a timeout.
  for (;;) {
    bool done = !has_body;
    std::string piece;
    if (has_body) {
      if (auto err = co_await read_body(piece, done)) co_return err;
      body_out += piece.size();
      if (framing.kind == http::Framing::Kind::ContentLength && body_out > framing.length) {
        // The codec enforces content-length against DATA (RFC 9113 §8.1.1); defence in depth:
        // never write past the declared length (the excess would be a second request).
        co_return Error::downstream(ErrorKind::BadRequest, "body over content-length");
      }
      http::append_h1_body(up_out, piece, framing);
      if (done) http::append_h1_body_end(up_out, request_trailers(), framing);
    }
    if (!up_out.empty()) {
      // A stream the client reset is never (further) forwarded (review finding 5).
      if (client_gone()) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
      auto [ec, n] = co_await link_.send(up_out, t, *this);
      attempt_sent_ += n;
      disarm_upstream();
      if (reset_) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
      // Only the first write of a reused connection may have met a stale connection.
      if (auto err = link_.sent(ec, first ? Retryable::OnlyIfReused : Retryable::No, *this)) co_return err;
      first = false;
      up_out.clear();
    }
    body_forwarded(piece.size());
    if (done) co_return std::nullopt;
  }
}

net::awaitable<std::optional<Error>> H2Stream::relay_response(const upstream::Timeouts& t,
                                                              http::H1ResponseReader& rd) {
  using RS = http::H1ResponseReader::Status;
  auto& in = link_.input();
  std::string body;
  const auto upstream_error = [](Error e, Retryable r) {
    e.source = core::ErrorSource::Upstream;
    e.retryable = r;
    return e;
  };
  // limit-rate: this stream's DATA bytes go out at the rate after limit-rate-after.
  pacer_ = Pacer(req_->limits.response_rate, req_->limits.response_rate_after);
  // Bounded: each round reads from the upstream under the read timeout or relays what it sent.
  for (;;) {
    RS st = RS::NeedMore;
    if (in.empty()) {
      Error err;
      upstream::Link::IoResult io;
      if (std::exchange(read_now_, false) && link_.try_read(io)) {
        // The answer was there (forward_h1 yielded after sending): no asynchronous operation.
      } else if (link_.is_tls()) {
        io = co_await link_.read(t, *this);
      } else {
        io = co_await link_.read_plain(t, *this);
      }
      const auto [ec, n] = io;
      disarm_upstream();
      if (reset_) co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
      const auto rs = link_.received(ec, n, *this, err);
      if (rs == upstream::Link::ReadStatus::Error) co_return err;
      if (rs == upstream::Link::ReadStatus::Eof) {
        st = rd.eof(body);
        if (st == RS::Error) {
          co_return upstream_error(rd.error(), link_.got_bytes() ? Retryable::No : Retryable::OnlyIfReused);
        }
      }
    }
    if (st != RS::Complete && !in.empty()) {
      std::size_t used = 0;
      st = rd.feed(in.data(), in.size(), used, body);
      in.consume(used);
      if (st == RS::Error) co_return upstream_error(rd.error(), Retryable::No);
    }
    if (rd.head_ready() && !head_sent_) {
      const int status = rd.status();
      if (retry_statuses_ != 0 && (retry_statuses_ & upstream::status_condition(status)) != 0) {
        // proxy_next_upstream http_5xx: dropped unseen, the request goes to another endpoint.
        status_retry_ = status;
        co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "retried on status");
      }
      if (intercept_ != nullptr && intercepts(intercept_, status)) {
        // custom-http-errors: dropped unseen; its body is never read (the connection is discarded).
        intercepted_ = status;
        co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "intercepted");
      }
      c_.worker_.stats().count_response(status);
      facts_.upstream_first_byte = Clock::now() - up_sent_;
      // No attempt can use a buffered body once an answer is accepted for the client: its memory
      // and budget share go back now, not after the relay (a slow reader would hold them).
      body_hold_.release();
      std::string().swap(body_);
      const bool end = st == RS::Complete && body.empty() && rd.trailers().empty();
      const auto extra = set_cookie_.empty() ? extra_fields_ : std::string_view(set_cookie_);
      const auto& response_fields = req_->rare_or_empty().response_fields;
      const auto* edits = req_->response_edits();
      if (!response_fields.empty() || edits != nullptr) {
        // CORS fields replace the backend's own of those names; Location and Set-Cookie
        // rewrites (a copy to edit).
        http::HeaderList edited;
        rd.h2_fields(edited);
        http::apply_response_edits(edited, edits, response_fields);
        http::add_raw_fields(edited, extra);
        submit_head(status, edited, end || rd.bodyless());
      } else {
        // By reference: the backend's fields go from its parsed head to nghttp2 without a copy.
        auto& fields = c_.field_refs_;
        fields.clear();
        rd.h2_fields(fields);
        auto vetted = fields.size();  // other extras after them are checked
        if (!extra.empty() && extra.data() == snap_->hsts_field.data() &&
            extra.size() == snap_->hsts_field.size() && !snap_->hsts_value.empty()) {
          // The HSTS line alone (the common case): phigate's own digits and words, valid as is.
          fields.push_back({"strict-transport-security", snap_->hsts_value});
          ++vetted;
        } else {
          http::add_raw_fields(fields, extra);
        }
        submit_head(status, fields, end || rd.bodyless(), vetted);
      }
      if (end || rd.bodyless()) {
        // A bodyless status ends here; the upstream connection is reused only if it ended too.
        if (st == RS::Complete || rd.bodyless()) co_return std::nullopt;
      }
    }
    if (!body.empty() && head_sent_ && !rd.bodyless() && pacer_.active()) {
      auto err = co_await push_paced(body);  // the upstream is read again only once it is queued
      if (err) co_return err;
    } else if (!body.empty() && head_sent_ && !rd.bodyless()) {
      // send_body's work without its coroutine frame unless the client's windows make us wait.
      const auto pushed = push_body(body);
      body.clear();
      if (pushed == Push::Gone) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      if (pushed == Push::Wait) {
        if (auto err = co_await wait_queued(c_.low_water_)) co_return err;
      }
    }
    body.clear();
    if (st == RS::Complete) {
      if (!ended_) end_response(rd.trailers().empty() ? nullptr : &rd.trailers());
      co_return std::nullopt;
    }
  }
}

upstream::Pick H2Stream::begin_attempt(AttemptPlan& plan, const upstream::Cluster& cluster, int attempt) {
  const auto picked = plan.next();
  if (picked.index == upstream::kNoEndpoint) return picked;
  fired_[kUpSend] = fired_[kUpRead] = false;
  facts_.upstream = cluster.endpoints[picked.index].key;
  facts_.upstream_attempts = static_cast<unsigned>(attempt) + 1;
  set_cookie_.clear();
  if (picked.set_cookie) {
    set_cookie_ = extra_fields_;
    upstream::append_affinity_cookie(set_cookie_, cluster, picked.index, req_->route->affinity_cookie_path());
  }
  upstream::attempt_started(plan.balancer, picked.index);
  return picked;
}

net::awaitable<void> H2Stream::forward_h1() {
  auto& worker = c_.worker_;
  auto& pc = c_.c_;
  const auto* cr = closed_ ? nullptr : c_.codec_.request(id_);
  const std::uint64_t received = cr != nullptr ? cr->body_bytes : 0;
  const auto too_large = [&] {
    const auto err = Error::downstream(ErrorKind::BodyTooLarge, "request body over the limit");
    facts_.outcome = core::outcome_of(err);
    reply_error(err);
  };
  if (const auto limit = req_->limits.body_bytes; limit != 0 && end_ && received > limit) {
    too_large();
    co_return;
  }
  // proxy-request-buffering: "on": the whole body first, before any upstream is chosen or
  // connected; it then goes with Content-Length (its trailers dropped).
  if (req_->limits.buffer_body && (!end_ || received != 0)) {
    if (auto err = co_await buffer_body()) {
      facts_.outcome = core::outcome_of(*err);
      reply_error(*err);
      co_return;
    }
    // Reading the body can take minutes: the request goes on under the configuration, the audit
    // log's health and the endpoints current now, not those of when its head came (review F2).
    auto decision = decide(true);
    if (!decision && needs_authorize()) decision = co_await authorize();
    if (decision) {
      answer(*decision);
      co_return;
    }
    const auto& lim = req_->limits;
    if ((lim.body_bytes != 0 && body_.size() > lim.body_bytes) ||
        (lim.buffer_body && body_.size() > lim.buffer_bytes)) {
      too_large();
      co_return;
    }
    if (snap_->clusters[req_->cluster].grpc) {
      const auto err = Error::downstream(ErrorKind::Unavailable, "grpc backend needs an HTTP/2 client");
      facts_.outcome = core::outcome_of(err);
      reply_error(err);
      co_return;
    }
  }
  auto& r = *req_;
  auto& head = r.head;
  const auto& cluster = snap_->clusters[r.cluster];
  // The upstream head, built once: hop-by-hop fields out, one Cookie field (RFC 9113 §8.2.3),
  // ssl-client-* and forwarding fields ours, exactly as for an HTTP/1.1 client. The forwarding
  // fields go straight into the head as lines (forwarding_lines); nothing waits between here and
  // the head, so a scratch string serves.
  http::remove_hop_by_hop(head.headers);
  http::join_cookie_fields(head.headers);
  pc.req_snap_ = snap_;
  pc.set_client_cert_headers(head.headers, r.policy);
  thread_local std::string fwd;
  fwd.clear();
  const http::ForwardInfo info{pc.peer_ip_,    pc.peer_trusted(), "https",    r.host,
                               pc.local_port_, request_id_,       r.client_ip};
  if (snap_->audit_reads_forwarding) {
    http::set_forwarding_headers(head.headers, info);  // the audit record reads them there
  } else {
    http::forwarding_lines(head.headers, info, fwd);
  }
  const auto upstream_target = prepare_upstream_head(r, head.headers);
  const auto framing = buffered_ ? http::Framing{http::Framing::Kind::ContentLength, body_.size()}
                                 : http::h1_request_framing(head, end_, received);
  const bool has_body = framing.kind != http::Framing::Kind::None;
  std::string up_head;
  append_upstream_head(up_head, upstream_target, framing, fwd);
  // The same lines where they sit in up_head (just before its final CRLF), which outlives every
  // wait below: the scratch string does not.
  const std::string_view fwd_lines =
      std::string_view(up_head).substr(up_head.size() - 2 - fwd.size(), fwd.size());
  const upstream::Timeouts t{r.limits.connect, r.limits.send, r.limits.read};
  AttemptPlan plan(worker, cluster, r, head.method);
  auto& balancer = plan.balancer;
  bool entered_send = false;
  // Bounded by max_tries (plus one stale-connection retry) and the retry budget.
  for (int attempt = 0;; ++attempt) {
    const auto picked = begin_attempt(plan, cluster, attempt);
    if (picked.index == upstream::kNoEndpoint) {
      // ingress-nginx: a path whose Service has no active endpoint is served by its default-backend.
      if (attempt == 0 && r.route != nullptr && r.route->has_error_backend) {
        co_await proxy_to_error_backend(upstream_target, framing, fwd_lines);
        co_return;
      }
      const auto err = Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No);
      facts_.outcome = core::outcome_of(err);
      if (replaces_status(r.policy, err.status(), true)) {
        co_await serve_error_page(err.status(), &err, fwd_lines);
      } else {
        reply_error(err);
      }
      co_return;
    }
    const auto& ep = cluster.endpoints[picked.index];
    const auto attempt_start = plan.by_latency ? Clock::now() : Clock::time_point{};
    attempt_sent_ = 0;
    status_retry_ = 0;
    std::optional<Error> err;
    bool relayed = false;
    bool sending = false;
    http::H1ResponseReader rd(parser_limits(snap_->config->limits), head.method == "HEAD");
    if (client_gone()) {
      err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
    } else if (!link_.take_pooled(ep, attempt, worker.now(), cluster.tls.get())) {
      err = co_await link_.connect(ep, t, *this, cluster.tls.get());
      disarm_upstream();
    }
    // The client may have reset the stream while we connected: nothing is sent (finding 5). A
    // connect its reset cancelled is not the endpoint's failure either: passive checks must not
    // count it (a client could otherwise get endpoints ejected by resetting streams).
    if (client_gone()) err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
    if (!err) {
      up_sent_ = Clock::now();
      facts_.upstream_connect = link_.connect_time();
      entered_send = sending = true;
      retry_statuses_ =
          plan.status_retry_possible(has_body && !buffered_)
              ? static_cast<std::uint16_t>(plan.rs.when & ~(upstream::kNextError | upstream::kNextTimeout))
              : 0;
      intercepted_ = 0;
      intercept_ = r.policy;
      if (has_body) {
        err = co_await send_request(t, up_head, framing);
      } else if (client_gone()) {
        err = Error::downstream(ErrorKind::ClientClosed, "stream reset");  // never forwarded (finding 5)
      } else {
        // Most requests: the head alone, in one write, without send_request's coroutine frame,
        // and without an asynchronous operation when the socket takes it at once.
        net::error_code ec;
        std::size_t n = link_.try_send(up_head, ec);
        if (!ec && n < up_head.size()) {
          const auto [ec2, n2] = co_await link_.send(std::string_view(up_head).substr(n), t, *this);
          ec = ec2;
          n += n2;
        }
        attempt_sent_ += n;
        disarm_upstream();
        if (reset_) {
          err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
        } else {
          err = link_.sent(ec, Retryable::OnlyIfReused, *this);
        }
        if (!err && c_.streams_.size() > 1) {
          // Other streams go first (each sends its request): by the time this one reads, its
          // backend has usually answered, and the read finds the response instead of an empty
          // socket (a failed system call, then a wait for the poller).
          co_await net::asio::post(worker.io().get_executor(), net::asio::deferred);
          read_now_ = true;
          if (reset_) err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
        }
      }
      if (!err) {
        relayed = true;
        err = co_await relay_response(t, rd);
      }
      retry_statuses_ = 0;
      intercept_ = nullptr;
    }
    // A reset (or the connection lost) cancels the upstream wait under way: whatever error that
    // left is the client's doing, never reported against the endpoint.
    if (err && err->source != core::ErrorSource::Downstream && client_gone())
      err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
    upstream::attempt_ended(balancer, picked.index,
                            plan.by_latency ? Clock::now() - attempt_start : Clock::duration(-1), !err);
    if (!err) {
      plan.report(picked.index,
                  status_ >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success);
      // Back to the pool only when the response ended exactly at its framing and the request
      // body was all sent.
      link_.finish(rd.reusable(!link_.input().empty()) && (end_ || !has_body) && !closes_upstream(r),
                   Clock::now());
      co_return;
    }
    if (err->source == core::ErrorSource::Downstream) {
      // The client reset the stream, went away or sent a bad body: not the endpoint's fault.
      link_.discard();
      facts_.outcome = core::outcome_of(*err);
      if (head_sent_) {
        reason_ = err->reason();
        if (!reset_) reset(http::kH2Cancel);
      } else {
        reply_error(*err);
      }
      co_return;
    }
    if (intercepted_ != 0) {
      // custom-http-errors: its unread body must never meet another request: the connection goes.
      plan.report(picked.index, intercepted_ >= 500 ? upstream::AttemptResult::Status5xx
                                                    : upstream::AttemptResult::Success);
      link_.discard();
      co_await serve_error_page(std::exchange(intercepted_, 0), nullptr, fwd_lines);
      co_return;
    }
    upstream::AttemptEnd end;
    end.idempotent = plan.idempotent;
    end.body_consumed = has_body && entered_send && !buffered_;  // a buffered body is sent again
    end.reused = link_.reused();
    if (status_retry_ != 0) {
      end.failure = upstream::Failure::Status;
      end.status = status_retry_;
      plan.report(picked.index, status_retry_ >= 500 ? upstream::AttemptResult::Status5xx
                                                     : upstream::AttemptResult::Success);
    } else {
      const std::uint64_t sent = link_.is_tls() && sending && attempt_sent_ == 0 ? 1 : attempt_sent_;
      end.failure = upstream::classify(*err, sent, link_.got_bytes() || (relayed && head_sent_));
      plan.report(picked.index, attempt_result(*err));
    }
    attempts_.push_back(
        {ep.key, status_retry_ != 0 ? std::string_view("http_status") : err->reason(), status_retry_});
    link_.discard();
    PHI_LOG_DEBUG("[w{} c{} s{}] upstream {} attempt {}: {}", worker.id(), pc.id_, id_, ep.key, attempt + 1,
                  err->to_string());
    // RFC 9112 §9.3.1: the pooled connection was closed under us; once, free.
    if (!head_sent_ && plan.stale_retry(end)) continue;
    if (plan.retry(!head_sent_ && upstream::next_upstream_allows(plan.rs, end))) continue;
    facts_.outcome = core::outcome_of(*err);
    // custom-http-errors: phigate's own upstream error with a listed code gets the page too.
    if (!head_sent_ && replaces_status(r.policy, err->status(), true)) {
      co_await serve_error_page(err->status(), &*err, fwd_lines);
      co_return;
    }
    reply_error(*err);  // 502/504, or a reset once the head went out
    co_return;
  }
}

/// The HTTP/2 side of error_backend_attempts (error_backend.hpp): one HTTP/1.1 request to the
/// error backend, its answer relayed on this stream. `original`: the client's request (with its
/// body, `framing`) for a path without a ready endpoint; else the error page's GET /.
struct H2ErrorBackend {
  H2Stream& s;
  std::string_view head;
  http::Framing framing;
  bool original;
  const upstream::Cluster& cluster;
  upstream::Timeouts t;
  std::optional<http::H1ResponseReader> rd{};

  void begin(const upstream::Endpoint& ep, int attempt) {
    s.fired_[H2Stream::kUpSend] = s.fired_[H2Stream::kUpRead] = false;
    s.attempt_sent_ = 0;
    rd.emplace(parser_limits(s.snap_->config->limits), s.req_->head.method == "HEAD");
    if (original) {
      s.facts_.upstream = ep.key;
      s.facts_.upstream_attempts = static_cast<unsigned>(attempt) + 1;
    } else {
      rd->error_page_response();  // no 1xx but 100 (the page's GET / asked for no upgrade)
    }
  }
  net::awaitable<std::optional<Error>> connect(const upstream::Endpoint& ep, int attempt) {
    std::optional<Error> err;
    if (!s.link_.take_pooled(ep, attempt, s.c_.worker_.now(), cluster.tls.get())) {
      err = co_await s.link_.connect(ep, t, s, cluster.tls.get());
      s.disarm_upstream();
    }
    if (s.client_gone()) err = Error::downstream(ErrorKind::ClientClosed, "stream reset");
    co_return err;
  }
  net::awaitable<std::optional<Error>> exchange() {
    s.up_sent_ = Clock::now();
    std::optional<Error> err;
    if (original && framing.kind != http::Framing::Kind::None) {
      err = co_await s.send_request(t, head, framing);
    } else {
      auto [ec, n] = co_await s.link_.send(head, t, s);
      s.attempt_sent_ = n;
      s.disarm_upstream();
      err = s.reset_ ? Error::downstream(ErrorKind::ClientClosed, "stream reset")
                     : s.link_.sent(ec, Retryable::OnlyIfReused, s);
    }
    if (!err) err = co_await s.relay_response(t, *rd);  // intercept_ is null: never intercepted again
    co_return err;
  }
  upstream::AttemptResult result() const {
    return original && s.status_ >= 500 ? upstream::AttemptResult::Status5xx
                                        : upstream::AttemptResult::Success;
  }
  bool reusable() const {
    return rd->reusable(!s.link_.input().empty()) && (s.end_ || framing.kind == http::Framing::Kind::None);
  }
  bool tunnelled() const { return false; }
  bool response_started() const { return s.head_sent_; }
};

net::awaitable<void> H2Stream::proxy_to_error_backend(std::string_view upstream_target, http::Framing framing,
                                                      std::string_view fwd_lines) {
  auto& r = *req_;
  // The original request, with X-Code: 503 and the fields the default-backend is told; whatever
  // the client sent under those names is replaced (as over HTTP/1), forwarding_lines' (X-Request-ID)
  // too: they join the fields first.
  http::add_raw_lines(r.head.headers, fwd_lines);
  set_error_page_fields(r.head.headers, error_page_fields(r, 503, {}, request_id_));
  std::string up_head;
  append_upstream_head(up_head, upstream_target, framing);  // the head changed: measured again
  facts_.error_page = 503;
  set_cookie_.clear();
  const auto index = r.route->error_target;
  const auto& cluster = snap_->clusters[index];
  H2ErrorBackend codec{*this, up_head, framing,
                       true,  cluster, {r.limits.connect, r.limits.send, r.limits.read}};
  AttemptPlan plan(c_.worker_, cluster, r, r.head.method, index);
  const auto err = co_await error_backend_attempts(codec, link_, plan, cluster, r,
                                                   framing.kind != http::Framing::Kind::None);
  if (!err) co_return;
  facts_.outcome = core::outcome_of(*err);
  if (head_sent_ || err->source == core::ErrorSource::Downstream) {
    reason_ = err->reason();
    if (head_sent_) {
      if (!reset_) reset(http::kH2Cancel);
      co_return;
    }
  }
  reply_error(*err);
}

net::awaitable<void> H2Stream::serve_error_page(int code, const Error* own, std::string_view fwd_lines) {
  auto& r = *req_;
  if (own != nullptr) reason_ = own->reason();
  set_cookie_.clear();  // an affinity cookie for the main's endpoint has nothing to do with the page
  if (r.route != nullptr && r.route->has_error_backend && !client_gone()) {
    // Ours are fields (audit_reads_forwarding) or in the forwarding lines; a trusted proxy's
    // X-Request-Id stayed a field.
    const auto xff = http::forwarded_value(r.head.headers, fwd_lines, "x-forwarded-for");
    const auto* rid = r.head.headers.find("x-request-id");
    const std::string request_id = rid != nullptr ? *rid : request_id_;
    std::string page_head;
    append_error_page_head(page_head, r.head.method, r.host, xff.value_or(""),
                           error_page_fields(r, code, r.target, request_id));
    const auto index = r.route->error_target;
    const auto& cluster = snap_->clusters[index];
    H2ErrorBackend codec{*this, page_head, http::Framing{},
                         false, cluster,   {r.limits.connect, r.limits.send, r.limits.read}};
    AttemptPlan plan(c_.worker_, cluster, r, "GET", index);
    const auto err = co_await error_backend_attempts(codec, link_, plan, cluster, r, false);
    if (!err) {
      facts_.error_page = code;
      co_return;
    }
    if (err->source == core::ErrorSource::Downstream || head_sent_) {
      facts_.error_page = code;
      reason_ = err->reason();
      if (head_sent_ && !reset_) reset(http::kH2Cancel);
      co_return;
    }
  }
  // phigate's own answer with the same status: the replaced answer never shows.
  if (own != nullptr) {
    reply_error(*own);
    co_return;
  }
  reason_ = "error_page_unavailable";
  local_reply(code, std::to_string(code) + " " + http::reason_phrase(code) + "\n", {});
}

// ---------------------------------------------------------------------------------------------
// RFC 8441: WebSocket over HTTP/2 to an HTTP/1.1 WebSocket backend (docs/websocket.md)

net::awaitable<void> H2Stream::forward_ws() {
  auto& worker = c_.worker_;
  auto& pc = c_.c_;
  auto& r = *req_;
  auto& head = r.head;
  const auto& cluster = snap_->clusters[r.cluster];
  // Each tunnel holds a backend connection for as long as it lives (hours): one client connection
  // must not open max_concurrent_streams of them. The connection's own setting (its codec's).
  // And across connections: with the worker's client connections, under
  // limits.max_connections_per_worker (each tunnel is a backend connection that may live long).
  const auto& cfg = *snap_->config;
  if (c_.websockets_ >= c_.snap_->config->http2.max_websockets_per_connection ||
      worker.connection_count() + worker.h2_tunnels() >= cfg.limits.max_connections_per_worker) {
    facts_.outcome = Outcome::Overloaded;
    reason_ = "websocket_cap";
    local_reply(429, "429 Too Many Requests\n", {});
    co_return;
  }
  // A reload that turned WebSocket off (http2.websocket, upstream.upgrades) applies to streams
  // opened after it, also on connections whose SETTINGS still announce extended CONNECT.
  const bool listed = std::any_of(cfg.upstream.upgrades.begin(), cfg.upstream.upgrades.end(),
                                  [](const std::string& u) { return core::iequals(u, "websocket"); });
  if (!cfg.http2.websocket || cfg.http2.max_websockets_per_connection == 0 || !listed) {
    const auto err = Error::downstream(ErrorKind::BadRequest, "websocket over http/2 is off");
    facts_.outcome = core::outcome_of(err);
    reply_error(err);
    co_return;
  }
  ++c_.websockets_;
  ++worker.h2_tunnels();
  struct Slot {
    std::uint32_t& n;
    std::uint32_t& w;
    ~Slot() {
      --n;
      --w;
    }
  } slot{c_.websockets_, worker.h2_tunnels()};

  // The HTTP/1.1 upgrade phigate asks for itself (RFC 8441 §5, RFC 6455 §4.1): GET, the
  // client's end-to-end fields (Sec-WebSocket-Version, -Protocol, -Extensions, Origin pass), the
  // usual forwarding fields, and a key of our own: the HTTP/2 client sends none, and a backend's
  // accept must answer this hop's key.
  http::remove_hop_by_hop(head.headers);
  http::join_cookie_fields(head.headers);
  head.headers.remove("sec-websocket-key");
  head.headers.remove("sec-websocket-accept");
  head.headers.remove("content-length");  // refused by the codec; never framed on this hop
  pc.req_snap_ = snap_;
  pc.set_client_cert_headers(head.headers, r.policy);
  http::set_forwarding_headers(head.headers, {pc.peer_ip_, pc.peer_trusted(), "https", r.host, pc.local_port_,
                                              request_id_, r.client_ip});
  std::string key;
  const bool keyed = new_websocket_key(key);
  const std::string accept = keyed ? websocket_accept(key) : std::string();
  if (accept.empty()) {
    const auto err = Error::internal("no random bytes for a WebSocket key");
    facts_.outcome = core::outcome_of(err);
    reply_error(err);
    co_return;
  }
  head.headers.add("Connection", "Upgrade");
  head.headers.add("Upgrade", "websocket");
  head.headers.add("Sec-WebSocket-Key", key);
  // GET on this hop only: `head` is the stream's own head_, whose CONNECT the audit record shows.
  const auto upstream_target = prepare_upstream_head(r, head.headers, UpstreamHop::Upgrade);
  std::string up_head;
  http::append_request_head(up_head, "GET", upstream_target, head.headers, http::Framing{});

  const upstream::Timeouts t{r.limits.connect, r.limits.send, r.limits.read};
  AttemptPlan plan(worker, cluster, r, "GET");  // the upgrade is retried as a GET
  auto& balancer = plan.balancer;
  const auto client_closed = [&] {
    // Reset or connection lost while connecting or in the handshake: not the endpoint's fault,
    // so nothing is reported to passive health (an attacker resetting streams must not eject it).
    link_.discard();
    facts_.outcome = Outcome::ClientClosed;
    reason_ = "client_closed";
  };
  // Bounded by max_tries and the retry budget; each wait under the route's timeouts.
  for (int attempt = 0;; ++attempt) {
    const auto picked = begin_attempt(plan, cluster, attempt);
    if (picked.index == upstream::kNoEndpoint) {
      const auto err = Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No);
      facts_.outcome = core::outcome_of(err);
      reply_error(err);  // 503
      co_return;
    }
    const auto& ep = cluster.endpoints[picked.index];
    std::optional<Error> err;
    std::uint64_t sent = 0;
    http::H1ResponseReader rd(parser_limits(snap_->config->limits), false);
    rd.accept_switch();
    std::string body;
    // Never a pooled connection: the upgrade's connection becomes the tunnel (or is closed).
    if (!client_gone()) {
      err = co_await link_.connect(ep, t, *this, cluster.tls.get());
      disarm_upstream();
    }
    if (!err && !client_gone()) {
      up_sent_ = Clock::now();
      facts_.upstream_connect = link_.connect_time();
      auto [ec, n] = co_await link_.send(up_head, t, *this);
      disarm_upstream();
      sent = n;
      if (!client_gone()) err = link_.sent(ec, Retryable::No, *this);
    }
    // The response head: 1xx dropped, a 101 stops the reader at its head.
    while (!err && !client_gone() && !rd.head_ready()) {
      auto& input = link_.input();
      if (!input.empty()) {
        std::size_t used = 0;
        if (rd.feed(input.data(), input.size(), used, body) == http::H1ResponseReader::Status::Error) {
          err = rd.error();
        } else if (used == 0 && !rd.head_ready()) {
          err = Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "response head not parsed");
        }
        input.consume(used);
        continue;
      }
      auto [ec, n] = co_await link_.read(t, *this);
      disarm_upstream();
      if (client_gone()) break;
      Error e;
      const auto st = link_.received(ec, n, *this, e);
      if (st == upstream::Link::ReadStatus::Error) {
        err = std::move(e);
      } else if (st == upstream::Link::ReadStatus::Eof &&
                 rd.eof(body) == http::H1ResponseReader::Status::Error) {
        err = rd.error();
      }
    }
    if (client_gone()) {
      upstream::attempt_ended(balancer, picked.index, Clock::duration(-1), true);
      client_closed();
      co_return;
    }
    int status = err ? 0 : rd.status();
    // A backend that answered with a well-formed head, just not the switch asked for, is healthy
    // (an ordinary app answering 200 to any GET): passive checks must not count it, or any client
    // could get endpoints ejected by sending extended CONNECTs to plain routes.
    bool answered = !err;
    if (!err && status == 101) {
      if (const char* why = http::websocket_switch_violation(rd.head(), protocol_, accept))
        err = Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, why);
    } else if (!err && status >= 200 && status < 300) {
      // RFC 8441 §5: any 2xx opens the tunnel for the client; a backend that did not switch must
      // not make it believe so.
      err = Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "2xx to a WebSocket upgrade");
    }
    upstream::attempt_ended(balancer, picked.index, Clock::duration(-1), !err);
    if (err) {
      plan.report(picked.index, answered ? upstream::AttemptResult::Success : attempt_result(*err));
      attempts_.push_back({ep.key, err->reason(), 0});
      upstream::AttemptEnd end;
      end.idempotent = true;  // an upgrade is a GET without a body, as over HTTP/1.1
      end.body_consumed = false;
      end.reused = false;
      end.failure = upstream::classify(*err, link_.is_tls() && sent == 0 ? 1 : sent, link_.got_bytes());
      link_.discard();
      PHI_LOG_DEBUG("[w{} c{} s{}] upstream {} websocket attempt {}: {}", worker.id(), pc.id_, id_, ep.key,
                    attempt + 1, err->to_string());
      if (plan.retry(upstream::next_upstream_allows(plan.rs, end))) continue;
      facts_.outcome = core::outcome_of(*err);
      reply_error(*err);
      co_return;
    }
    plan.report(picked.index,
                status >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success);
    facts_.upstream_first_byte = Clock::now() - up_sent_;
    http::HeaderList fields;
    rd.h2_fields(fields);
    http::add_raw_fields(fields, set_cookie_.empty() ? extra_fields_ : std::string_view(set_cookie_));
    if (status != 101) {
      // A refusal (>= 300: 403, 426, ...) is relayed with its body, streamed under the client's
      // flow control and the read timeout; then the backend connection is closed.
      worker.stats().count_response(status);
      send_head(status, fields, rd.complete() && body.empty() && rd.trailers().empty());
      // Bounded: each round relays what came or reads once under the read timeout.
      while (!ended_) {
        if (!body.empty()) {
          if (auto e = co_await send_body(body)) {
            reason_ = e->reason();
            if (!reset_) reset(http::kH2Cancel);
            break;
          }
          body.clear();
        }
        if (rd.complete()) {
          end_response(nullptr);
          break;
        }
        auto& input = link_.input();
        if (input.empty()) {
          auto [ec, n] = co_await link_.read(t, *this);
          disarm_upstream();
          if (client_gone()) break;
          Error e;
          const auto st = link_.received(ec, n, *this, e);
          if (st == upstream::Link::ReadStatus::Error ||
              (st == upstream::Link::ReadStatus::Eof &&
               rd.eof(body) == http::H1ResponseReader::Status::Error)) {
            reason_ = st == upstream::Link::ReadStatus::Error ? e.reason() : rd.error().reason();
            reset(http::kH2InternalError);  // the head went out: too late for a status
            break;
          }
          continue;
        }
        std::size_t used = 0;
        if (rd.feed(input.data(), input.size(), used, body) == http::H1ResponseReader::Status::Error) {
          reason_ = rd.error().reason();
          reset(http::kH2InternalError);
          break;
        }
        input.consume(used);
      }
      link_.discard();
      co_return;
    }
    // The switch: the client's stream is the tunnel now (RFC 8441 §5: a 2xx, here 200). The
    // backend's accept is this hop's (hop-by-hop by nature): not passed.
    fields.remove("sec-websocket-accept");
    worker.stats().count_response(200);
    send_head(200, fields, false);
    co_await tunnel(t);
    link_.discard();
    co_return;
  }
}

net::awaitable<void> H2Stream::tunnel(const upstream::Timeouts& t) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto& worker = c_.worker_;
  auto& stats = worker.stats();
  const auto started = Clock::now();
  stats.tunnels_opened.inc();
  stats.tunnels_open.add(1);
  if (worker.audit_on()) {
    auto& pc = c_.c_;
    pc.req_snap_ = snap_;
    worker.audit_submit(render_tunnel_start(worker.audit_json(), pc.connection_facts(req_->client_ip),
                                            std::chrono::system_clock::now(), request_id_, protocol_,
                                            facts_.route, facts_.upstream, id_));
  }
  tunnel_ = true;
  // The slots are idle deadlines from here on (tunnel.cpp's rule, ingress-nginx's
  // proxy-send-timeout / proxy-read-timeout): re-armed each time bytes move that way.
  arm(kUpSend, t.send);
  arm(kUpRead, t.read);
  // The stream keeps its pinned snapshot: a reload changes nothing here.
  co_await (tunnel_to_upstream(t) && tunnel_to_client(t));
  tunnel_ = false;
  disarm_upstream();
  const auto why = tunnel_closed_.value_or(TunnelClose::Client);
  stats.tunnels_open.add(-1);
  stats.tunnels_closed[static_cast<std::size_t>(why)].inc();
  PHI_LOG_DEBUG("[w{} c{} s{}] tunnel closed: {}", worker.id(), c_.c_.id_, id_,
                metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)]);
  switch (why) {
    case TunnelClose::Client:    // END_STREAM to a TLS backend: both sides close, cleanly
    case TunnelClose::Upstream:  // the backend closed: END_STREAM went to the client
      if (!ended_) end_response(nullptr);
      break;
    case TunnelClose::Idle:
    case TunnelClose::Drain:
      // phigate ended a healthy tunnel (as over HTTP/1.1: proxied, closed_by says why).
      ended_ = true;
      reset(http::kH2Cancel);
      break;
    case TunnelClose::UpstreamError:
      // RFC 9113 §8.5: the tunnel's TCP connection failed.
      facts_.outcome = Outcome::UpstreamReset;
      reason_ = "upstream_reset";
      if (!reset_) reset(http::kH2ConnectError);
      break;
    default:  // ClientError: the client reset the stream or the connection went
      facts_.outcome = Outcome::ClientClosed;
      reason_ = "client_closed";
      break;
  }
  facts_.tunnel_protocol = protocol_;
  facts_.tunnel_to_upstream = tunnel_to_upstream_;
  facts_.tunnel_to_client = tunnel_to_client_;
  facts_.tunnel_duration = Clock::now() - started;
  facts_.tunnel_closed_by = metrics::WorkerShard::kTunnelCloseNames[static_cast<std::size_t>(why)];
}

net::awaitable<void> H2Stream::tunnel_to_upstream(const upstream::Timeouts& t) {
  auto& stats = c_.worker_.stats();
  std::string piece;
  // Bounded: each round forwards what the client sent (at most its window: the codec returns
  // window only once the bytes went upstream) or waits for more; the tunnel's end wakes it.
  for (;;) {
    if (tunnel_closed_) co_return;
    if (reset_ || closed_ || c_.dead_) {
      end_tunnel(c_.dead_ && c_.worker_.draining() ? TunnelClose::Drain : TunnelClose::ClientError);
      co_return;
    }
    piece.clear();
    if (auto* rq = c_.codec_.request(id_); rq != nullptr && !rq->body.empty())
      c_.codec_.take_body(id_, piece);
    if (!piece.empty()) {
      auto [ec, n] = co_await link_.send(piece, t, tunnel_wait_);
      if (tunnel_closed_) co_return;
      if (ec) {
        end_tunnel(TunnelClose::UpstreamError);
        co_return;
      }
      tunnel_to_upstream_ += n;
      stats.tunnel_bytes_to_upstream.inc(n);
      body_forwarded(n);
      arm(kUpSend, t.send);
      continue;
    }
    if (end_) {
      // The client's END_STREAM (RFC 8441 §5: its FIN). A plain TCP backend gets the half-close
      // and may still answer; over TLS a half-close is a close_notify, so both sides close.
      if (link_.is_tls()) {
        end_tunnel(TunnelClose::Client);
      } else {
        link_.shutdown_send();
        disarm(kUpSend);  // nothing more goes this way: only the read timeout is left
      }
      co_return;
    }
    if (piece.capacity() > http::H2ServerSession::kLowWater)
      std::string().swap(piece);  // idle tunnels hold nothing
    co_await wait(body_wake_);
  }
}

net::awaitable<void> H2Stream::tunnel_to_client(const upstream::Timeouts& t) {
  auto& stats = c_.worker_.stats();
  auto& input = link_.input();
  // Bounded: each round relays what the backend sent (the link's fixed buffer; send_body waits
  // while the client's windows hold more than the high-water mark) or reads once.
  for (;;) {
    if (!input.empty()) {
      const std::size_t n = input.size();
      auto err = co_await send_body(std::string_view(input.data(), n));
      if (tunnel_closed_) co_return;
      if (err) {
        // A client that takes nothing for body_idle (zero window) loses the stream.
        end_tunnel(err->kind == ErrorKind::ClientTimeout ? TunnelClose::Idle : TunnelClose::ClientError);
        co_return;
      }
      input.consume(n);
      tunnel_to_client_ += n;
      stats.tunnel_bytes_to_client.inc(n);
      arm(kUpRead, t.read);
    }
    if (tunnel_closed_) co_return;
    auto [ec, n] = co_await link_.read(t, tunnel_wait_);
    if (tunnel_closed_) co_return;
    Error err;
    const auto rs = link_.received(ec, n, tunnel_wait_, err);
    if (rs == upstream::Link::ReadStatus::Eof) {
      end_response(nullptr);  // the backend's FIN: END_STREAM (RFC 8441 §5)
      end_tunnel(TunnelClose::Upstream);
      co_return;
    }
    if (rs == upstream::Link::ReadStatus::Error) {
      end_tunnel(TunnelClose::UpstreamError);
      co_return;
    }
  }
}

}  // namespace phigate::proxy::detail
