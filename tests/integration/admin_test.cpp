// The admin listener in-process on a loopback port, with real sockets: its per-connection deadline
// must never touch a connection that is gone (run under ASan to see a use-after-free), slow
// clients are cut at the deadline, and short requests keep being answered.
#include "phigate/admin/admin_server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace phigate::admin {
namespace {

using namespace std::chrono_literals;

/// A blocking loopback client whose reads give up after 5 s (no test waits without bound).
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& o) noexcept : fd_(o.fd_), connected_(o.connected_) { o.fd_ = -1; }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size());
  }
  /// Everything until the server closes (or the 5 s read timeout).
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

/// An AdminServer on 127.0.0.1:0 whose io_context runs on its own thread once `run()` is called.
class AdminFixture : public ::testing::Test {
 protected:
  void start(AdminHooks hooks, std::chrono::milliseconds timeout) {
    net::tcp::acceptor acc(ctx_, net::tcp::endpoint(net::asio::ip::address_v4::loopback(), 0));
    port_ = acc.local_endpoint().port();
    server_.emplace(std::move(acc), std::move(hooks), timeout);
    server_->start();
  }
  void run() {
    thread_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    net::asio::post(ctx_, [this] { server_->stop(); });
    ctx_.stop();
    if (thread_.joinable()) thread_.join();
  }

  net::asio::io_context ctx_{1};
  std::optional<AdminServer> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

TEST_F(AdminFixture, DeadlineExpiringDuringResponse_NeverClosesAFinishedConnection) {
  // The metrics hook runs past the 1 ms deadline, so the deadline's handler is queued while the
  // response is written and runs after the connection's coroutine finished and freed its socket.
  // With a handler holding the socket by reference that is a heap-use-after-free (ASan); with a
  // weak owner it finds nothing to close. The busy wait is that window, not a readiness wait.
  std::atomic<int> scrapes{0};
  start({[] { return true; },
         [&] {
           const auto until = std::chrono::steady_clock::now() + 5ms;
           while (std::chrono::steady_clock::now() < until) {
           }
           ++scrapes;
           return std::string("phigate_up 1\n");
         }},
        1ms);
  // Every request is in the kernel before the server runs, so each connection reads it at once.
  constexpr int kConnections = 40;
  std::vector<Client> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.emplace_back(port_);
    ASSERT_TRUE(clients.back().connected());
    ASSERT_TRUE(clients.back().send("GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n"));
  }
  run();
  int answered = 0;
  for (auto& c : clients) {
    const auto r = c.read_all();
    if (r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && r.find("phigate_up 1\n") != std::string::npos) ++answered;
  }
  EXPECT_EQ(scrapes.load(), kConnections);
  EXPECT_EQ(answered, kConnections);
}

TEST_F(AdminFixture, SlowClientsCutAtDeadline_ShortRequestsStillAnswered) {
  start({[] { return true; }, [] { return std::string("m 1\n"); }}, 1s);
  run();
  // Slow clients: half a request head, then nothing. Each is closed by the deadline.
  std::vector<Client> slow;
  for (int i = 0; i < 8; ++i) {
    slow.emplace_back(port_);
    ASSERT_TRUE(slow.back().connected());
    ASSERT_TRUE(slow.back().send("GET /healthz HTTP/1.1\r\nHo"));
  }
  // Many short requests while the slow ones are held open.
  for (int i = 0; i < 200; ++i) {
    Client c(port_);
    ASSERT_TRUE(c.connected());
    const char* path = i % 3 == 0 ? "/healthz" : i % 3 == 1 ? "/readyz" : "/metrics";
    ASSERT_TRUE(c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: admin\r\n\r\n"));
    EXPECT_EQ(c.read_all().rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << path;
  }
  const auto started = std::chrono::steady_clock::now();
  for (auto& c : slow) EXPECT_EQ(c.read_all(), "");  // closed without a response, not timed out
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
}

}  // namespace
}  // namespace phigate::admin
