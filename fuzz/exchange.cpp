// libFuzzer target: the sans-I/O HTTP/1 exchange codec (http::Http1Exchange), driven from both
// sides as src/proxy/proxy_connection.cpp drives it: client bytes through feed_head (read_request_head),
// remove_hop_by_hop + append_upstream_head, take_continue and feed_body (send_request); upstream bytes
// through begin_response, feed_response and upstream_eof (relay_response); local replies
// (reply/reply_error) and next_request for pipelining. Reads have fuzzer-chosen sizes on both sides.
//
// Both peers are untrusted, so besides "no crash" every step checks the codec's contract, and what it
// writes is re-parsed with a fresh http::Parser: the upstream must get exactly the request the client
// sent (one message, same body), the client exactly the response the upstream's framing delimited
// (one message, nothing after it), and the verdict must not depend on how the bytes were split.
//
// Input: 4 header bytes, then the client bytes, then, after the separator kSep (00 FF 00 FF), the
// upstream bytes of the 1st proxied request, after another kSep those of the 2nd, and so on.
//   byte 0: bit 0 small client limits, bit 1 body limit 16, bit 2 close_client at begin_response,
//           bit 3 set_close_client() before the response (drain), bit 4 HSTS extra field,
//           bit 5 reload (set_request_limits) after the first request, bit 6 small response
//           limits and max_interim 2, bit 7 local replies must_close
//   byte 1: bits 0-1 which requests get a local reply right after their head (0 none, 1 all,
//           2 even, 3 odd), bits 2-7 which status
//   byte 2: read-size seed; byte 3: bits 0-5 max read size - 1
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "http_driver.hpp"
#include "phigate/http/exchange.hpp"
#include "phigate/http/forwarding.hpp"

namespace phigate::fuzz {
namespace {

using http::Http1Exchange;
using HS = Http1Exchange::HeadStatus;
using BS = Http1Exchange::BodyStatus;
using RS = Http1Exchange::ResponseStatus;
using Kind = http::Parser::Kind;

constexpr std::string_view kSep("\0\xff\0\xff", 4);
constexpr int kMaxRequests = 8;
constexpr http::ParserLimits kWide{1u << 20, 1u << 20, 100000};
constexpr http::ParserLimits kSmallRequest{40, 160, 4};
constexpr int kStatuses[] = {308, 400, 403, 404, 408, 413, 421, 500, 502, 503, 504};
constexpr std::string_view kHsts = "Strict-Transport-Security: max-age=31536000\r\n";

struct Input {
  std::uint8_t flags = 0;
  std::uint8_t local = 0;
  std::string_view client;
  std::vector<std::string_view> upstream;  // one byte stream per proxied request
};

/// A byte stream that arrives in reads of the Splitter's sizes.
struct Stream {
  std::string_view data;
  Splitter split;
  std::size_t delivered = 0;
  bool read(std::string& buf) {
    if (delivered == data.size()) return false;
    const std::size_t n = std::min(split.next(), data.size() - delivered);
    buf.append(data.substr(delivered, n));
    delivered += n;
    return true;
  }
};

/// What a fresh parser makes of bytes the codec wrote (or received).
struct Reparse {
  bool error = false;
  int complete = 0;         // complete messages (final ones when interim responses are skipped)
  int interim = 0;          // 1xx skipped
  std::size_t left = 0;     // bytes after the first complete message
  bool head = false;        // the first message's head was seen
  http::MessageHead h;      // its head
  std::string body;         // its body bytes
  bool keep_alive = false;  // llhttp's verdict after it completed
};

Reparse reparse(Kind kind, std::string_view bytes, bool no_body, bool skip_interim, bool at_eof) {
  http::Parser p(kind, kWide);
  if (kind == Kind::Response) p.expect_no_body(no_body);
  Reparse r;
  int idle = 0;
  const auto completed = [&] {
    if (kind == Kind::Response && skip_interim && p.head().status < 200) {
      ++r.interim;
      r.head = false;
      r.body.clear();
      return false;
    }
    r.complete = 1;
    r.h = p.head();
    r.head = true;
    r.keep_alive = p.should_keep_alive();
    return true;
  };
  while (!bytes.empty()) {
    std::size_t used = 0;
    const auto st = p.feed(bytes.data(), bytes.size(), used);
    FUZZ_CHECK(used <= bytes.size(), "re-parse: consumed more than fed");
    if (st == http::ParseStatus::Error) {
      r.error = true;
      return r;
    }
    for (const auto piece : p.body()) r.body.append(piece);
    p.clear_body();
    bytes.remove_prefix(used);
    idle = used == 0 ? idle + 1 : 0;
    FUZZ_CHECK(idle < 3, "re-parse: the parser made no progress");
    if (p.head_complete() && !r.head) {
      r.h = p.head();
      r.head = true;
    }
    if (p.message_complete() && completed()) {
      r.left = bytes.size();
      return r;
    }
  }
  if (at_eof && p.body_until_eof()) {
    if (p.finish() == http::ParseStatus::Error) {
      r.error = true;
      return r;
    }
    FUZZ_CHECK(p.body().empty(), "re-parse: finish() reported body bytes");
    if (p.message_complete()) completed();
  }
  return r;
}

/// The body the client's bytes carried for one complete request (`raw`: every byte consumed for
/// it), decoded without http::Parser: chunk data (http_driver.hpp's dechunk), the Content-Length
/// bytes after the head, or nothing.
std::string client_body(std::string_view raw, const http::MessageHead& h) {
  if (h.chunked) {
    const auto body = dechunk(raw);
    FUZZ_CHECK(body.has_value(), "the codec completed a chunked request the reference decoder rejects");
    return *body;
  }
  if (!h.content_length) return {};
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  const auto end = raw.find("\r\n\r\n");
  FUZZ_CHECK(end != std::string_view::npos, "complete request without a CRLF CRLF head end");
  raw.remove_prefix(end + 4);
  FUZZ_CHECK(raw.size() == *h.content_length, "request consumed other than Content-Length bytes of body");
  return std::string(raw);
}

bool bodyless_status(int s) {
  return s < 200 || s == 204 || s == 304;
}

/// One run over the input with the given read sizes; returns the transcript of everything whose
/// outcome must not depend on the read sizes.
class Run {
 public:
  Run(const Input& in, Splitter client_split, Splitter up_split)
      : in_(in), client_{in.client, client_split, 0}, up_split_(up_split), ex_(options(in)) {}

