// The HTTP/2 server codec, event by event. Bytes come from an nghttp2 CLIENT session (sans-I/O on
// both sides: the test pumps bytes between them); malformed input a client session would refuse
// to produce is built by hand (frame headers) with nghttp2's HPACK deflater for header blocks.
#include "phigate/http/h2_server.hpp"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace phigate::http {
namespace {

using namespace std::chrono_literals;
using Kind = H2Event::Kind;
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Logged {
  Kind kind;
  std::int32_t stream;
  std::uint32_t error_code;
  std::string reason;
  int status;
};

/// An nghttp2 client session: submits requests, records what the server answered.
class Client {
 public:
  struct Response {
    int status = 0;
    Fields headers;
    Fields trailers;
    std::string body;
    bool end = false;
    bool closed = false;
    std::uint32_t close_code = 0;
    bool saw_headers = false;
  };

  /// `peer_max_concurrent`: streams it opens before our SETTINGS arrive (nghttp2's default: 100).
  explicit Client(std::uint32_t peer_max_concurrent = 1000) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
               const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
          auto& self = *static_cast<Client*>(u);
          auto& r = self.responses[f->hd.stream_id];
          std::string name(reinterpret_cast<const char*>(n), nl), value(reinterpret_cast<const char*>(v), vl);
          if (name == ":status") {
            r.status = std::stoi(value);
          } else if (r.saw_headers) {
            r.trailers.emplace_back(name, value);
          } else {
            r.headers.emplace_back(name, value);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          auto& self = *static_cast<Client*>(u);
          if (f->hd.type == NGHTTP2_GOAWAY) {
            self.goaway = true;
            self.goaway_code = f->goaway.error_code;
            self.goaway_last = f->goaway.last_stream_id;
          }
          if (f->hd.type == NGHTTP2_SETTINGS && (f->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
            for (std::size_t i = 0; i < f->settings.niv; ++i)
              self.settings[f->settings.iv[i].settings_id] = f->settings.iv[i].value;
          }
          if (f->hd.type == NGHTTP2_WINDOW_UPDATE && f->hd.stream_id == 0)
            self.conn_window_update += f->window_update.window_size_increment;
          if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) ++self.ping_acks;
          if (f->hd.stream_id != 0 && f->hd.type == NGHTTP2_HEADERS)
            self.responses[f->hd.stream_id].saw_headers = true;
          if (f->hd.stream_id != 0 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
              (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA)) {
            self.responses[f->hd.stream_id].end = true;
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb,
        [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t n, void* u) {
          static_cast<Client*>(u)->responses[id].body.append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
          auto& r = static_cast<Client*>(u)->responses[id];
          r.closed = true;
          r.close_code = code;
          return 0;
        });
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // The test reads responses whatever they contain (the server's job is checked, not ours).
    nghttp2_option_set_no_http_messaging(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, peer_max_concurrent);
    nghttp2_session_client_new2(&s_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(s_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  nghttp2_session* session() { return s_; }

  std::int32_t request(const Fields& fields, std::string body = {}, bool with_body = false,
                       Fields trailers = {}) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : fields) nva.push_back(nv(n, v));
    nghttp2_data_provider dp{};
    dp.read_callback = [](nghttp2_session* s, std::int32_t id, std::uint8_t* buf, std::size_t len,
                          std::uint32_t* flags, nghttp2_data_source*, void* u) -> ssize_t {
      auto& self = *static_cast<Client*>(u);
      auto& b = self.bodies[id];
      const std::size_t n = std::min(len, b.size());
      std::copy_n(b.data(), n, buf);
      b.erase(0, n);
      if (b.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        const auto& t = self.trailers[id];
        if (!t.empty()) {
          std::vector<nghttp2_nv> tv;
          for (const auto& [tn, tvv] : t) tv.push_back(nv(tn, tvv));
          nghttp2_submit_trailer(s, id, tv.data(), tv.size());
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
      return static_cast<ssize_t>(n);
    };
    const bool has_body = with_body || !body.empty() || !trailers.empty();
    const auto id =
        nghttp2_submit_request(s_, nullptr, nva.data(), nva.size(), has_body ? &dp : nullptr, nullptr);
    bodies[id] = std::move(body);
    this->trailers[id] = std::move(trailers);
    return id;
  }

  std::string output() {
    std::string out;
    for (int i = 0; i < 100000; ++i) {
      const std::uint8_t* p = nullptr;
      const auto n = nghttp2_session_mem_send(s_, &p);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    }
    return out;
  }
  void input(const std::string& bytes) {
    if (!bytes.empty())
      nghttp2_session_mem_recv(s_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }

  static nghttp2_nv nv(const std::string& n, const std::string& v) {
    return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
            reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
            NGHTTP2_NV_FLAG_NONE};
  }

  std::map<std::int32_t, Response> responses;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, Fields> trailers;
  std::map<std::int32_t, std::uint32_t> settings;
  std::uint64_t conn_window_update = 0;
  int ping_acks = 0;
  bool goaway = false;
  std::uint32_t goaway_code = 0;
  std::int32_t goaway_last = -1;

 private:
  nghttp2_session* s_ = nullptr;
};

Fields get(std::string path = "/a", std::string authority = "example.test") {
  return {{":method", "GET"},
          {":scheme", "https"},
          {":authority", std::move(authority)},
          {":path", std::move(path)}};
}
Fields post(std::string path = "/up") {
  return {
      {":method", "POST"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", std::move(path)}};
}
Fields with(Fields f, std::string n, std::string v) {
  f.emplace_back(std::move(n), std::move(v));
  return f;
}
/// RFC 8441 §4: an extended CONNECT, :protocol last when `protocol` is empty (the caller adds it).
Fields ext_connect(std::string path = "/chat", std::string protocol = "") {
  Fields f{{":method", "CONNECT"},
           {":scheme", "https"},
           {":authority", "example.test"},
           {":path", std::move(path)}};
  if (!protocol.empty()) f.emplace_back(":protocol", std::move(protocol));
  return f;
}

// --- raw frames (only for input a client session would refuse to produce)
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
std::string frame(std::uint8_t type, std::uint8_t flags, std::int32_t stream, std::string_view payload) {
  std::string f;
  const auto len = payload.size();
  f.push_back(static_cast<char>((len >> 16) & 0xff));
  f.push_back(static_cast<char>((len >> 8) & 0xff));
  f.push_back(static_cast<char>(len & 0xff));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  const auto id = static_cast<std::uint32_t>(stream);
  for (int sh = 24; sh >= 0; sh -= 8) f.push_back(static_cast<char>((id >> sh) & 0xff));
  f.append(payload);
  return f;
}
[[maybe_unused]] std::string u32(std::uint32_t v) {
  std::string s;
  for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((v >> sh) & 0xff));
  return s;
}
/// The error code of the last GOAWAY in the server's raw output (-1: none). Only for output a
/// client session would stop reading (RST_STREAM for streams it never opened).
std::int64_t goaway_code_in(std::string_view out) {
  std::int64_t code = -1;
  while (out.size() >= 9) {
    const auto b = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(out[i]));
    };
    const std::size_t len = (b(0) << 16) | (b(1) << 8) | b(2);
    if (out.size() < 9 + len) break;
    if (b(3) == NGHTTP2_GOAWAY && len >= 8) code = (b(13) << 24) | (b(14) << 16) | (b(15) << 8) | b(16);
    out.remove_prefix(9 + len);
  }
  return code;
}

/// HPACK-encodes `fields` with nghttp2's deflater (one per test connection, like a client).
class Hpack {
 public:
  Hpack() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Hpack() { nghttp2_hd_deflate_del(d_); }
  Hpack(const Hpack&) = delete;
  Hpack& operator=(const Hpack&) = delete;
  std::string encode(const Fields& fields) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : fields) nva.push_back(Client::nv(n, v));
    std::string out(nghttp2_hd_deflate_bound(d_, nva.data(), nva.size()), '\0');
    const auto n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<std::uint8_t*>(out.data()), out.size(),
                                         nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

class H2ServerTest : public ::testing::Test {
 protected:
  void start() { server = std::make_unique<H2ServerSession>(opts); }

  void collect() {
    for (const auto& e : server->events()) {
      log.push_back({e.kind, e.stream, e.error_code, std::string(e.reason), e.status});
    }
  }
  /// Client <-> server until neither has anything to say (bounded).
  void pump(std::size_t out_max = static_cast<std::size_t>(-1)) {
    for (int round = 0; round < 10000; ++round) {
      const std::string c2s = client.output();
      if (!c2s.empty()) feed(c2s);
      std::string s2c;
      server->take_output(s2c, out_max);
      collect();
      client.input(s2c);
      if (c2s.empty() && s2c.empty()) break;
    }
  }
  void feed(const std::string& bytes) {
    status = server->feed(bytes.data(), bytes.size(), now);
    collect();
  }
  /// Raw bytes in; what the server writes goes to `reader` (a client session parsing it).
  void raw(const std::string& bytes) {
    feed(bytes);
    drain_to(reader);
  }
  void drain_to(Client& c) {
    for (int i = 0; i < 1000; ++i) {
      std::string out;
      server->take_output(out, static_cast<std::size_t>(-1));
      collect();
      if (out.empty()) break;
      c.input(out);
    }
  }
  std::string raw_start() { return std::string(kPreface) + frame(NGHTTP2_SETTINGS, 0, 0, ""); }

  std::vector<Logged> of(std::int32_t stream) const {
    std::vector<Logged> r;
    for (const auto& e : log) {
      if (e.stream == stream) r.push_back(e);
    }
    return r;
  }
  std::vector<Kind> kinds(std::int32_t stream) const {
    std::vector<Kind> r;
    for (const auto& e : of(stream)) r.push_back(e.kind);
    return r;
  }
  int count(Kind k) const {
    return static_cast<int>(
        std::count_if(log.begin(), log.end(), [&](const Logged& e) { return e.kind == k; }));
  }
  void respond(std::int32_t id, int code, std::string body, HeaderList headers = {}) {
    server->submit_response(id, code, headers, body.empty());
    if (!body.empty()) {
      server->send_data(id, body);
      server->end_response(id, nullptr);
    }
  }

  /// Event-order invariants every test must hold: a stream's first event is Request or Rejected;
  /// Data and End only after Request; End once; Closed once and last; nothing for unknown ids.
  void TearDown() override {
    std::map<std::int32_t, std::vector<Kind>> by;
    for (const auto& e : log) by[e.stream].push_back(e.kind);
    for (const auto& [id, k] : by) {
      SCOPED_TRACE("stream " + std::to_string(id));
      ASSERT_GT(id, 0);
      ASSERT_TRUE(k.front() == Kind::Request || k.front() == Kind::Rejected);
      EXPECT_LE(std::count(k.begin(), k.end(), Kind::Closed), 1);
      EXPECT_LE(std::count(k.begin(), k.end(), Kind::End), 1);
      EXPECT_LE(std::count(k.begin(), k.end(), Kind::Rejected), 1);
      const auto closed = std::find(k.begin(), k.end(), Kind::Closed);
      if (closed != k.end()) {
        EXPECT_EQ(closed + 1, k.end()) << "event after Closed";
      }
      if (k.front() == Kind::Rejected) {
        for (const auto kind : k) EXPECT_TRUE(kind == Kind::Rejected || kind == Kind::Closed);
      }
      const auto end = std::find(k.begin(), k.end(), Kind::End);
      if (end != k.end()) {
        EXPECT_EQ(std::count(end, k.end(), Kind::Data), 0) << "Data after End";
      }
    }
    if (server) {
      EXPECT_LE(server->memory(), opts.http2.connection_memory_bytes + 512 * 1024);
    }
  }

  H2Options opts;
  std::unique_ptr<H2ServerSession> server;
  Client client;
  Client reader;  // parses the server's output in raw-frame tests
  std::vector<Logged> log;
  H2Clock::time_point now = H2Clock::time_point{} + 1h;
  H2ServerSession::Status status = H2ServerSession::Status::Ok;
};

TEST_F(H2ServerTest, SettingsAndConnectionWindowAreSent) {
  opts.http2.max_concurrent_streams = 50;
  opts.http2.initial_window_bytes = 32768;
  start();
  pump();
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS], 50u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE], 32768u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_HEADER_TABLE_SIZE], 4096u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_MAX_FRAME_SIZE], 16384u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE], 32768u);
  EXPECT_EQ(client.settings.count(NGHTTP2_SETTINGS_ENABLE_PUSH), 1u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_ENABLE_PUSH], 0u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES], 1u);
  EXPECT_EQ(client.settings[NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL], 1u);  // RFC 8441, by default
  EXPECT_EQ(client.conn_window_update, 1048576u - 65535u);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  EXPECT_FALSE(server->finished());
}

