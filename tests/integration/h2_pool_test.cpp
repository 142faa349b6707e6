// The HTTP/2 upstream pool (upstream::H2Pool) in-process against a real phigate-test-grpc on
// loopback: gRPC calls over prior-knowledge h2 and over TLS with ALPN h2, multiplexing on one
// connection, streaming both ways, trailers, a backend that resets or sends GOAWAY, timeouts,
// ALPN refusal, and close_all.
#include <gtest/gtest.h>

#include <charconv>
#include <exception>
#include <functional>

#include "phigate/upstream/h2_pool.hpp"
#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace phigate::upstream {
namespace {

using namespace std::chrono_literals;

class NoDeadline final : public Deadline {
 public:
  void arm_upstream(Wait, std::chrono::milliseconds) noexcept override {}
  bool upstream_timed_out() const noexcept override { return false; }
};

std::string grpc_message(std::string_view payload) {
  std::string m(5, '\0');
  m[4] = static_cast<char>(payload.size());  // tests send short messages
  return m + std::string(payload);
}

/// Payloads of the gRPC messages in `bytes`.
std::vector<std::string> messages(std::string_view bytes) {
  std::vector<std::string> out;
  while (bytes.size() >= 5) {
    const auto u = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]));
    };
    const std::uint32_t n = (u(1) << 24) | (u(2) << 16) | (u(3) << 8) | u(4);
    if (bytes.size() < 5 + n) break;
    out.emplace_back(bytes.substr(5, n));
    bytes.remove_prefix(5 + n);
  }
  return out;
}

/// Payloads joined with commas (comparisons without braced lists: GCC 12 and coroutines).
std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& m : v) out += (out.empty() ? "" : ",") + m;
  return out;
}

struct Response {
  std::optional<core::Error> error;
  int status = 0;
  std::string body;
  std::map<std::string, std::string> head;
  std::map<std::string, std::string> trailers;
  bool ended = false;
};

class H2PoolTest : public ::testing::Test {
 protected:
  void start_backend(bool tls, const char* program = "phigate-test-grpc") {
    std::vector<std::string> argv{test::bin(program), "--listen", "127.0.0.1:0"};
    if (tls) {
      ca_ = test::make_ca(dir_.path(), "grpc test CA");
      const auto leaf = test::make_leaf(dir_.path(), ca_, "grpc.test", {"grpc.test", "127.0.0.1"});
      argv.insert(argv.end(), {"--tls-cert", leaf.cert, "--tls-key", leaf.key});
    }
    backend_ = std::make_unique<test::Process>(test::Process::start(argv));
    const auto line = backend_->wait_for_line("ready ", 10s);
    ASSERT_TRUE(line.has_value()) << backend_->output();
    const auto colon = line->rfind(':');
    unsigned port = 0;
    std::from_chars(line->data() + colon + 1, line->data() + line->size(), port);
    ASSERT_NE(port, 0u);
    ep_.address =
        net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port));
    ep_.key = "127.0.0.1:" + std::to_string(port);
  }

  std::shared_ptr<const BackendTls> tls(bool h2) {
    BackendTlsSpec spec;
    spec.ca_pem = read(ca_.cert);
    spec.verify_name = "grpc.test";
    spec.server_name = true;
    spec.alpn_h2 = h2;
    auto r = BackendTls::build(spec);
    EXPECT_TRUE(r) << r.error().context;
    return r ? r.value() : nullptr;
  }

  static std::string read(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    std::string out;
    if (f == nullptr) return out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }

  void run(std::function<net::awaitable<void>()> body) {
    bool done = false;
    std::exception_ptr failure;
    net::asio::co_spawn(
        io_,
        [&]() -> net::awaitable<void> {
          co_await body();
          done = true;
        },
        [&](std::exception_ptr e) {
          failure = e;
          io_.stop();  // the pool's connections keep the context busy: stop once the body ended
        });
    io_.run_for(15s);
    io_.restart();
    if (failure) std::rethrow_exception(failure);
    ASSERT_TRUE(done) << "coroutine did not finish in 15 s";
  }

  /// A gRPC request head, with one extra field when `name` is not empty. (Plain arguments: GCC 12
  /// miscompiles braced lists inside coroutines.)
  static http::MessageHead head(std::string path, std::string name = "", std::string value = "") {
    http::MessageHead h;
    h.method = "POST";
    h.target = std::move(path);
    h.headers.add("content-type", "application/grpc");
    h.headers.add("te", "trailers");
    if (!name.empty()) h.headers.add(name, value);
    return h;
  }

  /// Reads events until End or Error.
  net::awaitable<Response> collect(H2Call& call) {
    Response r;
    for (int i = 0; i < 10000; ++i) {
      auto ev = co_await call.next(t_, d_);
      switch (ev.kind) {
        case H2Call::Event::Kind::Headers:
          r.status = ev.status;
          for (const auto& h : *ev.fields) r.head[h.name] = h.value;
          break;
        case H2Call::Event::Kind::Data:
          r.body.append(ev.data);
          call.consume(ev.data.size());
          break;
        case H2Call::Event::Kind::Trailers:
          for (const auto& h : *ev.fields) r.trailers[h.name] = h.value;
          break;
        case H2Call::Event::Kind::End:
          r.ended = true;
          co_return r;
        case H2Call::Event::Kind::Error:
          r.error = ev.error;
          co_return r;
      }
    }
    co_return r;
  }

  /// One call: open, send `body` (ending the request), collect.
  net::awaitable<Response> call(const BackendTls* tls, http::MessageHead h, std::string body) {
    auto opened = co_await pool_.open(ep_, tls, h, "grpc.test", tls ? "https" : "http", false, t_, d_);
    if (auto* e = std::get_if<core::Error>(&opened)) {
      Response r;
      r.error = *e;
      co_return r;
    }
    auto c = std::get<std::shared_ptr<H2Call>>(opened);
    auto sent = co_await c->send_data(body, true, t_, d_);
    if (sent) {
      Response r;
      r.error = sent;
      co_return r;
    }
    co_return co_await collect(*c);
  }

  /// One Sleep call (200 ms); counts itself in `finished` when it succeeded.
  net::awaitable<void> sleeper(int& finished) {
    const auto r = co_await call(nullptr, head("/test.Echo/Sleep", "x-sleep-ms", "200"), grpc_message("x"));
    EXPECT_FALSE(r.error);
    EXPECT_EQ(joined(messages(r.body)), "slept");
    if (!r.error) ++finished;
  }

  test::TempDir dir_;
  test::CertPaths ca_;
  net::asio::io_context io_{1};
  metrics::WorkerShard stats_;
  H2Pool pool_{io_, stats_};
  NoDeadline d_;
  Timeouts t_{2000ms, 2000ms, 2000ms};
  Endpoint ep_;
  std::unique_ptr<test::Process> backend_;
};

