#include "phigate/net/socket.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/v6_only.hpp>

#include "phigate/core/host_port.hpp"

namespace phigate::net {

core::Result<tcp::endpoint> parse_endpoint(const std::string& text) {
  std::string host;
  std::uint16_t port = 0;
  if (!core::split_host_port(text, host, port)) return core::Error::internal("bad address '" + text + "'");
  error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return core::Error::internal("not an IP address: '" + host + "'");
  return tcp::endpoint(addr, port);
}

core::Result<tcp::endpoint> resolve_endpoint(const std::string& text) {
  if (auto ep = parse_endpoint(text)) return ep;
  std::string host;
  std::uint16_t port = 0;
  if (!core::split_host_port(text, host, port)) return core::Error::internal("bad address '" + text + "'");
  asio::io_context io;
  tcp::resolver resolver(io);
  error_code ec;
  const auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) return core::Error::internal("cannot resolve '" + host + "': " + ec.message());
  return results.begin()->endpoint();
}

core::Result<tcp::acceptor> listen(asio::io_context& io, const tcp::endpoint& ep, bool reuse_port) {
  tcp::acceptor acc(io);
  error_code ec;
  auto fail = [&](const char* what) {
    return core::Error::internal(to_string(ep) + ": " + what + ": " + ec.message());
  };
  acc.open(ep.protocol(), ec);
  if (ec) return fail("open");
  acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  if (reuse_port) {
    const int one = 1;
    if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      ec.assign(errno, boost::system::system_category());
      return fail("SO_REUSEPORT");
    }
  }
  if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
  acc.bind(ep, ec);
  if (ec) return fail("bind");
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  return acc;
}

std::string to_string(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace phigate::net
