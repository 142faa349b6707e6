#pragma once
// Private to proxy: the worker behind proxy::Worker (phigate/proxy/worker.hpp). One worker: one
// thread, one io_context, its own SO_REUSEPORT acceptors, upstream pool, metrics shard,
// connection registry and current snapshot. Connections live and die here. Other threads talk to
// a worker only by posting to io() (adopt, begin_drain).
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "phigate/audit/json_line.hpp"
#include "phigate/audit/writer.hpp"
#include "phigate/core/ids.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/proxy/snapshot.hpp"
#include "phigate/proxy/worker.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/h2_pool.hpp"
#include "phigate/upstream/pool.hpp"
#include "phigate/upstream/retry.hpp"

namespace phigate::proxy::detail {

/// co_spawn completion for every coroutine a worker starts (connections, HTTP/2 streams and
/// writers, accept and tick loops): an exception escaping one is a bug (PHI_BUG).
void on_coroutine_done(std::exception_ptr e);

/// What the worker's registry knows of a connection: its deadline, and how to stop it.
/// One implementation: ProxyConnection (TLS or plain HTTP, proxy_connection.hpp).
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  /// The deadline passed: cancel the pending I/O of the current phase. Never destroys `this`.
  virtual void expire() = 0;
  /// Drain started: close now when idle, else close after the current response.
  virtual void drain() = 0;
  /// Idle for a tick: give back buffers (idle connections hold no buffers). Busy
  /// keep-alive connections keep theirs, so a request does not pay for freeing and re-allocating.
  virtual void release_idle_memory() noexcept {}

  Clock::time_point deadline = Clock::time_point::max();
  bool idle = false;     // waiting for the next request with nothing buffered
  bool trimmed = false;  // release_idle_memory() ran since it went idle
  Clock::time_point idle_since{};

 private:
  friend class WorkerImpl;
  ConnectionBase* prev_ = nullptr;
  ConnectionBase* next_ = nullptr;
};

class WorkerImpl final : public Worker {
 public:
  /// `audit`: the audit writer (producer index = `id`), or null when the audit log is off; it
  /// outlives the worker.
  WorkerImpl(unsigned id, SnapshotPtr initial, audit::Writer* audit = nullptr);

  unsigned id() const noexcept { return id_; }
  net::asio::io_context& io() noexcept override { return io_; }

  /// Control thread, before run(): an acceptor already bound on this worker's io_context.
  void add_listener(net::tcp::acceptor acceptor, ListenerKind kind) override;
  /// Control thread, before run(): the port the first https listener bound (redirect target
  /// when the config does not name one).
  void set_https_port(std::uint16_t port) noexcept override { https_port_ = port; }
  std::uint16_t https_port() const noexcept { return https_port_; }
  /// Worker thread: serves until drained.
  void run() override;

  /// Worker thread (posted): swap in a new snapshot; in-flight requests keep theirs.
  void adopt(SnapshotPtr snap) override;
  /// Worker thread (posted): stop accepting, close idle connections, let active ones finish
  /// their current response, force-close whatever remains after `grace`.
  void begin_drain(std::chrono::milliseconds grace) override;

  const SnapshotPtr& snapshot() const noexcept { return snapshot_; }
  metrics::WorkerShard& stats() noexcept { return stats_; }
  const metrics::WorkerShard& stats() const noexcept override { return stats_; }
  upstream::Pool& pool() noexcept { return pool_; }
  /// HTTP/2 connections to gRPC backends (multiplexed).
  upstream::H2Pool& h2_pool() noexcept { return h2_pool_; }
  core::FastRandom& rng() noexcept { return rng_; }
  /// Coarse clock: refreshed every tick (100 ms) and on each accept. Deadlines use it.
  Clock::time_point now() const noexcept { return now_; }
  bool draining() const noexcept { return draining_; }
  std::uint64_t next_connection_id() noexcept { return ++conn_ids_; }
  /// This worker's balancing state for a cluster of its current snapshot (upstream::pick).
  upstream::BalancerState& balancer(std::size_t cluster);

  /// Retries of this worker's requests draw on this budget (upstream/retry.hpp).
  upstream::RetryBudget& retry_budget() noexcept { return retry_budget_; }

  /// Audit log: on, and able to take records (false: fail closed unless overflow is `block`).
  bool audit_on() const noexcept { return audit_ != nullptr; }
  bool audit_healthy() const noexcept { return audit_ == nullptr || audit_->healthy(); }
  /// The worker's reusable record builder.
  audit::JsonLine& audit_json() noexcept { return audit_json_; }
  /// Hands one record to the writer; a refusal is counted and logged (rate-limited), never silent.
  /// False when the writer refused the record (counted, warned once a second).
  bool audit_submit(std::string_view line);

  void register_connection(ConnectionBase* c) noexcept;
  void unregister_connection(ConnectionBase* c) noexcept;
  std::size_t connection_count() const noexcept { return conn_count_; }
  /// WebSocket tunnels over HTTP/2 open on this worker: each holds a backend connection for as long
  /// as it lives, so they count against limits.max_connections_per_worker with the client
  /// connections (an HTTP/1.1 tunnel is its client connection).
  std::uint32_t& h2_tunnels() noexcept { return h2_tunnels_; }

 private:
  net::awaitable<void> accept_loop(std::size_t index);
  net::awaitable<void> tick_loop();
  void close_acceptors();

  struct Listener {
    net::tcp::acceptor acceptor;
    ListenerKind kind;
  };
  unsigned id_;
  // One thread runs it, and every socket, acceptor and timer on it is used from that thread only
  // (other threads post to it: adopt, begin_drain): the reactor's per-descriptor mutex is
  // not needed (UNSAFE_IO keeps the scheduler's and the registration locks). -0.8 % instructions
  // per HTTP/2 request at -m 1 and -m 100 (docs/perf-h2-many-streams.md, round 15).
  net::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  SnapshotPtr snapshot_;
  std::vector<Listener> listeners_;
  metrics::WorkerShard stats_;
  upstream::Pool pool_;
  upstream::H2Pool h2_pool_{io_, stats_};
  core::FastRandom rng_;
  Clock::time_point now_ = Clock::now();
  Clock::time_point drain_deadline_ = Clock::time_point::max();
  bool draining_ = false;
  std::uint64_t conn_ids_ = 0;
  std::uint16_t https_port_ = 443;
  void reset_balancers();
  std::vector<std::unique_ptr<upstream::BalancerState>> balancers_;  // per cluster index; stable addresses
  void configure_retry_budget();
  upstream::RetryBudget retry_budget_;
  ConnectionBase* head_ = nullptr;
  std::size_t conn_count_ = 0;
  std::uint32_t h2_tunnels_ = 0;
  net::asio::steady_timer ticker_{io_};
  audit::Writer* audit_ = nullptr;
  audit::JsonLine audit_json_;
  Clock::time_point audit_warned_{};
};

}  // namespace phigate::proxy::detail
