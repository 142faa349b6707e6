#pragma once
// Drives http::Parser the way the HTTP/1 codec does (src/http/exchange.cpp: feed_head,
// feed_body, feed_response): bytes arrive in reads of fuzzer-chosen sizes and are appended to one
// buffer; feed() the unconsumed bytes (never an empty buffer), take the body views, consume what
// feed() used, resume after each pause, and finish() at EOF. Every step checks the contract of
// phigate/http/parser.hpp, and the outcome (heads, bodies, error) is compared across splittings: a
// parser whose verdict depends on TCP segmentation lets an attacker make the proxy and the backend
// see different messages (request smuggling).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "phigate/http/parser.hpp"

namespace phigate::fuzz {

struct Message {
  std::string head;  // render() of the head, as handed out
  std::string body;
  bool operator==(const Message&) const = default;
};

struct Outcome {
  std::vector<Message> messages;  // completed messages, in order
  bool error = false;
  // Not compared: which limit trips first may depend on the split (a 60-byte target with a bad
  // byte at its end is 414 when read in pieces, 400 in one read); that an error occurs may not.
  core::ErrorKind kind = core::ErrorKind::Internal;
  bool operator==(const Outcome& o) const { return messages == o.messages && error == o.error; }
};

/// Read sizes in [1, max_chunk] from a small deterministic generator (the fuzzer picks seed and
/// bound), or everything at once when max_chunk is 0.
class Splitter {
 public:
  Splitter(std::uint64_t seed, std::size_t max_chunk)
      : state_(seed * 0x9E3779B97F4A7C15ull + 1), max_(max_chunk) {}
  std::size_t next() {
    if (max_ == 0) return SIZE_MAX;
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return 1 + static_cast<std::size_t>(state_ % max_);
  }

 private:
  std::uint64_t state_;
  std::size_t max_;
};

struct DriveOptions {
  http::Parser::Kind kind = http::Parser::Kind::Request;
  http::ParserLimits limits{};
  bool expect_no_body = false;  // response to HEAD
};

inline std::string render(const http::MessageHead& h) {
  std::string s = h.method + ' ' + h.target + ' ' + std::to_string(h.status) + ' ' + h.reason + ' ' +
                  std::to_string(h.version_major) + '.' + std::to_string(h.version_minor);
  for (const auto& f : h.headers) s += '\n' + f.name + ": " + f.value;
  s += "\ncl=" + (h.content_length ? std::to_string(*h.content_length) : std::string("-"));
  s += h.chunked ? " chunked" : "";
  s += h.keep_alive ? " keep-alive" : "";
  s += h.expect_continue ? " expect" : "";
  return s;
}

/// Independent chunked decoder (RFC 9112 §7.1) over the raw bytes of one message that the parser
/// accepted: the body it reports must be exactly the chunk data. nullopt if the framing does not
/// decode (the parser accepted something that is not chunked coding).
inline std::optional<std::string> dechunk(std::string_view raw) {
  // Skip the CRLFs llhttp allows before a message (RFC 9112 §2.2), then the head.
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  raw.remove_prefix(head_end + 4);
  std::string body;
  for (;;) {
    std::uint64_t size = 0;
    std::size_t digits = 0;
    while (digits < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[digits]))) {
      if (size >> 60) return std::nullopt;
      const char c = raw[digits];
      size = size * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    const auto eol = raw.find("\r\n");  // after chunk extensions, which cannot contain CR/LF
    if (eol == std::string_view::npos) return std::nullopt;
    raw.remove_prefix(eol + 2);
    if (size == 0) return body;  // the trailer section follows; not part of the body
    if (raw.size() < size + 2 || raw.substr(size, 2) != "\r\n") return std::nullopt;
    body.append(raw.substr(0, size));
    raw.remove_prefix(size + 2);
  }
}

inline bool bodyless_response(const http::MessageHead& h, bool expect_no_body) {
  return expect_no_body || h.status < 200 || h.status == 204 || h.status == 304;
}

/// Checks a completed message's body against its framing. `raw` is every byte consumed for it.
inline void check_body(const DriveOptions& o, const http::MessageHead& h, const Message& m,
                       std::string_view raw) {
  const bool response = o.kind == http::Parser::Kind::Response;
  if (response && bodyless_response(h, o.expect_no_body)) {
    // (A status below 100 gets a body from llhttp: the known finding behind "http-status".)
    FUZZ_CHECK(m.body.empty() || (h.status < 100 && tolerated("http-status")),
               "body bytes in a response that has no body (HEAD, 1xx, 204, 304)");
  } else if (h.chunked) {
    const auto ref = dechunk(raw);
    FUZZ_CHECK(ref.has_value(), "parser accepted a chunked message the reference decoder rejects");
    FUZZ_CHECK(*ref == m.body, "chunked body bytes differ from the chunk data");
  } else if (h.content_length) {
    FUZZ_CHECK(m.body.size() == *h.content_length, "body bytes do not add up to Content-Length");
  } else if (!response) {
    FUZZ_CHECK(m.body.empty(), "body bytes in a request without Content-Length or chunked coding");
  }
}

