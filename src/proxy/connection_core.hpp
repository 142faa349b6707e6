#pragma once
// Private to proxy: what every client connection has regardless of protocol — its entry in the
// worker's registry and its one coarse deadline (checked by the worker tick, which calls
// expire()). The HTTP/1 exchange rules live in http::Http1Exchange, the checks in phases.hpp,
// the upstream side in upstream::Link; ProxyConnection only moves bytes between them.
#include "phigate/core/error.hpp"
#include "worker_impl.hpp"

namespace phigate::proxy::detail {

/// What the connection is waiting for; decides what a deadline cancels and which error it is.
enum class Phase { Handshake, Idle, Header, Body, ClientWrite, UpConnect, UpWrite, UpRead, Closing };

class ConnectionCore : public ConnectionBase {
 public:
  ConnectionCore(WorkerImpl& worker, SnapshotPtr snap);
  ~ConnectionCore() override;

  /// Sets the deadline for the phase about to wait.
  void arm(Phase phase, std::chrono::milliseconds d) noexcept {
    phase_ = phase;
    deadline = worker_.now() + d;
  }
  void disarm() noexcept { deadline = Clock::time_point::max(); }
  bool timed_out() const noexcept { return timed_out_; }
  /// Error for a wait that ended because the deadline fired in `phase`.
  static core::Error timeout_error(Phase phase);

 protected:
  /// Cancels pending I/O on the client socket without closing the descriptor (OpenSSL holds it:
  /// closing would let a new accept reuse the number under a live SSL object).
  static void cancel_socket(net::tcp::socket& s) noexcept;

  WorkerImpl& worker_;
  SnapshotPtr snap_;  // pinned at accept
  std::uint64_t id_;
  Phase phase_ = Phase::Handshake;
  bool timed_out_ = false;
};

}  // namespace phigate::proxy::detail