TEST_F(H2ServerTest, GetBecomesOneRequestThenResponseThenClosed) {
  start();
  const auto id = client.request(with(get("/p?q=1"), "accept", "text/plain"));
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Request, Kind::End}));
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->head.method, "GET");
  EXPECT_EQ(r->head.target, "/p?q=1");
  EXPECT_EQ(r->head.version_major, 2);
  EXPECT_EQ(r->head.version_minor, 0);
  EXPECT_EQ(r->scheme, "https");
  ASSERT_EQ(r->head.headers.size(), 2u);
  EXPECT_EQ(r->head.headers.begin()->name, "host");
  EXPECT_EQ(r->head.headers.begin()->value, "example.test");
  EXPECT_EQ(*r->head.headers.find("accept"), "text/plain");
  EXPECT_FALSE(r->head.content_length);
  EXPECT_FALSE(r->head.chunked);
  EXPECT_TRUE(r->end_stream);
  EXPECT_EQ(server->open_streams(), 1u);

  HeaderList h;
  h.add("Content-Type", "text/plain");
  respond(id, 200, "hello", h);
  pump();
  EXPECT_EQ(client.responses[id].status, 200);
  EXPECT_EQ(client.responses[id].body, "hello");
  EXPECT_EQ(client.responses[id].headers, (Fields{{"content-type", "text/plain"}}));
  EXPECT_TRUE(client.responses[id].end);
  EXPECT_EQ(kinds(id), (std::vector<Kind>{Kind::Request, Kind::End, Kind::Closed}));
  EXPECT_EQ(server->request(id), nullptr);
  EXPECT_EQ(server->open_streams(), 0u);
}

TEST_F(H2ServerTest, HostFieldEqualToAuthorityIsKeptOnceFirst) {
  start();
  const auto id = client.request(with(with(get(), "x-a", "1"), "host", "EXAMPLE.test"));
  pump();
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->head.headers.count("host"), 1u);
  EXPECT_EQ(r->head.headers.begin()->name, "host");
  EXPECT_EQ(r->head.headers.begin()->value, "example.test");
}

TEST_F(H2ServerTest, HostGoesFirstAndTheOtherFieldsKeepTheirOrder) {
  start();
  const auto id = client.request(with(with(with(get(), "x-a", "1"), "x-b", "2"), "x-c", "3"));
  pump();
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  std::vector<std::string> names;
  for (const auto& f : r->head.headers) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"host", "x-a", "x-b", "x-c"}));
}

// A head the caller moved out and gave back serves a later stream: nothing of the first request
// may show in the second (a recycled list must never leak one client's fields into another
// request), and what the codec keeps is counted in memory() and dropped on demand.
TEST_F(H2ServerTest, RecycledHeadCarriesNothingOfTheFirstRequest) {
  start();
  const auto first = client.request(with(with(get("/first"), "authorization", "Bearer secret-of-stream-one"),
                                         "x-first-only", std::string(200, 'a')));
  pump();
  auto* r1 = server->request(first);
  ASSERT_NE(r1, nullptr);
  MessageHead taken = std::move(r1->head);
  ASSERT_EQ(taken.headers.size(), 3u);
  respond(first, 200, "ok");
  pump();
  const std::size_t before = server->memory();
  server->recycle(std::move(taken));
  const std::size_t with_spare = server->memory();
  EXPECT_GT(with_spare, before);  // the spare head is counted

  const auto second = client.request(with(get("/second"), "x-b", "2"));
  pump();
  auto* r2 = server->request(second);
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(r2->head.method, "GET");
  EXPECT_EQ(r2->head.target, "/second");
  ASSERT_EQ(r2->head.headers.size(), 2u);
  EXPECT_EQ(r2->head.headers.begin()->name, "host");
  EXPECT_EQ(*r2->head.headers.find("x-b"), "2");
  EXPECT_EQ(r2->head.headers.find("authorization"), nullptr);
  EXPECT_EQ(r2->head.headers.find("x-first-only"), nullptr);
  EXPECT_FALSE(r2->head.content_length);
}

