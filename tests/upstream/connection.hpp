// One client connection of phigate-test-upstream: read requests, record them, answer as the query asks.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace phigate::test_upstream {

/// Process-wide settings, read-only once connections run; outlives every connection thread.
struct ServerConfig {
  std::string name = "upstream";  ///< value of X-Upstream-Name
  int record_fd = -1;             ///< record file opened with O_APPEND, or -1 when not recording
  SSL_CTX* tls = nullptr;         ///< serve HTTPS with this context when set
  std::string health_path;        ///< --health-path: answered 200 or 503 (health_ok), never recorded
  // Runtime modes, switched by GET /__control?... (README "Control requests"); any thread.
  mutable std::atomic<bool> health_ok{true};         ///< health=ok|fail
  mutable std::atomic<int> force_status{0};          ///< status=N: other requests answer N (0: off)
  mutable std::atomic<bool> close_keepalive{false};  ///< keepalive=close|keep: close after every response
  mutable std::atomic<bool> ignore_close{false};     ///< keepalive=ignore_close: a request's close is ignored
  mutable std::atomic<std::uint64_t> stall_ms{0};    ///< stall_ms=N: every response (health too) waits N ms
  mutable std::atomic<bool> reset_all{false};        ///< reset=1|0: every request gets an RST, no answer
  mutable std::atomic<std::uint64_t> health_probes{0};  ///< health-path requests answered
};

/// Serves requests on the accepted socket `fd` until either side closes it. Runs on the connection's
/// own thread and owns `fd`. `conn_id` is the 1-based accept order (X-Upstream-Conn, "conn").
void serve_connection(const ServerConfig& config, int fd, std::uint64_t conn_id);

}  // namespace phigate::test_upstream
