#pragma once
// Private to proxy: one client connection, TLS or plain, served request by request. Over TLS
// every request is proxied; over plain HTTP a request is redirected to HTTPS unless its route
// explicitly allows plain HTTP (Ingress `ssl-redirect: "false"` without `force-ssl-redirect`).
// One class for both: the stream branches at run time, so the code exists once.
#include <memory>
#include <optional>

#include "audit_events.hpp"
#include "connection_core.hpp"
#include "phigate/tls/host_policy.hpp"
#include "phigate/tls/stream.hpp"
#include "phigate/upstream/pool.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

class ProxyConnection final : public ConnectionCore {
 public:
  /// `tls`: the connection came in on an https listener (handshake first); else plain HTTP.
  ProxyConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock, bool tls);

  /// The connection's whole life: handshake (TLS), requests, close. Holds `self` until the end.
  static net::awaitable<void> run(std::shared_ptr<ProxyConnection> self);

  void expire() override;
  void drain() override;

 private:
  net::awaitable<void> serve();
  /// After a reply that closes while the client may still be sending: drain briefly, then close.
  net::awaitable<void> linger();
  /// Audit: the facts of the connection, and one record per request / failed connection.
  ConnectionFacts connection_facts();
  void finish_request();
  void audit_connection_failure(std::string_view action, std::string_view reason, std::string_view detail);
  /// Marks how this request ended (audit phigate.decision / phigate.rule / event.outcome).
  void decide(core::Outcome o) noexcept { rf_.outcome = o; }
  /// PROXY protocol listeners: takes the header off the socket and adopts its client address.
  /// False when it is missing, malformed or late.
  net::awaitable<bool> read_proxy_header();
  /// PROXY header when configured, then the TLS handshake (false: give up). Plain: nothing more.
  net::awaitable<bool> start_session();
  /// One request/response exchange. True when the connection may carry on.
  net::awaitable<bool> serve_one();
  net::awaitable<bool> redirect_to_https();
  /// Forwards the current request through `route`'s cluster and streams the response back.
  net::awaitable<bool> proxy_request(const router::Route& route, RequestLimits limits);
  net::awaitable<std::optional<core::Error>> connect_upstream(const net::tcp::endpoint& ep,
                                                              RequestLimits limits);
  net::awaitable<std::optional<core::Error>> send_request(bool chunked, RequestLimits limits);
  /// Reads the upstream response and streams it to the client. `started` tells whether any
  /// byte went to the client (after which no error reply is possible).
  net::awaitable<std::optional<core::Error>> relay_response(bool& started, bool& got_bytes,
                                                            RequestLimits limits);
  net::awaitable<net::error_code> write_upstream(const char* data, std::size_t n, RequestLimits limits);
  /// Writes and clears up_out_; a failure is an upstream error with retry class `r`.
  net::awaitable<std::optional<core::Error>> flush_upstream(RequestLimits limits, core::Retryable r);
  bool peer_trusted();

 public:
  void release_idle_memory() noexcept override;

 private:
  /// Sets client_ip_/client_addr_ for this request: the peer, or the client named by
  /// X-Forwarded-For when the peer is a trusted proxy.
  void resolve_client();
  /// TLS: the request's Host must have the TLS policy the handshake negotiated for the SNI
  /// (421 otherwise), and its client-certificate rule must hold (400). Null when it may go on.
  std::optional<core::Error> check_tls_policy();
  /// Replaces client-supplied ssl-client-* fields with the connection's certificate facts.
  void set_client_cert_headers(http::HeaderList& headers, const config::RoutePolicy* policy);
  void close() noexcept;

  tls::Stream stream_;  // TLS, or plain when tls_ is false
  bool tls_;
  net::tcp::endpoint peer_;
  std::uint16_t local_port_ = 0;
  std::string socket_ip_;  // the socket peer, always
  std::string peer_ip_;    // the socket peer, or the client a PROXY protocol header named
  std::uint16_t peer_port_ = 0;
  std::optional<access::Address> peer_addr_;  // for trusted proxies
  std::string client_ip_;                     // this request's client (allow/deny lists, X-Real-IP)
  std::optional<access::Address> client_addr_;
  std::vector<std::string_view> xff_values_;  // scratch for resolve_client
  SnapshotPtr req_snap_;                      // pinned for the current request (routes, clusters)
  std::uint64_t trusted_gen_ = 0;
  bool trusted_ = false;
  const tls::HostPolicy* conn_policy_ = nullptr;       // chosen at handshake; lives in snap_->tls
  std::optional<tls::ClientCertificate> client_cert_;  // described once, on first need
  std::optional<upstream::Connection> up_;
  RequestFacts rf_;                  // the current request, for its audit record
  Clock::time_point req_started_{};  // when its head was complete
  Clock::time_point up_sent_{};      // when its head went to the upstream
  std::string server_name_;          // SNI, for the audit record
  std::string deny_rule_;            // scratch: which list denied
  net::Buffer up_in_{kBufferBytes};
  std::string up_head_;  // the upstream request head, kept for a retry
  std::string up_out_;
  std::string host_;
  std::string host_norm_;   // host_ lower-cased, without port (TLS policy, audit)
  std::string target_;      // the request target, normalised (what is routed and forwarded)
  std::string route_path_;  // scratch: target_'s path without ;parameters, when it has any
  http::Parser resp_parser_;
  std::string request_id_;
  std::uint64_t request_body_bytes_ = 0;
  Clock::duration body_wait_{};  // time spent waiting for request body bytes (min_body_rate)
  bool sent_continue_ = false;
  bool client_keep_alive_ = true;
};

/// "https://host[:port]target" for a Host value and a request target, or "" when the Host is
/// not a plain hostname/IP (which would let a client inject into the Location header).
std::string https_location(std::string_view host, std::string_view target, std::uint16_t https_port);

}  // namespace phigate::proxy::detail
