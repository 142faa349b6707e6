// WebSocket and other upgrades: the byte-for-byte splice after a 101 (ProxyConnection::tunnel).
#include "proxy_connection.hpp"

namespace phigate::proxy::detail {

net::awaitable<bool> ProxyConnection::tunnel(InFlight&, const upstream::Timeouts&) {
  co_return false;  // no upgrade is let through yet (the codec refuses them)
}

}  // namespace phigate::proxy::detail
