// The sans-I/O HTTP/2 client session (upstream/h2_client_impl.hpp), event by event, against an
// nghttp2 SERVER session in the test (a well-behaved backend) and against hand-made frames (a
// malicious backend: frames nghttp2 would never send).
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <map>
#include <string>
#include <vector>

#include <cstring>

#include "h2_client_impl.hpp"

namespace phigate::upstream::detail {
namespace {

using Kind = H2StreamEvent::Kind;

/// A minimal backend: records requests, answers what the test submits.
struct Server {
  struct Req {
    std::map<std::string, std::string> headers;
    std::map<std::string, std::string> trailers;
    std::string body;
    bool ended = false;
  };
  struct Resp {
    std::string body;
    std::vector<std::pair<std::string, std::string>> trailers;
    std::size_t pos = 0;
  };
  nghttp2_session* session = nullptr;
  std::map<std::int32_t, Req> reqs;
  std::map<std::int32_t, Resp> resps;
  std::int32_t last_closed_code = -1;

  Server(std::uint32_t max_concurrent = 100) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb,
        [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
           const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) -> int {
          auto* s = static_cast<Server*>(u);
          auto& r = s->reqs[f->hd.stream_id];
          const std::string name(reinterpret_cast<const char*>(n), nl);
          const std::string value(reinterpret_cast<const char*>(v), vl);
          (f->headers.cat == NGHTTP2_HCAT_HEADERS ? r.trailers : r.headers)[name] = value;
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb,
        [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t l,
           void* u) -> int {
          static_cast<Server*>(u)->reqs[id].body.append(reinterpret_cast<const char*>(d), l);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) -> int {
          if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
              (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            static_cast<Server*>(u)->reqs[f->hd.stream_id].ended = true;
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, std::int32_t, std::uint32_t code, void* u) -> int {
          static_cast<Server*>(u)->last_closed_code = static_cast<std::int32_t>(code);
          return 0;
        });
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
    nghttp2_session_server_new2(&session, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent}};
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, iv, 1);
  }
  ~Server() { nghttp2_session_del(session); }

  static ssize_t read_cb(nghttp2_session* sess, std::int32_t id, std::uint8_t* buf, std::size_t len,
                         std::uint32_t* flags, nghttp2_data_source*, void* u) {
    auto& r = static_cast<Server*>(u)->resps[id];
    const auto n = std::min(len, r.body.size() - r.pos);
    std::memcpy(buf, r.body.data() + r.pos, n);
    r.pos += n;
    if (r.pos == r.body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!r.trailers.empty()) {
        std::vector<nghttp2_nv> nva;
        for (auto& [k, v] : r.trailers) {
          nva.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                         k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
        }
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(sess, id, nva.data(), nva.size());
      }
    }
    return static_cast<ssize_t>(n);
  }

  /// Submits a response: status, fields, body, trailers.
  void respond(std::int32_t id, std::string status, std::vector<std::pair<std::string, std::string>> fields,
               std::string body, std::vector<std::pair<std::string, std::string>> trailers = {}) {
    std::vector<std::pair<std::string, std::string>> all{{":status", std::move(status)}};
    for (auto& f : fields) all.push_back(std::move(f));
    std::vector<nghttp2_nv> nva;
    for (auto& [k, v] : all) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                     k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    auto& r = resps[id];
    r.body = std::move(body);
    r.trailers = std::move(trailers);
    nghttp2_data_provider p{};
    p.read_callback = read_cb;
    const bool no_body = r.body.empty() && r.trailers.empty();
    ASSERT_EQ(nghttp2_submit_response(session, id, nva.data(), nva.size(), no_body ? nullptr : &p), 0);
  }
  void headers_only(std::int32_t id, std::string status, std::uint8_t flags = NGHTTP2_FLAG_NONE) {
    std::string k = ":status";
    nghttp2_nv nv{reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(status.data()),
                  k.size(), status.size(), NGHTTP2_NV_FLAG_NONE};
    ASSERT_GE(nghttp2_submit_headers(session, flags, id, nullptr, &nv, 1, nullptr), 0);
  }

  std::string produce() {
    std::string out;
    for (int i = 0; i < 1000; ++i) {
      const std::uint8_t* d = nullptr;
      const auto n = nghttp2_session_mem_send(session, &d);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
    }
    return out;
  }
  bool receive(const std::string& bytes) {
    return nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                    bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
};

