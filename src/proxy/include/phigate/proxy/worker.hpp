#pragma once
// The proxy's face to the server: one worker is one thread with one io_context, its own
// SO_REUSEPORT acceptors, upstream pool, metrics shard, connection registry and current snapshot
// (ARCHITECTURE.md, "Threads"). Everything else about it is private to src/proxy.
// Other threads talk to a worker only by posting to io() (adopt, begin_drain).
#include <chrono>
#include <cstdint>
#include <memory>

#include "phigate/audit/writer.hpp"
#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/proxy/snapshot.hpp"

namespace phigate::proxy {

using Clock = std::chrono::steady_clock;

enum class ListenerKind { Https, Http };

class Worker {
 public:
  /// `audit`: the audit writer (producer index = `id`), or null when the audit log is off; it
  /// outlives the worker.
  static std::unique_ptr<Worker> create(unsigned id, SnapshotPtr initial, audit::Writer* audit = nullptr);
  virtual ~Worker() = default;

  virtual net::asio::io_context& io() noexcept = 0;
  /// Control thread, before run(): an acceptor already bound on this worker's io_context.
  virtual void add_listener(net::tcp::acceptor acceptor, ListenerKind kind) = 0;
  /// Control thread, before run(): the port the first https listener bound (redirect target
  /// when the config does not name one).
  virtual void set_https_port(std::uint16_t port) noexcept = 0;
  /// Worker thread: serves until drained.
  virtual void run() = 0;
  /// Worker thread (posted): swap in a new snapshot; in-flight requests keep theirs.
  virtual void adopt(SnapshotPtr snap) = 0;
  /// Worker thread (posted): stop accepting, close idle connections, let active ones finish
  /// their current response, force-close whatever remains after `grace`.
  virtual void begin_drain(std::chrono::milliseconds grace) = 0;
  /// Its counters (single writer: the worker; read by the metrics renderer).
  virtual const metrics::WorkerShard& stats() const noexcept = 0;
};

}  // namespace phigate::proxy
