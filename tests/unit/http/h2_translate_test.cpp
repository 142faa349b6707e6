// HTTP/2 stream <-> HTTP/1.1 upstream translation, event by event: request heads and framing out,
// upstream response bytes and EOFs in; HTTP/2 fields, body bytes, trailers and reuse out. No sockets.
#include "phigate/http/h2_translate.hpp"

#include <nghttp2/nghttp2.h>

#include <gtest/gtest.h>

#include <string>

namespace phigate::http {
namespace {

using RS = H1ResponseReader::Status;

MessageHead h2_head(std::string method, std::string path) {
  MessageHead h;
  h.method = std::move(method);
  h.target = std::move(path);
  h.version_major = 2;
  h.version_minor = 0;
  h.headers.add("host", "a.example");
  return h;
}

bool has(const HeaderList& l, std::string_view name) {
  return l.find(name) != nullptr;
}

/// Feeds `bytes` in pieces of `step`, collecting the body; returns the last status.
RS feed_all(H1ResponseReader& rd, std::string_view bytes, std::string& body, std::size_t step,
            std::size_t* left = nullptr) {
  RS st = RS::NeedMore;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t n = std::min(step, bytes.size() - pos);
    std::size_t used = 0;
    st = rd.feed(bytes.data() + pos, n, used, body);
    pos += used;
    if (st != RS::NeedMore) break;
    if (used < n) break;  // should not happen in NeedMore
  }
  if (left != nullptr) *left = bytes.size() - pos;
  return st;
}

// --- request side ---

TEST(H2Translate, FramingFollowsDeclaredLengthThenEndStreamThenChunked) {
  auto h = h2_head("POST", "/p");
  h.content_length = 5;
  EXPECT_EQ(h1_request_framing(h, false, 0).kind, Framing::Kind::ContentLength);
  EXPECT_EQ(h1_request_framing(h, false, 0).length, 5u);
  h.content_length.reset();
  // HEADERS with END_STREAM: no body, no framing field.
  EXPECT_EQ(h1_request_framing(h, true, 0).kind, Framing::Kind::None);
  // The whole body already here: its length is known.
  const auto known = h1_request_framing(h, true, 3);
  EXPECT_EQ(known.kind, Framing::Kind::ContentLength);
  EXPECT_EQ(known.length, 3u);
  // Still streaming, undeclared: chunked.
  EXPECT_EQ(h1_request_framing(h, false, 3).kind, Framing::Kind::Chunked);
}

TEST(H2Translate, RequestHeadIsHttp11WithHostAndFraming) {
  auto h = h2_head("GET", "/x?y=1");
  h.headers.add("accept", "*/*");
  std::string out;
  append_h1_request_head(out, h, "/x?y=1", h1_request_framing(h, true, 0));
  EXPECT_EQ(out, "GET /x?y=1 HTTP/1.1\r\nhost: a.example\r\naccept: */*\r\n\r\n");
}

TEST(H2Translate, ChunkedBodyAndAllowedTrailersOnly) {
  auto h = h2_head("POST", "/up");
  const auto f = h1_request_framing(h, false, 0);
  std::string out;
  append_h1_request_head(out, h, "/up", f);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  out.clear();
  append_h1_body(out, "hello", f);
  append_h1_body(out, "", f);  // an empty piece must not end the body
  EXPECT_EQ(out, "5\r\nhello\r\n");
  HeaderList t;
  t.add("x-checksum", "abc");
  t.add("content-length", "99");  // framing: must never travel as a trailer
  t.add("host", "evil.example");  // routing
  t.add("authorization", "Bearer x");
  out.clear();
  append_h1_body_end(out, &t, f);
  EXPECT_EQ(out, "0\r\nx-checksum: abc\r\n\r\n");
}

TEST(H2Translate, TrailersDroppedWhenNotChunked) {
  auto h = h2_head("POST", "/up");
  h.content_length = 2;
  const auto f = h1_request_framing(h, false, 0);
  HeaderList t;
  t.add("x-checksum", "abc");
  std::string out;
  append_h1_body(out, "ok", f);
  append_h1_body_end(out, &t, f);
  EXPECT_EQ(out, "ok");
}

TEST(H2Translate, CookieFieldsJoined) {
  HeaderList l;
  l.add("cookie", "a=1");
  l.add("accept", "*/*");
  l.add("cookie", "b=2");
  join_cookie_fields(l);
  EXPECT_EQ(l.count("cookie"), 1u);
  EXPECT_EQ(*l.find("cookie"), "a=1; b=2");
  HeaderList one;
  one.add("cookie", "a=1");
  join_cookie_fields(one);
  EXPECT_EQ(*one.find("cookie"), "a=1");
}

TEST(H2Translate, RawExtraFieldsBecomeFields) {
  HeaderList l;
  add_raw_fields(l, "Strict-Transport-Security: max-age=31536000\r\nSet-Cookie: route=ab; Path=/\r\n");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(*l.find("strict-transport-security"), "max-age=31536000");
  EXPECT_EQ(*l.find("set-cookie"), "route=ab; Path=/");
  HeaderList none;
  add_raw_fields(none, "");
  EXPECT_TRUE(none.empty());
}

// --- response side ---

TEST(H2Translate, ContentLengthResponseDropsConnectionFields) {
  H1ResponseReader rd({}, false);
  std::string body;
  std::size_t left = 0;
  const std::string_view resp =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\n"
      "X-Hop: 1\r\nX-App: yes\r\nUpgrade: h2c\r\n\r\nhello";
  EXPECT_EQ(feed_all(rd, resp, body, 7, &left), RS::Complete);
  EXPECT_EQ(left, 0u);
  ASSERT_TRUE(rd.head_ready());
  EXPECT_EQ(rd.status(), 200);
  EXPECT_EQ(body, "hello");
  HeaderList f;
  rd.h2_fields(f);
  EXPECT_TRUE(has(f, "x-app"));
  EXPECT_TRUE(has(f, "content-length"));
  EXPECT_FALSE(has(f, "connection"));
  EXPECT_FALSE(has(f, "keep-alive"));
  EXPECT_FALSE(has(f, "upgrade"));
  EXPECT_FALSE(has(f, "x-hop"));  // named by Connection: this hop's
  EXPECT_TRUE(rd.reusable(false));
  EXPECT_FALSE(rd.reusable(true));  // a byte after the response: never reuse
}

// The references the relay hands to the HTTP/2 codec unchecked (submit_response_refs' `vetted`):
// lower-cased names in the backend's order, values as sent, connection-specific fields and those
// Connection names gone; each one nghttp2 accepts as is.
TEST(H2Translate, RelayedFieldRefsAreLowerCaseAndValidForHttp2AsTheyAre) {
  const auto refs = [](std::string_view resp) {
    H1ResponseReader rd({}, false);
    std::string body;
    EXPECT_EQ(feed_all(rd, resp, body, 5), RS::Complete);
    std::vector<FieldRef> out;
    rd.h2_fields(out);
    std::vector<std::pair<std::string, std::string>> got;
    for (const auto& f : out) {
      EXPECT_NE(
          nghttp2_check_header_name(reinterpret_cast<const std::uint8_t*>(f.name.data()), f.name.size()), 0)
          << f.name;
      EXPECT_NE(nghttp2_check_header_value_rfc9113(reinterpret_cast<const std::uint8_t*>(f.value.data()),
                                                   f.value.size()),
                0)
          << f.value;
      got.emplace_back(f.name, f.value);
    }
    return got;
  };
  using Fields = std::vector<std::pair<std::string, std::string>>;
  // Names split across reads of 5 bytes are lower-cased piece by piece; trailing whitespace goes
  // (llhttp keeps it; an HTTP/2 value must not end with it).
  EXPECT_EQ(refs("HTTP/1.1 200 OK\r\nX-Mixed-CASE-Name: A b\tC \r\nCONNECTION: Keep-Alive, X-HOP\r\n"
                 "X-Hop: 1\r\nSERVER: t\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n"),
            (Fields{{"x-mixed-case-name", "A b\tC"}, {"server", "t"}, {"content-length", "0"}}));
  // Connection naming only fields dropped anyway: the others stay.
  EXPECT_EQ(refs("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-Hop: 1\r\nTE: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            (Fields{{"x-hop", "1"}}));
  // Connection: close names a field "close" (RFC 9110 §7.6.1 drops it too).
  EXPECT_EQ(refs("HTTP/1.1 204 No Content\r\nConnection: close\r\nClose: 1\r\nDate: d\r\n\r\n"),
            (Fields{{"date", "d"}}));
}

TEST(H2Translate, ChunkedResponseDecodedWithTrailers) {
  H1ResponseReader rd({}, false);
  std::string body;
  const std::string_view resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 42\r\nauthorization: x\r\n\r\n";
  EXPECT_EQ(feed_all(rd, resp, body, 4), RS::Complete);
  EXPECT_EQ(body, "abcde");
  HeaderList f;
  rd.h2_fields(f);
  EXPECT_FALSE(has(f, "transfer-encoding"));
  EXPECT_FALSE(has(f, "trailer"));
  EXPECT_FALSE(has(f, "x-sum"));  // a trailer is not a head field
  ASSERT_EQ(rd.trailers().size(), 1u);
  EXPECT_EQ(*rd.trailers().find("x-sum"), "42");  // authorization as a trailer is dropped
  EXPECT_TRUE(rd.reusable(false));
}

TEST(H2Translate, InterimResponsesDroppedAnd101Refused) {
  H1ResponseReader rd({}, false);
  std::string body;
  const std::string_view resp =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  EXPECT_EQ(feed_all(rd, resp, body, 1000), RS::Complete);
  EXPECT_EQ(rd.status(), 201);
  EXPECT_EQ(body, "ok");
  HeaderList f;
  rd.h2_fields(f);
  EXPECT_FALSE(has(f, "link"));  // the 103's field is not the final response's

  H1ResponseReader up({}, false);
  std::string b2;
  EXPECT_EQ(
      feed_all(up, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", b2, 100),
      RS::Error);
  EXPECT_EQ(up.error().source, core::ErrorSource::Upstream);
}

// An error page's GET / (custom-http-errors): the error backend answers with its page; a 103 or
// 102 first is a failed fetch, 100 is only dropped.
TEST(H2Translate, ErrorPageResponseTakesNoInterimButContinue) {
  for (const std::string_view interim :
       {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "HTTP/1.1 102 Processing\r\n\r\n"}) {
    H1ResponseReader rd({}, false);
    rd.error_page_response();
    std::string body;
    EXPECT_EQ(
        feed_all(rd, std::string(interim) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", body, 1000),
        RS::Error);
    EXPECT_FALSE(rd.head_ready());
  }
  H1ResponseReader ok({}, false);
  ok.error_page_response();
  std::string body;
  EXPECT_EQ(
      feed_all(ok, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", body, 1000),
      RS::Complete);
  EXPECT_EQ(body, "ok");
}

TEST(H2Translate, WebSocketSwitchStopsAtTheHeadAndIsChecked) {
  H1ResponseReader rd({}, false);
  rd.accept_switch();
  std::string body;
  std::size_t left = 0;
  // The tunnel's first bytes follow the head in the same read: they are not the reader's.
  const std::string head =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Upgrade: WebSocket\r\nSec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
  EXPECT_EQ(feed_all(rd, head + "\x81\x02hi", body, 1000, &left), RS::Complete);
  EXPECT_EQ(left, 4u);
  EXPECT_TRUE(body.empty());
  ASSERT_TRUE(rd.head_ready());
  EXPECT_EQ(rd.status(), 101);
  EXPECT_EQ(websocket_switch_violation(rd.head(), "websocket", "abc="), nullptr);
  HeaderList f;
  rd.h2_fields(f);
  EXPECT_FALSE(has(f, "connection"));
  EXPECT_FALSE(has(f, "upgrade"));
  EXPECT_TRUE(has(f, "sec-websocket-protocol"));
  EXPECT_FALSE(rd.reusable(false));  // never pooled

  const auto check = [](const std::string& fields) {
    H1ResponseReader r({}, false);
    r.accept_switch();
    std::string b;
    EXPECT_EQ(feed_all(r, "HTTP/1.1 101 Switching Protocols\r\n" + fields + "\r\n", b, 1000), RS::Complete);
    const char* why = websocket_switch_violation(r.head(), "websocket", "abc=");
    return std::string(why == nullptr ? "" : why);
  };
  EXPECT_EQ(check("Connection: keep-alive, upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\n"),
            "");
  // Whitespace after the value is not part of it (RFC 9110 §5.5): the same accept.
  EXPECT_EQ(check("Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc= \t\r\n"), "");
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=x \r\n"), "");
  EXPECT_NE(check("Upgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\n"), "");  // no Connection: upgrade
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Accept: abc=\r\n"), "");
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Accept: abc=\r\n"), "");
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Accept: abc=\r\n"),
            "");
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: xyz=\r\n"), "");
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket\r\n"), "");  // no accept at all
  EXPECT_NE(check("Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\n"
                  "Sec-WebSocket-Accept: abc=\r\n"),
            "");
}

TEST(H2Translate, TooManyInterimResponsesRefused) {
  H1ResponseReader rd({}, false);
  std::string body, resp;
  for (unsigned i = 0; i <= H1ResponseReader::kMaxInterim; ++i) resp += "HTTP/1.1 103 Early Hints\r\n\r\n";
  EXPECT_EQ(feed_all(rd, resp, body, 1 << 20), RS::Error);
  EXPECT_FALSE(rd.head_ready());
}

TEST(H2Translate, HeadAnd204And304HaveNoBody) {
  H1ResponseReader head({}, true);
  std::string body;
  EXPECT_EQ(feed_all(head, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", body, 100), RS::Complete);
  EXPECT_TRUE(head.bodyless());
  EXPECT_TRUE(body.empty());
  HeaderList f;
  head.h2_fields(f);
  EXPECT_TRUE(has(f, "content-length"));  // the representation's length, allowed after HEAD
  EXPECT_FALSE(head.reusable(false));     // content the upstream may still send was never read

  H1ResponseReader nc({}, false);
  EXPECT_EQ(feed_all(nc, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", body, 100), RS::Complete);
  EXPECT_TRUE(nc.bodyless());
  HeaderList f2;
  nc.h2_fields(f2);
  EXPECT_FALSE(has(f2, "content-length"));
  EXPECT_TRUE(nc.reusable(false));

  H1ResponseReader nm({}, false);
  EXPECT_EQ(feed_all(nm, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", body, 100), RS::Complete);
  EXPECT_TRUE(nm.bodyless());
}

TEST(H2Translate, BodyUntilCloseCompletesAtEofAndIsNotReused) {
  H1ResponseReader rd({}, false);
  std::string body;
  EXPECT_EQ(feed_all(rd, "HTTP/1.1 200 OK\r\n\r\npart", body, 100), RS::NeedMore);
  EXPECT_TRUE(rd.head_ready());
  EXPECT_EQ(body, "part");
  EXPECT_EQ(rd.eof(body), RS::Complete);
  EXPECT_FALSE(rd.reusable(false));
}

TEST(H2Translate, TruncatedResponseIsAnUpstreamError) {
  H1ResponseReader rd({}, false);
  std::string body;
  EXPECT_EQ(feed_all(rd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", body, 100), RS::NeedMore);
  EXPECT_EQ(rd.eof(body), RS::Error);
  EXPECT_EQ(rd.error().source, core::ErrorSource::Upstream);
  EXPECT_EQ(rd.error().kind, core::ErrorKind::UpstreamReset);
  H1ResponseReader none({}, false);
  EXPECT_EQ(none.eof(body), RS::Error);  // nothing at all
}

TEST(H2Translate, BytesAfterTheResponseAreNotTaken) {
  H1ResponseReader rd({}, false);
  std::string body;
  const std::string_view resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n";
  std::size_t used = 0;
  EXPECT_EQ(rd.feed(resp.data(), resp.size(), used, body), RS::Complete);
  EXPECT_EQ(used, resp.find("okHTTP") + 2);
  EXPECT_EQ(body, "ok");
}

TEST(H2Translate, MalformedResponseIsAnUpstreamError) {
  H1ResponseReader rd({}, false);
  std::string body;
  EXPECT_EQ(feed_all(rd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", body, 100),
            RS::Error);
  EXPECT_EQ(rd.error().kind, core::ErrorKind::UpstreamBadResponse);
}

TEST(H2Translate, TrailerAllowList) {
  EXPECT_TRUE(trailer_allowed("grpc-status"));
  EXPECT_TRUE(trailer_allowed("x-checksum"));
  for (const auto* n : {"Transfer-Encoding", "content-length", "Host", "connection", "te", "authorization",
                        "ssl-client-verify", "x-forwarded-for", ":status", ""}) {
    EXPECT_FALSE(trailer_allowed(n)) << n;
  }
}

// Review finding 6: a request trailer must not smuggle what set_forwarding_headers strips from the
// head (underscore variants a CGI/WSGI mapper reads as the real field, path-override fields).
TEST(H2Translate, RequestTrailersDropForwardingAndPathOverrideFields) {
  auto h = h2_head("POST", "/up");
  const auto f = h1_request_framing(h, false, 0);
  HeaderList t;
  t.add("ssl_client_verify", "SUCCESS");
  t.add("SSL_Client_S_DN", "CN=admin");
  t.add("x_forwarded_for", "10.0.0.1");
  t.add("X.Forwarded.Proto", "https");
  t.add("x-original-url", "/admin");
  t.add("X-Rewrite-URL", "/admin");
  t.add("x-original-uri", "/admin");
  t.add("x-forwarded-host", "evil.example");
  t.add("x-real-ip", "10.0.0.1");
  t.add("x-checksum", "abc");
  std::string out;
  append_h1_body_end(out, &t, f);
  EXPECT_EQ(out, "0\r\nx-checksum: abc\r\n\r\n");
  EXPECT_TRUE(request_trailer_allowed("x-checksum"));
  EXPECT_TRUE(request_trailer_allowed("grpc-status"));
  for (const auto* n :
       {"ssl_client_verify", "x_forwarded_for", "x-original-url", "x-rewrite-url", "x-original-uri",
        "x-original-host", "x-forwarded-for", "x-request-id", "Host", "bad name"}) {
    EXPECT_FALSE(request_trailer_allowed(n)) << n;
  }
}

}  // namespace
}  // namespace phigate::http
