#pragma once
// Private to server: the active health checker. One probe per endpoint and check settings for
// the whole process (not one per worker), on its own thread and io_context, so that a slow or
// silent backend never delays a worker. Results reach the workers through the atomics of
// upstream::ActiveHealth; nothing here is on the request path.
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "phigate/metrics/worker_shard.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/upstream/health.hpp"

namespace phigate::server::detail {

class HealthChecker {
 public:
  explicit HealthChecker(metrics::ControlStats& stats);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  void start();
  /// The probes to run from now on (control thread, after every publish): probes that stay keep
  /// running on their schedule; new ones start spread over their interval; the rest stop.
  void update(std::vector<upstream::ProbeTarget> targets);
  /// Stops every probe and joins the thread (control thread, at shutdown).
  void stop();

 private:
  struct Probe;
  void apply(std::vector<upstream::ProbeTarget> targets);
  net::awaitable<void> run(std::shared_ptr<Probe> p, std::chrono::milliseconds first);
  net::awaitable<bool> check(const upstream::ProbeTarget& t);
  void count_states();

  metrics::ControlStats& stats_;
  net::asio::io_context io_{1};
  std::thread thread_;
  bool started_ = false;
  // Checker thread only:
  std::map<std::string, std::shared_ptr<Probe>> probes_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace phigate::server::detail
