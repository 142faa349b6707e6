#include "phigate/http/parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::http {
namespace {

using core::ErrorKind;

/// Feeds `text` in pieces of `step` bytes until the parser pauses or fails; returns the bytes
/// consumed and appends body bytes to `body`.
std::size_t feed_all(Parser& p, std::string_view text, std::string& body, ParseStatus& st,
                     std::size_t step = 1 << 20) {
  std::size_t off = 0;
  st = ParseStatus::NeedMore;
  while (off < text.size()) {
    const auto n = std::min(step, text.size() - off);
    std::size_t used = 0;
    st = p.feed(text.data() + off, n, used);
    for (auto b : p.body()) body.append(b);
    p.clear_body();
    off += used;
    if (st != ParseStatus::NeedMore) break;
  }
  return off;
}

TEST(Parser, SimpleGet_HeadAndEndTogether) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string req = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n";
  EXPECT_EQ(feed_all(p, req, body, st), req.size());
  EXPECT_EQ(st, ParseStatus::Paused);
  EXPECT_TRUE(p.head_complete());
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(p.head().method, "GET");
  EXPECT_EQ(p.head().target, "/a?b=1");
  EXPECT_EQ(p.head().headers.size(), 2u);
  EXPECT_EQ(*p.head().headers.find("x-y"), "z");
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(Parser, HeaderSplitAcrossReads_IsReassembled) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string req = "GET / HTTP/1.1\r\nHost: example\r\nAccept-Language: en\r\n\r\n";
  feed_all(p, req, body, st, 3);
  ASSERT_TRUE(p.message_complete());
  ASSERT_EQ(p.head().headers.size(), 2u);
  EXPECT_EQ(p.head().headers.begin()[1].name, "Accept-Language");
  EXPECT_EQ(p.head().headers.begin()[1].value, "en");
}

TEST(Parser, PausesAtHeadWhenBodyFollows_ThenStreamsBody) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string head = "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
  const std::string req = head + "hello";
  const auto used = feed_all(p, req, body, st);
  EXPECT_EQ(used, head.size());  // stopped at the end of the head
  EXPECT_TRUE(p.head_complete());
  EXPECT_FALSE(p.message_complete());
  ASSERT_TRUE(p.head().content_length);
  EXPECT_EQ(*p.head().content_length, 5u);
  feed_all(p, std::string_view(req).substr(used), body, st, 2);
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(body, "hello");
}

TEST(Parser, ChunkedBody_IsDecoded) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string req =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n "
      "world\r\n0\r\n\r\n";
  auto used = feed_all(p, req, body, st);
  EXPECT_TRUE(p.head().chunked);
  used += feed_all(p, std::string_view(req).substr(used), body, st, 4);
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(body, "hello world");
}

TEST(Parser, Pipelined_StopsAtEachMessageEnd) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string a = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string b = "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string both = a + b;
  const auto used = feed_all(p, both, body, st);
  EXPECT_EQ(used, a.size());
  EXPECT_EQ(p.head().target, "/1");
  feed_all(p, std::string_view(both).substr(used), body, st);
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(p.head().target, "/2");
}

TEST(Parser, ContentLengthWithTransferEncoding_IsRejected) {
  // RFC 9112 §6.3: both framings at once is the classic request-smuggling vector.
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", body,
           st);
  EXPECT_EQ(st, ParseStatus::Error);
  EXPECT_EQ(p.error().kind, ErrorKind::BadRequest);
}

TEST(Parser, Connect_IsRejected) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", body, st);
  EXPECT_EQ(st, ParseStatus::Error);
}

TEST(Parser, Limits_MapToTheirErrors) {
  ParserLimits limits{16, 64, 2};
  std::string body;
  ParseStatus st{};
  {
    Parser p(Parser::Kind::Request, limits);
    feed_all(p, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", body, st);
    EXPECT_EQ(st, ParseStatus::Error);
    EXPECT_EQ(p.error().kind, ErrorKind::UriTooLong);
  }
  {
    Parser p(Parser::Kind::Request, limits);
    feed_all(p, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", body, st);
    EXPECT_EQ(st, ParseStatus::Error);
    EXPECT_EQ(p.error().kind, ErrorKind::HeaderTooLarge);
  }
  {
    Parser p(Parser::Kind::Request, limits);
    feed_all(p, "GET / HTTP/1.1\r\nA: " + std::string(100, 'x') + "\r\n\r\n", body, st);
    EXPECT_EQ(st, ParseStatus::Error);
    EXPECT_EQ(p.error().kind, ErrorKind::HeaderTooLarge);
  }
}

TEST(Parser, Http10WithoutKeepAlive_IsNotKeptAlive) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "GET / HTTP/1.0\r\n\r\n", body, st);
  EXPECT_TRUE(p.message_complete());
  EXPECT_FALSE(p.head().keep_alive);
  EXPECT_EQ(p.head().version_minor, 0);
}

