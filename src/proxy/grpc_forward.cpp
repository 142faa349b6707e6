// gRPC over HTTP/2 end to end (grpc_forward.hpp): one client stream = one stream on the worker's
// upstream::H2Pool. The gRPC rules followed are those of gRPC's "gRPC over HTTP2" protocol
// document (PROTOCOL-HTTP2.md): grpc-timeout, trailers-only responses, grpc-status/grpc-message.
#include "grpc_forward.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <array>
#include <charconv>

#include "phigate/core/outcome.hpp"
#include "phigate/http/forwarding.hpp"
#include "phigate/http/response_edits.hpp"
#include "phigate/upstream/balancer.hpp"
#include "phigate/upstream/h2_pool.hpp"
#include "phigate/upstream/health.hpp"
#include "upstream_head.hpp"
#include "worker_impl.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Retryable;

namespace {

// gRPC status codes (grpc/status.h; PROTOCOL-HTTP2.md names them).
constexpr int kGrpcCancelled = 1;
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcUnimplemented = 12;
constexpr int kGrpcInternal = 13;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcUnauthenticated = 16;

// RFC 9113 §7 error codes.
constexpr std::uint32_t kH2InternalError = 0x2;
constexpr std::uint32_t kH2Cancel = 0x8;

/// Attempts at most when the connection fails before the stream was sent.
constexpr std::size_t kMaxConnectAttempts = 3;

/// grpc-message is percent-encoded (PROTOCOL-HTTP2.md): bytes outside 0x20-0x7E and '%'.
std::string percent_encode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(v.size());
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

int parse_status(const std::string* v) {
  if (v == nullptr) return -1;
  int n = -1;
  const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < 0 || n > 999) return -1;
  return n;
}

upstream::AttemptResult attempt_result(const Error& e) {
  switch (e.kind) {
    case ErrorKind::ConnectRefused:
    case ErrorKind::UpstreamTls:
      return upstream::AttemptResult::ConnectFailure;
    case ErrorKind::ConnectTimeout:
    case ErrorKind::UpstreamTimeout:
      return upstream::AttemptResult::Timeout;
    default:
      return upstream::AttemptResult::Reset;
  }
}

}  // namespace

bool is_grpc_request(const http::HeaderList& headers) noexcept {
  const auto* ct = headers.find("content-type");
  if (ct == nullptr) return false;
  std::string_view v = *ct;
  constexpr std::string_view kGrpc = "application/grpc";
  if (v.size() < kGrpc.size() || !http::iequals(v.substr(0, kGrpc.size()), kGrpc)) return false;
  v.remove_prefix(kGrpc.size());
  // application/grpc, application/grpc+proto, application/grpc;params — not application/grpc-web
  // (a different protocol, HTTP/1.1-friendly framing).
  return v.empty() || v.front() == '+' || v.front() == ';';
}

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view v) noexcept {
  // TimeoutValue: 1 to 8 ASCII digits, then one unit (H M S m u n).
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  using namespace std::chrono;
  // 99,999,999 hours is within nanoseconds' int64 range? No (3.6e20): cap at a day, plenty.
  constexpr auto kCap = duration_cast<nanoseconds>(hours(24));
  const auto cap = [&](auto d) -> nanoseconds {
    using D = decltype(d);
    if (n > static_cast<std::uint64_t>(duration_cast<D>(kCap).count())) return kCap;
    return duration_cast<nanoseconds>(D(static_cast<typename D::rep>(n)));
  };
  switch (v.back()) {
    case 'H':
      return cap(hours(0));
    case 'M':
      return cap(minutes(0));
    case 'S':
      return cap(seconds(0));
    case 'm':
      return cap(milliseconds(0));
    case 'u':
      return cap(microseconds(0));
    case 'n':
      return cap(nanoseconds(0));
    default:
      return std::nullopt;
  }
}

