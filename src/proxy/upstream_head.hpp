#pragma once
// Private to proxy: the one place that applies a request's route-level edits to the head sent
// upstream, for every path (HTTP/1, HTTP/2 → HTTP/1.1, HTTP/2 WebSocket, gRPC). Called after the
// hop-by-hop and forwarding fields are set, so what it sets wins.
#include <string_view>

#include "phigate/http/headers.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// What the upstream hop carries: a plain HTTP/1.1 exchange, an upgrade (WebSocket), or gRPC.
enum class UpstreamHop { Http1, Upgrade, Grpc };

/// connection-proxy-header: close asks that the backend connection serve this request only.
inline bool closes_upstream(const Request& r) noexcept {
  return r.policy != nullptr && r.policy->connection_close;
}

/// Edits `headers` for the upstream (X-Forwarded-Prefix of a rewrite replaces any, a trusted
/// peer's included; upstream-vhost replaces Host; Connection: close on an HTTP/1.1 hop under
/// connection-proxy-header: close; the fields of proxy-set-headers replace the client's) and returns the
/// target to send: the rewrite's, else the normalised target. The view lives as long as `r`.
std::string_view prepare_upstream_head(const Request& r, http::HeaderList& headers,
                                       UpstreamHop hop = UpstreamHop::Http1);

/// The authority of an HTTP/2 request to the backend (gRPC's :authority): the route's
/// upstream-vhost, else the client's Host. The view lives as long as `r`.
std::string_view upstream_authority(const Request& r) noexcept;

}  // namespace phigate::proxy::detail