  std::vector<std::string> go() {
    for (int i = 0; i < kMaxRequests; ++i) {
      if (!one(i)) break;
      ex_.next_request();
      if (i == 0 && (in_.flags & 32))
        ex_.set_request_limits((in_.flags & 1) ? http::ParserLimits{} : kSmallRequest);
    }
    return transcript_;
  }

 private:
  static http::ExchangeOptions options(const Input& in) {
    http::ExchangeOptions o;
    if (in.flags & 1) o.request = kSmallRequest;
    if (in.flags & 64) {
      o.response = {64, 200, 6};
      o.max_interim = 2;
    }
    return o;
  }
  // The proxy passes close_after_response_ || draining: bit 2 from the start, or a drain that
  // began while this connection waited for an upstream (bit 3), for the rest of the connection.
  bool close_client() const { return (in_.flags & 4) != 0 || drain_; }
  std::string_view extra() const { return (in_.flags & 16) ? kHsts : std::string_view{}; }
  std::size_t client_offset() const { return client_.delivered - buf_.size(); }
  void note(std::string s) {
    if (!frozen_) transcript_.push_back(std::move(s));
  }

  /// A local reply, checked: one complete response with that status, nothing after it, the
  /// keep-alive it announces is the one the codec decided.
  Http1Exchange::Reply reply(int status, std::string_view body, std::string_view location, bool must_close) {
    const bool head_ready = ex_.request_head_complete();
    const bool head_only = head_ready && ex_.request().method == "HEAD";
    const int minor = head_ready ? ex_.request().version_minor : 1;
    const bool complete = ex_.request_complete();
    std::string out;
    const auto r = ex_.append_local_reply(out, status, body, location, extra(), must_close, close_client());
    const auto p = reparse(Kind::Response, out, head_only, false, !r.keep_alive);
    FUZZ_CHECK(!p.error, "local reply does not parse");
    FUZZ_CHECK(p.complete == 1 && p.left == 0, "local reply is not exactly one complete response");
    FUZZ_CHECK(p.h.status == status, "local reply with another status than asked");
    FUZZ_CHECK(p.h.version_minor == minor, "local reply in another HTTP version than the request's");
    FUZZ_CHECK(p.body == (head_only ? std::string_view{} : body), "local reply body differs");
    FUZZ_CHECK(
        location.empty() || (p.h.headers.find("location") && *p.h.headers.find("location") == location),
        "local reply without its Location");
    FUZZ_CHECK(p.keep_alive == r.keep_alive, "local reply announces another keep-alive than decided");
    FUZZ_CHECK(!r.keep_alive || (complete && !must_close && !close_client()),
               "connection kept after a local reply with the request unread or a close asked");
    FUZZ_CHECK(!r.linger || !r.keep_alive, "lingering close on a kept connection");
    FUZZ_CHECK(r.keep_alive == ex_.client_keep_alive(), "client_keep_alive() differs from the reply's");
    FUZZ_CHECK(!r.keep_alive || !ex_.upgrade_requested(), "connection kept after an upgrade request");
    return r;
  }

