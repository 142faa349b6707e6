#pragma once
// Private to proxy: one HTTP/1 client connection, TLS or plain, served request by request. It
// only does I/O and bookkeeping: the HTTP/1 exchange rules are http::Http1Exchange's (framing,
// 1xx, 100-continue, keep-alive, reuse), the decisions are the phases' (phases.hpp), the
// upstream side is upstream::Link's (endpoint, pool, connect, retry). ARCHITECTURE.md, "Life of
// a request". One class for TLS and plain: the stream branches at run time.
#include <memory>
#include <optional>
#include <vector>

#include "audit_events.hpp"
#include "body_buffer.hpp"
#include "connection_core.hpp"
#include "error_page.hpp"
#include "pacer.hpp"
#include "phases.hpp"
#include "phigate/http/exchange.hpp"
#include "phigate/net/buffer.hpp"
#include "phigate/tls/host_policy.hpp"
#include "phigate/tls/stream.hpp"
#include "phigate/upstream/link.hpp"

namespace phigate::proxy::detail {

inline constexpr std::size_t kBufferBytes = net::Buffer::kBlockBytes;  // from the per-thread cache

struct TunnelState;       // tunnel.cpp: one upgraded connection's splice
struct PassthroughState;  // passthrough.cpp: one TLS passthrough connection's splice
class H2Connection;       // h2_connection.cpp: the HTTP/2 driver a connection that negotiated h2 is handed to
class H2Stream;           // h2_connection.cpp: one of its streams

http::ParserLimits parser_limits(const config::LimitsSpec& l);

/// The request in progress: emplaced when it starts, destroyed when it ends (no hand reset).
struct InFlight {
  RequestFacts facts;          // its audit record
  std::optional<Request> req;  // once its head is complete
  std::string request_id;
  Clock::time_point started{};  // head complete
  Clock::time_point up_sent{};  // head sent upstream
  Clock::duration body_wait{};  // waiting for request body bytes (min_body_rate)
  std::uint64_t client_bytes = 0;
  int status = 0;                       // sent to the client (0: none)
  std::string_view reason;              // error that ended it
  std::string set_cookie;               // extra response fields with an affinity Set-Cookie (else empty)
  std::vector<FailedAttempt> attempts;  // failed attempts, in order (allocates only when one fails)
  bool head_started = false;            // a byte of it arrived
  // proxy-request-buffering: "on": the whole body, de-chunked, read before the upstream was
  // connected (sent with Content-Length, again on a retry), and its share of the worker's budget;
  // both go when the request ends, whichever way it ends.
  bool buffered = false;
  std::string body;
  BodyHold body_hold;
};

class ProxyConnection final : public ConnectionCore, private upstream::Deadline {
 public:
  /// `tls`: the connection came in on an https listener (handshake first); else plain HTTP.
  ProxyConnection(WorkerImpl& worker, SnapshotPtr snap, net::tcp::socket sock, bool tls);

  /// The connection's whole life: handshake (TLS), requests, close. Holds `self` until the end.
  static net::awaitable<void> run(std::shared_ptr<ProxyConnection> self);

  void expire() override;
  void drain() override;
  void release_idle_memory() noexcept override;

 private:
  // HTTP/2 (ALPN h2): the driver serves the streams over this connection's stream_, peer and TLS
  // facts, and takes over expire/drain/release_idle_memory while it runs.
  friend class H2Connection;
  friend class H2Stream;
  enum class HeadResult { Ready, Closed, Failed };

  // upstream::Deadline: the link's waits share the connection's deadline.
  void arm_upstream(Wait w, std::chrono::milliseconds d) noexcept override {
    arm(w == Wait::Connect ? Phase::UpConnect : w == Wait::Send ? Phase::UpWrite : Phase::UpRead, d);
  }
  bool upstream_timed_out() const noexcept override { return timed_out_; }

