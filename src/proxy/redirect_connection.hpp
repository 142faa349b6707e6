#pragma once
// Private to proxy: a plain-HTTP client connection. Every request gets a 308 to the same
// host and target over HTTPS; nothing is ever proxied in clear text.
#include <memory>

#include "connection_core.hpp"
#include "phigate/net/plain_stream.hpp"

namespace phigate::proxy::detail {

class RedirectConnection final : public ConnectionCore {
 public:
  RedirectConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock);
  static net::awaitable<void> run(std::shared_ptr<RedirectConnection> self);
  void expire() override;
  void drain() override;

 private:
  net::awaitable<bool> serve_one();
  net::PlainStream stream_;
};

/// "https://host[:port]target" for a Host value and a request target, or "" when the Host is
/// not a plain hostname/IP (which would let a client inject into the Location header).
std::string https_location(std::string_view host, std::string_view target, std::uint16_t https_port);

}  // namespace phigate::proxy::detail
