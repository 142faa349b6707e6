// net::note_read_drained against Asio's epoll reactor on a real loopback connection, event by event.
#include "phigate/net/read_hint.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

namespace phigate::net {
namespace {

using namespace std::chrono_literals;

struct Pair {
  asio::io_context io{1};
  tcp::socket server{io};
  tcp::socket client{io};
  std::array<char, 64> buf{};
  std::optional<std::pair<error_code, std::size_t>> got;
  // Keeps run_one() and poll() from stopping the context whenever it is out of work for a moment.
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);  // registered with the reactor from here on
  }
  void send(std::string_view bytes) { asio::write(client, asio::buffer(bytes.data(), bytes.size())); }
  void start_read() {
    got.reset();
    server.async_read_some(asio::buffer(buf), [this](error_code ec, std::size_t n) { got.emplace(ec, n); });
  }
  // Runs handlers until the read completed or 5 s passed (a lost event fails here, not hangs).
  bool wait_read() {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!got && std::chrono::steady_clock::now() < end) io.run_one_for(100ms);
    return got.has_value() && !got->first;
  }
  std::string received() const { return std::string(buf.data(), got ? got->second : 0); }
};

TEST(ReadHint, AReadStartedAfterTheHintWaitsForTheNextEventInsteadOfReadingAtOnce) {
  Pair p;
  p.send("a");
  // The arrival's event is taken by a wait that reads nothing: "a" stays in the socket.
  bool readable = false;
  p.server.async_wait(tcp::socket::wait_read, [&](error_code ec) { readable = !ec; });
  while (!readable) ASSERT_EQ(p.io.run_one_for(5s), 1u);
  // The hint (here against the facts, to see it work): the read is queued, not tried. Without
  // it Asio would read "a" at once and the handler would run in poll().
  note_read_drained(p.server);
  p.start_read();
  p.io.poll();
  EXPECT_FALSE(p.got.has_value());
  // The next arrival's event performs the queued read, which takes everything there.
  p.send("b");
  ASSERT_TRUE(p.wait_read());
  EXPECT_EQ(p.received(), "ab");
}

TEST(ReadHint, BytesThatArriveBetweenTheEmptyReadAndTheHintAreNotLost) {
  Pair p;
  char c = 0;
  ASSERT_EQ(::recv(p.server.native_handle(), &c, 1, MSG_DONTWAIT), -1);
  ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  p.send("x");  // its event waits in epoll's ready list: not yet taken by the reactor
  note_read_drained(p.server);
  p.start_read();
  ASSERT_TRUE(p.wait_read());
  EXPECT_EQ(p.received(), "x");
}

TEST(ReadHint, AHintGivenInTheHandlerOfAnImmediateReadKeepsTheEventOfBytesThatCameMeanwhile) {
  // The read of "a" completes at once (Asio posts its handler); "b" arrives before that handler
  // runs, and the reactor takes its event first. The reactor queues the event's work behind the
  // posted handler, so the hint that handler gives is overruled by the event, not the reverse:
  // the second read gets "b". A hint that erased the event would leave it waiting (fails at 5 s).
  Pair p;
  p.send("a");
  std::optional<std::pair<error_code, std::size_t>> second;
  std::array<char, 64> second_buf{};
  p.server.async_read_some(asio::buffer(p.buf), [&](error_code ec, std::size_t n) {
    p.got.emplace(ec, n);
    if (!ec && n < p.buf.size()) note_read_drained(p.server);
    p.server.async_read_some(asio::buffer(second_buf),
                             [&](error_code ec2, std::size_t n2) { second.emplace(ec2, n2); });
  });
  p.send("b");
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (!second && std::chrono::steady_clock::now() < end) p.io.run_one_for(100ms);
  ASSERT_TRUE(p.got.has_value());
  ASSERT_TRUE(second.has_value());
  ASSERT_FALSE(second->first);
  EXPECT_EQ(p.received() + std::string(second_buf.data(), second->second), "ab");
}

TEST(ReadHint, AShortReadIsNoProofOfAnEmptySocket_AFinTakenWithItsBytesBringsNoEvent) {
  // Why callers give the hint only where an unseen end is harmless or checked otherwise (an HTTP/2
  // connection's reads; a pooled upstream connection, which the pool checks with a system call):
  // the read of a peer's last bytes also takes its FIN, and once the reactor has used up the
  // arrival's event nothing will report it. With the hint, the next read waits for ever.
  Pair p;
  p.send("a");
  p.client.shutdown(tcp::socket::shutdown_send);
  bool readable = false;
  p.server.async_wait(tcp::socket::wait_read, [&](error_code ec) { readable = !ec; });
  while (!readable) ASSERT_EQ(p.io.run_one_for(5s), 1u);
  p.start_read();
  ASSERT_TRUE(p.wait_read());
  EXPECT_EQ(p.received(), "a");  // fewer bytes than asked for, and the FIN went with them
  note_read_drained(p.server);
  p.start_read();
  p.io.poll();
  EXPECT_FALSE(p.got.has_value()) << "the end was reported after all: the callers' rule can be relaxed";
  // Only a cancel ends that read (the next one would wait the same way until an event came).
  error_code ignored;
  p.server.cancel(ignored);
  ASSERT_EQ(p.io.run_one_for(5s), 1u);
  ASSERT_TRUE(p.got.has_value());
  EXPECT_EQ(p.got->first, asio::error::operation_aborted);
}

}  // namespace
}  // namespace phigate::net
