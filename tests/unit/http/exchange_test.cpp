// The HTTP/1 exchange codec, event by event: client bytes, upstream bytes and EOFs in; bytes for
// the upstream and the client, statuses and reuse decisions out. No sockets.
#include "phigate/http/exchange.hpp"

#include "phigate/http/forwarding.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace phigate::http {
namespace {

using core::ErrorKind;
using HS = Http1Exchange::HeadStatus;
using BS = Http1Exchange::BodyStatus;
using RS = Http1Exchange::ResponseStatus;

constexpr std::string_view kMarker = "PHI-of-someone-else";
constexpr std::size_t kAll = static_cast<std::size_t>(-1);

/// Feeds `bytes` as a caller would: pieces of `step` bytes appended to a buffer from which the
/// codec's `used` is removed, until `feed(data, len, used)` returns something else than NeedMore.
/// `used` is how many of `bytes` were consumed in all.
template <class Status, class Feed>
Status feed_split(std::string_view bytes, std::size_t step, std::size_t& used_total, Feed feed) {
  Status st = Status::NeedMore;
  std::string buf;
  std::size_t off = 0;
  while (off < bytes.size()) {
    const auto n = std::min(step, bytes.size() - off);
    buf.append(bytes.substr(off, n));
    off += n;
    std::size_t used = 0;
    st = feed(buf.data(), buf.size(), used);
    buf.erase(0, used);
    used_total += used;
    if (st != Status::NeedMore) break;
  }
  return st;
}

struct HeadRun {
  HS st = HS::NeedMore;
  std::size_t used = 0;
};
HeadRun feed_head(Http1Exchange& ex, std::string_view bytes, std::size_t step = kAll) {
  HeadRun r;
  r.st = feed_split<HS>(bytes, step, r.used,
                        [&](const char* d, std::size_t n, std::size_t& u) { return ex.feed_head(d, n, u); });
  return r;
}

struct BodyRun {
  BS st = BS::NeedMore;
  std::size_t used = 0;
  std::string out;
};
BodyRun feed_body(Http1Exchange& ex, std::string_view bytes, std::uint64_t limit = 0,
                  std::size_t step = kAll) {
  BodyRun r;
  r.st = feed_split<BS>(bytes, step, r.used, [&](const char* d, std::size_t n, std::size_t& u) {
    return ex.feed_body(d, n, u, r.out, limit);
  });
  return r;
}

struct RespRun {
  RS st = RS::NeedMore;
  std::size_t used = 0;
  std::string out;
};
RespRun feed_response(Http1Exchange& ex, std::string_view bytes, std::size_t step = kAll) {
  RespRun r;
  r.st = feed_split<RS>(bytes, step, r.used, [&](const char* d, std::size_t n, std::size_t& u) {
    return ex.feed_response(d, n, u, r.out);
  });
  return r;
}

/// Decodes a chunked body (test oracle); sets `ok` false on malformed framing.
std::string dechunk(std::string_view s, bool& ok) {
  std::string body;
  ok = false;
  for (;;) {
    const auto eol = s.find("\r\n");
    if (eol == std::string_view::npos) return body;
    const auto size = std::stoul(std::string(s.substr(0, eol)), nullptr, 16);
    s.remove_prefix(eol + 2);
    if (size == 0) {
      ok = s == "\r\n";
      return body;
    }
    if (s.size() < size + 2 || s.substr(size, 2) != "\r\n") return body;
    body.append(s.substr(0, size));
    s.remove_prefix(size + 2);
  }
}

std::size_t count(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

const std::string kGet = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

/// An exchange whose request head (and body, when `body` is given) is parsed and whose response
/// has begun.
void start(Http1Exchange& ex, std::string_view request, std::string_view body = {},
           std::string_view extra = {}) {
  const auto h = feed_head(ex, request);
  ASSERT_EQ(h.st, HS::Ready) << ex.error().context;
  if (ex.upgrade_requested()) {
    std::string up;
    ex.append_upstream_head(up, "/");  // as the proxy does: only an upgrade asked upstream may switch
  }
  if (!body.empty()) {
    ASSERT_EQ(feed_body(ex, body).st, BS::Done);
  }
  ex.begin_response(extra, false);
}

// ---------------------------------------------------------------- request head

TEST(Exchange, RequestHead_EverySplitPoint_SameHead) {
  const std::string req = "POST /up?x=1 HTTP/1.1\r\nHost: x\r\nX-A: b\r\nContent-Length: 3\r\n\r\n";
  for (std::size_t split = 0; split <= req.size(); ++split) {
    SCOPED_TRACE(split);
    Http1Exchange ex{{}};
    std::size_t used = 0;
    auto st = ex.feed_head(req.data(), split, used);
    EXPECT_FALSE(ex.request_head_complete() && split < req.size());
    std::string rest = req.substr(used);
    if (st != HS::Ready) st = ex.feed_head(rest.data(), rest.size(), used);
    ASSERT_EQ(st, HS::Ready);
    EXPECT_TRUE(ex.request_head_complete());
    EXPECT_FALSE(ex.request_complete());
    EXPECT_TRUE(ex.head_started());
    EXPECT_EQ(ex.request().method, "POST");
    EXPECT_EQ(ex.request().target, "/up?x=1");
    ASSERT_NE(ex.request().headers.find("x-a"), nullptr);
    EXPECT_EQ(*ex.request().headers.find("x-a"), "b");
    EXPECT_EQ(ex.request().content_length, 3u);
  }
}

TEST(Exchange, RequestHead_ByteByByte_ReadyOnlyAtTheBlankLine) {
  Http1Exchange ex{{}};
  EXPECT_FALSE(ex.head_started());
  EXPECT_TRUE(ex.at_message_start());
  for (std::size_t i = 0; i < kGet.size(); ++i) {
    std::size_t used = 0;
    const auto st = ex.feed_head(kGet.data() + i, 1, used);
    EXPECT_EQ(used, 1u);
    EXPECT_EQ(st, i + 1 == kGet.size() ? HS::Ready : HS::NeedMore) << i;
    EXPECT_TRUE(ex.head_started());
    EXPECT_FALSE(ex.at_message_start() && i + 1 < kGet.size());
  }
  EXPECT_TRUE(ex.request_complete());
}

TEST(Exchange, RequestHead_EmptyFeedIsNeedMoreAndOnceReadyNothingMoreIsConsumed) {
  Http1Exchange ex{{}};
  std::size_t used = 7;
  EXPECT_EQ(ex.feed_head(kGet.data(), 0, used), HS::NeedMore);
  EXPECT_EQ(used, 0u);
  EXPECT_FALSE(ex.head_started());
  const std::string two = kGet + kGet;
  ASSERT_EQ(ex.feed_head(two.data(), two.size(), used), HS::Ready);
  EXPECT_EQ(used, kGet.size());
  EXPECT_EQ(ex.feed_head(two.data() + used, two.size() - used, used), HS::Ready);
  EXPECT_EQ(used, 0u);
}

TEST(Exchange, Pipelined_EachRequestLeftUnconsumedForTheNext) {
  Http1Exchange ex{{}};
  const std::string post = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
  const std::string all = kGet + post + "abc" + "GET /third HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string_view rest = all;
  auto h = feed_head(ex, rest);
  ASSERT_EQ(h.st, HS::Ready);
  EXPECT_EQ(h.used, kGet.size());
  EXPECT_TRUE(ex.request_complete());
  EXPECT_EQ(ex.request().target, "/a");
  rest.remove_prefix(h.used);
  ex.next_request();
  EXPECT_FALSE(ex.request_head_complete());
  EXPECT_FALSE(ex.head_started());
  h = feed_head(ex, rest);
  ASSERT_EQ(h.st, HS::Ready);
  EXPECT_EQ(h.used, post.size());
  EXPECT_EQ(ex.request().target, "/p");
  rest.remove_prefix(h.used);
  const auto b = feed_body(ex, rest);
  EXPECT_EQ(b.st, BS::Done);
  EXPECT_EQ(b.used, 3u);
  EXPECT_EQ(b.out, "abc");
  rest.remove_prefix(b.used);
  ex.next_request();
  h = feed_head(ex, rest);
  ASSERT_EQ(h.st, HS::Ready);
  EXPECT_EQ(ex.request().target, "/third");
  EXPECT_EQ(h.used, rest.size());
}

TEST(Exchange, RequestHead_VersionsOtherThan10And11_Refused) {
  for (const std::string line : {"GET / HTTP/2.0", "GET / HTTP/1.2", "GET / HTTP/0.9", "GET / HTTP/3.1"}) {
    SCOPED_TRACE(line);
    Http1Exchange ex{{}};
    EXPECT_EQ(feed_head(ex, line + "\r\nHost: x\r\n\r\n").st, HS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::BadRequest);
    EXPECT_EQ(ex.error().status(), 400);
  }
  for (const std::string line : {"GET / HTTP/1.0", "GET / HTTP/1.1"}) {
    Http1Exchange ex{{}};
    EXPECT_EQ(feed_head(ex, line + "\r\nHost: x\r\n\r\n").st, HS::Ready) << line;
  }
}

TEST(Exchange, RequestHead_H2cAndRepeatedUpgrade_Refused) {
  struct C {
    std::string fields;
    const char* why;
  };
  for (const auto& c : std::vector<C>{{"Upgrade: h2c\r\n", "Upgrade: h2c"},
                                      {"Upgrade: foo, H2C\r\n", "Upgrade: h2c"},
                                      {"Upgrade: websocket\r\nUpgrade: foo\r\n", "repeated Upgrade"}}) {
    SCOPED_TRACE(c.fields);
    Http1Exchange ex{{}};
    const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n" + c.fields + "\r\n" + kGet;
    const auto h = feed_head(ex, req);
    EXPECT_EQ(h.st, HS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::BadRequest);
    EXPECT_EQ(ex.error().context, c.why);
    // The connection is done: nothing more is parsed, and the reply closes it.
    std::size_t used = 9;
    EXPECT_EQ(ex.feed_head(req.data() + h.used, req.size() - h.used, used), HS::Error);
    EXPECT_EQ(used, 0u);
    std::string out;
    const auto r = ex.append_local_reply(out, 400, "400 Bad Request\n", {}, {}, false, false);
    EXPECT_FALSE(r.keep_alive);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  }
}

TEST(Exchange, RequestHead_ReloadedLimitsApplyFromTheNextRequest) {
  Http1Exchange ex{{}};
  const std::string big = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  // Half the head arrives, then a reload lowers the request-line limit: this head keeps its limits.
  auto h = feed_head(ex, std::string_view(big).substr(0, 20));
  ASSERT_EQ(h.st, HS::NeedMore);
  ex.set_request_limits({50, 32768, 100});
  h = feed_head(ex, std::string_view(big).substr(20));
  ASSERT_EQ(h.st, HS::Ready);
  ex.next_request();
  h = feed_head(ex, big);
  EXPECT_EQ(h.st, HS::Error);
  EXPECT_EQ(ex.error().kind, ErrorKind::UriTooLong);
}

// ---------------------------------------------------------------- forwarding the request

TEST(Exchange, UpstreamHead_FramingFollowsTheClient) {
  struct C {
    std::string fields;
    std::string framing;
  };
  for (const auto& c : std::vector<C>{{"Transfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\n"},
                                      {"Content-Length: 12\r\n", "Content-Length: 12\r\n"},
                                      {"Content-Length: 0\r\n", "Content-Length: 0\r\n"},
                                      {"", ""}}) {
    SCOPED_TRACE(c.fields);
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, "POST /orig HTTP/1.1\r\nHost: x\r\n" + c.fields + "\r\n").st, HS::Ready);
    // As the caller does: framing fields are hop-by-hop and the codec re-emits them.
    ex.request().headers.remove("transfer-encoding");
    ex.request().headers.remove("content-length");
    ex.request().headers.add("X-Fwd", "1");
    std::string out = "pre:";
    ex.append_upstream_head(out, "/normalised");
    EXPECT_EQ(out, "pre:POST /normalised HTTP/1.1\r\nHost: x\r\nX-Fwd: 1\r\n" + c.framing + "\r\n");
  }
}