// The proxy hands its figure of the head's size (taken while the head was in cache) instead of
// a walk at recycle: the spare is counted by exactly that figure, and once a later stream took it
// and ended, nothing of it stays counted.
TEST_F(H2ServerTest, RecycledHeadIsCountedByTheCallersFigureAndLeavesNothingBehind) {
  start();
  const auto first = client.request(with(get("/first"), "x-first-only", std::string(300, 'a')));
  pump();
  auto* r1 = server->request(first);
  ASSERT_NE(r1, nullptr);
  MessageHead taken = std::move(r1->head);
  respond(first, 200, "ok");
  pump();
  const std::size_t before = server->memory();
  const std::size_t bytes = H2ServerSession::head_storage(taken);
  EXPECT_GT(bytes, 300u);
  server->recycle(std::move(taken), bytes);
  EXPECT_EQ(server->memory(), before + bytes);

  const auto second = client.request(get("/second"));
  pump();
  auto* r2 = server->request(second);
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(r2->head.target, "/second");
  EXPECT_EQ(r2->head.headers.find("x-first-only"), nullptr);
  respond(second, 200, "ok");
  pump();
  EXPECT_EQ(server->memory(), before);  // the spare went to the stream, and the stream is gone
}

TEST_F(H2ServerTest, LargeRecycledHeadsAreNotKeptAndSparesCanBeDropped) {
  start();
  pump();
  const std::size_t base = server->memory();
  MessageHead big;
  big.headers.add("x-big", std::string(H2ServerSession::kSpareHeadBytes, 'b'));
  server->recycle(std::move(big));
  EXPECT_EQ(server->memory(), base);  // over kSpareHeadBytes: freed, not kept

  MessageHead small;
  small.method = "GET";
  small.headers.add("x-small", "1");
  server->recycle(std::move(small));
  EXPECT_GT(server->memory(), base);
  server->drop_spare_heads();
  EXPECT_EQ(server->memory(), base);
}

TEST_F(H2ServerTest, SpareHeadsAreBoundedByTheStreamLimit) {
  opts.http2.max_concurrent_streams = 4;
  start();
  pump();
  const std::size_t base = server->memory();
  std::size_t after_four = 0;
  for (int i = 0; i < 10; ++i) {
    MessageHead h;
    h.headers.add("x-n", std::to_string(i));
    server->recycle(std::move(h));
    if (i == 3) after_four = server->memory();
  }
  EXPECT_GT(after_four, base);
  EXPECT_EQ(server->memory(), after_four);  // the fifth and later were not kept
}

TEST_F(H2ServerTest, SpareHeadsStayASmallShareOfTheMemoryBudget) {
  opts.http2.connection_memory_bytes = 256 * 1024;
  opts.http2.max_concurrent_streams = 256;
  start();
  pump();
  const std::size_t base = server->memory();
  for (int i = 0; i < 256; ++i) {
    MessageHead h;
    h.headers.add("x-n", std::string(1000, 'v'));
    server->recycle(std::move(h));
  }
  EXPECT_LE(server->memory() - base, opts.http2.connection_memory_bytes / 8);
}

TEST(HeaderListTest, AMovedFromListIsEmptyAndUsable) {
  HeaderList a;
  a.add("x-a", "1");
  a.add("x-b", "2");
  HeaderList b(std::move(a));
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(a.begin(), a.end());
  a.add("x-c", "3");
  EXPECT_EQ(*a.find("x-c"), "3");
  HeaderList c;
  c = std::move(b);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(b.size(), 0u);  // NOLINT(bugprone-use-after-move)
  b.add("x-d", "4");
  EXPECT_EQ(b.size(), 1u);
}

TEST_F(H2ServerTest, HostWithoutAuthorityIsTheHost) {
  start();
  const auto id =
      client.request({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "h.test"}});
  pump();
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(*r->head.headers.find("host"), "h.test");
}

TEST_F(H2ServerTest, HostMismatchIsRejected400) {
  start();
  const auto id = client.request(with(get(), "host", "other.test"));
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  EXPECT_EQ(of(id)[0].reason, "host_mismatch");
  EXPECT_EQ(of(id)[0].status, 400);
  EXPECT_EQ(client.responses[id].status, 400);
  EXPECT_EQ(count(Kind::Request), 0);
}

TEST_F(H2ServerTest, PostBodyAcrossDataFramesWithTrailersAndContentLength) {
  start();
  const std::string body(50000, 'b');
  const auto id = client.request(with(post(), "content-length", "50000"), body, true, {{"x-sum", "42"}});
  pump();
  auto k = kinds(id);
  ASSERT_FALSE(k.empty());
  EXPECT_EQ(k.front(), Kind::Request);
  EXPECT_EQ(k.back(), Kind::End);
  EXPECT_GE(std::count(k.begin(), k.end(), Kind::Data), 1);
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->head.content_length, 50000u);
  EXPECT_EQ(r->body_bytes, 50000u);
  std::string got;
  server->take_body(id, got);
  EXPECT_EQ(got, body);
  EXPECT_TRUE(r->body.empty());
  ASSERT_EQ(r->trailers.size(), 1u);
  EXPECT_EQ(r->trailers.begin()->name, "x-sum");
  EXPECT_EQ(r->trailers.begin()->value, "42");
}

TEST_F(H2ServerTest, ConsumeGatesTheStreamWindow) {
  opts.http2.initial_window_bytes = 16384;
  start();
  pump();  // SETTINGS exchanged: before that, RFC 9113 §6.9.2's default 65535 holds
  const std::string body(100000, 'x');
  const auto id = client.request(post(), body, true);
  pump();
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  // Without consume() the client is stuck at the stream window.
  EXPECT_EQ(r->body_bytes, 16384u);
  EXPECT_FALSE(r->end_stream);
  std::string got;
  for (int i = 0; i < 100 && !server->request(id)->end_stream; ++i) {
    const auto before = got.size();
    server->take_body(id, got);
    server->consume(id, got.size() - before);
    pump();
  }
  server->take_body(id, got);
  EXPECT_EQ(got, body);
  EXPECT_TRUE(server->request(id)->end_stream);
}

TEST_F(H2ServerTest, ResponseTrailersCountAgainstTheMemoryBudget) {
  start();
  const auto id = client.request(get());
  pump();
  server->submit_response(id, 200, HeaderList{}, false);
  const auto before = server->memory();
  HeaderList t;
  t.add("x-big", std::string(10000, 't'));
  server->end_response(id, &t);
  EXPECT_GE(server->memory(), before + 10000);
  pump();
  ASSERT_EQ(client.responses[id].trailers.size(), 1u);
  EXPECT_EQ(client.responses[id].trailers[0].second.size(), 10000u);
  EXPECT_EQ(kinds(id).back(), Kind::Closed);
}

TEST_F(H2ServerTest, ResponseTrailersAndDroppedConnectionFields) {
  start();
  const auto id = client.request(get());
  pump();
  HeaderList h;
  h.add("Connection", "close");
  h.add("Keep-Alive", "5");
  h.add("Proxy-Connection", "x");
  h.add("Transfer-Encoding", "chunked");
  h.add("Upgrade", "h2c");
  h.add("TE", "trailers");
  h.add("X-Kept", "yes");
  server->submit_response(id, 200, h, false);
  server->send_data(id, "abc");
  HeaderList t;
  t.add("Grpc-Status", "0");
  t.add("connection", "x");
  server->end_response(id, &t);
  pump();
  EXPECT_EQ(client.responses[id].headers, (Fields{{"x-kept", "yes"}}));
  EXPECT_EQ(client.responses[id].body, "abc");
  EXPECT_EQ(client.responses[id].trailers, (Fields{{"grpc-status", "0"}}));
  EXPECT_TRUE(client.responses[id].end);
  EXPECT_EQ(kinds(id).back(), Kind::Closed);
}