inline Outcome drive(std::string_view input, const DriveOptions& o, Splitter split) {
  using http::ParseStatus;
  http::Parser p(o.kind, o.limits);
  if (o.kind == http::Parser::Kind::Response) p.expect_no_body(o.expect_no_body);
  Outcome out;
  std::string in;             // received, not yet consumed (the connection's buffer)
  std::size_t delivered = 0;  // input bytes appended to `in` so far
  std::size_t offset = 0;     // stream offset of in[0]
  std::size_t msg_start = 0;  // stream offset just after the previous message
  bool head_taken = false;    // the current message's head was handed out
  Message cur;
  std::optional<http::MessageHead> head;
  int idle_feeds = 0;

  const auto take_head = [&] {
    FUZZ_CHECK(!(p.at_message_start() && !p.message_complete()),
               "head_complete() while no byte of the current message was seen (stale head)");
    const auto& h = p.head();
    // Only HTTP/1.0 and 1.1 are spoken here (RFC 9112): an HTTP/0.9 request has no Host to route
    // or vet, and its answer no status line.
    FUZZ_CHECK_KNOWN("http-version", h.version_major == 1 && h.version_minor <= 1,
                     "head with an HTTP version other than 1.0/1.1");
    // RFC 9110 §15: status codes outside 100..599 are invalid; the parser's framing (bodyless below
    // 200) and llhttp's (a body below 100) then disagree.
    FUZZ_CHECK_KNOWN("http-status",
                     o.kind == http::Parser::Kind::Request || (h.status >= 100 && h.status <= 599),
                     "response status outside 100..599 accepted");
    // The head must come from bytes consumed since the previous message ended: a head that
    // needs none is the previous one handed out again.
    const std::size_t request_line = h.version_major == 0 ? 0 : 1 + 8;  // HTTP/0.9: no version
    const std::size_t min_bytes = o.kind == http::Parser::Kind::Request
                                      ? h.method.size() + 1 + h.target.size() + request_line + 1
                                      : 8 + 1 + 3 + 2 + h.reason.size();
    FUZZ_CHECK(offset - msg_start >= min_bytes, "head handed out again: fewer new bytes than its text");
    head_taken = true;
    head = h;
    cur.head = render(h);
  };
  const auto complete = [&] {
    FUZZ_CHECK(head_taken, "message complete without a head");
    check_body(o, *head, cur, std::string_view(input).substr(msg_start, offset - msg_start));
    out.messages.push_back(std::move(cur));
    cur = {};
    head_taken = false;
    msg_start = offset;
  };

  for (;;) {
    if (in.empty()) {
      if (delivered == input.size()) break;
      const std::size_t n = std::min(split.next(), input.size() - delivered);
      in.append(input.substr(delivered, n));
      delivered += n;
    }
    std::size_t used = SIZE_MAX;
    const auto st = p.feed(in.data(), in.size(), used);
    FUZZ_CHECK(used <= in.size(), "consumed more bytes than were fed");
    FUZZ_CHECK(st != ParseStatus::NeedMore || used == in.size(), "NeedMore left input unconsumed");
    // Body views point into the fed buffer, within the consumed bytes (within the fed bytes when
    // feed() failed: consumed is then 0 but llhttp may have reported data before the bad byte).
    const std::size_t seen = st == ParseStatus::Error ? in.size() : used;
    for (const auto piece : p.body()) {
      FUZZ_CHECK(piece.data() >= in.data() && piece.data() + piece.size() <= in.data() + seen,
                 "body view outside the consumed bytes of the fed buffer");
      cur.body.append(piece);
    }
    p.clear_body();
    if (st == ParseStatus::Error) {
      out.error = true;
      out.kind = p.error().kind;
      return out;
    }
    in.erase(0, used);
    offset += used;
    // A pause that consumes nothing twice in a row would spin the connection forever.
    idle_feeds = used == 0 ? idle_feeds + 1 : 0;
    FUZZ_CHECK(idle_feeds < 3, "feed() made no progress");
    if (p.head_complete() && !head_taken) take_head();
    FUZZ_CHECK(head_taken || cur.body.empty(), "body bytes before the head");
    if (head_taken && head->content_length) {
      FUZZ_CHECK(cur.body.size() <= *head->content_length, "more body bytes than Content-Length");
    }
    if (p.message_complete() && head_taken) complete();
  }
  // EOF: the peer closed after the last byte.
  const auto st = p.finish();
  FUZZ_CHECK(p.body().empty(), "finish() reported body bytes without input");
  if (st == ParseStatus::Error) {
    out.error = true;
    out.kind = p.error().kind;
    return out;
  }
  if (p.head_complete() && !head_taken) take_head();
  if (head_taken) {
    FUZZ_CHECK(p.message_complete(), "finish() accepted EOF in the middle of a message");
    complete();
  }
  return out;
}

/// One fuzz input: byte 0 selects limits (bit 0), HEAD (bit 1) and the read size bound (bits 2-7),
/// byte 1 seeds the read sizes; the rest is the byte stream.
inline void run(const std::uint8_t* data, std::size_t size, http::Parser::Kind kind) {
  if (size < 2) return;
  DriveOptions o;
  o.kind = kind;
  if (data[0] & 1) o.limits = {40, 160, 4};  // small limits reach the over-limit paths
  o.expect_no_body = kind == http::Parser::Kind::Response && (data[0] & 2);
  const std::size_t max_chunk = 1 + (data[0] >> 2);
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = drive(input, o, Splitter(0, 0));
  const Outcome split = drive(input, o, Splitter(data[1], max_chunk));
  FUZZ_CHECK(whole == split, "outcome depends on how the input was split");
  if (input.size() <= 512) {
    const Outcome bytewise = drive(input, o, Splitter(0, 1));
    FUZZ_CHECK(whole == bytewise, "outcome differs when the input arrives byte by byte");
  }
}

}  // namespace phigate::fuzz