  /// reply_error: the error's status, or nothing when it has none (the client is gone).
  bool reply_error(const core::Error& e, bool must_close) {
    const int status = e.status();
    if (status == 0) return false;
    const std::string body = std::to_string(status) + " " + http::reason_phrase(status) + "\n";
    return reply(status, body, {}, must_close).keep_alive;
  }

  /// One request; false when the connection ends after it.
  bool one(int index) {
    // --- request head (read_request_head)
    const std::size_t start = client_offset();
    bool started = !buf_.empty();
    HS hs = HS::NeedMore;
    for (;;) {
      if (!buf_.empty()) {
        std::size_t used = SIZE_MAX;
        hs = ex_.feed_head(buf_.data(), buf_.size(), used);
        FUZZ_CHECK(used <= buf_.size(), "feed_head: used more than offered");
        FUZZ_CHECK(hs != HS::NeedMore || used == buf_.size(), "feed_head: NeedMore left bytes unconsumed");
        buf_.erase(0, used);
        if (hs != HS::NeedMore) break;
      }
      if (!client_.read(buf_)) break;
      started = true;
    }
    if (hs == HS::NeedMore) {  // client EOF
      if (!started && ex_.at_message_start()) {
        note("eof");
        return false;
      }
      note("eof mid-head");
      reply_error(core::Error::downstream(core::ErrorKind::ClientClosed), true);
      return false;
    }
    if (hs == HS::Error) {
      // Nothing is parsed after an error, whatever comes next.
      std::size_t used = SIZE_MAX;
      const std::string more = buf_.empty() ? std::string("GET / HTTP/1.1\r\n\r\n") : buf_;
      FUZZ_CHECK(ex_.feed_head(more.data(), more.size(), used) == HS::Error && used == 0,
                 "feed_head parsed after an Error");
      FUZZ_CHECK(ex_.error().status() != 0, "request head error without a status");
      note("head error");
      const auto r = reply_error(ex_.error(), true);
      FUZZ_CHECK(!r, "connection kept after a malformed request head");
      return false;
    }
    FUZZ_CHECK(ex_.request_head_complete(), "Ready without request_head_complete()");
    {
      // Once Ready, nothing more is consumed until next_request().
      std::size_t used = SIZE_MAX;
      const std::string more = buf_.empty() ? std::string("x") : buf_;
      FUZZ_CHECK(ex_.feed_head(more.data(), more.size(), used) == HS::Ready && used == 0,
                 "feed_head consumed bytes after Ready");
    }
    const http::MessageHead client_head = ex_.request();
    FUZZ_CHECK(client_head.version_major == 1 && client_head.version_minor <= 1,
               "head Ready with HTTP/1.x, x > 1");
    note("head " + render(client_head));

    // --- a check answers locally (run_phases): right after the head, body unread
    const unsigned mode = in_.local & 3;
    if (mode == 1 || (mode == 2 && index % 2 == 0) || (mode == 3 && index % 2 == 1)) {
      const int status = kStatuses[((in_.local >> 2) + static_cast<unsigned>(index)) % std::size(kStatuses)];
      const std::string body = std::to_string(status) + " local\n";
      const auto r = reply(status, body, status == 308 ? "https://x/a" : "", (in_.flags & 128) != 0);
      note("local " + std::to_string(status) + (r.keep_alive ? " keep" : " close"));
      return r.keep_alive;
    }

    // --- proxy_request: the upstream head, then send_request
    http::remove_hop_by_hop(ex_.request().headers);
    std::string up;
    ex_.append_upstream_head(up, ex_.request().target);
    const std::string up_head = up;
    const std::uint64_t limit = (in_.flags & 2) ? 16 : 0;
    int continues = 0;
    std::optional<core::Error> err;
    while (!ex_.request_complete()) {
      if (buf_.empty()) {
        if (ex_.take_continue()) {
          ++continues;
          FUZZ_CHECK(continues == 1, "100 Continue due twice for one request");
          FUZZ_CHECK(client_head.expect_continue && client_head.version_minor == 1 && ex_.body_bytes() == 0,
                     "100 Continue for a request that did not ask for it, or after body bytes");
        }
        if (!client_.read(buf_)) {
          err = core::Error::downstream(core::ErrorKind::ClientClosed, "closed mid-request body");
          break;
        }
      }
      std::size_t used = SIZE_MAX;
      const auto bs = ex_.feed_body(buf_.data(), buf_.size(), used, up, limit);
      FUZZ_CHECK(used <= buf_.size(), "feed_body: used more than offered");
      FUZZ_CHECK(bs != BS::NeedMore || used == buf_.size(), "feed_body: NeedMore left bytes unconsumed");
      FUZZ_CHECK(bs != BS::Done || ex_.request_complete(), "feed_body Done before the request is complete");
      buf_.erase(0, used);
      if (bs == BS::Error) {
        const std::string snapshot = up;
        std::size_t again = SIZE_MAX;
        const std::string more = buf_.empty() ? std::string("0\r\n\r\n") : buf_;
        FUZZ_CHECK(ex_.feed_body(more.data(), more.size(), again, up, limit) == BS::Error && again == 0 &&
                       up == snapshot,
                   "feed_body parsed after an Error");
        err = ex_.error();
        break;
      }
    }
    FUZZ_CHECK(!ex_.request_complete() || !ex_.take_continue(), "100 Continue due after the body");
    FUZZ_CHECK(limit == 0 || ex_.body_bytes() <= limit || err, "body over the limit forwarded without error");

    // What the upstream got re-parses, and a complete request is exactly the client's.
    const auto u = reparse(Kind::Request, up, false, false, false);
    FUZZ_CHECK(!u.error, "the upstream request does not parse");
    FUZZ_CHECK(u.complete == 0 || u.left == 0, "bytes after the upstream request");
    FUZZ_CHECK(u.head && u.h.method == client_head.method && u.h.target == client_head.target &&
                   u.h.version_minor == 1,
               "the upstream request line differs from the client's");
    FUZZ_CHECK(u.h.chunked == client_head.chunked && u.h.content_length == client_head.content_length,
               "the upstream request is framed otherwise than the client's");
    FUZZ_CHECK(u.h.headers.count("transfer-encoding") <= 1 && u.h.headers.count("content-length") <= 1,
               "repeated framing field in the upstream request");
    if (ex_.request_complete() && !err) {
      FUZZ_CHECK(u.complete == 1, "complete request, incomplete upstream request");
      const auto body = client_body(in_.client.substr(start, client_offset() - start), client_head);
      FUZZ_CHECK(u.body == body, "the upstream request body differs from the client's");
      FUZZ_CHECK(ex_.body_bytes() == body.size(), "body_bytes() differs from the body");
      note("up " + up_head + " body " + u.body);
    } else {
      FUZZ_CHECK(u.complete == 0 || (err && err->kind == core::ErrorKind::BodyTooLarge),
                 "the upstream got a complete request the client did not finish");
    }
    if (err) {
      // Which error (413 or 400) and whether the connection stays depend on the read sizes.
      note("body error");
      frozen_ = true;
      if (err->source == core::ErrorSource::Downstream && err->status() == 0) return false;
      return reply_error(*err, !ex_.request_complete());
    }

    // --- relay_response
    ex_.begin_response(extra(), close_client());
    if (in_.flags & 8) {
      ex_.set_close_client();
      drain_ = true;
    }
    const bool head_req = client_head.method == "HEAD";
    Stream us{upstreams_ < in_.upstream.size() ? in_.upstream[upstreams_] : std::string_view{}, up_split_, 0};
    ++upstreams_;
    std::string ubuf, out;
    RS rs = RS::NeedMore;
    bool by_eof = false;
    for (;;) {
      if (ubuf.empty() && !us.read(ubuf)) {
        const std::string snapshot = out;
        rs = ex_.upstream_eof(out);
        FUZZ_CHECK(rs != RS::NeedMore, "upstream_eof() NeedMore");
        FUZZ_CHECK(rs == RS::Complete || out == snapshot, "upstream_eof() wrote after an Error");
        by_eof = true;
        break;
      }
      std::size_t used = SIZE_MAX;
      rs = ex_.feed_response(ubuf.data(), ubuf.size(), used, out);
      FUZZ_CHECK(used <= ubuf.size(), "feed_response: used more than offered");
      FUZZ_CHECK(rs != RS::NeedMore || used == ubuf.size(), "feed_response: NeedMore left bytes unconsumed");
      ubuf.erase(0, used);
      if (rs != RS::NeedMore) break;
    }
    up_split_ = us.split;  // the next upstream continues the same read-size sequence
    const std::size_t consumed = us.delivered - ubuf.size();
    const bool leftover = !ubuf.empty();
    {
      // Nothing more is parsed once the response ended either way.
      const std::string snapshot = out;
      std::size_t used = SIZE_MAX;
      const std::string more = ubuf.empty() ? std::string("HTTP/1.1 200 OK\r\n\r\n") : ubuf;
      FUZZ_CHECK(ex_.feed_response(more.data(), more.size(), used, out) == rs && used == 0 && out == snapshot,
                 "feed_response parsed after the response ended");
      FUZZ_CHECK(ex_.upstream_eof(out) == rs && out == snapshot,
                 "upstream_eof() changed a finished response");
    }
    FUZZ_CHECK(ex_.response_complete() == (rs == RS::Complete),
               "response_complete() differs from the status");
    FUZZ_CHECK(ex_.response_head_sent() == !out.empty(),
               "response_head_sent() differs from the bytes written");
    FUZZ_CHECK(!ex_.upstream_reusable(true), "upstream reusable with bytes left over");
    FUZZ_CHECK(!ex_.upstream_reusable(leftover) || (rs == RS::Complete && !head_req && !leftover),
               "upstream reusable after HEAD, an incomplete response or with bytes left over");
    FUZZ_CHECK(!ex_.upstream_reusable(false) || (rs == RS::Complete && !head_req),
               "upstream reusable after HEAD or an incomplete response");
    FUZZ_CHECK(!ex_.upstream_reusable(false) || !(by_eof && rs == RS::Complete),
               "upstream reusable after it closed the connection");

    // What the upstream's framing delimited (a fresh parser over the bytes the codec consumed) and
    // what the client got (a fresh parser over the bytes the codec wrote).
    const std::string_view raw = us.data.substr(0, consumed);
    const auto uresp = reparse(Kind::Response, raw, head_req, true, by_eof);
    const bool client_eof = rs != RS::Complete || !ex_.client_keep_alive();
    const auto c = reparse(Kind::Response, out, head_req, false, rs == RS::Complete && client_eof);
    FUZZ_CHECK(!c.error, "the response written to the client does not parse");
    // After an upgrade request neither connection carries another request, whatever the answer.
    FUZZ_CHECK(!ex_.upgrade_requested() || (!ex_.upstream_reusable(false) && !ex_.client_keep_alive()),
               "a connection kept after an upgrade request");
    FUZZ_CHECK(!ex_.upgraded() || ex_.upgrade_requested(), "upgraded without an upgrade request");
    if (ex_.upgraded()) {
      // A 101 to an allowed upgrade (RFC 6455 §4.1: HTTP/1.1 GET, no body) went out as one head
      // naming the protocol asked for, and nothing after it: the rest is the tunnel's.
      FUZZ_CHECK(rs == RS::Complete && ex_.response_status() == 101, "upgraded without a relayed 101");
      FUZZ_CHECK(client_head.upgrade && client_head.method == "GET" && client_head.version_minor == 1 &&
                     !client_head.has_body(),
                 "upgraded a request that is no HTTP/1.1 GET upgrade without a body");
      FUZZ_CHECK(u.h.upgrade && u.h.headers.find("upgrade") != nullptr &&
                     *u.h.headers.find("upgrade") == ex_.upgrade_protocol(),
                 "the upstream was not asked for the protocol that was vetted");
      FUZZ_CHECK(c.complete == 1 && c.left == 0 && c.h.status == 101 && c.h.upgrade,
                 "the client did not get exactly one 101 head");
      FUZZ_CHECK(c.h.headers.find("upgrade") != nullptr &&
                     http::iequals(*c.h.headers.find("upgrade"), ex_.upgrade_protocol()),
                 "the 101 names another protocol than asked");
      FUZZ_CHECK(raw.size() >= 4 && raw.substr(raw.size() - 4) == "\r\n\r\n",
                 "the codec consumed bytes after the 101 head");
      note("upgraded " + std::string(ex_.upgrade_protocol()));
      return false;  // the connection is a tunnel now
    }
    FUZZ_CHECK(!c.head || c.h.status >= 200, "an interim response reached the client");
    if (rs == RS::Complete) {
      FUZZ_CHECK(!uresp.error && uresp.complete == 1 && uresp.left == 0,
                 "Complete, but the consumed upstream bytes are not one complete final response");
      FUZZ_CHECK(c.complete == 1 && c.left == 0, "Complete, but the client did not get exactly one response");
      FUZZ_CHECK(c.h.status == uresp.h.status && c.h.status == ex_.response_status(), "status changed");
      FUZZ_CHECK(c.body == uresp.body, "the client's response body differs from the upstream's");
      FUZZ_CHECK(c.keep_alive == ex_.client_keep_alive(),
                 "the client is told another keep-alive than decided");
      const bool until_close =
          !head_req && !bodyless_status(uresp.h.status) && !uresp.h.chunked && !uresp.h.content_length;
      FUZZ_CHECK(!(until_close && client_head.version_minor == 0) || !ex_.client_keep_alive(),
                 "client kept after an until-close response to an HTTP/1.0 client");
      FUZZ_CHECK(!ex_.client_keep_alive() || (!close_client() && client_head.keep_alive),
                 "client kept although asked to close");
      note("resp " + render(c.h) + " body " + c.body + (ex_.client_keep_alive() ? " keep" : " close") +
           (ex_.upstream_reusable(false) ? " reusable" : ""));
    } else {
      FUZZ_CHECK(c.complete == 0, "the client got a complete response the codec did not complete");
      FUZZ_CHECK(!c.head || uresp.head, "a response head reached the client before the upstream sent one");
      FUZZ_CHECK(uresp.body.compare(0, c.body.size(), c.body) == 0 || uresp.error,
                 "the client's partial body is not a prefix of the upstream's");
      note(std::string("resp error") + (ex_.response_head_sent() ? " after head" : ""));
    }
    if (rs != RS::Complete) {
      if (ex_.response_head_sent()) return false;
      return reply_error(ex_.error(), !ex_.request_complete());
    }
    return ex_.client_keep_alive() && !close_client();
  }