TEST(Parser, ResponseUntilEof_CompletesOnFinish) {
  Parser p(Parser::Kind::Response, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", body, st);
  EXPECT_TRUE(p.head_complete());
  EXPECT_TRUE(p.body_until_eof());
  feed_all(p, "some bytes", body, st);
  EXPECT_FALSE(p.message_complete());
  EXPECT_EQ(p.finish(), ParseStatus::Paused);
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(body, "some bytes");
}

// Found by fuzz_exchange: EOF right after the head of a response delimited by the close (an empty
// body). The parser paused at the head's end, inside llhttp's headers-complete callback, where
// llhttp_finish alone reports an invalid EOF state: the empty body was read as a truncation.
TEST(Parser, ResponseUntilEof_EmptyBodyCompletesOnFinish) {
  for (const std::string_view head :
       {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", "HTTP/1.0 201 Created\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n"}) {
    Parser p(Parser::Kind::Response, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, std::string(head), body, st);
    ASSERT_TRUE(p.head_complete()) << head;
    EXPECT_TRUE(p.body_until_eof()) << head;
    EXPECT_EQ(p.finish(), ParseStatus::Paused) << head << p.error().to_string();
    EXPECT_TRUE(p.message_complete()) << head;
    EXPECT_EQ(body, "") << head;
  }
  // A length-delimited body cut right after the head is still a truncation.
  Parser p(Parser::Kind::Response, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", body, st);
  EXPECT_EQ(p.finish(), ParseStatus::Error);
  EXPECT_EQ(p.error().kind, ErrorKind::UpstreamReset);
  // So is a request cut right after a head that announced a body.
  Parser q(Parser::Kind::Request, {});
  feed_all(q, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", body, st);
  EXPECT_EQ(q.finish(), ParseStatus::Error);
}

TEST(Parser, ResponseToHead_HasNoBody) {
  Parser p(Parser::Kind::Response, {});
  p.expect_no_body(true);
  std::string body;
  ParseStatus st{};
  feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", body, st);
  EXPECT_TRUE(p.head_complete());
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(p.head().status, 200);
}

TEST(Parser, Response204And304_HaveNoBody) {
  for (int status : {204, 304}) {
    Parser p(Parser::Kind::Response, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, "HTTP/1.1 " + std::to_string(status) + " X\r\n\r\n", body, st);
    EXPECT_TRUE(p.message_complete()) << status;
  }
}

TEST(Parser, TruncatedResponse_IsAnUpstreamReset) {
  Parser p(Parser::Kind::Response, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", body, st);
  EXPECT_EQ(p.finish(), ParseStatus::Error);
  EXPECT_EQ(p.error().kind, ErrorKind::UpstreamReset);
}

TEST(Parser, Reset_StartsAFreshMessage) {
  Parser p(Parser::Kind::Response, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", body, st);
  p.reset();
  feed_all(p, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", body, st);
  EXPECT_TRUE(p.message_complete());
  EXPECT_EQ(p.head().status, 404);
}

// The upgrade-smuggling case: `Connection: Upgrade` + `Upgrade: foo` used to make llhttp stop
// parsing, and the next feed handed out the same head again while the pipelined bytes (a forged
// GET) were forwarded unparsed. Every split of the input must end in an error at that request.
TEST(Parser, UpgradeRequestWithBody_RefusedAndNothingAfterItParsed) {
  const std::string smuggle =
      "POST /x HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
      "Content-Length: 1\r\n\r\nA"
      "POST /y HTTP/1.1\r\nHost: app.example\r\nContent-Length: 60\r\n\r\n"
      "AGET /admin HTTP/1.1\r\nHost: app.example\r\nssl-client-verify: SUCCESS\r\n\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, smuggle.size()}) {
    Parser p(Parser::Kind::Request, {});
    std::string body;
    ParseStatus st{};
    int heads = 0;
    std::size_t off = 0;
    for (int guard = 0; guard < 10000 && off < smuggle.size(); ++guard) {
      const auto n = std::min(step, smuggle.size() - off);
      std::size_t used = 0;
      st = p.feed(smuggle.data() + off, n, used);
      off += used;
      if (st == ParseStatus::Error) break;
      if (p.head_complete() && st == ParseStatus::Paused) ++heads;
    }
    EXPECT_EQ(st, ParseStatus::Error) << "step " << step;
    EXPECT_EQ(heads, 0) << "step " << step;
    EXPECT_EQ(p.error().kind, ErrorKind::BadRequest);
    EXPECT_LT(off, smuggle.find("POST /y")) << "step " << step;
  }
}

// An upgrade head without a body is parsed (whether its protocol is allowed is the exchange
// codec's decision) and marked; the bytes after it are another protocol and never parsed.
TEST(Parser, UpgradeHead_MarkedAndNothingAfterItParsed) {
  for (const char* req : {
           "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
           "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET / HTTP/1.1\r\n",
       }) {
    SCOPED_TRACE(req);
    Parser p(Parser::Kind::Request, {});
    std::string body;
    ParseStatus st{};
    const auto used = feed_all(p, req, body, st);
    EXPECT_EQ(st, ParseStatus::Paused);
    EXPECT_TRUE(p.message_complete());
    EXPECT_TRUE(p.head().upgrade);
    EXPECT_EQ(std::string_view(req).substr(used).rfind("GET / HTTP/1.1", 0), 0u);
    std::size_t n = 9;
    const std::string rest(std::string_view(req).substr(used));
    EXPECT_EQ(p.feed(rest.data(), rest.size(), n), ParseStatus::Error);
    EXPECT_EQ(n, 0u);
  }
  for (const char* req : {
           "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: "
           "1\r\n\r\nA",
           "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
       }) {
    SCOPED_TRACE(req);
    Parser p(Parser::Kind::Request, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, req, body, st);
    EXPECT_EQ(st, ParseStatus::Error);
  }
  // Upgrade without `Connection: upgrade` is no upgrade: an ordinary request (the field is
  // hop-by-hop and is dropped when forwarding).
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", body, st);
  EXPECT_EQ(st, ParseStatus::Paused);
  EXPECT_TRUE(p.message_complete());
  EXPECT_FALSE(p.head().upgrade);
}

TEST(Parser, HeadHandedOutOncePerMessage) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  feed_all(p, one, body, st);
  ASSERT_TRUE(p.head_complete());
  // The next bytes are a partial head: the previous head must not be reported again.
  std::size_t used = 0;
  st = p.feed("GET /2 HT", 9, used);
  EXPECT_EQ(st, ParseStatus::NeedMore);
  EXPECT_FALSE(p.head_complete());
  EXPECT_FALSE(p.message_complete());
}

TEST(Parser, Response101_NothingAfterItParsed) {
  Parser p(Parser::Kind::Response, {});
  std::string body;
  ParseStatus st{};
  const std::string resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n";
  feed_all(p, resp, body, st);
  ASSERT_TRUE(p.head_complete());
  EXPECT_EQ(p.head().status, 101);
  std::size_t used = 0;
  const std::string more = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(p.feed(more.data(), more.size(), used), ParseStatus::Error);
  EXPECT_EQ(used, 0u);
}

TEST(Parser, TransferEncodingInHttp10_Refused) {
  for (auto kind : {Parser::Kind::Request, Parser::Kind::Response}) {
    Parser p(kind, {});
    std::string body;
    ParseStatus st{};
    feed_all(p,
             kind == Parser::Kind::Request
                 ? "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                 : "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             body, st);
    EXPECT_EQ(st, ParseStatus::Error);
  }
}

TEST(Parser, InterimWithFramingFields_Refused) {
  // A 103 whose "body" is a forged final response: llhttp ignores 1xx framing and would parse it
  // as the answer.
  for (const char* resp : {"HTTP/1.1 103 Early Hints\r\nContent-Length: 38\r\n\r\n",
                           "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "HTTP/1.1 199 X\r\nContent-Length: 0\r\n\r\n"}) {
    Parser p(Parser::Kind::Response, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, resp, body, st);
    EXPECT_EQ(st, ParseStatus::Error) << resp;
  }
}

TEST(Parser, BodylessStatusAnnouncingContent_MarkedSuspect) {
  auto parse = [](const char* resp) {
    Parser p(Parser::Kind::Response, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, resp, body, st);
    EXPECT_TRUE(p.message_complete()) << resp;
    return p.head().framing_suspect;
  };
  EXPECT_TRUE(parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_TRUE(parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_FALSE(parse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_FALSE(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n"));  // RFC 9110 §15.4.5
  EXPECT_FALSE(parse("HTTP/1.1 204 No Content\r\n\r\n"));
}

TEST(Parser, VersionsAndStatusOutOfRange_Refused) {
  for (auto [kind, text] :
       {std::pair{Parser::Kind::Request, "GET / HTTP/2.0\r\nHost: a\r\n\r\n"},
        std::pair{Parser::Kind::Response, "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
        std::pair{Parser::Kind::Response, "HTTP/1.1 050 Odd\r\nContent-Length: 0\r\n\r\n"},
        std::pair{Parser::Kind::Response, "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n"}}) {
    Parser p(kind, {});
    std::string body;
    ParseStatus st{};
    feed_all(p, text, body, st);
    EXPECT_EQ(st, ParseStatus::Error) << text;
  }
}

TEST(Parser, FailureAfterACompleteMessage_ReportsNoStaleHead) {
  Parser p(Parser::Kind::Request, {});
  std::string body;
  ParseStatus st{};
  feed_all(p, "GET /patient/123 HTTP/1.1\r\nHost: a\r\n\r\n", body, st);
  ASSERT_EQ(p.head().target, "/patient/123");
  std::size_t used = 0;
  EXPECT_EQ(p.feed("\x01", 1, used), ParseStatus::Error);
  EXPECT_EQ(p.head().target, "");
}

}  // namespace
}  // namespace phigate::http