TEST_F(H2PoolTest, UnaryOverPriorKnowledgeWithTrailers) {
  start_backend(false);
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(nullptr, head("/test.Echo/Unary"), grpc_message("hello"));
    EXPECT_FALSE(r.error) << r.error->to_string();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(joined(messages(r.body)), "hello");
    EXPECT_EQ(r.trailers.at("grpc-status"), "0");
    EXPECT_EQ(r.head.at("x-saw-te"), "trailers");  // gRPC requires it: it reached the backend
    EXPECT_TRUE(r.ended);
  });
  EXPECT_EQ(stats_.grpc_upstream_connects.get(), 1u);
  EXPECT_EQ(stats_.grpc_upstream_streams.get(), 1u);
}

TEST_F(H2PoolTest, ConcurrentCallsShareOneConnection) {
  start_backend(false);
  int finished = 0;
  for (int i = 0; i < 5; ++i) net::asio::co_spawn(io_, sleeper(finished), net::asio::detached);
  for (int i = 0; i < 300 && finished < 5; ++i) io_.run_for(50ms);
  io_.restart();
  EXPECT_EQ(finished, 5);
  EXPECT_EQ(stats_.grpc_upstream_connects.get(), 1u);  // multiplexed
  EXPECT_EQ(stats_.grpc_upstream_streams.get(), 5u);
  EXPECT_EQ(pool_.connections(), 1u);
}

TEST_F(H2PoolTest, StreamingBothWaysAndCustomTrailers) {
  start_backend(false);
  run([&]() -> net::awaitable<void> {
    auto ss = co_await call(nullptr, head("/test.Echo/ServerStream", "x-count", "4"), "");
    EXPECT_EQ(joined(messages(ss.body)), "msg-0,msg-1,msg-2,msg-3");
    auto tr = co_await call(nullptr, head("/test.Echo/Trailers"), "");
    EXPECT_EQ(tr.trailers.at("x-custom-trailer"), "custom-value");
    // Client streaming: three messages in three writes.
    auto opened =
        co_await pool_.open(ep_, nullptr, head("/test.Echo/ClientStream"), "g", "http", false, t_, d_);
    auto c = std::get<std::shared_ptr<H2Call>>(opened);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(co_await c->send_data(grpc_message("m"), i == 2, t_, d_));
    const auto cs = co_await collect(*c);
    EXPECT_EQ(joined(messages(cs.body)), "3");
    // Bidi: each message echoed before the request ends.
    auto bo = co_await pool_.open(ep_, nullptr, head("/test.Echo/BidiStream"), "g", "http", false, t_, d_);
    auto b = std::get<std::shared_ptr<H2Call>>(bo);
    EXPECT_FALSE(co_await b->send_data(grpc_message("ping"), false, t_, d_));
    auto ev = co_await b->next(t_, d_);
    EXPECT_EQ(ev.kind, H2Call::Event::Kind::Headers);
    ev = co_await b->next(t_, d_);
    EXPECT_EQ(ev.kind, H2Call::Event::Kind::Data);
    EXPECT_EQ(joined(messages(ev.data)), "ping");
    b->consume(ev.data.size());
    EXPECT_FALSE(co_await b->send_data(grpc_message("pong"), true, t_, d_));
    const auto rest = co_await collect(*b);
    EXPECT_EQ(joined(messages(rest.body)), "pong");
    EXPECT_EQ(rest.trailers.at("grpc-status"), "0");
  });
}

