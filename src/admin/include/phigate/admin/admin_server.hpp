#pragma once
// Admin listener on the control thread: GET /healthz (process alive), /readyz (serving and not
// draining), /metrics (Prometheus text). Loopback by default; never exposes configuration.
#include <chrono>
#include <functional>
#include <string>

#include "phigate/net/asio.hpp"

namespace phigate::admin {

struct AdminHooks {
  std::function<bool()> ready;           // control thread
  std::function<std::string()> metrics;  // control thread
};

/// How long one admin connection may take, from accept to the end of its response.
inline constexpr std::chrono::milliseconds kAdminRequestTimeout = std::chrono::seconds(5);

class AdminServer {
 public:
  /// `request_timeout` bounds each connection (tests shorten it); the hooks run on the
  /// acceptor's executor.
  AdminServer(net::tcp::acceptor acceptor, AdminHooks hooks,
              std::chrono::milliseconds request_timeout = kAdminRequestTimeout);
  /// Starts accepting on the acceptor's io_context (the control thread's).
  void start();
  void stop();

 private:
  net::awaitable<void> accept_loop();
  static net::awaitable<void> serve(net::tcp::socket sock, AdminHooks hooks,
                                    std::chrono::milliseconds timeout);
  net::tcp::acceptor acceptor_;
  AdminHooks hooks_;
  std::chrono::milliseconds request_timeout_;
};

}  // namespace phigate::admin
