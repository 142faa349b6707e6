#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "support/process.hpp"

namespace phigate::test {

class TempDir;

struct NginxOptions {
  std::uint16_t port = 0;             ///< 127.0.0.1 port to listen on; 0 = a free_port() (retried if taken)
  std::string root_dir{};             ///< document root; "" = `<dir>/nginx-<port>/www` (created, empty)
  std::string extra_http_config{};    ///< appended inside http { }
  std::string extra_server_config{};  ///< appended inside the server { } (locations, return, etc.)
};

/// A real nginx (/usr/sbin/nginx) serving as a test backend on 127.0.0.1. Its config, pid, logs and temp
/// paths live in `<dir>/nginx-<port>/`. Move-only; use from one thread. The destructor stops the master by
/// PID: SIGQUIT (graceful, 1 s), then SIGTERM (fast, 5 s), then SIGKILL.
class Nginx {
 public:
  /// Writes the config, starts nginx and waits (bounded, 10 s) until its port accepts TCP connections.
  /// Throws std::runtime_error with nginx's output if it does not come up.
  static Nginx start(TempDir& dir, NginxOptions opts = {});

  ~Nginx();
  Nginx(Nginx&& other) noexcept;
  Nginx& operator=(Nginx&& other) noexcept;
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  std::uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port>" + path.
  std::string url(std::string_view path = "/") const;
  /// The document root being served.
  const std::string& root_dir() const { return root_dir_; }
  /// Directory holding nginx.conf, error.log and the temp paths.
  const std::string& conf_dir() const { return conf_dir_; }
  /// The master process (its output holds anything nginx printed to stderr).
  Process& process() { return *process_; }
  /// Stops nginx as the destructor would and returns the master's exit code (128 + signal if killed).
  int stop();

 private:
  Nginx() = default;

  std::uint16_t port_ = 0;
  std::string root_dir_;
  std::string conf_dir_;
  std::optional<Process> process_;
};

}  // namespace phigate::test