/// Moves bytes both ways until neither side has anything to say (bounded).
void pump(H2ClientSession& c, Server& s) {
  for (int i = 0; i < 50; ++i) {
    std::string out;
    c.produce(out);
    if (!out.empty()) {
      ASSERT_TRUE(s.receive(out));
    }
    const auto back = s.produce();
    if (!back.empty()) c.receive(back);
    if (out.empty() && back.empty()) return;
  }
}

http::MessageHead post(std::string path) {
  http::MessageHead h;
  h.method = "POST";
  h.target = std::move(path);
  h.headers.add("Content-Type", "application/grpc");
  h.headers.add("TE", "trailers");
  h.headers.add("Connection", "keep-alive");  // connection-specific: never sent in HTTP/2
  h.headers.add("Host", "ignored.example");
  return h;
}

std::vector<H2StreamEvent> drain(H2ClientSession& c, std::int32_t id) {
  std::vector<H2StreamEvent> out;
  H2StreamEvent e;
  while (c.pop(id, e)) out.push_back(std::move(e));
  return out;
}

/// A raw frame (a malicious backend's; nghttp2 would not send it).
std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, std::string payload) {
  std::string f;
  const auto n = payload.size();
  f += static_cast<char>((n >> 16) & 0xff);
  f += static_cast<char>((n >> 8) & 0xff);
  f += static_cast<char>(n & 0xff);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>((stream >> 24) & 0x7f);
  f += static_cast<char>((stream >> 16) & 0xff);
  f += static_cast<char>((stream >> 8) & 0xff);
  f += static_cast<char>(stream & 0xff);
  return f + payload;
}

/// Whether `bytes` (whole frames) hold a frame of `type`.
bool has_frame(const std::string& bytes, std::uint8_t type) {
  std::size_t pos = 0;
  for (int i = 0; i < 1000 && pos + 9 <= bytes.size(); ++i) {
    const auto u = [&](std::size_t k) {
      return static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + k]));
    };
    const std::size_t len = (u(0) << 16) | (u(1) << 8) | u(2);
    if (static_cast<std::uint8_t>(bytes[pos + 3]) == type) return true;
    pos += 9 + len;
  }
  return false;
}

TEST(H2Client, UnaryExchange_HeadDataTrailersEndAndRequestAsSent) {
  H2ClientSession c;
  ASSERT_TRUE(c.ok());
  Server s;
  const auto id = c.submit(post("/test.Echo/Unary"), "grpc.example", "http", false);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(c.send_body(id, std::string("\0\0\0\0\3abc", 8), true));
  pump(c, s);
  auto& req = s.reqs[id];
  EXPECT_EQ(req.headers[":method"], "POST");
  EXPECT_EQ(req.headers[":path"], "/test.Echo/Unary");
  EXPECT_EQ(req.headers[":authority"], "grpc.example");
  EXPECT_EQ(req.headers[":scheme"], "http");
  EXPECT_EQ(req.headers["content-type"], "application/grpc");
  EXPECT_EQ(req.headers["te"], "trailers");
  EXPECT_EQ(req.headers.count("connection"), 0u);
  EXPECT_EQ(req.headers.count("host"), 0u);
  EXPECT_EQ(req.body, std::string("\0\0\0\0\3abc", 8));
  EXPECT_TRUE(req.ended);
  s.respond(id, "200", {{"content-type", "application/grpc"}}, "reply", {{"grpc-status", "0"}, {"x-t", "1"}});
  pump(c, s);
  const auto ev = drain(c, id);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, Kind::Headers);
  EXPECT_EQ(ev[0].status, 200);
  ASSERT_NE(ev[0].fields.find("content-type"), nullptr);
  EXPECT_EQ(ev[1].kind, Kind::Data);
  EXPECT_EQ(ev[1].data, "reply");
  EXPECT_EQ(ev[2].kind, Kind::Trailers);
  ASSERT_NE(ev[2].fields.find("grpc-status"), nullptr);
  EXPECT_EQ(*ev[2].fields.find("grpc-status"), "0");
  EXPECT_EQ(ev[3].kind, Kind::End);
  EXPECT_EQ(c.open_streams(), 0u);
  EXPECT_TRUE(c.alive());
}

TEST(H2Client, RequestTrailersAndStreamedBody) {
  H2ClientSession c;
  Server s;
  const auto id = c.submit(post("/x"), "a", "http", false);
  ASSERT_TRUE(c.send_body(id, "part1", false));
  pump(c, s);
  EXPECT_EQ(s.reqs[id].body, "part1");
  EXPECT_FALSE(s.reqs[id].ended);
  ASSERT_TRUE(c.send_body(id, "part2", false));
  http::HeaderList t;
  t.add("X-Checksum", "42");
  ASSERT_TRUE(c.send_trailers(id, t));
  pump(c, s);
  EXPECT_EQ(s.reqs[id].body, "part1part2");
  EXPECT_EQ(s.reqs[id].trailers["x-checksum"], "42");
  EXPECT_TRUE(s.reqs[id].ended);
  EXPECT_FALSE(c.send_body(id, "late", false));  // the request ended
}