  const Input& in_;
  Stream client_;
  Splitter up_split_;
  Http1Exchange ex_;
  std::string buf_;  // client bytes received, not consumed (the connection's in_)
  std::size_t upstreams_ = 0;
  bool drain_ = false;
  bool frozen_ = false;  // after a body error the rest may legitimately depend on the read sizes
  std::vector<std::string> transcript_;
};

}  // namespace
}  // namespace phigate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace phigate::fuzz;
  if (size < 4) return 0;
  Input in;
  in.flags = data[0];
  in.local = data[1];
  const std::uint8_t seed = data[2];
  const std::size_t max_chunk = 1 + (data[3] & 63);
  std::string_view rest(reinterpret_cast<const char*>(data) + 4, size - 4);
  auto sep = rest.find(kSep);
  in.client = rest.substr(0, sep);
  while (sep != std::string_view::npos) {
    rest.remove_prefix(sep + kSep.size());
    sep = rest.find(kSep);
    in.upstream.push_back(rest.substr(0, sep));
  }

  const auto whole = Run(in, Splitter(0, 0), Splitter(0, 0)).go();
  if (std::getenv("PHIGATE_FUZZ_TRACE") != nullptr) {  // replaying one input by hand: what happened
    for (const auto& line : whole) std::fprintf(stderr, "exchange: %s\n", line.c_str());
  }
  const auto split = Run(in, Splitter(seed, max_chunk), Splitter(seed + 1u, max_chunk)).go();
  FUZZ_CHECK(whole == split, "the verdict depends on how the bytes were split");
  if (size <= 512) {
    const auto bytewise = Run(in, Splitter(0, 1), Splitter(0, 1)).go();
    FUZZ_CHECK(whole == bytewise, "the verdict differs when the bytes arrive one by one");
  }
  return 0;
}