// Fields phigate adds or edits (an auth service's Set-Cookie, configured fields, trailers) lose
// leading and trailing whitespace, which RFC 9113 forbids: a strict client would reset the stream.
TEST_F(H2ServerTest, ResponseAndTrailerValuesLoseSurroundingWhitespace) {
  start();
  const auto id = client.request(get());
  pump();
  HeaderList h;
  h.add("Set-Cookie", "sid=x ");
  h.add("X-Tabs", "\t a\tb \t");
  h.add("X-Blank", "  ");
  server->submit_response(id, 200, h, false);
  server->send_data(id, "abc");
  HeaderList t;
  t.add("Grpc-Message", " done\t");
  server->end_response(id, &t);
  pump();
  EXPECT_EQ(client.responses[id].headers,
            (Fields{{"set-cookie", "sid=x"}, {"x-tabs", "a\tb"}, {"x-blank", ""}}));
  EXPECT_EQ(client.responses[id].trailers, (Fields{{"grpc-message", "done"}}));
  EXPECT_TRUE(client.responses[id].end);
}

TEST_F(H2ServerTest, WritableAfterHighWaterDrains) {
  start();
  const auto id = client.request(get());
  pump();
  server->submit_response(id, 200, {}, false);
  server->send_data(id, std::string(200000, 'r'));
  EXPECT_GT(server->queued(id), H2ServerSession::kHighWater);
  // A slow writer: a few bytes taken, the queue stays high, no Writable.
  std::string out;
  server->take_output(out, 100);
  collect();
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(count(Kind::Writable), 0);
  EXPECT_GT(server->queued(id), H2ServerSession::kLowWater);
  client.input(out);
  pump();  // the client reads and opens its windows as it goes: the queue drains
  EXPECT_EQ(count(Kind::Writable), 1);
  EXPECT_EQ(server->queued(id), 0u);
  server->end_response(id, nullptr);
  pump();
  EXPECT_EQ(client.responses[id].body, std::string(200000, 'r'));
  EXPECT_EQ(kinds(id).back(), Kind::Closed);
  EXPECT_EQ(count(Kind::Writable), 1);
}

TEST_F(H2ServerTest, ClientResetIsResetThenClosedOnce) {
  start();
  const auto id = client.request(post(), "x", true);
  pump();
  nghttp2_submit_rst_stream(client.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  pump();
  const auto k = kinds(id);
  ASSERT_GE(k.size(), 3u);
  EXPECT_EQ(k.front(), Kind::Request);
  EXPECT_EQ(k[k.size() - 2], Kind::Reset);
  EXPECT_EQ(of(id)[k.size() - 2].error_code, kH2Cancel);
  EXPECT_EQ(k.back(), Kind::Closed);
  EXPECT_EQ(server->request(id), nullptr);
  // The caller's late answer goes nowhere.
  respond(id, 200, "late");
  pump();
  EXPECT_EQ(client.responses[id].status, 0);
  EXPECT_EQ(count(Kind::Closed), 1);
}

TEST_F(H2ServerTest, ClosedInTheSameBatchKeepsTheRequestUntilTheNextCall) {
  start();
  Hpack hp;
  feed(raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, hp.encode(post())) +
       frame(NGHTTP2_DATA, 0, 1, "abc") + frame(NGHTTP2_RST_STREAM, 0, 1, u32(NGHTTP2_CANCEL)));
  std::vector<Kind> batch;
  for (const auto& e : server->events()) batch.push_back(e.kind);
  ASSERT_EQ(batch, (std::vector<Kind>{Kind::Request, Kind::Data, Kind::Reset, Kind::Closed}));
  ASSERT_NE(server->request(1), nullptr);
  EXPECT_EQ(server->request(1)->head.method, "POST");
  std::string body;
  server->take_body(1, body);
  EXPECT_EQ(body, "abc");
  respond(1, 200, "ignored");  // the stream is closed: nothing is sent
  drain_to(reader);
  EXPECT_EQ(server->request(1), nullptr);
  EXPECT_FALSE(reader.responses.count(1) != 0 && reader.responses[1].status != 0);
}

TEST_F(H2ServerTest, HundredConcurrentStreamsThe101stRefused) {
  start();
  // The client sends before it has read our SETTINGS (RFC 9113 allows it): nghttp2 refuses the
  // stream over our limit with REFUSED_STREAM and the others are served.
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 101; ++i) ids.push_back(client.request(get("/s" + std::to_string(i))));
  pump();
  EXPECT_EQ(count(Kind::Request), 100);
  EXPECT_TRUE(of(ids.back()).empty()) << "no event for a stream refused before its head was decoded";
  EXPECT_TRUE(client.responses[ids.back()].closed);
  EXPECT_EQ(client.responses[ids.back()].close_code, kH2RefusedStream);
  EXPECT_EQ(server->open_streams(), 100u);
  for (int i = 0; i < 100; ++i) respond(ids[static_cast<std::size_t>(i)], 204, "");
  pump();
  EXPECT_EQ(count(Kind::Closed), 100);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(client.responses[ids[static_cast<std::size_t>(i)]].status, 204);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  EXPECT_EQ(server->open_streams(), 0u);
}

/// One request that nghttp2 or the codec must refuse: Rejected then Closed, never Request, and
/// the client sees a RST_STREAM (or a 4xx when `status` is not 0).
struct BadRequest {
  const char* name;
  Fields fields;
  int status;
  const char* reason;
};

