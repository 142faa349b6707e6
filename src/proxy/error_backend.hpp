#pragma once
// Private to proxy: the error-backend attempt loop (custom-http-errors pages and, for a path
// without a ready endpoint, the original request to the default-backend), written once for both
// codecs: ProxyConnection (HTTP/1) and H2Stream (HTTP/2 → HTTP/1.1) each pass a small adaptor
// that does their own connect, send and relay. Two tries at most: the second only after a stale
// pooled connection that got no byte back, with no request body read.
#include <chrono>
#include <optional>

#include "phigate/core/error.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/upstream/cluster.hpp"
#include "phigate/upstream/link.hpp"
#include "request.hpp"
#include "upstream_attempt.hpp"
#include "upstream_head.hpp"

namespace phigate::proxy::detail {

/// What a codec's adaptor `C` provides for one error-backend fetch:
///   void begin(const upstream::Endpoint&, int attempt)    per-attempt state (deadline flags, facts)
///   net::awaitable<std::optional<core::Error>> connect(const upstream::Endpoint&, int attempt)
///                                                        a pooled connection, or a new one
///   net::awaitable<std::optional<core::Error>> exchange() sends the head (and body), relays the answer
///   upstream::AttemptResult result()                      after a relayed answer: for passive health
///   bool reusable()                                       after it: the codec's framing verdict
///   bool tunnelled()                                      after it: the link became a tunnel (101)
///   bool response_started()                               the answer's head went to the client
/// `request_body`: the request sent has a body (the original request): never sent twice.
/// Returns nullopt once an answer was relayed (the link pooled, kept for the tunnel, or closed;
/// never pooled under connection-proxy-header: close), else the last attempt's error
/// (NoHealthyEndpoint when no endpoint was there to try).
template <class C>
net::awaitable<std::optional<core::Error>> error_backend_attempts(C& codec, upstream::Link& link,
                                                                  AttemptPlan& plan,
                                                                  const upstream::Cluster& cluster,
                                                                  const Request& r, bool request_body) {
  std::optional<core::Error> err;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto picked = plan.next();
    if (picked.index == upstream::kNoEndpoint) {
      if (!err) err = core::Error::upstream(core::ErrorKind::NoHealthyEndpoint, core::Retryable::No);
      break;
    }
    const auto& ep = cluster.endpoints[picked.index];
    codec.begin(ep, attempt);
    err = co_await codec.connect(ep, attempt);
    if (!err) err = co_await codec.exchange();
    if (!err) {
      plan.report(picked.index, codec.result());
      if (!codec.tunnelled())
        link.finish(codec.reusable() && !closes_upstream(r), std::chrono::steady_clock::now());
      co_return std::nullopt;
    }
    const bool upstream_fault = err->source == core::ErrorSource::Upstream;
    const bool stale =
        link.reused() && !link.got_bytes() && !codec.response_started() && !request_body && upstream_fault;
    if (upstream_fault) plan.report(picked.index, attempt_result(*err));
    link.discard();
    if (!stale) break;
  }
  co_return err;
}

}  // namespace phigate::proxy::detail
