#pragma once
// One LIST+WATCH loop for one resource kind and scope, as client-go's reflector: LIST with
// `limit`/`continue` pagination (a page whose continue token expired restarts the LIST), then WATCH
// from the list's resourceVersion with `allowWatchBookmarks=true` and `timeoutSeconds`; each
// ADDED/MODIFIED/DELETED event is passed on, BOOKMARK only moves the resourceVersion, ERROR with
// 410 Gone/Expired (or a 410 answer) re-LISTs and hands over the complete set again (deletions made
// while disconnected disappear). Any other failure reconnects with jittered exponential back-off
// (initial..max from the spec; reset after a watch that delivered events or lasted a while).
// Control thread: every callback runs on the client's io_context.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/kube/client.hpp"

namespace phigate::kube {

struct ResourceKind {
  std::string group_version;  // "v1", "networking.k8s.io/v1", "discovery.k8s.io/v1", "coordination.k8s.io/v1"
  std::string plural;         // "ingresses"
  std::string kind;           // "Ingress" (filled into list items, which the API sends without kind)
  bool namespaced = true;

  static const ResourceKind& ingress();
  static const ResourceKind& ingress_class();
  static const ResourceKind& service();
  static const ResourceKind& endpoint_slice();
  static const ResourceKind& secret();
  static const ResourceKind& config_map();
};

struct Scope {
  std::string ns;              // empty: all namespaces (or a cluster-scoped kind)
  std::string label_selector;  // empty: none
  std::string field_selector;  // e.g. "metadata.name=tls-a" (one named object)
};

/// "/apis/networking.k8s.io/v1/namespaces/ns/ingresses" (or without namespaces/ns), no query.
std::string collection_path(const ResourceKind& kind, const std::string& ns);

enum class EventType { Added, Modified, Deleted };

enum class ReflectorState {
  Listing,    // first LIST (or a re-LIST) in progress
  Watching,   // synced and following
  Backoff,    // waiting to reconnect after a failure
  Forbidden,  // 401/403: retried with back-off; logged once per change
};

struct ReflectorStats {
  std::uint64_t lists = 0;  // complete LISTs (each possibly several pages)
  std::uint64_t pages = 0;
  std::uint64_t relists_gone = 0;  // LISTs forced by 410 Gone / Expired
  std::uint64_t watches = 0;       // WATCH requests started
  std::uint64_t events = 0;        // ADDED/MODIFIED/DELETED passed on
  std::uint64_t bookmarks = 0;
  std::uint64_t failures = 0;  // transport errors, cuts, unexpected statuses
};

class Reflector {
 public:
  struct Handlers {
    /// A complete LIST: every object (JSON text of one object, `kind` and `apiVersion` set) in
    /// the scope now. Replaces everything handed over before.
    std::function<void(std::vector<std::string> objects)> on_list;
    /// One watch event; `object` is the event's object (JSON text).
    std::function<void(EventType type, std::string_view object)> on_event;
    /// Every state change (the provider logs one line per change).
    std::function<void(ReflectorState state, const std::string& why)> on_state;
  };

  /// `io` is the client's io_context (for the back-off timer: Client does not expose it).
  Reflector(net::asio::io_context& io, Client& client, ResourceKind kind, Scope scope,
            const config::KubernetesSpec& spec, Handlers handlers);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void start();
  void stop();  // cancels the stream and timers; no callback afterwards
  /// True once a complete LIST has been handed over (stays true across re-LISTs).
  bool synced() const noexcept;
  ReflectorState state() const noexcept;
  const ReflectorStats& stats() const noexcept;
  /// "Ingress in all namespaces", "Secret default/tls-a" for log lines.
  std::string describe() const;
  const std::string& resource_version() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace phigate::kube