class H2RejectTest : public H2ServerTest, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(H2RejectTest, RejectedThenClosedNeverRequest) {
  start();
  const auto& p = GetParam();
  const auto id = client.request(p.fields);
  const auto ok = client.request(get("/fine"));  // the connection carries on
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  const auto e = of(id)[0];
  EXPECT_EQ(e.status, p.status);
  if (p.reason != nullptr) {
    EXPECT_EQ(e.reason, p.reason);
  }
  if (p.status == 0) {
    EXPECT_EQ(e.error_code, kH2ProtocolError);
    EXPECT_EQ(client.responses[id].close_code, kH2ProtocolError);
    EXPECT_EQ(client.responses[id].status, 0);
  } else {
    EXPECT_EQ(client.responses[id].status, p.status);
  }
  EXPECT_EQ(kinds(ok).front(), Kind::Request);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, H2RejectTest,
    ::testing::Values(
        BadRequest{"connection", with(get(), "connection", "keep-alive"), 0, "protocol_error"},
        BadRequest{"keep_alive", with(get(), "keep-alive", "5"), 0, "protocol_error"},
        BadRequest{"transfer_encoding", with(get(), "transfer-encoding", "chunked"), 0, "protocol_error"},
        BadRequest{"upgrade", with(get(), "upgrade", "h2c"), 0, "protocol_error"},
        BadRequest{"proxy_connection", with(get(), "proxy-connection", "x"), 0, "protocol_error"},
        BadRequest{"te_gzip", with(get(), "te", "gzip"), 0, "protocol_error"},
        BadRequest{"cr_in_value", with(get(), "x-a", "a\rb"), 0, "protocol_error"},
        BadRequest{"lf_in_value", with(get(), "x-a", "a\nInjected: 1"), 0, "protocol_error"},
        BadRequest{"nul_in_value", with(get(), "x-a", std::string("a\0b", 3)), 0, "protocol_error"},
        BadRequest{"missing_path",
                   {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}},
                   0,
                   "protocol_error"},
        BadRequest{
            "pseudo_after_regular",
            {{":method", "GET"}, {":scheme", "https"}, {"x-a", "1"}, {":path", "/"}, {":authority", "a"}},
            0,
            "protocol_error"},
        BadRequest{"protocol", with(get(), ":protocol", "websocket"), 0, nullptr},
        BadRequest{
            "connect", {{":method", "CONNECT"}, {":authority", "db.internal:5432"}}, 400, "connect_refused"},
        // nghttp2 refuses these itself (RFC 9113 §8.3.1: :authority or host; host only once).
        BadRequest{
            "no_host", {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}}, 0, "protocol_error"},
        BadRequest{"two_hosts", with(with(get(), "host", "example.test"), "host", "evil.test"), 0,
                   "protocol_error"},
        BadRequest{"host_mismatch", with(get(), "host", "evil.test"), 400, "host_mismatch"},
        // RFC 8441 extended CONNECT: only websocket, with :scheme, :path and :authority, no body.
        BadRequest{"ext_connect_other_protocol", with(ext_connect(), ":protocol", "foo"), 400,
                   "extended_connect_protocol"},
        BadRequest{"ext_connect_h2c", with(ext_connect(), ":protocol", "h2c"), 400,
                   "extended_connect_protocol"},
        BadRequest{"ext_connect_content_length",
                   with(ext_connect("/chat", "websocket"), "content-length", "0"), 400,
                   "extended_connect_body"},
        BadRequest{"ext_connect_no_scheme",
                   {{":method", "CONNECT"}, {":protocol", "websocket"}, {":path", "/"}, {":authority", "a"}},
                   0,
                   "protocol_error"},
        BadRequest{
            "ext_connect_no_path",
            {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":authority", "a"}},
            0,
            "protocol_error"},
        BadRequest{"ext_connect_extra_pseudo", with(ext_connect("/chat", "websocket"), ":foo", "bar"), 0,
                   "protocol_error"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(H2ServerTest, ExtendedConnectForWebSocketIsARequestWithItsProtocolAndTunnelData) {
  opts.upgrades = {"WebSocket"};  // compared without case
  start();
  const auto id = client.request(
      with(ext_connect("/chat?room=1", "websocket"), "sec-websocket-version", "13"), "frame", true);
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Request, Kind::Data, Kind::End}));
  auto* r = server->request(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->protocol, "websocket");
  EXPECT_EQ(r->head.method, "CONNECT");
  EXPECT_EQ(r->head.target, "/chat?room=1");
  EXPECT_EQ(r->head.headers.begin()->value, "example.test");
  EXPECT_EQ(*r->head.headers.find("sec-websocket-version"), "13");
  EXPECT_EQ(r->body, "frame");
  // The tunnel's answer: 200, then bytes both ways.
  server->submit_response(id, 200, {}, false);
  server->send_data(id, "echo");
  server->end_response(id, nullptr);
  pump();
  EXPECT_EQ(client.responses[id].status, 200);
  EXPECT_EQ(client.responses[id].body, "echo");
  // An ordinary request keeps an empty protocol.
  const auto plain = client.request(get());
  pump();
  ASSERT_NE(server->request(plain), nullptr);
  EXPECT_TRUE(server->request(plain)->protocol.empty());
}

TEST_F(H2ServerTest, ExtendedConnectNotOfferedIsNotAnnouncedAndRefused) {
  const auto off = [](H2Options& o, int which) {
    if (which == 0) o.http2.websocket = false;
    if (which == 1) o.upgrades.clear();
    if (which == 2) o.http2.max_websockets_per_connection = 0;
  };
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which);
    H2Options o;
    off(o, which);
    EXPECT_FALSE(o.connect_protocol());
    Client c;
    H2ServerSession srv(o);
    // The client sends :protocol without having seen the setting (RFC 8441 §3): malformed.
    std::vector<nghttp2_nv> nva;
    const Fields f = ext_connect("/chat", "websocket");
    for (const auto& [n, v] : f) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    const auto id = nghttp2_submit_request(c.session(), nullptr, nva.data(), nva.size(), nullptr, nullptr);
    std::vector<H2Event> evs;
    for (int round = 0; round < 100; ++round) {
      const auto out = c.output();
      if (!out.empty()) srv.feed(out.data(), out.size(), now);
      for (const auto& e : srv.events()) evs.push_back(e);
      std::string s2c;
      srv.take_output(s2c, static_cast<std::size_t>(-1));
      for (const auto& e : srv.events()) evs.push_back(e);
      c.input(s2c);
      if (out.empty() && s2c.empty()) break;
    }
    EXPECT_EQ(c.settings.count(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL), 0u);
    ASSERT_FALSE(evs.empty());
    EXPECT_EQ(evs.front().kind, Kind::Rejected);
    EXPECT_EQ(evs.front().stream, id);
    EXPECT_EQ(c.responses[id].close_code, kH2ProtocolError);
    EXPECT_EQ(c.responses[id].status, 0);
  }
}

TEST_F(H2ServerTest, TeTrailersIsAccepted) {
  start();
  const auto id = client.request(with(get(), "te", "trailers"));
  pump();
  EXPECT_EQ(kinds(id).front(), Kind::Request);
}

TEST_F(H2ServerTest, ContentLengthMismatchResetsTheRequest) {
  start();
  const auto id = client.request(with(post(), "content-length", "10"), "12345", true);
  pump();
  const auto k = kinds(id);
  ASSERT_GE(k.size(), 3u);
  EXPECT_EQ(k.front(), Kind::Request);
  EXPECT_EQ(k[k.size() - 2], Kind::Reset);
  EXPECT_EQ(of(id)[k.size() - 2].error_code, kH2ProtocolError);
  EXPECT_EQ(k.back(), Kind::Closed);
  EXPECT_EQ(std::count(k.begin(), k.end(), Kind::End), 0) << "a short body never completes the request";
  EXPECT_EQ(client.responses[id].close_code, kH2ProtocolError);

  const auto longer = client.request(with(post(), "content-length", "2"), "12345", true);
  pump();
  const auto kl = kinds(longer);
  ASSERT_FALSE(kl.empty());
  EXPECT_EQ(kl.back(), Kind::Closed);
  EXPECT_EQ(std::count(kl.begin(), kl.end(), Kind::End), 0);
}

TEST_F(H2ServerTest, OversizedHeaderListIs431) {
  opts.http2.max_header_list_bytes = 8192;
  start();
  Fields f = get();
  for (int i = 0; i < 10; ++i) f.emplace_back("x-big-" + std::to_string(i), std::string(1000, 'v'));
  const auto id = client.request(f, "body-nobody-reads", true);
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  EXPECT_EQ(of(id)[0].status, 431);
  EXPECT_EQ(of(id)[0].reason, "headers_too_large");
  EXPECT_EQ(client.responses[id].status, 431);
  EXPECT_TRUE(client.responses[id].closed);
  // HPACK state survived: the next request on the connection decodes fine.
  const auto next = client.request(with(get("/next"), "x-big-1", std::string(1000, 'v')));
  pump();
  ASSERT_EQ(kinds(next).front(), Kind::Request);
  EXPECT_EQ(*server->request(next)->head.headers.find("x-big-1"), std::string(1000, 'v'));
}

// HPACK amplification: one dynamic-table entry of ~3 KB, then referenced by 1-byte indices.
TEST_F(H2ServerTest, HpackAmplificationEndsTheConnection) {
  start();
  Hpack hp;
  const std::string big(3000, 'a');  // fits the 4096-byte table (name + value + 32)
  // A modest excess (about 2x the 32 KiB list limit) is an oversized request: 431.
  Fields modest = get("/modest");
  for (int i = 0; i < 20; ++i) modest.emplace_back("x-amp", big);
  raw(raw_start() +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, hp.encode(modest)));
  ASSERT_EQ(status, H2ServerSession::Status::Ok);
  ASSERT_EQ(kinds(1), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  EXPECT_EQ(of(1)[0].status, 431);
  // 5000 references in one ~8 KB block: 15 MB to decode. The connection ends once the decoded
  // size passes 4x the limit, never decoding the rest.
  Fields amp = get("/amp");
  for (int i = 0; i < 5000; ++i) amp.emplace_back("x-amp", big);
  const std::string block = hp.encode(amp);
  ASSERT_LT(block.size(), 16384u);  // one frame: the flood needs no CONTINUATION at all
  feed(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, block));
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "continuation_flood");
  std::string out;  // raw: the reader session stopped at the 431 for a stream it never opened
  server->take_output(out, static_cast<std::size_t>(-1));
  collect();
  EXPECT_EQ(goaway_code_in(out), kH2EnhanceYourCalm);
  EXPECT_TRUE(of(3).empty());
}

