#pragma once
// Private to server: notices changes under the Ingress directory. inotify on every folder of
// the tree (re-armed as folders appear), plus a slow periodic rescan that compares a fingerprint
// of names, sizes and modification times, for filesystems where inotify misses changes.
// Control thread only. Calls `on_change` (debounced by the caller).
#include <functional>
#include <string>

#include "phigate/net/asio.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>

namespace phigate::server::detail {

class IngressWatcher {
 public:
  IngressWatcher(net::asio::io_context& io, std::string dir, std::chrono::milliseconds rescan,
                 std::function<void()> on_change);
  ~IngressWatcher();
  /// Starts watching; logs a warning and relies on the rescan alone when inotify is unavailable.
  void start();
  void stop();

 private:
  void add_watches();
  void read_events();
  void schedule_rescan();
  std::string fingerprint() const;

  std::string dir_;
  std::chrono::milliseconds rescan_;
  std::function<void()> on_change_;
  net::asio::posix::stream_descriptor inotify_;
  net::asio::steady_timer rescan_timer_;
  std::string last_fingerprint_;
  char buf_[8192];
  bool stopped_ = false;
};

}  // namespace phigate::server::detail
