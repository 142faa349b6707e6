#pragma once
// What the leader writes back to the cluster: status.loadBalancer.ingress of every Ingress phigate
// serves (merge patch of the status subresource, only when it differs), cleared from Ingresses it
// stopped serving; and Kubernetes Events (core/v1, type Warning, reason FailedClosed) on an Ingress
// that fails closed, naming the annotation or field and the reason, once per distinct message.
// Writes happen only while `leading()` says so. Control thread.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/resources.hpp"
#include "phigate/kube/client.hpp"

namespace phigate::kube {

/// One Ingress as served by the last published snapshot.
struct ServedIngress {
  std::string ns, name;
  std::vector<std::string> current;  // its status.loadBalancer.ingress now (ip or hostname each)
  /// Empty: served normally. Otherwise one line per reason it fails closed (the diagnostics'
  /// messages for this Ingress, annotation or field included).
  std::vector<std::string> failed_closed;
};

struct StatusStats {
  std::uint64_t status_updates = 0, status_failures = 0, events = 0, event_failures = 0;
};

class StatusWriter {
 public:
  /// `io`: the client's io_context (for the retry timer: Client does not expose it). `leading`:
  /// may this process write now (leader election; empty or always true without it). Status is
  /// written when spec.status, Events posted when spec.events: construct it when either is on.
  StatusWriter(net::asio::io_context& io, Client& client, const config::KubernetesSpec& spec,
               std::function<bool()> leading);
  ~StatusWriter();
  void start();  // follows publish_service when set
  void stop();
  /// After every publish (and when leadership is gained): the Ingresses of that snapshot.
  void update(std::vector<ServedIngress> served);
  /// The addresses written: publish_address split on commas, or publish_service's load balancer.
  std::vector<std::string> addresses() const;
  StatusStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace phigate::kube