TEST_F(H2ServerTest, TrailersAreAHeaderListOfTheirOwn) {
  opts.http2.max_header_list_bytes = 4096;
  start();
  Fields head = post();
  head.emplace_back("x-head", std::string(3000, 'h'));
  const auto ok = client.request(head, "body", true, {{"x-trailer", std::string(3000, 't')}});
  pump();
  ASSERT_EQ(kinds(ok).front(), Kind::Request);
  EXPECT_EQ(kinds(ok).back(), Kind::End);
  EXPECT_EQ(server->request(ok)->trailers.size(), 1u);
  // Trailers over the limit: the request is reset, never completed.
  const auto big = client.request(post(), "body", true, {{"x-trailer", std::string(5000, 't')}});
  pump();
  const auto k = kinds(big);
  ASSERT_FALSE(k.empty());
  EXPECT_EQ(k.front(), Kind::Request);
  EXPECT_EQ(std::count(k.begin(), k.end(), Kind::End), 0);
  EXPECT_EQ(k.back(), Kind::Closed);
  EXPECT_EQ(client.responses[big].close_code, kH2ProtocolError);
}

TEST_F(H2ServerTest, ZeroWindowClientHoldsTheResponseNotTheCodec) {
  start();
  // The client advertises a zero stream window and never opens it (a slow or stalled reader).
  const nghttp2_settings_entry iv{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0};
  nghttp2_submit_settings(client.session(), NGHTTP2_FLAG_NONE, &iv, 1);
  pump();
  const auto id = client.request(get());
  pump();
  server->submit_response(id, 200, {}, false);
  server->send_data(id, std::string(H2ServerSession::kHighWater + 1, 'w'));
  pump();
  EXPECT_EQ(client.responses[id].status, 200);
  EXPECT_TRUE(client.responses[id].body.empty());
  EXPECT_EQ(server->queued(id), H2ServerSession::kHighWater + 1);
  EXPECT_EQ(count(Kind::Writable), 0);
  EXPECT_FALSE(server->want_write());
  EXPECT_LT(server->memory(), opts.http2.connection_memory_bytes);
  // The caller gives up on it (its own timer): the stream resets and closes once.
  server->reset(id, kH2Cancel);
  pump();
  EXPECT_EQ(kinds(id).back(), Kind::Closed);
  EXPECT_EQ(client.responses[id].close_code, kH2Cancel);
}

TEST_F(H2ServerTest, TooManyFieldsIs431) {
  opts.header_count = 5;
  start();
  Fields f = get();
  for (int i = 0; i < 6; ++i) f.emplace_back("x-" + std::to_string(i), "1");
  const auto id = client.request(f);
  const auto ok = client.request(with(get(), "x-1", "1"));
  pump();
  ASSERT_EQ(kinds(id), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  EXPECT_EQ(of(id)[0].status, 431);
  EXPECT_EQ(kinds(ok).front(), Kind::Request);
}

// --- attacks with hand-made frames

TEST_F(H2ServerTest, RapidResetEndsWithEnhanceYourCalm) {
  opts.http2.reset_budget = 20;
  opts.http2.reset_refill = 1;
  start();
  Hpack hp;
  std::string bytes = raw_start();
  for (std::int32_t id = 1; id < 2 * 100; id += 2) {
    bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, hp.encode(get()));
    bytes += frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL));
  }
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "rapid_reset");
  EXPECT_TRUE(reader.goaway);
  EXPECT_EQ(reader.goaway_code, kH2EnhanceYourCalm);
  EXPECT_LE(count(Kind::Request), 21);
  EXPECT_EQ(count(Kind::Request), count(Kind::Closed)) << "every reported stream closes, once";
  EXPECT_TRUE(server->finished());
  // Nothing more is read.
  raw(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1001, hp.encode(get())));
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_TRUE(of(1001).empty());
}

TEST_F(H2ServerTest, ResetsWithinTheRefillRateAreFine) {
  opts.http2.reset_budget = 5;
  opts.http2.reset_refill = 10;
  start();
  Hpack hp;
  raw(raw_start());
  for (std::int32_t id = 1; id < 2 * 60; id += 2) {
    now += 200ms;  // 5 per second, under the refill of 10
    raw(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, hp.encode(get())) +
        frame(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL)));
    ASSERT_EQ(status, H2ServerSession::Status::Ok) << id;
  }
  EXPECT_EQ(count(Kind::Request), 60);
  EXPECT_EQ(count(Kind::Reset), 60);
  EXPECT_FALSE(reader.goaway);
}

TEST_F(H2ServerTest, ResetsTheClientProvokesCountAsResets) {
  // "MadeYouReset": no RST_STREAM from the client, but frames that make the server reset the
  // stream (here more DATA than the content-length announced, RFC 9113 §8.1.1).
  opts.http2.reset_budget = 20;
  opts.http2.reset_refill = 1;
  start();
  Hpack hp;
  std::string bytes = raw_start();
  for (std::int32_t id = 1; id < 2 * 60; id += 2) {
    bytes +=
        frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, hp.encode(with(post(), "content-length", "1")));
    bytes += frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, id, "xx");
  }
  feed(bytes);
  std::string out;
  for (int i = 0; i < 100 && server->want_write(); ++i) {
    server->take_output(out, 65536);
    collect();
  }
  // nghttp2 resets those streams as it writes: the budget runs out in take_output at the latest.
  EXPECT_EQ(server->close_reason(), "rapid_reset");
  EXPECT_EQ(goaway_code_in(out), kH2EnhanceYourCalm);
  EXPECT_TRUE(server->finished());
  EXPECT_EQ(count(Kind::Request), count(Kind::Closed));
  raw(frame(NGHTTP2_PING, 0, 0, std::string(8, 'p')));
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
}

TEST_F(H2ServerTest, RejectedStreamsCountAsResets) {
  opts.http2.reset_budget = 10;
  opts.http2.reset_refill = 1;
  start();
  for (int i = 0; i < 30; ++i) client.request(with(get(), "host", "evil.test"));
  pump();
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "rapid_reset");
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(client.goaway_code, kH2EnhanceYourCalm);
}

TEST_F(H2ServerTest, ContinuationFloodEndsTheConnection) {
  start();
  Hpack hp;
  const std::string block = hp.encode(with(get(), "x-pad", std::string(300, 'p')));
  std::string bytes = raw_start() + frame(NGHTTP2_HEADERS, 0, 1, block.substr(0, 10));
  // Then endless CONTINUATION frames, none with END_HEADERS (CVE-2024-27316).
  for (int i = 0; i < 50; ++i)
    bytes += frame(NGHTTP2_CONTINUATION, 0, 1, std::string(1, block[10 + static_cast<std::size_t>(i)]));
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "continuation_flood");
  EXPECT_TRUE(reader.goaway);
  EXPECT_EQ(reader.goaway_code, kH2EnhanceYourCalm);
  EXPECT_TRUE(log.empty());
}

TEST_F(H2ServerTest, ContinuationsWithinTheLimitAreFine) {
  start();
  Hpack hp;
  const std::string block = hp.encode(get("/cont"));
  ASSERT_GT(block.size(), 8u);
  std::string bytes =
      raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, block.substr(0, block.size() - 8));
  for (std::size_t i = block.size() - 8; i < block.size(); ++i) {
    bytes += frame(NGHTTP2_CONTINUATION, i + 1 == block.size() ? NGHTTP2_FLAG_END_HEADERS : 0, 1,
                   block.substr(i, 1));
  }
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  ASSERT_EQ(kinds(1), (std::vector<Kind>{Kind::Request, Kind::End}));
  EXPECT_EQ(server->request(1)->head.target, "/cont");
}