TEST(H2Client, InformationalResponsesAreSkipped) {
  H2ClientSession c;
  Server s;
  const auto id = c.submit(post("/x"), "a", "http", true);
  pump(c, s);
  s.headers_only(id, "103");
  s.respond(id, "200", {}, "");
  pump(c, s);
  const auto ev = drain(c, id);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, Kind::Headers);
  EXPECT_EQ(ev[0].status, 200);
  EXPECT_EQ(ev[1].kind, Kind::End);
}

TEST(H2Client, BackendResetIsAStreamResetNotAConnectionError) {
  H2ClientSession c;
  Server s;
  const auto a = c.submit(post("/a"), "a", "http", true);
  const auto b = c.submit(post("/b"), "a", "http", true);
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, a, NGHTTP2_REFUSED_STREAM);
  s.respond(b, "200", {}, "ok");
  pump(c, s);
  const auto ea = drain(c, a);
  ASSERT_EQ(ea.size(), 1u);
  EXPECT_EQ(ea[0].kind, Kind::Reset);
  EXPECT_EQ(ea[0].error_code, static_cast<std::uint32_t>(NGHTTP2_REFUSED_STREAM));
  const auto eb = drain(c, b);
  ASSERT_EQ(eb.size(), 3u);
  EXPECT_EQ(eb[2].kind, Kind::End);
  EXPECT_TRUE(c.alive());
}

TEST(H2Client, PeerMaxConcurrentStreamsIsKnownAfterItsSettings) {
  H2ClientSession c;
  Server s(1);
  pump(c, s);
  EXPECT_EQ(c.peer_max_concurrent(), 1u);
  const auto id = c.submit(post("/a"), "a", "http", true);
  EXPECT_EQ(c.open_streams(), 1u);
  pump(c, s);
  s.respond(id, "200", {}, "");
  pump(c, s);
  EXPECT_EQ(c.open_streams(), 0u);
}

TEST(H2Client, WindowIsGivenBackOnlyAsTheCallerConsumes) {
  H2ClientLimits limits;
  limits.stream_window = 16384;
  H2ClientSession c(limits);
  Server s;
  const auto id = c.submit(post("/big"), "a", "http", true);
  pump(c, s);
  s.respond(id, "200", {}, std::string(40000, 'x'));
  pump(c, s);
  std::size_t got = 0;
  for (const auto& e : drain(c, id)) got += e.data.size();
  EXPECT_EQ(got, 16384u);  // the backend is stuck on our window: nothing more is buffered
  c.consume(id, got);
  pump(c, s);
  std::size_t more = 0;
  for (const auto& e : drain(c, id)) more += e.data.size();
  EXPECT_EQ(more, 16384u);
}

TEST(H2Client, CancelSendsRstStreamCancel) {
  H2ClientSession c;
  Server s;
  const auto id = c.submit(post("/a"), "a", "http", false);
  pump(c, s);
  c.cancel(id);
  pump(c, s);
  EXPECT_EQ(s.last_closed_code, static_cast<std::int32_t>(NGHTTP2_CANCEL));
  const auto ev = drain(c, id);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::Reset);
  c.release(id);
  EXPECT_TRUE(c.alive());
}

// --- a malicious backend ---

TEST(H2ClientMalicious, HugeResponseHeadersResetThatStreamOnly) {
  H2ClientLimits limits;
  limits.max_header_list_bytes = 4096;
  H2ClientSession c(limits);
  Server s;
  const auto a = c.submit(post("/a"), "a", "http", true);
  const auto b = c.submit(post("/b"), "a", "http", true);
  pump(c, s);
  std::vector<std::pair<std::string, std::string>> big;
  for (int i = 0; i < 10; ++i) big.push_back({"x-big-" + std::to_string(i), std::string(1000, 'v')});
  s.respond(a, "200", big, "");
  s.respond(b, "200", {}, "fine");
  pump(c, s);
  const auto ea = drain(c, a);
  ASSERT_FALSE(ea.empty());
  EXPECT_EQ(ea.back().kind, Kind::Reset);
  EXPECT_EQ(ea.back().reason, "response header list too large");
  for (const auto& e : ea) EXPECT_NE(e.kind, Kind::Headers);
  const auto eb = drain(c, b);
  ASSERT_EQ(eb.size(), 3u);
  EXPECT_EQ(eb[1].data, "fine");
}

