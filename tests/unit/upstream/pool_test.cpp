// upstream::Pool's readability check on reuse, with real loopback TCP connections (the pool
// polls real descriptors): a burst of released connections is checked by one poll(), and a
// connection whose peer sent bytes or closed after its release is never handed out, whether it
// is the candidate of a check or one of the others in its batch.
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "phigate/metrics/worker_shard.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {
namespace {

using namespace std::chrono_literals;

class PoolCheck : public ::testing::Test {
 protected:
  struct Pair {
    net::tcp::socket client;  // pooled (phigate's side)
    net::tcp::socket server;  // the backend's side
  };

  Pair connect() {
    net::tcp::socket client(io_);
    client.connect(acceptor_.local_endpoint());
    net::tcp::socket server = acceptor_.accept();
    client.non_blocking(true);
    return {std::move(client), std::move(server)};
  }

  /// Releases `n` fresh connections to "k"; returns each one's local port (its name) and keeps
  /// the backend sides in servers_ and the pooled descriptors in fds_, in release order.
  std::vector<unsigned> release(Pool& pool, int n) {
    std::vector<unsigned> ports;
    for (int i = 0; i < n; ++i) {
      auto p = connect();
      ports.push_back(p.client.local_endpoint().port());
      fds_.push_back(p.client.native_handle());
      servers_.push_back(std::move(p.server));
      pool.release("k", Connection{std::move(p.client)}, Clock::now());
    }
    return ports;
  }

