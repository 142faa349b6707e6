#pragma once
// A read that found a socket empty, told to Asio's reactor: the next asynchronous read waits for
// the socket's next readiness event instead of trying a read that fails with EAGAIN first.
#include "phigate/net/asio.hpp"

namespace phigate::net {

/// Call right after a read of `s` that returned fewer bytes than asked (or EAGAIN), in the same
/// handler, with no co_await in between: no data was left in the socket then. Asio's epoll reactor
/// tries every read at once ("speculatively") unless told so; a flag it keeps per descriptor, set
/// again by every readiness event, says whether to try. With it cleared, the next async_read_some
/// queues the operation with no system call, and the next event performs it. Bytes that come after
/// the read always bring such an event (edge-triggered registration, one signal per arrival).
/// An end that came before it may not: a short read also takes a FIN (or finds a reset) that
/// arrived with its bytes, and if the reactor already used up that arrival's event, nothing will
/// report the end. Only EAGAIN proves there is none. So after a short read, call it only where an
/// unseen end is harmless (a connection whose writes or deadlines end it anyway) or checked by
/// a system call before the next read (a pooled connection: the pool polls or peeks it).
/// A no-op where the reactor is not Boost 1.83's epoll reactor (the flag is its private state).
void note_read_drained(tcp::socket& s) noexcept;

}  // namespace phigate::net
