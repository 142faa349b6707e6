#pragma once
// Sans-I/O HTTP/1.1 parser over llhttp (strict: no lenient flags). One per connection side.
//
// feed() parses bytes until it needs more, the head completes, or the message completes; it
// then pauses so that the caller answers pipelined requests in order (bytes after the pause are
// left unconsumed). Body bytes seen during a feed() are exposed as views into the caller's
// buffer, valid until the caller reuses that buffer.
//
// llhttp stays behind this header: its state lives in storage sized here and checked in
// parser.cpp, so users neither include <llhttp.h> nor pay an allocation per parser.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "phigate/core/error.hpp"
#include "phigate/http/message.hpp"

namespace phigate::http {

struct ParserLimits {
  std::size_t request_line_bytes = 8192;
  std::size_t header_bytes = 32768;
  std::size_t header_count = 100;
};

enum class ParseStatus {
  NeedMore,  // all input consumed, message not finished
  Paused,    // stopped at head end or message end: check head_complete()/message_complete()
  Error,     // see error(); the connection must not be reused
};

class Parser {
 public:
  enum class Kind { Request, Response };
  Parser(Kind kind, ParserLimits limits);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  /// Parses from `data`; sets `consumed` to the bytes used (the rest belongs to later calls).
  ParseStatus feed(const char* data, std::size_t len, std::size_t& consumed);
  /// The peer closed: completes an EOF-delimited body, or reports a truncated message.
  ParseStatus finish();
  /// Starts over for a new connection (keeps header storage capacity).
  void reset();

  /// New limits for the fields parsed from now on: call between messages (a reload applies to the
  /// next request, never to a head half parsed).
  void set_limits(ParserLimits limits) noexcept { limits_ = limits; }

  /// Response parser only: the request was HEAD, so the response has no body (RFC 9110 §9.3.2).
  void expect_no_body(bool v) noexcept { no_body_ = v; }
  /// Field names are stored lower-cased (trailers too), for a head that only goes on as HTTP/2
  /// fields (RFC 9113 §8.2.1). llhttp, with no lenient flag, admits only tokens as names and no
  /// control character but HTAB in values (it skips leading whitespace and keeps trailing, which
  /// H1ResponseReader::h2_fields trims), so each field is then one nghttp2 accepts as is
  /// (nghttp2_check_header_name/value_rfc9113; the response fuzz target checks every field).
  void lowercase_names(bool v) noexcept { lower_names_ = v; }

  bool head_complete() const noexcept { return head_complete_; }
  bool message_complete() const noexcept { return message_complete_; }
  /// True when no byte of the current message has been seen yet.
  bool at_message_start() const noexcept { return !started_; }
  /// The body ends at EOF (response without Content-Length or chunked framing).
  bool body_until_eof() const noexcept { return head_complete_ && !message_complete_ && until_eof_; }
  /// After message_complete(): llhttp's keep-alive verdict (version, Connection header).
  bool should_keep_alive() const noexcept;

  MessageHead& head() noexcept { return head_; }
  const MessageHead& head() const noexcept { return head_; }
  const std::vector<std::string_view>& body() const noexcept { return body_; }
  void clear_body() noexcept { body_.clear(); }

  const core::Error& error() const noexcept { return error_; }

 private:
  struct Callbacks;  // llhttp's callbacks and state access (parser.cpp)
  int fail(core::ErrorKind kind, const char* why);
  ParseStatus translate(int llhttp_errno, const char* data, std::size_t len, std::size_t& consumed);

  // An llhttp_t (placement-constructed in parser.cpp, trivially destructible). parser.cpp
  // static_asserts that it fits; raise the size there if a newer llhttp grows it.
  static constexpr std::size_t kStateBytes = 96;
  alignas(8) unsigned char state_[kStateBytes];
  Kind kind_;
  ParserLimits limits_;
  MessageHead head_;
  std::vector<std::string_view> body_;
  core::Error error_;
  std::size_t header_bytes_ = 0;
  bool in_value_ = false;
  bool head_complete_ = false;
  bool message_complete_ = false;
  bool started_ = false;
  bool paused_ = false;
  bool no_body_ = false;
  bool lower_names_ = false;
  bool until_eof_ = false;
  bool failed_ = false;
  bool upgraded_ = false;  // a 101 ended HTTP on this connection
};

}  // namespace phigate::http