  /// The backend side of the `index`th released connection sends a byte (or closes); returns once
  /// the pooled side is readable (poll on its descriptor with a timeout: a readiness probe that
  /// reads nothing, so the pool still finds the byte).
  void misbehave(std::size_t index, bool close) {
    auto& s = servers_.at(index);
    if (close) {
      s.close();
    } else {
      net::asio::write(s, net::asio::buffer("X", 1));
    }
    pollfd p{fds_.at(index), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the peer's byte or FIN never arrived";
  }

  /// A pool whose checks vouch for `window` (copy elision: Pool does not move).
  Pool pool_with(std::chrono::microseconds window) {
    PoolLimits limits;
    limits.check_window = window;
    return Pool(limits, &unsolicited_);
  }

  /// Takes one connection out of the pool (kept in taken_): its local port, or 0 when none.
  unsigned take(Pool& pool) {
    auto c = pool.acquire("k", Clock::now());
    if (!c) return 0;
    const unsigned port = c->socket.local_endpoint().port();
    taken_.push_back(std::move(*c));
    return port;
  }

  /// Takes everything out of the pool: the local ports handed out, in order.
  std::vector<unsigned> drain(Pool& pool) {
    std::vector<unsigned> got;
    while (auto c = pool.acquire("k", Clock::now())) {
      got.push_back(c->socket.local_endpoint().port());
      taken_.push_back(std::move(*c));
    }
    return got;
  }

  net::asio::io_context io_{1};
  net::tcp::acceptor acceptor_{io_, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0)};
  std::vector<net::tcp::socket> servers_;
  std::vector<Connection> taken_;
  std::vector<int> fds_;
  metrics::Counter unsolicited_;
};

TEST_F(PoolCheck, ABurstOfReleasedConnectionsIsCheckedByOnePoll) {
  auto pool = pool_with(std::chrono::seconds(60));
  const auto ports = release(pool, 8);
  const auto got = drain(pool);
  EXPECT_EQ(got, std::vector<unsigned>(ports.rbegin(), ports.rend()));  // most recently used first
  EXPECT_EQ(pool.checks(), 1u);
  EXPECT_EQ(unsolicited_.get(), 0u);
}

TEST_F(PoolCheck, ABatchLargerThanOnePollTakesOneCheckPerBatch) {
  auto pool = pool_with(std::chrono::seconds(60));
  const int n = static_cast<int>(Pool::kCheckBatch) + 5;
  release(pool, n);
  EXPECT_EQ(drain(pool).size(), static_cast<std::size_t>(n));
  EXPECT_EQ(pool.checks(), 2u);
}

TEST_F(PoolCheck, BytesOrEofAfterReleaseAreNeverHandedOutAndBytesAreCounted) {
  auto pool = pool_with(std::chrono::seconds(60));
  const auto ports = release(pool, 8);
  // The last released (the first candidate), one inside the batch, one at the far end.
  misbehave(7, false);
  misbehave(3, false);
  misbehave(0, true);
  const auto got = drain(pool);
  for (const auto bad : {ports[7], ports[3], ports[0]}) {
    EXPECT_EQ(std::count(got.begin(), got.end(), bad), 0) << "handed out port " << bad;
  }
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(unsolicited_.get(), 2u);  // the two with bytes; EOF is the backend's own timeout
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(PoolCheck, WithoutAWindowEveryAcquireChecksItsOwnCandidate) {
  auto pool = pool_with(std::chrono::microseconds(0));
  const auto ports = release(pool, 3);
  EXPECT_EQ(take(pool), ports[2]);
  misbehave(1, false);  // after the first check: the next one must see it
  const auto got = drain(pool);
  EXPECT_EQ(got, std::vector<unsigned>{ports[0]});
  EXPECT_EQ(unsolicited_.get(), 1u);
  EXPECT_EQ(pool.checks(), 3u);  // one poll per candidate: ports[2], ports[1], ports[0]
}

TEST_F(PoolCheck, AConnectionReleasedAfterABatchCheckIsCheckedAgain) {
  auto pool = pool_with(std::chrono::seconds(60));
  const auto ports = release(pool, 2);       // A, B
  auto b = pool.acquire("k", Clock::now());  // checks B and A; takes B (most recent)
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(pool.checks(), 1u);
  EXPECT_EQ(b->socket.local_endpoint().port(), ports[1]);
  // B goes back and its backend sends bytes: the check that vouched for it was before its release.
  pool.release("k", std::move(*b), Clock::now());
  misbehave(1, false);
  const auto got = drain(pool);
  EXPECT_EQ(got, std::vector<unsigned>{ports[0]});  // A still vouched for: no second poll for it
  EXPECT_EQ(unsolicited_.get(), 1u);
  EXPECT_EQ(pool.checks(), 2u);
}

TEST_F(PoolCheck, AVouchEndsWithTheWindow) {
  auto pool = pool_with(std::chrono::milliseconds(2));
  const auto ports = release(pool, 2);
  ASSERT_EQ(take(pool), ports[1]);  // vouches for A until 2 ms from now
  misbehave(0, false);
  // The window is what is under test: wait it out (bounded, by the clock the pool reads).
  const auto until = Clock::now() + 10ms;
  while (Clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(take(pool), 0u);
  EXPECT_EQ(unsolicited_.get(), 1u);
  EXPECT_EQ(pool.checks(), 2u);
}

TEST_F(PoolCheck, BytesInsideTheWindowAreTheAcceptedTrade) {
  // Documents the trade (src/upstream/README.md): bytes sent after a check that vouched for a
  // connection, inside its window, are not seen at acquire; Link::finish refuses them after the
  // next response instead. Widening the window makes this case more likely: review it here.
  auto pool = pool_with(std::chrono::seconds(60));
  const auto ports = release(pool, 2);
  ASSERT_EQ(take(pool), ports[1]);
  misbehave(0, false);
  EXPECT_EQ(take(pool), ports[0]);
  EXPECT_EQ(pool.checks(), 1u);
}

TEST_F(PoolCheck, AClosedDescriptorIsNeverSilent) {
  auto pool = pool_with(std::chrono::seconds(60));
  auto p = connect();
  net::error_code ec;
  p.client.close(ec);  // a pooled Connection whose socket is closed (-1)
  pool.release("k", Connection{std::move(p.client)}, Clock::now());
  EXPECT_EQ(take(pool), 0u);
}

}  // namespace
}  // namespace phigate::upstream
