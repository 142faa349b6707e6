#include "connection_core.hpp"

#include <sys/socket.h>

namespace phigate::proxy::detail {

ConnectionCore::ConnectionCore(WorkerImpl& worker, SnapshotPtr snap)
    : worker_(worker), snap_(std::move(snap)), id_(worker.next_connection_id()) {
  worker_.register_connection(this);
  worker_.stats().connections_open.add(1);
}

ConnectionCore::~ConnectionCore() {
  worker_.stats().connections_open.add(-1);
  worker_.unregister_connection(this);
}

void ConnectionCore::cancel_socket(net::tcp::socket& s) noexcept {
  if (!s.is_open()) return;
  ::shutdown(s.native_handle(), SHUT_RDWR);
  net::error_code ec;
  s.cancel(ec);
}

core::Error ConnectionCore::timeout_error(Phase phase) {
  using core::ErrorKind;
  switch (phase) {
    case Phase::UpConnect:
      return core::Error::upstream(ErrorKind::ConnectTimeout, core::Retryable::No,
                                   "upstream connect timeout");
    case Phase::UpWrite:
    case Phase::UpRead:
      return core::Error::upstream(ErrorKind::UpstreamTimeout, core::Retryable::No, "upstream timeout");
    default:
      return core::Error::downstream(ErrorKind::ClientTimeout, "client timeout");
  }
}

}  // namespace phigate::proxy::detail