int grpc_status_of(const Error& error) noexcept {
  switch (error.kind) {
    case ErrorKind::NoRoute:
      return kGrpcUnimplemented;
    case ErrorKind::Denied:
      return kGrpcPermissionDenied;
    case ErrorKind::ClientCertificate:
    case ErrorKind::Unauthorized:
      return kGrpcUnauthenticated;
    case ErrorKind::NoHealthyEndpoint:
    case ErrorKind::ConnectRefused:
    case ErrorKind::UpstreamReset:
    case ErrorKind::UpstreamTls:
    case ErrorKind::Unavailable:
    case ErrorKind::AuditUnavailable:
    case ErrorKind::Overloaded:
      return kGrpcUnavailable;
    case ErrorKind::ConnectTimeout:
    case ErrorKind::UpstreamTimeout:
    case ErrorKind::ClientTimeout:
      return kGrpcDeadlineExceeded;
    case ErrorKind::BodyTooLarge:
    case ErrorKind::HeaderTooLarge:
    case ErrorKind::UriTooLong:
    case ErrorKind::LimitExceeded:
    case ErrorKind::TooManyRequests:
      return kGrpcResourceExhausted;
    case ErrorKind::ClientClosed:
      return kGrpcCancelled;
    case ErrorKind::BadRequest:
    case ErrorKind::Misdirected:
    case ErrorKind::UpstreamBadResponse:
    case ErrorKind::TlsHandshake:
    case ErrorKind::Internal:
    case ErrorKind::Config:
      return kGrpcInternal;
  }
  return kGrpcInternal;
}

void reply_grpc_error(ClientStream& s, const Error& error) {
  const int code = grpc_status_of(error);
  http::HeaderList fields;
  fields.add("content-type", "application/grpc");
  fields.add("grpc-status", std::to_string(code));
  // The reason is a stable snake_case name: never request data, so never PHI.
  fields.add("grpc-message", percent_encode(error.reason()));
  // Trailers-only (PROTOCOL-HTTP2.md): HTTP 200 and the status in one HEADERS with END_STREAM.
  s.send_head(200, fields, true);
  auto& f = s.facts();
  f.status = 200;
  f.grpc_status = code;
  f.outcome = core::outcome_of(error);
  f.reason = error.reason();
}

namespace {

/// The request body (and trailers) client -> backend. Never completes on success: it parks until
/// the response side ends and cancels it (awaitable_operators ||), so a bidi stream's request side
/// outlives nothing. On failure it cancels the call, which ends the response side too.
net::awaitable<std::optional<Error>> pump_request(ClientStream& s, upstream::H2Call& call,
                                                  upstream::Timeouts t) {
  std::string buf;
  bool done = false;
  auto& f = s.facts();
  while (!done) {
    buf.clear();
    auto err = co_await s.read_body(buf, done);
    if (err) {
      call.cancel();
      co_return err;
    }
    if (s.client_gone()) {
      // Reset by the client: nothing more of it goes to the backend (review finding 5).
      call.cancel();
      co_return Error::downstream(ErrorKind::ClientClosed, "stream reset");
    }
    const auto* trailers = done ? s.request_trailers() : nullptr;
    const bool with_trailers = trailers != nullptr && !trailers->empty();
    if (!buf.empty() || (done && !with_trailers)) {
      auto sent = co_await call.send_data(buf, done && !with_trailers, t, s);
      if (sent) co_return sent;
      f.request_bytes += buf.size();
      s.body_forwarded(buf.size());
    }
    if (with_trailers) {
      auto sent = co_await call.send_trailers(*trailers, t, s);
      if (sent) co_return sent;
    }
  }
  net::asio::steady_timer park(co_await net::asio::this_coro::executor);
  park.expires_at(upstream::Clock::time_point::max());
  co_await park.async_wait(net::use_awaitable_tuple);
  co_return std::nullopt;
}

struct Relay {
  std::optional<Error> error;  // the exchange failed (nothing or part of it reached the client)
  bool got_head = false;
};

/// Response backend -> client: head (held back one event so that a backend's trailers-only
/// response stays one), data, trailers.
net::awaitable<Relay> relay_response(ClientStream& s, upstream::H2Call& call, upstream::Timeouts t,
                                     std::optional<upstream::Clock::time_point> grpc_deadline) {
  Relay out;
  auto& f = s.facts();
  const auto start = upstream::Clock::now();
  std::optional<http::HeaderList> head;
  int head_status = 0;
  const auto flush = [&](bool end_stream) {
    if (!head) return;
    s.send_head(head_status, *head, end_stream);
    f.status = head_status;
    head.reset();
  };
  for (;;) {
    auto tr = t;
    if (grpc_deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*grpc_deadline - upstream::Clock::now());
      tr.read = std::clamp(left, std::chrono::milliseconds(1), t.read);
    }
    auto ev = co_await call.next(tr, s);
    using K = upstream::H2Call::Event::Kind;
    switch (ev.kind) {
      case K::Headers:
        out.got_head = true;
        f.upstream_first_byte = upstream::Clock::now() - start;
        head = *ev.fields;
        head_status = ev.status;
        // custom-headers and the Location/Set-Cookie rewrites, as for HTTP responses.
        if (const auto* e = s.request().response_edits()) http::apply_response_edits(*head, e, {});
        f.grpc_status = parse_status(head->find("grpc-status"));  // trailers-only from the backend
        break;
      case K::Data: {
        flush(false);
        auto err = co_await s.send_body(ev.data);
        if (err) {
          call.cancel();
          out.error = std::move(err);
          co_return out;
        }
        f.response_bytes += ev.data.size();
        call.consume(ev.data.size());
        break;
      }
      case K::Trailers: {
        flush(false);
        f.grpc_status = parse_status(ev.fields->find("grpc-status"));
        s.end_response(ev.fields);
        co_return out;
      }
      case K::End:
        if (head) {
          flush(true);
        } else {
          s.end_response(nullptr);
        }
        co_return out;
      case K::Error:
        if (head) flush(false);
        out.error = ev.error;
        co_return out;
    }
  }
}

}  // namespace