struct Flood {
  const char* name;
  std::string frame;
};
class H2FloodTest : public H2ServerTest, public ::testing::WithParamInterface<Flood> {};

TEST_P(H2FloodTest, ControlFloodEndsWithEnhanceYourCalm) {
  opts.http2.control_budget = 100;
  opts.http2.control_refill = 10;
  start();
  raw(raw_start());
  std::string bytes;
  for (int i = 0; i < 150; ++i) bytes += GetParam().frame;
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "control_flood");
  EXPECT_TRUE(reader.goaway);
  EXPECT_EQ(reader.goaway_code, kH2EnhanceYourCalm);
  EXPECT_LE(reader.ping_acks, 100);
}

INSTANTIATE_TEST_SUITE_P(
    Frames, H2FloodTest,
    ::testing::Values(Flood{"ping", frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'))},
                      Flood{"unknown_type", frame(0xfa, 0, 0, "grease")},
                      Flood{"priority_update", frame(NGHTTP2_PRIORITY_UPDATE, 0, 0, u32(1) + "u=1")},
                      Flood{"altsvc", frame(NGHTTP2_ALTSVC, 0, 0, std::string("\0\x03a.b", 5) + "h2=\":1\"")},
                      Flood{"settings", frame(NGHTTP2_SETTINGS, 0, 0, "")},
                      Flood{"priority", frame(NGHTTP2_PRIORITY, 0, 3, u32(1) + "\x10")},
                      Flood{"window_update", frame(NGHTTP2_WINDOW_UPDATE, 0, 0, u32(1))}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(H2ServerTest, WindowUpdatesOfALongDownloadAreNoFlood) {
  opts.http2.control_budget = 20;
  opts.http2.control_refill = 1;
  start();
  const auto id = client.request(get());
  pump();
  // 4 MiB through the client's default 64 KiB windows: well over a hundred WINDOW_UPDATEs.
  server->submit_response(id, 200, {}, false);
  const std::string chunk(64 * 1024, 'd');
  for (int i = 0; i < 64; ++i) {
    server->send_data(id, chunk);
    pump();
    ASSERT_EQ(status, H2ServerSession::Status::Ok) << i << " " << server->close_reason();
  }
  server->end_response(id, nullptr);
  pump();
  EXPECT_EQ(client.responses[id].body.size(), 64u * chunk.size());
  EXPECT_TRUE(client.responses[id].end);
  EXPECT_EQ(server->close_reason(), "");
  EXPECT_FALSE(client.goaway);
}

TEST_F(H2ServerTest, EmptyDataFloodIsAControlFlood) {
  opts.http2.control_budget = 50;
  start();
  Hpack hp;
  std::string bytes = raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, hp.encode(post()));
  for (int i = 0; i < 100; ++i) bytes += frame(NGHTTP2_DATA, 0, 1, "");
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "control_flood");
  EXPECT_EQ(kinds(1), (std::vector<Kind>{Kind::Request, Kind::Reset, Kind::Closed}));
}

TEST_F(H2ServerTest, AllPaddingDataFloodIsAControlFlood) {
  opts.http2.control_budget = 50;
  start();
  Hpack hp;
  std::string bytes = raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, hp.encode(post()));
  // Each frame: pad length 3, three pad bytes, no data (the empty-DATA flood with padding).
  for (int i = 0; i < 100; ++i)
    bytes += frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, std::string("\x03\0\0\0", 4));
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "control_flood");
  EXPECT_TRUE(reader.goaway);
  EXPECT_EQ(reader.goaway_code, kH2EnhanceYourCalm);
}

TEST_F(H2ServerTest, PaddedDataWithBytesAndAFewExtensionFramesAreFine) {
  opts.http2.control_budget = 50;
  start();
  Hpack hp;
  std::string bytes = raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, hp.encode(post()));
  for (int i = 0; i < 100; ++i) {
    bytes += frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, std::string("\x02x\0\0", 4));
  }
  for (int i = 0; i < 10; ++i) bytes += frame(0xfa, 0, 0, "grease");
  bytes += frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "");
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  EXPECT_EQ(server->close_reason(), "");
  ASSERT_NE(server->request(1), nullptr);
  EXPECT_EQ(server->request(1)->body, std::string(100, 'x'));
  EXPECT_EQ(kinds(1), (std::vector<Kind>{Kind::Request, Kind::Data, Kind::End}));
}

TEST_F(H2ServerTest, PingsWithinTheBudgetAreAnswered) {
  start();
  raw(raw_start());
  std::string bytes;
  for (int i = 0; i < 20; ++i) bytes += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  EXPECT_EQ(reader.ping_acks, 20);
}

TEST_F(H2ServerTest, ConnectionErrorFoundByNghttp2ClosesAndSweepsStreams) {
  start();
  Hpack hp;
  raw(raw_start() +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, hp.encode(get())));
  ASSERT_EQ(kinds(1), (std::vector<Kind>{Kind::Request, Kind::End}));
  // WINDOW_UPDATE with a zero increment on the connection: PROTOCOL_ERROR (RFC 9113 §6.9).
  raw(frame(NGHTTP2_WINDOW_UPDATE, 0, 0, u32(0)));
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "protocol_error");
  EXPECT_TRUE(reader.goaway);
  EXPECT_EQ(reader.goaway_code, kH2ProtocolError);
  EXPECT_EQ(kinds(1), (std::vector<Kind>{Kind::Request, Kind::End, Kind::Reset, Kind::Closed}));
  EXPECT_EQ(server->request(1), nullptr);
  EXPECT_TRUE(server->finished());
}

TEST_F(H2ServerTest, BadPrefaceIsAConnectionError) {
  start();
  raw("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "protocol_error");
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(server->finished());
}

TEST_F(H2ServerTest, UppercaseNameIsRejected) {
  // nghttp2's client session lower-cases names: the block is encoded by hand.
  start();
  Hpack hp;
  raw(raw_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                          hp.encode(with(get(), "X-Upper", "1"))));
  EXPECT_EQ(kinds(1), (std::vector<Kind>{Kind::Rejected, Kind::Closed}));
  EXPECT_EQ(of(1)[0].error_code, kH2ProtocolError);
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
}

TEST_F(H2ServerTest, HeadersAgainOnAHalfClosedStreamIsNeverASecondRequest) {
  start();
  Hpack hp;
  raw(raw_start() +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, hp.encode(get())));
  ASSERT_EQ(kinds(3), (std::vector<Kind>{Kind::Request, Kind::End}));
  // Stream 3 is half-closed (remote): a second request on it (RFC 9113 §5.1 STREAM_CLOSED).
  raw(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
            hp.encode(get("/again"))));
  EXPECT_EQ(count(Kind::Request), 1);
  if (server->request(3) != nullptr) {
    EXPECT_EQ(server->request(3)->head.target, "/a");
  }
  EXPECT_EQ(count(Kind::End), 1);
}

TEST_F(H2ServerTest, RstFloodOnClosedStreamsIsAControlFlood) {
  opts.http2.control_budget = 100;
  start();
  Hpack hp;
  raw(raw_start() +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, hp.encode(get())));
  respond(1, 204, "");
  Client sink;  // a response on a stream `reader` never opened would break its session
  drain_to(sink);
  ASSERT_EQ(kinds(1).back(), Kind::Closed);
  std::string bytes;
  for (int i = 0; i < 150; ++i) bytes += frame(NGHTTP2_RST_STREAM, 0, 1, u32(NGHTTP2_CANCEL));
  raw(bytes);
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "control_flood");
  EXPECT_EQ(reader.goaway_code, kH2EnhanceYourCalm);
}

TEST_F(H2ServerTest, ClosedStreamIdReuseIsNeverARequest) {
  start();
  Hpack hp;
  raw(raw_start() +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, hp.encode(get())));
  respond(3, 200, "");
  drain_to(reader);
  ASSERT_EQ(kinds(3), (std::vector<Kind>{Kind::Request, Kind::End, Kind::Closed}));
  raw(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
            hp.encode(get("/again"))));
  raw(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
            hp.encode(get("/lower"))));
  EXPECT_EQ(count(Kind::Request), 1);
  EXPECT_EQ(kinds(3).size(), 3u);
  EXPECT_TRUE(of(1).empty());
}

