#pragma once
// A read that found a socket empty, told to Asio's reactor: the next asynchronous read waits for
// the socket's next readiness event instead of trying a read that fails with EAGAIN first.
#include "phigate/net/asio.hpp"

namespace phigate::net {

/// Call right after a read of `s` that returned fewer bytes than asked (or EAGAIN), in the same
/// handler, with no co_await in between: the socket was empty then. Asio's epoll reactor tries
/// every read at once ("speculatively") unless told so; a flag it keeps per descriptor, set again
/// by every readiness event, says whether to try. With it cleared, the next async_read_some
/// queues the operation with no system call, and the next event (data or FIN that came after the
/// read) performs it. Bytes that came after the read always bring such an event: the reactor's
/// registration is edge-triggered, and the kernel signals each arrival.
/// A no-op where the reactor is not Boost 1.83's epoll reactor (the flag is its private state).
void note_read_drained(tcp::socket& s) noexcept;

}  // namespace phigate::net