net::awaitable<void> forward_grpc(ClientStream& s, const Snapshot& snap, WorkerImpl& worker) {
  using namespace net::asio::experimental::awaitable_operators;
  auto& r = s.request();
  auto& f = s.facts();
  const auto& cluster = snap.clusters[r.cluster];
  if (snap.config) worker.h2_pool().set_idle_timeout(snap.config->upstream.keepalive_timeout);

  // grpc-timeout: the call's whole deadline (PROTOCOL-HTTP2.md); malformed is an error, as gRPC
  // servers treat it, never silently ignored.
  std::optional<upstream::Clock::time_point> grpc_deadline;
  upstream::Timeouts t{r.limits.connect, r.limits.send, r.limits.read};
  if (const auto* gt = r.head.headers.find("grpc-timeout")) {
    const auto d = parse_grpc_timeout(*gt);
    if (!d) {
      reply_grpc_error(s, Error::downstream(ErrorKind::BadRequest, "malformed grpc-timeout"));
      co_return;
    }
    grpc_deadline = upstream::Clock::now() + *d;
    const auto ms = std::max(std::chrono::ceil<std::chrono::milliseconds>(*d), std::chrono::milliseconds(1));
    t.read = std::min(t.read, ms);
    t.connect = std::min(t.connect, ms);
    t.send = std::min(t.send, ms);
  }

  // Forwarding fields as for HTTP/1.1; connection-specific ones go (RFC 9113 §8.2.2).
  http::MessageHead head;
  head.method = r.head.method;
  head.headers = r.head.headers;
  http::remove_hop_by_hop(head.headers);
  // The peer of an HTTP/2 stream is not known here as trusted: incoming forwarding fields are
  // replaced by what phigate knows (the client address after trusted proxies), never kept.
  http::set_forwarding_headers(head.headers,
                               {r.client_ip, false, "https", r.host, 0, f.request_id, r.client_ip});
  head.headers.remove("x-forwarded-port");  // the stream does not tell the local port
  head.target = prepare_upstream_head(r, head.headers, UpstreamHop::Grpc);
  // gRPC requires te: trailers (hop-by-hop in HTTP/1.1, the one TE value HTTP/2 allows).
  head.headers.set("te", "trailers");

  auto& balancer = worker.balancer(r.cluster);
  const auto report = [&](std::size_t index, upstream::AttemptResult result) {
    if (upstream::report_attempt(cluster, index, result, worker.now()))
      worker.stats().upstream_ejections.inc();
  };
  std::array<std::size_t, kMaxConnectAttempts> tried{};
  std::size_t tried_n = 0;
  upstream::PickInput in;
  std::shared_ptr<upstream::H2Call> call;
  std::size_t index = upstream::kNoEndpoint;
  // No retries for gRPC once the stream was sent: a call is not known to be idempotent. Only a
  // connection that failed before the stream left (nothing sent) moves on to another endpoint.
  for (std::size_t attempt = 0; attempt < kMaxConnectAttempts; ++attempt) {
    if (s.client_gone()) break;  // reset while we connected: never opened (review finding 5)
    in.now = worker.now();
    in.tried = std::span<const std::size_t>(tried.data(), tried_n);
    const auto picked = upstream::pick(cluster, balancer, in);
    if (picked.index == upstream::kNoEndpoint) {
      reply_grpc_error(s, Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No));
      co_return;
    }
    if (attempt > 0 &&
        std::find(tried.begin(), tried.begin() + tried_n, picked.index) != tried.begin() + tried_n) {
      break;  // nothing untried left
    }
    index = picked.index;
    tried[tried_n++] = index;
    const auto& ep = cluster.endpoints[index];
    f.upstream = ep.key;
    f.upstream_attempts = static_cast<unsigned>(attempt) + 1;
    upstream::attempt_started(balancer, index);
    const auto connect_start = upstream::Clock::now();
    auto opened = co_await worker.h2_pool().open(ep, cluster.tls.get(), head, upstream_authority(r),
                                                 cluster.tls ? "https" : "http", false, t, s);
    if (auto* c = std::get_if<std::shared_ptr<upstream::H2Call>>(&opened)) {
      call = std::move(*c);
      f.upstream_connect = upstream::Clock::now() - connect_start;
      break;
    }
    const auto err = std::get<Error>(opened);
    upstream::attempt_ended(balancer, index, upstream::Clock::duration(-1), false);
    // A call reset while it waited for the connect (which runs on for the other calls) ends as the
    // client's: nothing answered, nothing counted against the endpoint.
    if (s.client_gone()) {
      index = upstream::kNoEndpoint;
      break;
    }
    s.failed_attempt({ep.key, err.reason(), 0});
    if (err.source == core::ErrorSource::Upstream) report(index, attempt_result(err));
    if (err.retryable != Retryable::Yes || attempt + 1 == kMaxConnectAttempts) {
      reply_grpc_error(s, err);
      co_return;
    }
    worker.stats().upstream_retries.inc();
  }
  if (s.client_gone()) {
    // The client reset the stream while the call was being opened: cancel it at once (no body,
    // RST_STREAM CANCEL after at most its HEADERS); nothing is answered, the record says so.
    if (call) call->cancel();
    if (index != upstream::kNoEndpoint)
      upstream::attempt_ended(balancer, index, upstream::Clock::duration(-1), true);
    f.outcome = core::Outcome::ClientClosed;
    f.reason = "client_closed";
    co_return;
  }
  if (!call) {
    reply_grpc_error(s, Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No));
    co_return;
  }

  std::optional<Error> err;
  bool got_head = false;
  try {
    auto result = co_await (pump_request(s, *call, t) || relay_response(s, *call, t, grpc_deadline));
    if (result.index() == 0) {
      err = std::get<0>(result);  // the request side failed (client reset, body limit, send timeout)
    } else {
      auto& relay = std::get<1>(result);
      err = relay.error;
      got_head = relay.got_head;
    }
  } catch (const std::exception&) {
    // A wait of the cancelled half threw (Asio cancels the loser of ||): the call is over.
    call->cancel();
    got_head = s.head_sent();
    err = Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "gRPC relay cancelled");
  }
  upstream::attempt_ended(balancer, index, upstream::Clock::duration(-1), !err);
  if (!err) {
    report(index, f.status >= 500 ? upstream::AttemptResult::Status5xx : upstream::AttemptResult::Success);
    f.outcome = core::Outcome::Proxied;
    co_return;
  }
  if (err->source == core::ErrorSource::Upstream && !got_head && !s.client_gone())
    report(index, attempt_result(*err));
  if (err->source == core::ErrorSource::Upstream && !s.client_gone())
    s.failed_attempt({cluster.endpoints[index].key, err->reason(), 0});
  if (!s.head_sent() && err->source != core::ErrorSource::Downstream) {
    reply_grpc_error(s, *err);  // trailers-only: DEADLINE_EXCEEDED, UNAVAILABLE, ...
    co_return;
  }
  f.outcome = core::outcome_of(*err);
  f.reason = err->reason();
  if (err->source == core::ErrorSource::Downstream) {
    if (!s.head_sent() && err->status() != 0) {
      reply_grpc_error(s, *err);  // body too large, body timeout: the client is still there
    } else {
      s.reset(kH2Cancel);
    }
    co_return;
  }
  // The head went out: only a reset can tell the client (CANCEL for a deadline, else INTERNAL_ERROR).
  s.reset(err->kind == ErrorKind::UpstreamTimeout ? kH2Cancel : kH2InternalError);
}

}  // namespace phigate::proxy::detail
