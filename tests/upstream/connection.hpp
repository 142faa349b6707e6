// One client connection of phigate-test-upstream: read requests, record them, answer as the query asks.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>

namespace phigate::test_upstream {

/// Process-wide settings, read-only once connections run; outlives every connection thread.
struct ServerConfig {
  std::string name = "upstream";  ///< value of X-Upstream-Name
  int record_fd = -1;             ///< record file opened with O_APPEND, or -1 when not recording
  SSL_CTX* tls = nullptr;         ///< serve HTTPS with this context when set
};

/// Serves requests on the accepted socket `fd` until either side closes it. Runs on the connection's
/// own thread and owns `fd`. `conn_id` is the 1-based accept order (X-Upstream-Conn, "conn").
void serve_connection(const ServerConfig& config, int fd, std::uint64_t conn_id);

}  // namespace phigate::test_upstream