TEST(Exchange, ChunkedBody_ReChunkedForTheUpstream_AtEverySplit) {
  const std::string body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  for (std::size_t step : {kAll, std::size_t{1}, std::size_t{7}}) {
    SCOPED_TRACE(step);
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").st,
              HS::Ready);
    std::string head;
    ex.append_upstream_head(head, "/");
    const auto b = feed_body(ex, body + kGet, 0, step);
    EXPECT_EQ(b.st, BS::Done);
    EXPECT_EQ(b.used, body.size());  // the pipelined GET is left alone
    EXPECT_TRUE(ex.request_complete());
    EXPECT_EQ(ex.body_bytes(), 11u);
    bool ok = false;
    EXPECT_EQ(dechunk(b.out, ok), "hello world");
    EXPECT_TRUE(ok) << b.out;  // chunk extensions and trailers are not forwarded
    EXPECT_EQ(b.out.find("ext"), std::string::npos);
    EXPECT_EQ(b.out.find("Trailer"), std::string::npos);
    if (step == kAll) {
      EXPECT_EQ(b.out, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    }
    // Done is reported again without a second last-chunk.
    std::string more;
    std::size_t used = 0;
    EXPECT_EQ(ex.feed_body(kGet.data(), kGet.size(), used, more, 0), BS::Done);
    EXPECT_EQ(used, 0u);
    EXPECT_EQ(more, "");
  }
}

TEST(Exchange, ContentLengthBody_ForwardedAsIs) {
  Http1Exchange ex{{}};
  ASSERT_EQ(feed_head(ex, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").st, HS::Ready);
  std::string head;
  ex.append_upstream_head(head, "/");
  auto b = feed_body(ex, "hel");
  EXPECT_EQ(b.st, BS::NeedMore);
  EXPECT_EQ(b.out, "hel");
  EXPECT_FALSE(ex.request_complete());
  b = feed_body(ex, "loXX");
  EXPECT_EQ(b.st, BS::Done);
  EXPECT_EQ(b.used, 2u);
  EXPECT_EQ(b.out, "lo");
  EXPECT_EQ(ex.body_bytes(), 5u);
}

TEST(Exchange, BodylessRequest_BodyDoneAtOnce) {
  Http1Exchange ex{{}};
  ASSERT_EQ(feed_head(ex, kGet).st, HS::Ready);
  std::string out;
  std::size_t used = 0;
  EXPECT_EQ(ex.feed_body(kGet.data(), kGet.size(), used, out, 0), BS::Done);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(out, "");
}

TEST(Exchange, BodyLimit_OverItIsBodyTooLarge) {
  struct C {
    std::string framing;
    std::string body;
    std::size_t step;
    bool body_complete;  // the oversized body was read to its end: the stream is still in step
    std::uint64_t limit = 9;
  };
  for (const auto& c :
       std::vector<C>{{"Content-Length: 10\r\n", "0123456789", kAll, true},
                      {"Content-Length: 10\r\n", "0123456789", 1, false, 5},
                      {"Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n0\r\n\r\n", kAll, true},
                      {"Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n0\r\n\r\n", 1, false}}) {
    SCOPED_TRACE(c.framing + std::to_string(c.step));
    const std::string head = "POST / HTTP/1.1\r\nHost: x\r\n" + c.framing + "\r\n";
    std::string up;
    {
      Http1Exchange at{{}};  // at the limit exactly: fine
      ASSERT_EQ(feed_head(at, head).st, HS::Ready);
      at.append_upstream_head(up, "/");
      EXPECT_EQ(feed_body(at, c.body, 10, c.step).st, BS::Done);
    }
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, head).st, HS::Ready);
    ex.append_upstream_head(up, "/");
    const auto b = feed_body(ex, c.body, c.limit, c.step);
    EXPECT_EQ(b.st, BS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::BodyTooLarge);
    EXPECT_EQ(ex.error().status(), 413);
    EXPECT_EQ(ex.request_complete(), c.body_complete);
    std::size_t used = 1;
    std::string more;
    EXPECT_EQ(ex.feed_body("0\r\n\r\n", 5, used, more, 9), BS::Error);  // stays refused
    EXPECT_EQ(used, 0u);
    std::string out;
    const auto r = ex.append_local_reply(out, 413, "413\n", {}, {}, false, false);
    EXPECT_EQ(r.keep_alive, c.body_complete);
    EXPECT_EQ(r.linger, !c.body_complete);
  }
}

