#pragma once
// Private to proxy: the one place that applies a request's route-level edits to the head sent
// upstream, for every path (HTTP/1, HTTP/2 → HTTP/1.1, HTTP/2 WebSocket, gRPC). Called after the
// hop-by-hop and forwarding fields are set, so what it sets wins.
#include <string_view>

#include "phigate/http/headers.hpp"
#include "request.hpp"

namespace phigate::proxy::detail {

/// Edits `headers` for the upstream (X-Forwarded-Prefix of a rewrite replaces any, a trusted
/// peer's included; upstream-vhost replaces Host) and returns the target to send: the rewrite's, else the
/// normalised target. The view lives as long as `r`.
std::string_view prepare_upstream_head(const Request& r, http::HeaderList& headers);

/// The authority of an HTTP/2 request to the backend (gRPC's :authority): the route's
/// upstream-vhost, else the client's Host. The view lives as long as `r`.
std::string_view upstream_authority(const Request& r) noexcept;

}  // namespace phigate::proxy::detail
