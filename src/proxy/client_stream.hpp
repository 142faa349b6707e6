#pragma once
// Private to proxy: one HTTP/2 client stream as the upstream forwarders see it (HTTP/1.1 backends
// through upstream::Link in h2_connection.cpp; gRPC backends through upstream::H2Pool in
// grpc_forward.cpp). The stream's connection implements it; its per-stream deadline is the
// upstream::Deadline every upstream wait arms. Worker thread only.
#include <cstdint>
#include <optional>
#include <string>

#include "audit_events.hpp"
#include "phigate/core/error.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/upstream/link.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

class ClientStream : public upstream::Deadline {
 public:
  /// The request after the phases (route, policy, limits set) and its audit facts.
  virtual Request& request() noexcept = 0;
  virtual RequestFacts& facts() noexcept = 0;
  /// Appends the next request body bytes to `out` (waiting for them); `done` once the client ended
  /// its request. Errors: the client reset the stream, body timeout (408), body over the limit (413).
  /// Bytes handed out are credited back to the client's window by the stream when the forwarder
  /// calls body_forwarded().
  virtual net::awaitable<std::optional<core::Error>> read_body(std::string& out, bool& done) = 0;
  virtual void body_forwarded(std::size_t n) noexcept = 0;
  /// Request trailers (after done), or null.
  virtual const http::HeaderList* request_trailers() const noexcept = 0;
  /// The response head (`fields`: regular fields; connection-specific ones are dropped by the
  /// codec). `end_stream`: no body and no trailers follow.
  virtual void send_head(int status, const http::HeaderList& fields, bool end_stream) = 0;
  /// Response body bytes; waits while the client's windows keep too much queued. Error: client gone.
  virtual net::awaitable<std::optional<core::Error>> send_body(std::string_view bytes) = 0;
  /// Ends the response (trailers when not null and not empty).
  virtual void end_response(const http::HeaderList* trailers) = 0;
  /// Ends the stream abruptly (RST_STREAM `code`): an upstream failure after the head was sent.
  virtual void reset(std::uint32_t code) = 0;
  /// The response head went out.
  virtual bool head_sent() const noexcept = 0;
  /// The client reset the stream or the connection went: nothing more may be forwarded for it.
  /// (Not pure: a stream that cannot be reset keeps the default.)
  virtual bool client_gone() const noexcept { return false; }
  /// Notes an attempt that failed, for the audit record's failed_attempts (`endpoint` and `reason`
  /// point into the pinned snapshot or static text). (Not pure: the default forgets it.)
  virtual void failed_attempt(const FailedAttempt&) {}

 protected:
  ~ClientStream() = default;
};

}  // namespace phigate::proxy::detail