TEST(Exchange, MalformedChunk_IsTheParsersBadRequest) {
  for (const std::string body : {"zz\r\nab\r\n0\r\n\r\n", "-1\r\na\r\n", "0x5\r\nhello\r\n",
                                 "5\r\nhelloXX0\r\n\r\n", "fffffffffffffffffff\r\n"}) {
    SCOPED_TRACE(body);
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").st,
              HS::Ready);
    std::string head;
    ex.append_upstream_head(head, "/");
    EXPECT_EQ(feed_body(ex, body).st, BS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::BadRequest);
    EXPECT_FALSE(ex.request_complete());
    std::size_t used = 3;
    std::string out;
    EXPECT_EQ(ex.feed_body("0\r\n\r\n", 5, used, out, 0), BS::Error);
    EXPECT_EQ(used, 0u);
  }
}

// proxy-request-buffering: the body comes out de-chunked (trailers dropped) and the upstream head
// frames it with Content-Length, never Transfer-Encoding; the next request starts streaming again.
TEST(Exchange, BufferedBody_DechunkedAndSentWithContentLength) {
  Http1Exchange ex{{}};
  const std::string chunked_req = "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "3;ext=1\r\nabc\r\n5\r\ndefgh\r\n0\r\nTrailer-X: t\r\n\r\n";
  const std::string next = "GET /n HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t step : {kAll, std::size_t{1}}) {
    SCOPED_TRACE(step);
    Http1Exchange e{{}};
    ASSERT_EQ(feed_head(e, chunked_req).st, HS::Ready);
    e.buffer_body();
    const auto b = feed_body(e, body + next, 0, step);
    EXPECT_EQ(b.st, BS::Done);
    EXPECT_EQ(b.out, "abcdefgh");
    EXPECT_EQ(b.used, body.size());  // the pipelined request is left for later
    std::string head;
    e.append_upstream_head(head, "/u");
    EXPECT_NE(head.find("\r\nContent-Length: 8\r\n"), std::string::npos) << head;
    EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;
    EXPECT_EQ(head.find("Trailer-X"), std::string::npos) << head;
  }
  // Content-Length bodies keep their length; an empty chunked body gets Content-Length: 0.
  ASSERT_EQ(feed_head(ex, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n").st, HS::Ready);
  ex.buffer_body();
  EXPECT_EQ(feed_body(ex, "wxyz").out, "wxyz");
  std::string head;
  ex.append_upstream_head(head, "/");
  EXPECT_NE(head.find("\r\nContent-Length: 4\r\n"), std::string::npos) << head;
  ex.next_request();
  ASSERT_EQ(feed_head(ex, chunked_req).st, HS::Ready);
  ex.buffer_body();
  EXPECT_EQ(feed_body(ex, "0\r\n\r\n").st, BS::Done);
  head.clear();
  ex.append_upstream_head(head, "/");
  EXPECT_NE(head.find("\r\nContent-Length: 0\r\n"), std::string::npos) << head;
  // Not buffered: the next chunked request is re-chunked as before.
  ex.next_request();
  ASSERT_EQ(feed_head(ex, chunked_req).st, HS::Ready);
  head.clear();
  ex.append_upstream_head(head, "/");
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_EQ(feed_body(ex, "3\r\nabc\r\n0\r\n\r\n").out, "3\r\nabc\r\n0\r\n\r\n");
}

// ---------------------------------------------------------------- 100-continue

TEST(Exchange, Continue_OnceAndOnlyWhenDue) {
  const std::string expect = "Expect: 100-continue\r\n";
  const auto post = [](std::string version, std::string fields) {
    return "POST / HTTP/" + version + "\r\nHost: x\r\nContent-Length: 4\r\n" + fields + "\r\n";
  };
  {
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, post("1.1", expect)).st, HS::Ready);
    EXPECT_TRUE(ex.take_continue());
    EXPECT_FALSE(ex.take_continue());  // exactly once
    EXPECT_EQ(Http1Exchange::kContinue, "HTTP/1.1 100 Continue\r\n\r\n");
    std::string up;
    ex.append_upstream_head(up, "/");
    ASSERT_EQ(feed_body(ex, "abcd").st, BS::Done);
    ex.next_request();  // and again for the next request that asks
    ASSERT_EQ(feed_head(ex, post("1.1", expect)).st, HS::Ready);
    EXPECT_TRUE(ex.take_continue());
  }
  {
    Http1Exchange ex{{}};  // HTTP/1.0 clients do not know 100
    ASSERT_EQ(feed_head(ex, post("1.0", expect)).st, HS::Ready);
    EXPECT_FALSE(ex.take_continue());
  }
  {
    Http1Exchange ex{{}};  // not asked
    ASSERT_EQ(feed_head(ex, post("1.1", "")).st, HS::Ready);
    EXPECT_FALSE(ex.take_continue());
  }
  {
    Http1Exchange ex{{}};  // the client is already sending its body
    ASSERT_EQ(feed_head(ex, post("1.1", expect)).st, HS::Ready);
    std::string head;
    ex.append_upstream_head(head, "/");
    EXPECT_EQ(feed_body(ex, "ab").st, BS::NeedMore);
    EXPECT_FALSE(ex.take_continue());
  }
  {
    Http1Exchange ex{{}};  // the whole body came with the head
    const std::string req = post("1.1", expect) + "abcd";
    ASSERT_EQ(feed_head(ex, req).st, HS::Ready);
    std::string head;
    ex.append_upstream_head(head, "/");
    EXPECT_EQ(feed_body(ex, "abcd").st, BS::Done);
    EXPECT_FALSE(ex.take_continue());
  }
  {
    Http1Exchange ex{{}};  // no body to wait for
    ASSERT_EQ(feed_head(ex, "GET / HTTP/1.1\r\nHost: x\r\n" + expect + "\r\n").st, HS::Ready);
    EXPECT_FALSE(ex.take_continue());
  }
}

// ---------------------------------------------------------------- response framing

TEST(Exchange, Response_ContentLengthKept_Reusable) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: c\r\n\r\nhello";
  for (std::size_t step : {kAll, std::size_t{1}}) {
    SCOPED_TRACE(step);
    ex.begin_response({}, false);
    EXPECT_FALSE(ex.response_head_sent());
    EXPECT_EQ(ex.response_status(), 0);
    const auto r = feed_response(ex, resp, step);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(r.used, resp.size());
    EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nX-B: c\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_TRUE(ex.response_head_sent());
    EXPECT_EQ(ex.response_status(), 200);
    EXPECT_TRUE(ex.upstream_reusable(false));
    EXPECT_FALSE(ex.upstream_reusable(true));
    EXPECT_TRUE(ex.client_keep_alive());
  }
}