TEST_F(H2PoolTest, BackendResetMidStreamIsAnErrorAndTheConnectionStaysUsable) {
  start_backend(false);
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(nullptr, head("/test.Echo/Reset"), "");
    EXPECT_TRUE(r.error);
    if (!r.error) co_return;
    EXPECT_EQ(r.error->kind, core::ErrorKind::UpstreamReset);
    EXPECT_FALSE(r.ended);
    const auto ok = co_await call(nullptr, head("/test.Echo/Unary"), grpc_message("again"));
    EXPECT_FALSE(ok.error);
    EXPECT_EQ(joined(messages(ok.body)), "again");
  });
  EXPECT_EQ(stats_.grpc_upstream_connects.get(), 1u);
}

TEST_F(H2PoolTest, GoawayLetsTheOpenStreamFinishAndTheNextCallConnectsAnew) {
  start_backend(false);
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(nullptr, head("/test.Echo/Goaway"), "");
    EXPECT_FALSE(r.error);
    EXPECT_EQ(joined(messages(r.body)), "bye");
    const auto next = co_await call(nullptr, head("/test.Echo/Unary"), grpc_message("new"));
    EXPECT_FALSE(next.error);
    EXPECT_EQ(joined(messages(next.body)), "new");
  });
  EXPECT_EQ(stats_.grpc_upstream_connects.get(), 2u);
}

TEST_F(H2PoolTest, ReadTimeoutCancelsTheStream) {
  start_backend(false);
  t_.read = 300ms;
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(nullptr, head("/test.Echo/Sleep", "x-sleep-ms", "3000"), "");
    EXPECT_TRUE(r.error);
    if (!r.error) co_return;
    EXPECT_EQ(r.error->kind, core::ErrorKind::UpstreamTimeout);
  });
}

TEST_F(H2PoolTest, RefusedConnectIsRetryable) {
  start_backend(false);
  backend_->terminate();
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(nullptr, head("/test.Echo/Unary"), "");
    EXPECT_TRUE(r.error);
    if (!r.error) co_return;
    EXPECT_EQ(r.error->kind, core::ErrorKind::ConnectRefused);
    EXPECT_EQ(r.error->retryable, core::Retryable::Yes);
  });
}

TEST_F(H2PoolTest, GrpcsNegotiatesH2AndVerifiesTheBackend) {
  start_backend(true);
  const auto ctx = tls(true);
  ASSERT_NE(ctx, nullptr);
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(ctx.get(), head("/test.Echo/Unary"), grpc_message("secret"));
    EXPECT_FALSE(r.error) << r.error->to_string();
    EXPECT_EQ(joined(messages(r.body)), "secret");
  });
  EXPECT_EQ(stats_.backend_tls_handshakes.get(), 1u);
}

TEST_F(H2PoolTest, TlsBackendThatDoesNotSelectH2IsRefused) {
  start_backend(true, "phigate-test-upstream");  // HTTPS/1.1 only: selects no ALPN protocol
  const auto ctx = tls(true);
  ASSERT_NE(ctx, nullptr);
  run([&]() -> net::awaitable<void> {
    const auto r = co_await call(ctx.get(), head("/test.Echo/Unary"), "");
    EXPECT_TRUE(r.error);
    if (!r.error) co_return;
    EXPECT_EQ(r.error->kind, core::ErrorKind::UpstreamTls);
    EXPECT_EQ(r.error->reason_detail, kTlsAlpn);
  });
  EXPECT_EQ(pool_.connections(), 0u);
}

TEST_F(H2PoolTest, CloseAllEndsOpenCallsWithAnError) {
  start_backend(false);
  run([&]() -> net::awaitable<void> {
    auto opened = co_await pool_.open(ep_, nullptr, head("/test.Echo/Sleep", "x-sleep-ms", "5000"), "g",
                                      "http", true, t_, d_);
    auto c = std::get<std::shared_ptr<H2Call>>(opened);
    net::asio::post(io_, [&] { pool_.close_all(); });
    auto ev = co_await c->next(t_, d_);
    EXPECT_EQ(ev.kind, H2Call::Event::Kind::Error);
    EXPECT_EQ(pool_.connections(), 0u);
  });
}

}  // namespace
}  // namespace phigate::upstream