  net::awaitable<void> serve();
  /// PROXY protocol listeners: takes the header off the socket and adopts its client address.
  net::awaitable<bool> read_proxy_header();
  /// TLS passthrough (snapshot has passthrough hosts): reads the ClientHello off the socket. When
  /// it names a passthrough host the connection is spliced to its backend here (true: the
  /// connection is done); otherwise its bytes are handed to the TLS stream unchanged (false: go on
  /// with the handshake). A client that closes or stalls before a whole hello is done too (audited).
  net::awaitable<bool> passthrough_or_terminate();
  /// Splices the connection to a ready endpoint of `target`'s cluster, `hello` first.
  net::awaitable<void> passthrough(const Snapshot::Passthrough& target, std::string_view server_name,
                                   std::string_view hello);
  net::awaitable<void> passthrough_pump(PassthroughState& s, bool to_upstream);
  void end_passthrough(PassthroughState& s, metrics::WorkerShard::TunnelClose why) noexcept;
  void expire_passthrough();
  /// PROXY header when configured, then the TLS handshake (false: give up).
  net::awaitable<bool> start_session();
  /// Between requests: waits, holding no buffer, until the next request's first byte can be read.
  net::awaitable<bool> wait_for_request();
  net::awaitable<HeadResult> read_request_head(InFlight& f);
  /// One request/response exchange. True when the connection may carry on.
  net::awaitable<bool> serve_one(InFlight& f);
  /// Forwards the request through its route's cluster and streams the response back.
  /// Runs the phases under the worker's current snapshot (re-pinned) for f's head: fills f.req and
  /// its audit facts; a Decision to answer, or nullopt to proxy.
  PhaseResult decide(InFlight& f, bool again = false);
  /// After decide(): auth-type: basic verifies the credentials it accepted (f.req->auth_pending),
  /// then auth-url's subrequest runs (f.req->auth_external_pending; auth_external.hpp), before
  /// anything of the request goes upstream or is buffered.
  net::awaitable<PhaseResult> authorize(InFlight& f);
  net::awaitable<bool> answer(InFlight& f, const Decision& decision);
  net::awaitable<bool> proxy_request(InFlight& f);
  net::awaitable<bool> forward_request(InFlight& f);
  net::awaitable<std::optional<core::Error>> send_request(InFlight& f, const upstream::Timeouts& t);
  /// proxy-request-buffering: reads the whole body into f.body (de-chunked) within the request's
  /// bound (else 413) and the worker's budget (else 503, shed), under the body timeouts.
  net::awaitable<std::optional<core::Error>> buffer_request_body(InFlight& f);
  /// Waits for client body bytes into in_ (100-continue first when due) under body_idle and
  /// min_body_rate; an error when the client is too slow or gone.
  net::awaitable<std::optional<core::Error>> read_body_bytes(InFlight& f);
  net::awaitable<std::optional<core::Error>> relay_response(InFlight& f, const upstream::Timeouts& t);
  net::awaitable<std::optional<core::Error>> flush_upstream(const upstream::Timeouts& t, core::Retryable r);
  /// custom-http-errors: answers the request with its route's error backend's page for `code`
  /// (GET /, X-Code…), or, when that backend cannot answer, with phigate's own `code` reply
  /// (`own`: phigate's error, replied as such). Nothing of the request's answer reached the client.
  net::awaitable<bool> serve_error_page(InFlight& f, int code, const core::Error* own);
  /// One exchange with the route's error backend (Route::error_target): `head` sent (with
  /// `with_body`, the client's body after it), the answer relayed, the connection pooled or
  /// discarded. A second try only after a stale pooled connection. nullopt: relayed.
  net::awaitable<std::optional<core::Error>> error_backend_exchange(InFlight& f, std::string_view head,
                                                                    bool with_body);
  /// default-backend: the path has no usable endpoint; the original request goes to the error
  /// backend with X-Code: 503 (and the other X-* fields).
  net::awaitable<bool> proxy_to_error_backend(InFlight& f, std::string_view upstream_target);
  /// After a 101 to an upgrade: splices client and upstream byte for byte until either side ends
  /// (tunnel.cpp). True when the connection may carry on (never: a tunnel ends the connection).
  net::awaitable<bool> tunnel(InFlight& f, const upstream::Timeouts& t);
  net::awaitable<void> tunnel_to_upstream(TunnelState& s, const upstream::Timeouts& t);
  net::awaitable<void> tunnel_to_client(TunnelState& s, const upstream::Timeouts& t);
  /// Ends the splice once (the first reason wins): both sides are shut down, pending I/O cancelled.
  void end_tunnel(TunnelState& s, metrics::WorkerShard::TunnelClose why) noexcept;
  /// The deadline fired while splicing: a direction idle too long or the drain deadline ends it.
  void expire_tunnel();
  /// Writes out_ to the client and clears it.
  net::awaitable<net::error_code> flush_client(InFlight& f);
  /// flush_client under limit-rate: out_ in pacer slices, a pace_timer_ wait before each one that
  /// would go over the rate (the upstream is not read meanwhile: backpressure).
  net::awaitable<net::error_code> flush_paced(InFlight& f, Pacer& pacer);
  /// A local response (the codec decides close and linger). True when the connection may go on.
  net::awaitable<bool> reply(InFlight& f, int status, std::string_view body, std::string_view location,
                             std::string_view extra_fields, bool must_close);
  /// `more_fields`: the refusal's own fields after HSTS (Request::reply_fields: Retry-After).
  net::awaitable<bool> reply_error(InFlight& f, const core::Error& error, bool must_close,
                                   std::string_view more_fields = {});
  /// After a reply that closes while the client may still be sending: drain briefly, then close.
  net::awaitable<void> linger();