TEST(Exchange, Response_ChunkedUpstream_ReChunkedForAn11Client) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
  const auto r = feed_response(ex, resp, 5);
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_EQ(r.used, resp.size());
  const auto body_at = r.out.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  EXPECT_EQ(r.out.substr(0, body_at + 4), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  bool ok = false;
  EXPECT_EQ(dechunk(std::string_view(r.out).substr(body_at + 4), ok), "abcde");
  EXPECT_TRUE(ok);
  EXPECT_TRUE(ex.upstream_reusable(false));
  EXPECT_TRUE(ex.client_keep_alive());
}

TEST(Exchange, Response_UntilClose_ReChunkedForAn11Client) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nX: y\r\n\r\nabc");
  EXPECT_EQ(r.st, RS::NeedMore);
  EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nX: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  std::string out;
  EXPECT_EQ(ex.upstream_eof(out), RS::Complete);
  EXPECT_EQ(out, "0\r\n\r\n");
  EXPECT_FALSE(ex.upstream_reusable(false));  // the upstream closed
  EXPECT_TRUE(ex.client_keep_alive());        // the client's framing ended cleanly
}

TEST(Exchange, Response_UntilClose_ToAn10Client_ClosesTheClient) {
  Http1Exchange ex{{}};
  start(ex, "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(ex.request().keep_alive);
  const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\n\r\nabc");
  EXPECT_EQ(r.st, RS::NeedMore);
  EXPECT_EQ(r.out, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nabc");
  std::string out;
  EXPECT_EQ(ex.upstream_eof(out), RS::Complete);
  EXPECT_EQ(out, "");
  EXPECT_FALSE(ex.client_keep_alive());
  EXPECT_FALSE(ex.upstream_reusable(false));
}

TEST(Exchange, Response_ToAn10KeepAliveClient_WithLength_KeepsAlive) {
  Http1Exchange ex{{}};
  start(ex, "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
  const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_EQ(r.out, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  EXPECT_TRUE(ex.client_keep_alive());
}

TEST(Exchange, Response_CloseClientAndClientConnectionClose_SayConnectionClose) {
  {
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, kGet).st, HS::Ready);
    ex.begin_response({}, true);  // draining
    const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_FALSE(ex.client_keep_alive());
    EXPECT_TRUE(ex.upstream_reusable(false));  // the upstream side is unaffected
  }
  {
    Http1Exchange ex{{}};
    start(ex, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ex.set_close_client();
    const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_NE(r.out.find("Connection: close\r\n"), std::string::npos);
    EXPECT_FALSE(ex.client_keep_alive());
  }
  {
    Http1Exchange ex{{}};
    start(ex, kGet);
    ex.set_close_client();  // a drain began while waiting for the upstream
    const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_NE(r.out.find("Connection: close\r\n"), std::string::npos);
    EXPECT_FALSE(ex.client_keep_alive());
  }
}

TEST(Exchange, Response_HeadAnd204And304_HaveNoBody) {
  struct C {
    std::string request;
    std::string response;
    std::string out;
  };
  const std::string head_req = "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const auto& c : std::vector<C>{
           {head_req, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
           {head_req, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
           {head_req, "HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
           {kGet, "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n"},
           {kGet, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n"},
       }) {
    SCOPED_TRACE(c.request + c.response);
    Http1Exchange ex{{}};
    start(ex, c.request);
    const auto r = feed_response(ex, c.response);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(r.used, c.response.size());
    EXPECT_EQ(r.out, c.out);
    EXPECT_TRUE(ex.client_keep_alive());
  }
}

TEST(Exchange, Response_HstsAddedUnlessTheUpstreamSetsItsOwn) {
  const std::string hsts = "Strict-Transport-Security: max-age=31536000\r\n";
  {
    Http1Exchange ex{{}};
    start(ex, kGet, {}, hsts);
    const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + hsts + "\r\n");
  }
  {
    Http1Exchange ex{{}};
    start(ex, kGet, {}, hsts);
    const auto r = feed_response(
        ex, "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=5\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(count(r.out, "max-age"), 1u);
    EXPECT_NE(r.out.find("max-age=5"), std::string::npos);
  }
  {
    // The upstream's own HSTS drops ours only: an affinity Set-Cookie after it still goes out.
    Http1Exchange ex{{}};
    start(ex, kGet, {}, hsts + "Set-Cookie: route=ab; Path=/; HttpOnly\r\n");
    const auto r = feed_response(
        ex, "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=5\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(count(r.out, "max-age"), 1u);
    EXPECT_NE(r.out.find("\r\nSet-Cookie: route=ab; Path=/; HttpOnly\r\n"), std::string::npos) << r.out;
  }
  {
    // extra_fields are copied: the caller's view may die before the head goes out.
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, kGet).st, HS::Ready);
    {
      std::string temp = hsts;
      ex.begin_response(temp, false);
      temp.assign(temp.size(), 'Z');
    }
    const auto r = feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_NE(r.out.find(hsts), std::string::npos);
  }
}

TEST(Exchange, Response_HopByHopFieldsRemoved) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const auto r = feed_response(ex,
                               "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n"
                               "Keep-Alive: timeout=5\r\nX-Kept: k\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nX-Kept: k\r\nContent-Length: 0\r\n\r\n");
}

// ---------------------------------------------------------------- interim responses

TEST(Exchange, Interim_DroppedBeforeTheFinalResponse) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const std::string resp =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (std::size_t step : {kAll, std::size_t{1}, std::size_t{30}}) {
    SCOPED_TRACE(step);
    ex.begin_response({}, false);
    const auto r = feed_response(ex, resp, step);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(ex.response_status(), 200);
    EXPECT_TRUE(ex.upstream_reusable(false));
  }
}

TEST(Exchange, Interim_101WithoutUpgradeRequest_Refused) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const auto r = feed_response(
      ex, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nanything");
  EXPECT_EQ(r.st, RS::Error);
  EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamBadResponse);
  EXPECT_EQ(ex.error().context, "101 without an upgrade request");
  EXPECT_FALSE(ex.upgraded());
  EXPECT_EQ(ex.error().status(), 502);
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(ex.response_head_sent());
  EXPECT_FALSE(ex.upstream_reusable(false));
}

TEST(Exchange, Interim_NineRefusedEightTolerated) {
  std::string interims;
  for (int i = 0; i < 8; ++i) interims += "HTTP/1.1 103 Early Hints\r\n\r\n";
  const std::string final_resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  {
    Http1Exchange ex{{}};
    start(ex, kGet);
    EXPECT_EQ(feed_response(ex, interims + final_resp).st, RS::Complete);
  }
  {
    Http1Exchange ex{{}};
    start(ex, kGet);
    const auto r = feed_response(ex, interims + "HTTP/1.1 100 Continue\r\n\r\n" + final_resp);
    EXPECT_EQ(r.st, RS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamBadResponse);
    EXPECT_EQ(ex.error().context, "too many 1xx responses");
    EXPECT_EQ(r.out, "");
  }
  {
    ExchangeOptions o;
    o.max_interim = 2;
    Http1Exchange ex{o};
    start(ex, kGet);
    EXPECT_EQ(feed_response(ex, interims + final_resp, 3).st, RS::Error);
  }
}

// ---------------------------------------------------------------- reuse

TEST(Exchange, BytesAfterTheResponse_LeftUnconsumed_NotReusable) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const auto r = feed_response(ex, resp + "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_EQ(r.used, resp.size());
  EXPECT_EQ(r.out.find("HTTP/1.1 200 OK\r\n", 1), std::string::npos);
  const bool leftover = r.used < resp.size() + 17;
  EXPECT_TRUE(leftover);
  EXPECT_FALSE(ex.upstream_reusable(leftover));
  // Feeding again consumes nothing: the response is over.
  std::size_t used = 5;
  std::string out;
  EXPECT_EQ(ex.feed_response("HTTP/", 5, used, out), RS::Complete);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(out, "");
}

TEST(Exchange, HeadAndFramingSuspect_NeverReusable) {
  struct C {
    std::string request;
    std::string response;
  };
  for (const auto& c : std::vector<C>{
           {"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
           {kGet, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"},
           {kGet, "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"},
           {kGet, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"},
       }) {
    SCOPED_TRACE(c.request + c.response);
    Http1Exchange ex{{}};
    start(ex, c.request);
    const auto r = feed_response(ex, c.response);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(r.used, c.response.size());
    EXPECT_FALSE(ex.upstream_reusable(false));
    EXPECT_TRUE(ex.client_keep_alive());
  }
  // A 304 repeating its Content-Length is fine (RFC 9110 §15.4.5).
  Http1Exchange ex{{}};
  start(ex, kGet);
  EXPECT_EQ(feed_response(ex, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").st, RS::Complete);
  EXPECT_TRUE(ex.upstream_reusable(false));
}

TEST(Exchange, UpstreamConnectionCloseOrHttp10_NotReusable) {
  for (const std::string resp : {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                                 "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"}) {
    SCOPED_TRACE(resp);
    Http1Exchange ex{{}};
    start(ex, kGet);
    const auto r = feed_response(ex, resp);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_FALSE(ex.upstream_reusable(false));
    EXPECT_EQ(r.out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");  // the client keeps its connection
    EXPECT_TRUE(ex.client_keep_alive());
  }
}

TEST(Exchange, BeforeCompleteOrWithRequestBodyUnread_NotReusable) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  EXPECT_EQ(feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no").st, RS::NeedMore);
  EXPECT_FALSE(ex.upstream_reusable(false));
}

// ---------------------------------------------------------------- upstream EOF

TEST(Exchange, UpstreamEof_MidBodyOrBeforeTheHead_IsAReset) {
  for (const std::string partial :
       {"", "HTTP/1.1 200 OK\r\nContent-Len", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "HTTP/1.1 103 Early Hints\r\n\r\n"}) {
    SCOPED_TRACE(partial);
    Http1Exchange ex{{}};
    start(ex, kGet);
    const auto r = feed_response(ex, partial);
    EXPECT_EQ(r.st, RS::NeedMore);
    std::string out;
    EXPECT_EQ(ex.upstream_eof(out), RS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamReset);
    EXPECT_EQ(ex.error().context, "eof");
    EXPECT_EQ(out, "");  // no last-chunk: the client must see the truncation
    EXPECT_FALSE(ex.upstream_reusable(false));
  }
}

TEST(Exchange, OutOfOrderCalls_AreInternalErrors) {
  Http1Exchange ex{{}};
  std::string out;
  std::size_t used = 1;
  EXPECT_EQ(ex.feed_body("ab", 2, used, out, 0), BS::Error);
  EXPECT_EQ(ex.error().kind, ErrorKind::Internal);
  ASSERT_EQ(feed_head(ex, kGet).st, HS::Ready);
  EXPECT_EQ(ex.feed_response("HTTP/1.1 200 OK\r\n\r\n", 19, used, out), RS::Error);
  EXPECT_EQ(ex.error().kind, ErrorKind::Internal);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(out, "");
}

TEST(Exchange, ResponseAccessors) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  auto r =
      feed_response(ex, "HTTP/1.1 201 Made\r\nConnection: close\r\nX-R: 1\r\nContent-Length: 2\r\n\r\no");
  EXPECT_FALSE(ex.response_complete());
  EXPECT_EQ(ex.response().status, 201);
  EXPECT_EQ(ex.response().reason, "Made");
  EXPECT_EQ(ex.response().headers.find("connection"), nullptr);
  ASSERT_NE(ex.response().headers.find("x-r"), nullptr);
  EXPECT_EQ(r.out, "HTTP/1.1 201 Made\r\nX-R: 1\r\nContent-Length: 2\r\n\r\no");
  r = feed_response(ex, "k");
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_TRUE(ex.response_complete());
}

TEST(Exchange, UpstreamEof_AfterCompleteResponse_StaysComplete) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  EXPECT_EQ(feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").st, RS::Complete);
  std::string out;
  EXPECT_EQ(ex.upstream_eof(out), RS::Complete);
  EXPECT_EQ(out, "");
}

// ---------------------------------------------------------------- local replies

TEST(Exchange, LocalReply_CloseKeepAliveAndLinger) {
  struct C {
    std::string name;
    std::string bytes;  // fed as head (and body when it completes the request)
    bool feed_body;
    bool must_close, close_client;
    bool keep_alive, linger;
    std::string status_line;
  };
  const std::string post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n";
  for (const auto& c : std::vector<C>{
           {"complete GET", kGet, false, false, false, true, false, "HTTP/1.1 404 Not Found\r\n"},
           {"must close", kGet, false, true, false, false, false, "HTTP/1.1 404 Not Found\r\n"},
           {"draining", kGet, false, false, true, false, false, "HTTP/1.1 404 Not Found\r\n"},
           {"client Connection: close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false,
            false, false, false, false, "HTTP/1.1 404 Not Found\r\n"},
           {"1.0 without keep-alive", "GET / HTTP/1.0\r\n\r\n", false, false, false, false, false,
            "HTTP/1.0 404 Not Found\r\n"},
           {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, false, false, true,
            false, "HTTP/1.0 404 Not Found\r\n"},
           {"body unread", post, false, false, false, false, true, "HTTP/1.1 404 Not Found\r\n"},
           {"body unread, must close", post, false, true, false, false, true, "HTTP/1.1 404 Not Found\r\n"},
           {"body read", post, true, false, false, true, false, "HTTP/1.1 404 Not Found\r\n"},
           {"head incomplete", "GET / HTTP/1.1\r\nHo", false, false, false, false, false,
            "HTTP/1.1 404 Not Found\r\n"},
           {"head malformed", "GET / HTTP/1.0\r\nHost : x\r\n\r\n", false, false, false, false, false,
            "HTTP/1.1 404 Not Found\r\n"},
       }) {
    SCOPED_TRACE(c.name);
    Http1Exchange ex{{}};
    feed_head(ex, c.bytes);
    if (c.feed_body) {
      std::string up;
      ex.append_upstream_head(up, "/");
      ASSERT_EQ(feed_body(ex, "abcd").st, BS::Done);
    }
    std::string out;
    const auto r = ex.append_local_reply(out, 404, "404 Not Found\n", {}, {}, c.must_close, c.close_client);
    EXPECT_EQ(r.keep_alive, c.keep_alive);
    EXPECT_EQ(r.linger, c.linger);
    EXPECT_EQ(ex.client_keep_alive(), c.keep_alive);
    EXPECT_EQ(out.rfind(c.status_line, 0), 0u) << out;
    EXPECT_EQ(out.find("Connection: close\r\n") != std::string::npos, !c.keep_alive) << out;
    EXPECT_NE(out.find("Content-Length: 14\r\n"), std::string::npos);
    EXPECT_EQ(out.substr(out.size() - 14), "404 Not Found\n");
  }
}

TEST(Exchange, LocalReply_HeadGetsNoBody_LocationAndExtraFields) {
  Http1Exchange ex{{}};
  ASSERT_EQ(feed_head(ex, "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n").st, HS::Ready);
  std::string out;
  const auto r =
      ex.append_local_reply(out, 308, "308 Permanent Redirect\n", "https://a/x", "X-E: 1\r\n", false, false);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(out,
            "HTTP/1.1 308 Permanent Redirect\r\nServer: phigate\r\nContent-Type: text/plain\r\n"
            "Content-Length: 23\r\nLocation: https://a/x\r\nX-E: 1\r\n\r\n");
}

TEST(Exchange, NextRequest_ForgetsTheExchange) {
  Http1Exchange ex{{}};
  start(ex, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(feed_body(ex, "a").st, BS::Done);
  ASSERT_EQ(feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").st, RS::Complete);
  ex.next_request();
  EXPECT_FALSE(ex.request_head_complete());
  EXPECT_FALSE(ex.request_complete());
  EXPECT_FALSE(ex.response_head_sent());
  EXPECT_EQ(ex.response_status(), 0);
  EXPECT_EQ(ex.body_bytes(), 0u);
  EXPECT_FALSE(ex.upstream_reusable(false));
  ASSERT_EQ(feed_head(ex, kGet).st, HS::Ready);
  ex.begin_response({}, false);
  EXPECT_EQ(feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").st, RS::Complete);
  EXPECT_TRUE(ex.upstream_reusable(false));
}

// ---------------------------------------------------------------- upgrades (WebSocket)
// RFC 6455 §4.1 / RFC 9110 §7.8: an allowed upgrade goes upstream with its Connection/Upgrade
// fields; only a 101 naming the same protocol turns the exchange into a tunnel; anything else
// ends both connections. The bytes after either head are the tunnel's, never parsed.

const std::string kWsRequest =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const std::string kWs101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

TEST(ExchangeUpgrade, WebSocket_AcceptedForwardedAndSwitched) {
  for (std::size_t step : {kAll, std::size_t{1}, std::size_t{7}}) {
    SCOPED_TRACE(step);
    Http1Exchange ex{{}};
    // Frames the client sent right after its head (not waiting for the 101) stay unconsumed.
    const std::string frames = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    const auto h = feed_head(ex, kWsRequest + frames, step);
    ASSERT_EQ(h.st, HS::Ready) << ex.error().context;
    EXPECT_EQ(h.used, kWsRequest.size());
    EXPECT_TRUE(ex.upgrade_requested());
    EXPECT_EQ(ex.upgrade_protocol(), "websocket");
    EXPECT_TRUE(ex.request_complete());
    EXPECT_FALSE(ex.take_continue());
    // The caller strips hop-by-hop fields first; the codec asks for the upgrade again.
    remove_hop_by_hop(ex.request().headers);
    std::string up;
    ex.append_upstream_head(up, "/ws");
    EXPECT_NE(up.find("\r\nConnection: upgrade\r\n"), std::string::npos) << up;
    EXPECT_NE(up.find("\r\nUpgrade: websocket\r\n"), std::string::npos) << up;
    EXPECT_NE(up.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos);
    EXPECT_EQ(up.find("keep-alive"), std::string::npos);
    EXPECT_EQ(count(up, "Upgrade: "), 1u);
    // No body to forward.
    std::size_t used = 0;
    std::string body_out;
    EXPECT_EQ(ex.feed_body(frames.data(), frames.size(), used, body_out, 0), BS::Done);
    EXPECT_EQ(used, 0u);
    EXPECT_EQ(body_out, "");

    ex.begin_response("Strict-Transport-Security: max-age=1\r\n", false);
    const std::string server_frames = "\x81\x05hello";
    const auto r = feed_response(ex, kWs101 + server_frames, step);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(r.used, kWs101.size());  // the frames after the head are the tunnel's
    EXPECT_TRUE(ex.upgraded());
    EXPECT_EQ(ex.response_status(), 101);
    EXPECT_TRUE(ex.response_head_sent());
    EXPECT_EQ(r.out.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\r\nConnection: upgrade\r\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\r\nUpgrade: websocket\r\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
    EXPECT_EQ(r.out.find("close"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Content-Length"), std::string::npos);
    EXPECT_EQ(r.out.find("Transfer-Encoding"), std::string::npos);
    EXPECT_EQ(r.out.find("hello"), std::string::npos);
    EXPECT_EQ(r.out.substr(r.out.size() - 4), "\r\n\r\n");
    // Never reused, whatever is left; the client connection is the tunnel's, not HTTP's.
    EXPECT_FALSE(ex.upstream_reusable(false));
    EXPECT_FALSE(ex.upstream_reusable(true));
    EXPECT_FALSE(ex.client_keep_alive());
    // Nothing after the 101 is parsed as HTTP, on either side.
    std::string more;
    EXPECT_EQ(ex.feed_response(server_frames.data(), server_frames.size(), used, more), RS::Complete);
    EXPECT_EQ(used, 0u);
    EXPECT_EQ(more, "");
  }
}

// An upgrade request whose answer came from the error backend (custom-http-errors): the page's
// `GET /` asked for no upgrade, so that backend's 101 is an error (the caller falls back to its own
// answer), never a head relayed without a tunnel; so is any other 1xx but 100.
TEST(ExchangeUpgrade, ErrorPageResponse_NeverSwitchesNorTakesInterims) {
  for (const std::string& interim : {kWs101, std::string("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
                                     std::string("HTTP/1.1 102 Processing\r\n\r\n")}) {
    SCOPED_TRACE(interim.substr(0, 12));
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, kWsRequest).st, HS::Ready);
    remove_hop_by_hop(ex.request().headers);
    std::string up;
    ex.append_upstream_head(up, "/ws");
    ex.begin_response({}, false);
    ASSERT_EQ(feed_response(ex, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").st, RS::Complete);
    // The error page: a head of the caller's own.
    ex.error_page_response();
    ex.begin_response({}, false);
    const auto r = feed_response(ex, interim + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(r.st, RS::Error);
    EXPECT_FALSE(ex.upgraded());
    EXPECT_FALSE(ex.response_head_sent());
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamBadResponse);
  }
  // 100 Continue is only dropped, as always.
  Http1Exchange ex{{}};
  ASSERT_EQ(feed_head(ex, kWsRequest).st, HS::Ready);
  ex.error_page_response();
  ex.begin_response({}, false);
  const auto r =
      feed_response(ex, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_EQ(ex.response_status(), 200);
  // A 101 also needs the upstream head to have asked for it (append_upstream_head).
  Http1Exchange unasked{{}};
  ASSERT_EQ(feed_head(unasked, kWsRequest).st, HS::Ready);
  unasked.begin_response({}, false);
  EXPECT_EQ(feed_response(unasked, kWs101).st, RS::Error);
  EXPECT_FALSE(unasked.upgraded());
}

TEST(ExchangeUpgrade, ProtocolNamesComparedWithoutCase_VersionKept) {
  Http1Exchange ex{{}};
  ASSERT_EQ(
      feed_head(ex, "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: WebSocket/13\r\n\r\n").st,
      HS::Ready)
      << ex.error().context;
  EXPECT_EQ(ex.upgrade_protocol(), "WebSocket/13");
  std::string up;
  ex.append_upstream_head(up, "/");  // the upgrade is asked upstream: only then may a 101 switch
  ex.begin_response({}, false);
  EXPECT_EQ(
      feed_response(
          ex, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket/13\r\n\r\n")
          .st,
      RS::Complete);
  EXPECT_TRUE(ex.upgraded());
}

TEST(ExchangeUpgrade, ConfiguredTokens_OthersAndH2cRefused) {
  const std::vector<std::string> allowed = {"foo", "h2c"};  // h2c is refused even when listed
  ExchangeOptions opts;
  opts.upgrades = allowed;
  struct C {
    std::string proto;
    const char* why;  // nullptr: accepted
  };
  for (const auto& c : std::vector<C>{{"foo", nullptr},
                                      {"FOO/2", nullptr},
                                      {"websocket", "Upgrade protocol not allowed"},
                                      {"bar", "Upgrade protocol not allowed"},
                                      {"h2c", "Upgrade: h2c"},
                                      {"foo, h2c", "Upgrade: h2c"},
                                      {"foo, bar", "Upgrade must name one protocol"},
                                      {"fo\"o", "Upgrade protocol is not a token"}}) {
    SCOPED_TRACE(c.proto);
    Http1Exchange ex{opts};
    const auto h = feed_head(
        ex, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + c.proto + "\r\n\r\n" + kGet);
    if (c.why == nullptr) {
      EXPECT_EQ(h.st, HS::Ready) << ex.error().context;
      EXPECT_TRUE(ex.upgrade_requested());
      continue;
    }
    EXPECT_EQ(h.st, HS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::BadRequest);
    EXPECT_EQ(ex.error().context, c.why);
    EXPECT_FALSE(ex.upgrade_requested());
    std::string out;
    EXPECT_FALSE(ex.append_local_reply(out, 400, "400\n", {}, {}, false, false).keep_alive);
  }
  // An empty list turns upgrades off: even websocket is refused.
  ExchangeOptions none;
  none.upgrades = {};
  Http1Exchange ex{none};
  EXPECT_EQ(feed_head(ex, kWsRequest).st, HS::Error);
  EXPECT_EQ(ex.error().context, "Upgrade protocol not allowed");
}

TEST(ExchangeUpgrade, NonSwitchingAnswer_RelayedThenBothConnectionsClose) {
  for (const std::string& resp : {std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                                  std::string("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
                                  std::string("HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n"
                                              "Connection: Upgrade\r\nContent-Length: 0\r\n\r\n")}) {
    SCOPED_TRACE(resp);
    Http1Exchange ex{{}};
    start(ex, kWsRequest);
    const auto r = feed_response(ex, resp);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_FALSE(ex.upgraded());
    EXPECT_NE(r.out.find("Connection: close\r\n"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Upgrade:"), std::string::npos) << r.out;  // hop-by-hop: not relayed
    // The upstream may still expect the new protocol; the client may already be sending it.
    EXPECT_FALSE(ex.upstream_reusable(false));
    EXPECT_FALSE(ex.client_keep_alive());
  }
  // A local reply (a phase refused the request) closes too.
  Http1Exchange ex{{}};
  ASSERT_EQ(feed_head(ex, kWsRequest).st, HS::Ready);
  std::string out;
  EXPECT_FALSE(ex.append_local_reply(out, 404, "404\n", {}, {}, false, false).keep_alive);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
}

TEST(ExchangeUpgrade, Interim_ThenSwitch) {
  Http1Exchange ex{{}};
  start(ex, kWsRequest);
  const auto r = feed_response(ex, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + kWs101 + "X");
  EXPECT_EQ(r.st, RS::Complete);
  EXPECT_TRUE(ex.upgraded());
  EXPECT_EQ(count(r.out, "HTTP/1.1 "), 1u);
}

TEST(ExchangeUpgrade, SwitchToAnotherProtocol_Refused) {
  for (const std::string& resp :
       {std::string("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n"),
        std::string(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket, foo\r\n\r\n"),
        std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),  // no Connection
        std::string("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n")}) {
    SCOPED_TRACE(resp);
    Http1Exchange ex{{}};
    start(ex, kWsRequest);
    const auto r = feed_response(ex, resp + std::string(kMarker));
    EXPECT_EQ(r.st, RS::Error);
    EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamBadResponse);
    EXPECT_EQ(ex.error().status(), 502);
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(ex.upgraded());
    EXPECT_FALSE(ex.upstream_reusable(false));
  }
}

// ---------------------------------------------------------------- malicious client corpus
// tests/integration/smuggling_test.cpp and the framing attacks behind it, at the codec: each is
// refused before anything is forwarded, nothing after it is parsed, and the reply closes.

struct ClientCase {
  std::string name;
  std::string bytes;
  bool head_ok;  // the head passes (the body is what is refused)
};

std::vector<ClientCase> client_corpus() {
  const std::string host = "Host: app.example\r\n";
  const std::string next = "GET /admin HTTP/1.1\r\n" + host + "\r\n";
  return {
      {"upgrade-smuggling",
       "POST /x HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 1\r\n\r\nA" +
           next,
       false},
      {"websocket-with-body",
       "GET /ws HTTP/1.1\r\n" + host +
           "Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello" + next,
       false},
      {"websocket-chunked",
       "GET /ws HTTP/1.1\r\n" + host +
           "Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
       false},
      {"websocket-post",
       "POST /ws HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + next, false},
      {"websocket-http10",
       "GET /ws HTTP/1.0\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + next, false},
      {"websocket-and-another",
       "GET /ws HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket, foo\r\n\r\n" + next,
       false},
      {"unknown-protocol",
       "GET /ws HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: foo/1\r\n\r\n" + next, false},
      {"keep-alive-and-upgrade",
       "GET /ka HTTP/1.1\r\n" + host + "Connection: keep-alive, Upgrade\r\nUpgrade: foo\r\n\r\n" + next,
       false},
      {"connect", "CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\n\r\n" + next, false},
      {"h2c-upgrade",
       "GET /h2c HTTP/1.1\r\n" + host +
           "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "
           "AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
       false},
      {"h2c-without-connection", "GET /h2c HTTP/1.1\r\n" + host + "Upgrade: h2c\r\n\r\n" + next, false},
      {"h2c-prior-knowledge", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},
      {"te-in-http10",
       "POST /te10 HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, false},
      {"cl-and-te",
       "POST /clte HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
           next,
       false},
      {"te-and-cl",
       "POST /tecl HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" +
           next,
       false},
      {"two-content-lengths",
       "POST /cl2 HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nAB", false},
      {"content-length-list", "POST /cl HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\nA", false},
      {"content-length-sign", "POST /cl HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\nA", false},
      {"te-not-chunked-last", "POST /te HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n",
       false},
      {"te-identity", "POST /te HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n", false},
      {"te-obfuscated", "POST /te HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n", false},
      {"space-before-colon", "POST /sp HTTP/1.1\r\n" + host + "Content-Length : 3\r\n\r\nabc", false},
      {"obs-fold", "GET /f HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n", false},
      {"obs-fold-te", "POST /f HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n", false},
      {"bare-lf", "GET /lf HTTP/1.1\n" + host + "\n", false},
      {"bare-cr", "GET /cr HTTP/1.1\r\nHost: app.example\rX: y\r\n\r\n", false},
      {"nul-in-value", std::string("GET /n HTTP/1.1\r\nHost: app.example\r\nX: a") + '\0' + "b\r\n\r\n",
       false},
      {"unknown-expect", "POST /e HTTP/1.1\r\n" + host + "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nA",
       false},
      {"version-2", "GET / HTTP/2.0\r\n" + host + "\r\n", false},
      {"bad-chunk-size", "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + next,
       true},
      {"negative-chunk-size", "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n-1\r\nA\r\n",
       true},
      {"chunk-size-hex-prefix",
       "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0x1\r\nA\r\n0\r\n\r\n", true},
      {"chunk-size-overflow",
       "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nA\r\n", true},
      {"chunk-data-overrun",
       "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n" + next, true},
      {"chunk-lf-only", "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\nA\n0\n\n",
       true},
  };
}

TEST(ExchangeCorpus, MaliciousClient_RefusedNothingForwardedNothingAfterParsed) {
  for (const auto& c : client_corpus()) {
    for (std::size_t step : {kAll, std::size_t{1}}) {
      SCOPED_TRACE(c.name + (step == 1 ? " byte by byte" : ""));
      Http1Exchange ex{{}};
      const auto h = feed_head(ex, c.bytes, step);
      std::string upstream;
      if (c.head_ok) {
        ASSERT_EQ(h.st, HS::Ready) << ex.error().context;
        ex.append_upstream_head(upstream, "/c");
        const auto b = feed_body(ex, std::string_view(c.bytes).substr(h.used), 0, step);
        EXPECT_EQ(b.st, BS::Error);
        // What was forwarded before the refusal never contains a complete (forged) request.
        EXPECT_EQ(b.out.find("GET /admin"), std::string::npos);
        EXPECT_TRUE(ex.request_head_complete());
      } else {
        ASSERT_EQ(h.st, HS::Error);
        EXPECT_EQ(upstream, "");
      }
      EXPECT_TRUE(ex.error().kind == ErrorKind::BadRequest) << ex.error().to_string();
      if (c.head_ok) {
        EXPECT_FALSE(ex.request_complete());
      }
      // The connection is finished: no later bytes are parsed as a request.
      std::size_t used = 1;
      EXPECT_EQ(ex.feed_head(c.bytes.data(), c.bytes.size(), used), HS::Error);
      EXPECT_EQ(used, 0u);
      std::string out;
      const auto r = ex.append_local_reply(out, 400, "400 Bad Request\n", {}, {}, false, false);
      EXPECT_FALSE(r.keep_alive);
      EXPECT_FALSE(ex.client_keep_alive());
      EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
    }
  }
}

TEST(ExchangeCorpus, LegitimateNeighbours_Accepted) {
  const std::string host = "Host: app.example\r\n";
  for (const std::string& req : {
           "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\n\r\n",  // no Connection: upgrade
           "GET / HTTP/1.1\r\n" + host + "Connection: host, a1, a2, X-Ninth\r\nX-Ninth: s\r\n\r\n",
           "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n",
           "OPTIONS * HTTP/1.1\r\n" + host + "\r\n",
           "GET /admin;x/secret HTTP/1.1\r\n" + host + "\r\n",  // path rules are not the codec's
       }) {
    SCOPED_TRACE(req);
    Http1Exchange ex{{}};
    const auto h = feed_head(ex, req);
    EXPECT_EQ(h.st, HS::Ready) << ex.error().context;
    EXPECT_EQ(h.used, req.size());
  }
}

// ---------------------------------------------------------------- malicious backend corpus
// tests/integration/upstream_desync_test.cpp and tests/upstream/README.md at the codec: whatever
// the backend sends, no byte outside the final response's framing reaches the client (the marker
// never appears in the client's output), and the upstream connection is never reused after it.

struct BackendCase {
  std::string name;
  std::string request;
  std::string response;  // everything the backend wrote, in one go
  RS want;               // Complete (a clean final answer) or Error (502, or cut when the head went out)
  int status = 0;        // the final status the client got (0: none)
  bool reusable = false;
};

std::vector<BackendCase> backend_corpus() {
  const std::string get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string head = "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string m = std::string(kMarker) + "\n";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
  const std::string stray = "HTTP/1.1 200 OK\r\nX-Stray: " + std::string(kMarker) +
                            "\r\nContent-Length: " + std::to_string(m.size()) + "\r\n\r\n" + m;
  std::string hints;
  for (int i = 0; i < 20; ++i)
    hints += "HTTP/1.1 103 Early Hints\r\nLink: </" + std::string(kMarker) + ">\r\n\r\n";
  return {
      {"stray_same", get, ok + stray, RS::Complete, 200},
      {"head_with_body", head, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + m, RS::Complete, 200},
      {"no_content_with_body", get, "HTTP/1.1 204 No Content\r\n\r\n" + m, RS::Complete, 204},
      {"not_modified_with_body", get, "HTTP/1.1 304 Not Modified\r\n\r\n" + m, RS::Complete, 304},
      {"no_content_announcing_length", get, "HTTP/1.1 204 No Content\r\nContent-Length: 20\r\n\r\n" + m,
       RS::Complete, 204},
      {"body_longer_than_length", get, ok + m, RS::Complete, 200},
      {"chunked_then_more", get,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n" + m, RS::Complete, 200},
      {"continue_then_bytes", get, "HTTP/1.1 100 Continue\r\n\r\n" + m + ok, RS::Error},
      {"early_hints_then_bytes", get, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + m + ok, RS::Error},
      {"interim_with_length", get, "HTTP/1.1 103 Early Hints\r\nContent-Length: 20\r\n\r\n" + m + ok,
       RS::Error},
      {"interim_chunked", get, "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n" + ok, RS::Error},
      {"two_responses", get, ok + "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + m, RS::Complete, 200},
      {"length_and_chunked", get,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nok\n\r\n0\r\n\r\n" +
           stray,
       RS::Error},
      {"two_lengths", get, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 23\r\n\r\nok\n" + m,
       RS::Error},
      {"te_not_chunked", get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked, x\r\n\r\nok\n",
       RS::NeedMore, 200},
      {"few_early_hints", get, hints.substr(0, hints.size() / 20 * 3) + ok, RS::Complete, 200, true},
      {"many_early_hints", get, hints + ok, RS::Error},
      {"switching_protocols", get, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + stray,
       RS::Error},
      {"switching_protocols_unasked", get,
       "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n" + stray,
       RS::Error},
      {"status_out_of_range", get, "HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n" + m, RS::Error},
      {"status_two_digits", get, "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n" + m, RS::Error},
      {"obs_fold_response", get, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 3\r\n\r\nok\n", RS::Error},
      {"http2_status_line", get, "HTTP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n", RS::Error},
      {"silent_close_after_keep_alive", get, ok, RS::Complete, 200, true},
  };
}

TEST(ExchangeCorpus, MaliciousBackend_NoForeignByteReachesTheClient_NeverReused) {
  for (const auto& c : backend_corpus()) {
    for (std::size_t step : {kAll, std::size_t{1}, std::size_t{13}}) {
      SCOPED_TRACE(c.name + " step " + std::to_string(step));
      Http1Exchange ex{{}};
      start(ex, c.request);
      const auto r = feed_response(ex, c.response, step);
      EXPECT_EQ(r.st, c.want) << ex.error().to_string();
      EXPECT_EQ(r.out.find(kMarker), std::string::npos) << r.out;
      EXPECT_EQ(ex.response_status(), c.status);
      const bool leftover = r.used < c.response.size();
      if (r.st == RS::Complete) {
        EXPECT_EQ(ex.upstream_reusable(leftover), c.reusable);
        EXPECT_EQ(count(r.out, "HTTP/1.1 "), 1u);  // one response per request
      } else {
        EXPECT_FALSE(ex.upstream_reusable(leftover));
      }
      if (r.st == RS::Error) {
        EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamBadResponse) << ex.error().to_string();
        EXPECT_EQ(ex.response_head_sent(), c.status != 0);
      }
    }
  }
}

TEST(ExchangeCorpus, ResetMidBody_HeadSentThenCut) {
  Http1Exchange ex{{}};
  start(ex, kGet);
  const auto r =
      feed_response(ex, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + std::string(32768, 'a'));
  EXPECT_EQ(r.st, RS::NeedMore);
  EXPECT_TRUE(ex.response_head_sent());  // no local 502 can follow: the caller closes the client
  std::string out;
  EXPECT_EQ(ex.upstream_eof(out), RS::Error);
  EXPECT_EQ(ex.error().kind, ErrorKind::UpstreamReset);
  EXPECT_FALSE(ex.upstream_reusable(false));
}

TEST(ExchangeCorpus, AnswerBeforeTheRequestBody_NeitherConnectionReused) {
  for (const bool upstream_close : {false, true}) {
    SCOPED_TRACE(upstream_close);
    Http1Exchange ex{{}};
    ASSERT_EQ(feed_head(ex, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 262144\r\n\r\n").st, HS::Ready);
    std::string up;
    ex.append_upstream_head(up, "/a");
    ASSERT_EQ(feed_body(ex, std::string(1000, 'b')).st, BS::NeedMore);
    ex.begin_response({}, false);
    const std::string resp = std::string("HTTP/1.1 413 Content Too Large\r\n") +
                             (upstream_close ? "Connection: close\r\n" : "") + "Content-Length: 0\r\n\r\n";
    const auto r = feed_response(ex, resp);
    EXPECT_EQ(r.st, RS::Complete);
    EXPECT_EQ(ex.response_status(), 413);
    EXPECT_NE(r.out.find("Connection: close\r\n"), std::string::npos) << r.out;
    // The rest of the body is unread: on either connection it would be taken as the next request.
    EXPECT_FALSE(ex.upstream_reusable(false));
    EXPECT_FALSE(ex.client_keep_alive());
  }
}

}  // namespace
}  // namespace phigate::http
