// Placeholder until the HTTP/2 upstream lands (issue 14): every open fails closed.
#include "phigate/upstream/h2_pool.hpp"

namespace phigate::upstream {

struct H2Pool::Impl {};

H2Pool::H2Pool(net::asio::io_context& /*io*/, metrics::WorkerShard& /*stats*/)
    : impl_(std::make_unique<Impl>()) {}
H2Pool::~H2Pool() = default;

net::awaitable<std::variant<core::Error, std::shared_ptr<H2Call>>> H2Pool::open(
    const Endpoint& /*ep*/, const BackendTls* /*tls*/, const http::MessageHead& /*head*/,
    std::string_view /*authority*/, std::string_view /*scheme*/, bool /*end_stream*/, Timeouts /*t*/,
    Deadline& /*d*/) {
  co_return core::Error::upstream(core::ErrorKind::ConnectRefused, core::Retryable::No,
                                  "grpc backends not built");
}

void H2Pool::close_all() noexcept {}
std::size_t H2Pool::connections() const noexcept {
  return 0;
}

}  // namespace phigate::upstream
