#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phigate::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// One HTTP/1.x response as received: header names keep their case and order, values are trimmed of
/// surrounding whitespace, and the body has its chunked framing removed.
struct HttpResponse {
  std::string version{};  ///< "HTTP/1.1"
  int status = 0;
  std::string reason{};
  HeaderList headers{};
  std::string body{};
  HeaderList trailers{};  ///< trailer fields of a chunked body
  bool chunked = false;
  std::size_t wire_bytes = 0;  ///< bytes the response occupied on the wire

  /// First value of header `name` (case-insensitive), or "" if absent.
  std::string header(std::string_view name) const;
  /// All values of header `name` (case-insensitive), in order of arrival.
  std::vector<std::string> header_values(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct HttpParseResult {
  enum class State { Complete, NeedMore, Invalid };
  State state = State::NeedMore;
  HttpResponse response{};  ///< valid when Complete; `wire_bytes` is the number of bytes consumed
  std::string error{};      ///< why, when Invalid
};

/// Sans-I/O: parses exactly one response from the start of `data` (RFC 9112 §6.3 framing: no body after
/// HEAD, for 1xx, 204 and 304; then chunked; then Content-Length; else until EOF). `eof` says no more
/// bytes will come, which completes a close-delimited body. Bytes after the response are left alone.
HttpParseResult parse_http_response(std::string_view data, bool head_request = false, bool eof = false);

/// Case-insensitive ASCII comparison, as for header names.
bool iequals(std::string_view a, std::string_view b);

}  // namespace phigate::test