TEST(H2ClientMalicious, PushPromiseIsAConnectionError) {
  H2ClientSession c;
  Server s;
  const auto id = c.submit(post("/a"), "a", "http", true);
  pump(c, s);
  // PUSH_PROMISE on stream 1 promising stream 2 (:method GET, :path /, :scheme http: static
  // table indexes 2, 4, 6). We sent ENABLE_PUSH 0 (RFC 9113 §6.5.2): a PROTOCOL_ERROR.
  const std::string payload = std::string("\0\0\0\2", 4) + "\x82\x84\x86";
  c.receive(frame(NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, static_cast<std::uint32_t>(id), payload));
  std::string out;
  c.produce(out);
  EXPECT_TRUE(has_frame(out, NGHTTP2_GOAWAY));
  EXPECT_FALSE(c.alive());
}

TEST(H2ClientMalicious, DataOnAStreamWeNeverOpenedIsAConnectionError) {
  H2ClientSession c;
  Server s;
  pump(c, s);
  c.receive(frame(NGHTTP2_DATA, 0, 7, "stolen"));
  std::string out;
  c.produce(out);
  EXPECT_TRUE(has_frame(out, NGHTTP2_GOAWAY));
  EXPECT_FALSE(c.alive());
}

TEST(H2ClientMalicious, RstStormOnClosedStreamsEndsTheConnection) {
  H2ClientLimits limits;
  limits.max_unknown_resets = 10;
  H2ClientSession c(limits);
  Server s;
  const auto id = c.submit(post("/a"), "a", "http", true);
  pump(c, s);
  s.respond(id, "200", {}, "");
  pump(c, s);
  std::string storm;
  for (int i = 0; i < 11; ++i) storm += frame(NGHTTP2_RST_STREAM, 0, 1, std::string("\0\0\0\x8", 4));
  EXPECT_FALSE(c.receive(storm));
  EXPECT_NE(c.error().find("RST_STREAM"), std::string::npos);
}

TEST(H2ClientMalicious, SettingsAndPingFloodsAreBounded) {
  H2ClientLimits limits;
  limits.max_control_frames = 20;
  H2ClientSession c(limits);
  Server s;
  pump(c, s);
  std::string flood;
  for (int i = 0; i < 30; ++i) flood += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  EXPECT_FALSE(c.receive(flood));
  EXPECT_NE(c.error().find("control frames"), std::string::npos);
}

TEST(H2ClientMalicious, EndlessContinuationFramesEndTheConnection) {
  H2ClientLimits limits;
  limits.max_continuation_frames = 4;
  H2ClientSession c(limits);
  Server s;
  const auto id = c.submit(post("/a"), "a", "http", true);
  pump(c, s);
  // HEADERS without END_HEADERS (:status 200 = static index 8), then empty CONTINUATIONs.
  std::string bytes = frame(NGHTTP2_HEADERS, 0, static_cast<std::uint32_t>(id), "\x88");
  for (int i = 0; i < 10; ++i) bytes += frame(NGHTTP2_CONTINUATION, 0, static_cast<std::uint32_t>(id), "");
  EXPECT_FALSE(c.receive(bytes));
  EXPECT_NE(c.error().find("CONTINUATION"), std::string::npos);
}

TEST(H2ClientMalicious, MemoryBudgetIsEnforcedOnNghttp2Allocations) {
  H2ClientLimits limits;
  limits.memory_bytes = 256;  // far below what a session needs
  H2ClientSession c(limits);
  EXPECT_FALSE(c.ok());
  H2ClientSession fine;
  EXPECT_TRUE(fine.ok());
  EXPECT_GT(fine.memory(), 0u);
}

TEST(H2ClientMalicious, GoawayStopsNewStreams) {
  H2ClientSession c;
  Server s;
  const auto id = c.submit(post("/a"), "a", "http", true);
  pump(c, s);
  nghttp2_submit_goaway(s.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
  s.respond(id, "200", {}, "last");
  pump(c, s);
  EXPECT_TRUE(c.goaway_received());
  EXPECT_LT(c.submit(post("/b"), "a", "http", true), 0);
  const auto ev = drain(c, id);
  ASSERT_EQ(ev.size(), 3u);  // the open stream finished
  EXPECT_EQ(ev[1].data, "last");
}

}  // namespace
}  // namespace phigate::upstream::detail