  /// Audit: the facts of the connection, and one record per request / failed connection.
  ConnectionFacts connection_facts(std::string_view client_ip);
  void finish_request(InFlight& f);
  void audit_connection_failure(std::string_view action, std::string_view reason, std::string_view detail);
  bool peer_trusted();
  /// Replaces client-supplied ssl-client-* fields with the connection's certificate facts.
  void set_client_cert_headers(http::HeaderList& headers, const config::RoutePolicy* policy);
  void close() noexcept;

  tls::Stream stream_;  // TLS, or plain when tls_ is false
  bool tls_;
  bool first_request_ = true;  // no request has been served on this connection yet
  bool close_after_response_ = false;
  bool linger_ = false;  // closing after a reply while the client may still be sending
  net::tcp::endpoint peer_;
  std::uint16_t local_port_ = 0;
  std::string socket_ip_;  // the socket peer, always
  std::string peer_ip_;    // the socket peer, or the client a PROXY protocol header named
  std::uint16_t peer_port_ = 0;
  std::optional<access::Address> peer_addr_;  // for trusted proxies
  SnapshotPtr req_snap_;                      // pinned for the current request (routes, clusters)
  std::uint64_t trusted_gen_ = 0;
  bool trusted_ = false;
  const tls::HostPolicy* conn_policy_ = nullptr;       // chosen at handshake; lives in snap_->tls
  std::optional<tls::ClientCertificate> client_cert_;  // described once, on first need
  std::string server_name_;                            // SNI, for the audit record
  std::string_view extra_fields_;                      // added to local replies and responses (HSTS over TLS)
  core::Error error_;                                  // why the head could not be read
  net::Buffer in_{kBufferBytes};
  std::string out_;
  std::string up_head_;    // the upstream request head, kept for a retry
  std::string fwd_lines_;  // its forwarding fields (http::forwarding_lines), for an error backend's head
  // extra_fields_ plus an auth answer's Set-Cookie lines (auth-url), when it has any.
  std::string auth_fields_;
  std::string up_out_;
  http::Http1Exchange ex_;
  upstream::Link link_;
  std::uint64_t attempt_sent_ = 0;    // request bytes written upstream on the current attempt
  std::uint16_t retry_statuses_ = 0;  // proxy_next_upstream status bits live on this attempt
  int status_retry_ = 0;              // the attempt's answer was dropped for a retry: its status
  const config::RoutePolicy* intercept_ = nullptr;  // custom-http-errors live on this attempt
  int intercepted_ = 0;                      // the attempt's answer was dropped for an error page: its status
  TunnelState* tunnel_ = nullptr;            // while tunnel() splices (its frame owns the state)
  PassthroughState* passthrough_ = nullptr;  // while passthrough() connects or splices (its frame owns it)
  bool h2_ = false;                  // TLS negotiated ALPN h2: run() hands the connection to H2Connection
  H2Connection* h2_conn_ = nullptr;  // while the HTTP/2 driver runs (it owns itself)
  /// limit-rate's waits between writes (flush_paced); made on first use, cancelled by expire().
  std::optional<net::asio::steady_timer> pace_timer_;
};

}  // namespace phigate::proxy::detail
