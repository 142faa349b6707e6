// Minimal strict HTTP/1.1 request reader: head, framing (RFC 9112 §6), Content-Length and chunked bodies.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stream.hpp"

namespace phigate::test_upstream {

/// Field lines as received: names and values verbatim (values without surrounding whitespace), in order.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct RequestHead {
  std::string method;
  std::string target;
  std::string version;  ///< "1.1" or "1.0"
  Headers headers;
};

enum class BodyFraming { None, Length, Chunked };

struct Framing {
  BodyFraming kind = BodyFraming::None;
  std::uint64_t length = 0;  ///< for BodyFraming::Length

  bool has_body() const { return kind == BodyFraming::Chunked || length > 0; }
};

enum class ReadResult { Ok, Closed, Error };

/// Called with each piece of de-chunked body data; the view is valid for the call only.
using BodySink = std::function<void(std::string_view)>;

/// Reads one request head (up to the empty line, 64 KiB at most) into `head`, without the final empty
/// line. Closed: the peer ended the connection before sending any byte of a request. Error: `error`
/// says why.
ReadResult read_request_head(Reader& reader, std::string& head, std::string& error);

/// Parses the request line and field lines of `head`. Returns an error reason, empty on success.
std::string parse_request_head(std::string_view head, RequestHead& out);

/// Decides how the body is delimited (RFC 9112 §6). Returns an error reason, empty on success.
std::string determine_framing(const RequestHead& head, Framing& out);

/// Reads the whole body per `framing`, passing the data to `sink` and trailer fields to `trailers`.
/// False on malformed chunking or a premature end of stream, with `error` saying why.
bool read_body(Reader& reader, const Framing& framing, const BodySink& sink, Headers& trailers,
               std::string& error);

/// True if some field named `name` (any case) holds `token` (any case) in its comma-separated list.
bool has_token(const Headers& headers, std::string_view name, std::string_view token);

/// Value of the first field named `name` (any case); nullopt when absent. The view points into `headers`.
std::optional<std::string_view> first_field(const Headers& headers, std::string_view name);

/// Parses 1 to 19 decimal digits (no sign, no spaces).
std::optional<std::uint64_t> parse_decimal(std::string_view s);

}  // namespace phigate::test_upstream
