#pragma once
// Admin listener on the control thread: GET /healthz (process alive), /readyz (serving and not
// draining), /metrics (Prometheus text). Loopback by default; never exposes configuration.
#include <functional>
#include <string>

#include "phigate/net/asio.hpp"

namespace phigate::admin {

struct AdminHooks {
  std::function<bool()> ready;           // control thread
  std::function<std::string()> metrics;  // control thread
};

class AdminServer {
 public:
  AdminServer(net::tcp::acceptor acceptor, AdminHooks hooks);
  /// Starts accepting on the acceptor's io_context (the control thread's).
  void start();
  void stop();

 private:
  net::awaitable<void> accept_loop();
  static net::awaitable<void> serve(net::tcp::socket sock, AdminHooks hooks);
  net::tcp::acceptor acceptor_;
  AdminHooks hooks_;
};

}  // namespace phigate::admin