TEST_F(H2ServerTest, MemoryBudgetEndsTheConnection) {
  opts.http2.connection_memory_bytes = 256 * 1024;
  start();
  std::vector<std::int32_t> ids;
  // Bodies nobody takes: each stream may hold a window's worth (65535) before SETTINGS apply.
  for (int i = 0; i < 10; ++i) ids.push_back(client.request(post(), std::string(60000, 'm'), true));
  pump();
  EXPECT_EQ(status, H2ServerSession::Status::Closed);
  EXPECT_EQ(server->close_reason(), "memory");
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(client.goaway_code, kH2EnhanceYourCalm);
  EXPECT_EQ(count(Kind::Request), count(Kind::Closed));
}

TEST_F(H2ServerTest, AResponseHeadNghttp2CannotTakeEndsTheConnectionNotTheStreamsWait) {
  // nghttp2 copies a response head with allocations the memory budget refuses past its slack: the
  // connection ends as for any overrun (before, the stream waited for a head never sent).
  opts.http2.connection_memory_bytes = 64 * 1024;
  start();
  const auto id = client.request(get());
  pump();
  ASSERT_NE(server->request(id), nullptr);
  HeaderList h;
  h.add("x-huge", std::string(512 * 1024, 'h'));
  server->submit_response(id, 200, h, true);
  collect();  // the stream's Reset and Closed come out of this call
  pump();
  EXPECT_EQ(server->close_reason(), "memory");
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(client.goaway_code, kH2EnhanceYourCalm);
  EXPECT_EQ(count(Kind::Request), count(Kind::Closed));
}

TEST_F(H2ServerTest, MemoryStaysSmallForAnIdleConnection) {
  start();
  pump();
  EXPECT_GT(server->memory(), 0u);
  EXPECT_LT(server->memory(), 128u * 1024);
}

TEST_F(H2ServerTest, ShutdownLetsOpenStreamsFinish) {
  start();
  const auto a = client.request(get("/a"));
  const auto b = client.request(post(), "partial", true);
  pump();
  ASSERT_EQ(kinds(a).front(), Kind::Request);
  ASSERT_EQ(kinds(b).front(), Kind::Request);
  server->shutdown();
  pump();
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(client.goaway_code, kH2NoError);
  EXPECT_EQ(client.goaway_last, b);
  EXPECT_FALSE(server->finished());
  // A stream opened after the GOAWAY is not served.
  Hpack hp;
  feed(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, b + 2,
             hp.encode(get("/late"))));
  EXPECT_TRUE(of(b + 2).empty());
  respond(a, 200, "A");
  respond(b, 200, "B");
  pump();
  EXPECT_EQ(client.responses[a].body, "A");
  EXPECT_EQ(client.responses[b].body, "B");
  EXPECT_EQ(kinds(a).back(), Kind::Closed);
  EXPECT_EQ(kinds(b).back(), Kind::Closed);
  EXPECT_TRUE(server->finished());
  EXPECT_EQ(server->close_reason(), "");
}

// GOAWAY race: streams nghttp2 opens after shutdown() but before the GOAWAY is written.
TEST_F(H2ServerTest, StreamsOpenedBeforeTheGoawayIsWrittenAreRefused) {
  opts.http2.reset_budget = 1;  // refusals are not the client's fault: no charge
  opts.http2.reset_refill = 1;
  start();
  const auto a = client.request(get("/a"));
  pump();
  ASSERT_EQ(kinds(a).front(), Kind::Request);
  server->shutdown();
  std::vector<std::int32_t> late;
  for (int i = 0; i < 3; ++i) late.push_back(client.request(post("/late"), "run-once", true));
  pump();  // the client's HEADERS reach the server before the GOAWAY is taken
  EXPECT_EQ(status, H2ServerSession::Status::Ok);
  EXPECT_EQ(count(Kind::Request), 1);
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(client.goaway_last, a);
  for (const auto id : late) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(of(id).empty());
    EXPECT_TRUE(client.responses[id].closed);
    EXPECT_EQ(client.responses[id].close_code, kH2RefusedStream);
    EXPECT_EQ(client.responses[id].status, 0);
  }
  respond(a, 200, "A");
  pump();
  EXPECT_EQ(client.responses[a].body, "A");
  EXPECT_EQ(kinds(a).back(), Kind::Closed);
  EXPECT_TRUE(server->finished());
  EXPECT_EQ(server->close_reason(), "");
}

TEST_F(H2ServerTest, DrainedOutputQueueGivesItsMemoryBack) {
  start();
  const auto id = client.request(get());
  pump();
  server->submit_response(id, 200, {}, false);
  pump();
  const std::size_t before = server->memory();
  server->send_data(id, std::string(200 * 1024, 'q'));
  EXPECT_GE(server->memory(), 200u * 1024);  // queued bytes are counted
  pump();
  ASSERT_EQ(client.responses[id].body.size(), 200u * 1024);
  EXPECT_EQ(server->queued(id), 0u);
  EXPECT_LT(server->memory(), before + 2 * H2ServerSession::kLowWater);
  server->end_response(id, nullptr);
  pump();
  EXPECT_TRUE(client.responses[id].end);
}

TEST_F(H2ServerTest, HighWaterIsAShareOfTheMemoryBudget) {
  start();  // defaults: 8 MiB, 100 streams
  EXPECT_EQ(server->high_water(), (8u << 20) / 200);
  opts.http2.max_concurrent_streams = 1;
  start();
  EXPECT_EQ(server->high_water(), H2ServerSession::kHighWater);
  opts.http2.max_concurrent_streams = 100;
  opts.http2.connection_memory_bytes = 1u << 20;
  start();
  EXPECT_EQ(server->high_water(), 16u * 1024);
}

TEST_F(H2ServerTest, WritableAfterTheBudgetHighWaterDrains) {
  start();
  const auto id = client.request(get());
  pump();
  ASSERT_LT(server->high_water(), H2ServerSession::kHighWater);
  server->submit_response(id, 200, {}, false);
  // Above this connection's high-water mark, below kHighWater: a caller waiting at high_water()
  // must get its Writable too.
  server->send_data(id, std::string(server->high_water() + 1, 'w'));
  pump();
  EXPECT_EQ(count(Kind::Writable), 1);
  server->end_response(id, nullptr);
  pump();
  EXPECT_TRUE(client.responses[id].end);
}

TEST_F(H2ServerTest, ResponseBeforeTheWholeRequestEndsTheUpload) {
  start();
  const auto id = client.request(post(), "", true);  // body never ends: the provider defers
  pump();
  ASSERT_EQ(kinds(id).front(), Kind::Request);
  respond(id, 413, "too big");
  pump();
  EXPECT_EQ(client.responses[id].status, 413);
  EXPECT_EQ(client.responses[id].body, "too big");
  EXPECT_EQ(kinds(id).back(), Kind::Closed);
  EXPECT_EQ(count(Kind::Reset), 0);
}

TEST_F(H2ServerTest, CallerResetIsClosedWithoutReset) {
  start();
  const auto id = client.request(get());
  pump();
  server->submit_response(id, 200, {}, false);
  server->send_data(id, "part");
  server->reset(id, kH2InternalError);
  pump();
  EXPECT_EQ(client.responses[id].close_code, kH2InternalError);
  EXPECT_EQ(kinds(id), (std::vector<Kind>{Kind::Request, Kind::End, Kind::Closed}));
}

TEST_F(H2ServerTest, TakeOutputHonoursMax) {
  start();
  const auto id = client.request(get());
  pump();
  respond(id, 200, std::string(40000, 'z'));
  std::string all;
  for (int i = 0; i < 10000 && server->want_write(); ++i) {
    const auto before = all.size();
    server->take_output(all, 1000);
    collect();
    ASSERT_LE(all.size() - before, 1000u);
  }
  client.input(all);
  pump();
  EXPECT_EQ(client.responses[id].body, std::string(40000, 'z'));
}

}  // namespace
}  // namespace phigate::http
