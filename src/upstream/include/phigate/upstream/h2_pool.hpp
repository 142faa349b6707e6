#pragma once
// HTTP/2 to backends (backend-protocol GRPC: prior knowledge over TCP; GRPCS: TLS with ALPN h2,
// verified as BackendTls says). One worker's multiplexed connections: a request is one stream on
// a connection to its endpoint that has a free stream slot (the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS), else on a new connection. Frames are nghttp2's client session
// (sans-I/O, h2_client_impl.hpp) driven by one reader and one writer coroutine per connection on
// the worker's io_context. Worker thread only.
//
// Deadlines stay with the caller, as for Link: every wait arms the caller's `Deadline` first, and
// the caller's expiry calls H2Call::cancel(), which resets the stream (CANCEL) and wakes the wait.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "phigate/core/error.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/http/message.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/upstream/backend_tls.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/link.hpp"

namespace phigate::upstream {

class H2Connection;  // h2_pool.cpp

/// One request's stream to the backend. Owned by the request (shared with its connection until the
/// stream closes). Worker thread only.
class H2Call {
 public:
  struct Event {
    enum class Kind {
      Headers,   // the final response head: status, fields (1xx are skipped)
      Data,      // body bytes (data; valid until the next next())
      Trailers,  // trailer fields (grpc-status, grpc-message)
      End,       // the response is complete
      Error,     // the stream failed (reset, connection lost, timeout): error
    };
    Kind kind = Kind::Error;
    int status = 0;
    const http::HeaderList* fields = nullptr;  // Headers/Trailers; valid until the next next()
    std::string_view data;
    core::Error error;
  };

  virtual ~H2Call() = default;
  /// Sends request body bytes (flow control may make this wait); `end_stream` ends the request.
  virtual net::awaitable<std::optional<core::Error>> send_data(std::string_view bytes, bool end_stream,
                                                               Timeouts t, Deadline& d) = 0;
  /// Ends the request with trailers (gRPC clients rarely send any; RFC 9113 §8.1).
  virtual net::awaitable<std::optional<core::Error>> send_trailers(const http::HeaderList& trailers,
                                                                   Timeouts t, Deadline& d) = 0;
  /// The next response event. Arms `d` with t.read before waiting.
  virtual net::awaitable<Event> next(Timeouts t, Deadline& d) = 0;
  /// The caller forwarded `n` bytes of Data: give the backend that much window back.
  virtual void consume(std::size_t n) noexcept = 0;
  /// Deadline fired or client gone: RST_STREAM CANCEL, pending waits end with an Error event.
  virtual void cancel() noexcept = 0;
  /// A byte of the response arrived.
  virtual bool got_response() const noexcept = 0;
};

class H2Pool {
 public:
  H2Pool(net::asio::io_context& io, metrics::WorkerShard& stats);
  ~H2Pool();
  H2Pool(const H2Pool&) = delete;
  H2Pool& operator=(const H2Pool&) = delete;

  /// Opens a stream to `ep` (`tls`: GRPCS with those settings, null: GRPC) carrying `head`
  /// (method, target = :path, `authority`, regular fields; hop-by-hop and connection-specific
  /// fields must already be gone). `end_stream`: the request has no body. Connecting, the TLS
  /// handshake (ALPN must select h2, else UpstreamTls) and the connection preface count against
  /// t.connect. Errors are upstream errors classified like Link's (ConnectRefused,
  /// ConnectTimeout, UpstreamTls, UpstreamReset).
  net::awaitable<std::variant<core::Error, std::shared_ptr<H2Call>>> open(
      const Endpoint& ep, const BackendTls* tls, const http::MessageHead& head, std::string_view authority,
      std::string_view scheme, bool end_stream, Timeouts t, Deadline& d);

  /// Connections without streams for this long are closed with GOAWAY (upstream.keepalive_timeout;
  /// applies to connections opened afterwards). Default 60 s.
  void set_idle_timeout(std::chrono::milliseconds t) noexcept;
  /// Closes every connection (worker drain, shutdown); open calls end with an Error event.
  void close_all() noexcept;
  /// Connections open now (tests, metrics).
  std::size_t connections() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace phigate::upstream
