#pragma once
// Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the
// holder renews every retry_period; a candidate takes the Lease when renewTime + leaseDuration
// has passed (an update carrying the read resourceVersion, so two candidates cannot both win: the
// loser gets 409 Conflict); a leader that could not renew for renew_deadline stops leading (calls
// on_change(false)) before the lease can expire elsewhere. stop() releases a held Lease (clears
// holderIdentity) so a successor takes over at once. Control thread.
#include <functional>
#include <memory>
#include <string>

#include "phigate/config/spec.hpp"
#include "phigate/kube/client.hpp"

namespace phigate::kube {

class LeaderElection {
 public:
  /// `io` is the client's io_context (for the retry timer: Client does not expose it).
  LeaderElection(net::asio::io_context& io, Client& client, const config::KubernetesSpec& spec,
                 std::string ns, std::string identity, std::function<void(bool leading)> on_change);
  ~LeaderElection();
  void start();
  /// Releases the Lease when held (an asynchronous PUT: keep `io` running for up to the request
  /// timeout, or the successor waits out the lease), and calls on_change(false) if it was leading.
  void stop();
  bool leading() const noexcept;
  const std::string& identity() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// $POD_NAME (else the host name) + "_" + process id: unique per process.
std::string default_identity(const Getenv& env);

}  // namespace phigate::kube
