#pragma once
// The API client: HTTPS over Boost.Asio and OpenSSL (verified against the cluster CA, server name
// checked), HTTP/1.1 responses parsed by llhttp (chunked watch streams included), bearer token or
// client certificate. One connection per call (a watch holds its own; LIST, GET and writes reuse an
// idle keep-alive connection when one is there). Control thread: every callback runs on `io`.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "phigate/kube/credentials.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::kube {

struct Response {
  int status = 0;  // HTTP status
  std::string content_type;
  std::string body;  // at most kMaxBody bytes (a larger body is an error)
};

/// A transport failure (connect, TLS, verification, timeout, malformed HTTP, body too large).
struct TransportError {
  std::string message;  // one line, names the server and what failed
};

struct RequestOptions {
  std::string method = "GET";
  std::string path;  // with query, already escaped: "/api/v1/namespaces/a/services?limit=500"
  std::string body;
  std::string content_type;  // of `body`: application/json, application/merge-patch+json, ...
  std::chrono::milliseconds timeout{30000};
};

class Client {
 public:
  static constexpr std::size_t kMaxBody = 256u << 20;  // a LIST page of big objects
  static constexpr std::size_t kMaxLine = 64u << 20;   // one watch event

  Client(net::asio::io_context& io, Credentials creds);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  using ResponseHandler = std::function<void(std::optional<Response>, std::optional<TransportError>)>;
  /// One request; exactly one of the two arguments is set when `done` runs.
  void request(RequestOptions options, ResponseHandler done);

  /// A streaming GET (watch): `on_line` for every complete newline-delimited line of a 200 body
  /// (dechunked; empty lines skipped), then `on_end` once: status 200 when the server ended the
  /// stream cleanly, the non-200 response (its body read whole), or a transport error (a cut
  /// mid-stream is an error). `idle` ends the stream with an error when no byte arrived for that
  /// long. cancel() ends it without calling `on_end`.
  class Stream {
   public:
    virtual ~Stream() = default;
    virtual void cancel() = 0;
  };
  std::shared_ptr<Stream> stream(std::string path, std::chrono::milliseconds idle,
                                 std::function<void(std::string_view line)> on_line,
                                 ResponseHandler on_end);

  const Credentials& credentials() const noexcept;
  /// Requests sent so far (for tests and a debug metric).
  std::uint64_t requests() const noexcept;
  /// TLS connections opened so far (for tests: keep-alive reuse). Added by the kclient branch.
  std::uint64_t connections() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// "a/b c" → "a%2Fb%20c" for query values and path segments.
std::string url_escape(std::string_view s);

}  // namespace phigate::kube
