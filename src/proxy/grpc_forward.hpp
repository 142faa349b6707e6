#pragma once
// Private to proxy: gRPC (backend-protocol GRPC/GRPCS) over HTTP/2 end to end. A client stream
// whose route's backend speaks gRPC is forwarded as one stream on the worker's upstream::H2Pool:
// request head, body and trailers out; response head, body and trailers (grpc-status,
// grpc-message) back; grpc-timeout honoured against the route's timeouts. phigate's own refusals of
// a gRPC request are trailers-only responses with the grpc-status that fits (RFC-less: the gRPC
// over HTTP/2 protocol document). Worker thread only.
#include <chrono>
#include <optional>
#include <string_view>

#include "client_stream.hpp"
#include "phigate/core/error.hpp"
#include "phigate/http/headers.hpp"
#include "phigate/proxy/snapshot.hpp"

namespace phigate::proxy::detail {

class WorkerImpl;

/// A request is gRPC when its content-type is application/grpc or application/grpc+<subtype>.
bool is_grpc_request(const http::HeaderList& headers) noexcept;

/// grpc-timeout's value (PROTOCOL-HTTP2.md: 1 to 8 digits, then H, M, S, m, u or n), capped at a
/// day; nullopt when malformed (the call is then refused with INTERNAL, as gRPC servers do).
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value) noexcept;

/// The grpc-status phigate answers with when it ends a gRPC request itself with `error`
/// (no route: UNIMPLEMENTED 12, denied: PERMISSION_DENIED 7, unauthenticated client certificate:
/// UNAUTHENTICATED 16, no healthy endpoint / connect failure: UNAVAILABLE 14, timeout:
/// DEADLINE_EXCEEDED 4, body too large: RESOURCE_EXHAUSTED 8, bad request: INTERNAL 13).
int grpc_status_of(const core::Error& error) noexcept;

/// Sends a trailers-only response (HTTP 200, content-type application/grpc, grpc-status, and
/// grpc-message = the error's reason, percent-encoded) and ends the stream. Sets facts().grpc_status.
void reply_grpc_error(ClientStream& s, const core::Error& error);

/// Forwards the stream to its route's gRPC cluster (pick, open on the pool, relay both ways,
/// passive health reports, facts for the audit record). Returns when the stream's exchange ended;
/// the caller writes the audit record.
net::awaitable<void> forward_grpc(ClientStream& s, const Snapshot& snap, WorkerImpl& worker);

}  // namespace phigate::proxy::detail
