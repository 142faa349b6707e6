#pragma once
// The Python WebSocket backend (tests/websocket/ws_server.py: a real websockets server, or its
// malicious modes) on a kernel-chosen port, for the WebSocket suites over HTTP/1.1 and HTTP/2.
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace phigate::test {

/// Debian's interpreter: python3-websockets and python3-h2 (scripts/bootstrap.sh) are installed
/// for it, whatever other python3 comes first in PATH.
inline const std::string kWsPython = "/usr/bin/python3";
inline const std::string kWsDir = PHIGATE_WS_DIR;

struct WsServer {
  Process process;
  std::uint16_t port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  /// Request heads the backend read ("request <path>" lines).
  int requests() const {
    const auto out = process.output();
    int n = 0;
    for (auto at = out.find("request "); at != std::string::npos; at = out.find("request ", at + 1)) ++n;
    return n;
  }
};

inline WsServer start_ws_server(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {kWsPython, kWsDir + "/ws_server.py"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = Process::start(argv);
  const auto line = p.wait_for_line("ready ", std::chrono::seconds(20));
  if (!line) throw std::runtime_error("ws_server.py did not start: " + p.output());
  const auto port = static_cast<std::uint16_t>(std::stoi(line->substr(line->find("ready ") + 6)));
  return WsServer{std::move(p), port};
}

}  // namespace phigate::test
