#pragma once
// Private to proxy: one TLS client connection, proxied request by request to upstreams.
#include <memory>
#include <optional>

#include "connection_core.hpp"
#include "phigate/tls/stream.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::proxy::detail {

class HttpsConnection final : public ConnectionCore, public std::enable_shared_from_this<HttpsConnection> {
 public:
  HttpsConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock);

  /// The connection's whole life: handshake, requests, close. Holds `self` until the end.
  static net::awaitable<void> run(std::shared_ptr<HttpsConnection> self);

  void expire() override;
  void drain() override;

 private:
  net::awaitable<void> serve();
  /// One request/response exchange. True when the connection may carry on.
  net::awaitable<bool> serve_one();
  /// Forwards the current request through `route`'s cluster and streams the response back.
  net::awaitable<bool> proxy_request(SnapshotPtr snap, const router::Route* route);
  net::awaitable<std::optional<core::Error>> connect_upstream(const net::tcp::endpoint& ep);
  net::awaitable<std::optional<core::Error>> send_request(bool chunked);
  /// Reads the upstream response and streams it to the client. `started` tells whether any
  /// byte went to the client (after which no error reply is possible).
  net::awaitable<std::optional<core::Error>> relay_response(bool& started, bool& got_bytes);
  net::awaitable<net::error_code> write_upstream(const char* data, std::size_t n);
  void close() noexcept;

  tls::Stream tls_;
  net::tcp::endpoint peer_;
  std::uint16_t local_port_ = 0;
  std::string peer_ip_;
  std::optional<upstream::Connection> up_;
  net::Buffer up_in_{kBufferBytes};
  std::string up_out_;
  http::Parser resp_parser_;
  std::string request_id_;
  std::uint64_t request_body_bytes_ = 0;
  bool sent_continue_ = false;
  bool client_keep_alive_ = true;
};

}  // namespace phigate::proxy::detail
