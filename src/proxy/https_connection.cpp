#include "https_connection.hpp"

#include "phigate/http/forwarding.hpp"
#include "phigate/net/socket.hpp"

namespace phigate::proxy::detail {

using core::Error;
using core::ErrorKind;
using core::Retryable;

namespace {
constexpr std::size_t kFlushBytes = 16 * 1024;

/// Path of a request target, without the query: origin-form "/a?b" → "/a"; absolute-form
/// "http://h/a?b" → "/a"; asterisk-form "*" stays "*".
std::string_view target_path(std::string_view target) {
  if (!target.empty() && target.front() != '/' && target != "*") {
    const auto scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      const auto slash = target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target.substr(0, target.find('?'));
}
}  // namespace

HttpsConnection::HttpsConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock)
    : ConnectionCore(worker, std::move(snap)),
      tls_(std::move(sock), snap_->tls->initial()),
      resp_parser_(http::Parser::Kind::Response, {64 * 1024, 64 * 1024, 1000}) {
  net::error_code ec;
  peer_ = tls_.socket().remote_endpoint(ec);
  local_port_ = tls_.socket().local_endpoint(ec).port();
  const auto addr = peer_.address();
  peer_ip_ = addr.is_v6() && addr.to_v6().is_v4_mapped()
                 ? net::asio::ip::make_address_v4(net::asio::ip::v4_mapped, addr.to_v6()).to_string()
                 : addr.to_string();
}

net::awaitable<void> HttpsConnection::run(std::shared_ptr<HttpsConnection> self) {
  co_await self->serve();
  self->close();
}

void HttpsConnection::expire() {
  timed_out_ = true;
  const bool upstream_phase =
      phase_ == Phase::UpConnect || phase_ == Phase::UpWrite || phase_ == Phase::UpRead;
  if (upstream_phase && up_) {
    cancel_socket(up_->socket);
  } else {
    cancel_socket(tls_.socket());
  }
  disarm();
}

void HttpsConnection::drain() {
  close_after_response_ = true;
  if (idle) cancel_socket(tls_.socket());
}

void HttpsConnection::close() noexcept {
  disarm();
  phase_ = Phase::Closing;
  tls_.shutdown_nowait();
  net::error_code ec;
  tls_.socket().close(ec);
  if (up_) up_->socket.close(ec);
  up_.reset();
}

net::awaitable<void> HttpsConnection::serve() {
  arm(Phase::Handshake, snap_->config->timeouts.tls_handshake);
  if (const auto ec = co_await tls_.handshake()) {
    worker_.stats().tls_handshake_failures.inc();
    PHI_LOG_DEBUG(
        "[w{} c{}] TLS handshake failed: {}", worker_.id(), id_,
        timed_out_ ? std::string("timeout") : (tls_.last_error().empty() ? ec.message() : tls_.last_error()));
    co_return;
  }
  if (SSL_session_reused(tls_.native()) == 1) worker_.stats().tls_resumed.inc();
  while (co_await serve_one()) {
  }
}

net::awaitable<bool> HttpsConnection::serve_one() {
  timed_out_ = false;
  const auto head_result = co_await read_request_head(tls_);
  if (head_result == HeadResult::Closed) co_return false;
  if (head_result == HeadResult::Failed) {
    PHI_LOG_DEBUG("[w{} c{}] bad request: {}", worker_.id(), id_, error_.to_string());
    co_return co_await reply_error(tls_, error_, true);
  }
  // Pin the snapshot for this request: routes and clusters come from one generation.
  SnapshotPtr snap = worker_.snapshot();
  auto& head = req_parser_.head();
  const auto host_count = head.headers.count("host");
  if (host_count > 1 || (host_count == 0 && head.version_minor >= 1)) {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
    co_return co_await reply_error(tls_, Error::downstream(ErrorKind::BadRequest, "missing or repeated Host"),
                                   true);
  }
  const std::string* host = head.headers.find("host");
  const auto* route = snap->routes.match(host ? *host : std::string_view{}, target_path(head.target));
  if (route == nullptr) {
    co_return co_await reply_error(tls_, Error::downstream(ErrorKind::NoRoute), false);
  }
  co_return co_await proxy_request(std::move(snap), route);
}

net::awaitable<std::optional<Error>> HttpsConnection::connect_upstream(const net::tcp::endpoint& ep) {
  up_.emplace(upstream::Connection{net::tcp::socket(worker_.io())});
  arm(Phase::UpConnect, snap_->config->timeouts.upstream_connect);
  auto [ec] = co_await up_->socket.async_connect(ep, net::use_awaitable_tuple);
  if (ec) {
    worker_.stats().upstream_connect_failures.inc();
    if (timed_out_) co_return timeout_error(Phase::UpConnect);
    co_return Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes, ec.message());
  }
  net::error_code ignored;
  up_->socket.set_option(net::tcp::no_delay(true), ignored);
  worker_.stats().upstream_connects.inc();
  co_return std::nullopt;
}

net::awaitable<net::error_code> HttpsConnection::write_upstream(const char* data, std::size_t n) {
  arm(Phase::UpWrite, snap_->config->timeouts.upstream_send);
  auto [ec, written] =
      co_await net::asio::async_write(up_->socket, net::asio::buffer(data, n), net::use_awaitable_tuple);
  co_return ec;
}

net::awaitable<std::optional<Error>> HttpsConnection::send_request(bool chunked) {
  const auto& cfg = *snap_->config;
  const auto& head = req_parser_.head();
  // up_out_ holds the request head; body bytes are appended and flushed in kFlushBytes pieces.
  while (head.has_body() && !req_parser_.message_complete()) {
    if (in_.empty()) {
      if (!up_out_.empty()) {
        if (auto ec = co_await write_upstream(up_out_.data(), up_out_.size())) {
          co_return Error::upstream(timed_out_ ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset,
                                    Retryable::OnlyIfReused, ec.message());
        }
        up_out_.clear();
      }
      // RFC 9110 §10.1.1: the client waits for 100 Continue before sending the body.
      if (head.expect_continue && !sent_continue_ && head.version_minor >= 1) {
        sent_continue_ = true;
        out_ = "HTTP/1.1 100 Continue\r\n\r\n";
        if (co_await flush_client(tls_)) co_return Error::downstream(ErrorKind::ClientClosed, "writing 100");
      }
      arm(Phase::Body, cfg.timeouts.body_idle);
      auto [ec, n] = co_await tls_.read_some(in_.space(), in_.space_size());
      if (ec || n == 0) {
        co_return timed_out_ ? timeout_error(Phase::Body)
                             : Error::downstream(ErrorKind::ClientClosed, "closed mid-request body");
      }
      in_.commit(n);
    }
    std::size_t used = 0;
    const auto st = req_parser_.feed(in_.data(), in_.size(), used);
    for (const auto piece : req_parser_.body()) {
      request_body_bytes_ += piece.size();
      if (chunked) http::append_chunk_header(up_out_, piece.size());
      up_out_.append(piece);
      if (chunked) up_out_.append(http::kChunkEnd);
    }
    req_parser_.clear_body();
    in_.consume(used);
    if (st == http::ParseStatus::Error) co_return req_parser_.error();
    if (cfg.limits.request_body_bytes != 0 && request_body_bytes_ > cfg.limits.request_body_bytes) {
      co_return Error::downstream(ErrorKind::BodyTooLarge);
    }
    if (up_out_.size() >= kFlushBytes) {
      if (auto ec = co_await write_upstream(up_out_.data(), up_out_.size())) {
        co_return Error::upstream(timed_out_ ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset,
                                  Retryable::No, ec.message());
      }
      up_out_.clear();
    }
  }
  if (chunked) up_out_.append(http::kLastChunk);
  if (!up_out_.empty()) {
    if (auto ec = co_await write_upstream(up_out_.data(), up_out_.size())) {
      co_return Error::upstream(timed_out_ ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset,
                                Retryable::OnlyIfReused, ec.message());
    }
    up_out_.clear();
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<Error>> HttpsConnection::relay_response(bool& started, bool& got_bytes) {
  const auto& cfg = *snap_->config;
  const auto& req = req_parser_.head();
  resp_parser_.reset();
  resp_parser_.expect_no_body(req.method == "HEAD");
  bool head_sent = false;
  bool rechunk = false;
  bool head_only = req.method == "HEAD";
  for (;;) {
    if (up_in_.empty()) {
      if (!out_.empty() && head_sent) {
        if (co_await flush_client(tls_)) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      }
      arm(Phase::UpRead, cfg.timeouts.upstream_read);
      auto [ec, n] = co_await up_->socket.async_read_some(
          net::asio::buffer(up_in_.space(), up_in_.space_size()), net::use_awaitable_tuple);
      if (ec || n == 0) {
        if (timed_out_) {
          worker_.stats().upstream_timeouts.inc();
          co_return timeout_error(Phase::UpRead);
        }
        if (ec == net::asio::error::eof && resp_parser_.body_until_eof()) {
          resp_parser_.finish();  // EOF delimits this body (RFC 9112 §6.3 rule 8)
        } else {
          co_return Error::upstream(ErrorKind::UpstreamReset,
                                    got_bytes ? Retryable::No : Retryable::OnlyIfReused,
                                    ec ? ec.message() : "eof");
        }
      } else {
        got_bytes = true;
        up_in_.commit(n);
      }
    }
    std::size_t used = 0;
    const auto st =
        up_in_.empty() ? http::ParseStatus::Paused : resp_parser_.feed(up_in_.data(), up_in_.size(), used);
    if (st == http::ParseStatus::Error) co_return resp_parser_.error();
    auto& rh = resp_parser_.head();
    if (resp_parser_.head_complete() && rh.status >= 100 && rh.status < 200) {
      // Interim responses: we answered Expect ourselves and do not tunnel upgrades; skip them.
      up_in_.consume(used);
      if (rh.status == 101)
        co_return Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, "101 unsupported");
      continue;
    }
    if (resp_parser_.head_complete() && !head_sent) {
      http::Framing framing;
      const bool bodyless = head_only || rh.status == 204 || rh.status == 304;
      if (rh.content_length && rh.status != 204 && rh.status != 304) {
        framing = {http::Framing::Kind::ContentLength, *rh.content_length};
      } else if (!bodyless) {
        if (req.version_minor >= 1) {
          framing.kind = http::Framing::Kind::Chunked;
          rechunk = true;
        } else {
          framing.kind = http::Framing::Kind::UntilClose;  // HTTP/1.0 client: close delimits the body
          client_keep_alive_ = false;
        }
      }
      http::remove_hop_by_hop(rh.headers);
      const bool close = !client_keep_alive_ || close_after_response_ || worker_.draining();
      if (close) client_keep_alive_ = false;
      http::append_response_head(out_, rh.status, rh.reason, req.version_minor, rh.headers, framing, close);
      worker_.stats().count_response(rh.status);
      head_sent = true;
      started = true;
    }
    for (const auto piece : resp_parser_.body()) {
      if (rechunk) http::append_chunk_header(out_, piece.size());
      out_.append(piece);
      if (rechunk) out_.append(http::kChunkEnd);
    }
    resp_parser_.clear_body();
    up_in_.consume(used);
    if (resp_parser_.message_complete()) {
      if (rechunk) out_.append(http::kLastChunk);
      if (co_await flush_client(tls_)) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
      co_return std::nullopt;
    }
    if (out_.size() >= kFlushBytes) {
      if (co_await flush_client(tls_)) co_return Error::downstream(ErrorKind::ClientClosed, "client gone");
    }
  }
}

net::awaitable<bool> HttpsConnection::proxy_request(SnapshotPtr snap, const router::Route* route) {
  const auto& cluster = snap->clusters[route->target];
  auto& head = req_parser_.head();
  client_keep_alive_ = head.keep_alive;
  sent_continue_ = false;
  request_body_bytes_ = 0;

  // Build the upstream head once: hop-by-hop fields out, forwarding fields in.
  core::make_request_id(worker_.rng(), request_id_);
  const std::string host_value = head.headers.find("host") ? *head.headers.find("host") : std::string();
  http::remove_hop_by_hop(head.headers);
  net::error_code ec;  // close() errors on a socket we drop anyway are of no interest
  const auto peer_addr = access::parse_address(peer_ip_);
  http::set_forwarding_headers(
      head.headers, {peer_ip_, peer_addr && snap->trusted_proxies.contains(*peer_addr), "https", host_value,
                     local_port_, request_id_});
  http::Framing framing;
  if (head.chunked) {
    framing.kind = http::Framing::Kind::Chunked;
  } else if (head.content_length) {
    framing = {http::Framing::Kind::ContentLength, *head.content_length};
  }
  std::string upstream_head;
  http::append_request_head(upstream_head, head.method, head.target, head.headers, framing);

  for (int attempt = 0;; ++attempt) {
    if (cluster.endpoints.empty()) {
      co_return co_await reply_error(tls_, Error::upstream(ErrorKind::NoHealthyEndpoint, Retryable::No),
                                     false);
    }
    const auto& ep = cluster.endpoints[worker_.next_endpoint(route->target, cluster.endpoints.size())];
    timed_out_ = false;
    up_ = worker_.pool().acquire(ep.key, worker_.now());
    if (up_) {
      worker_.stats().upstream_reuses.inc();
    } else if (auto err = co_await connect_upstream(ep.address)) {
      up_.reset();
      PHI_LOG_DEBUG("[w{} c{}] upstream {}: {}", worker_.id(), id_, ep.key, err->to_string());
      co_return co_await reply_error(tls_, *err, !req_parser_.message_complete());
    }
    up_out_ = upstream_head;
    bool started = false;
    bool got_bytes = false;
    auto err = co_await send_request(head.chunked);
    if (!err) err = co_await relay_response(started, got_bytes);
    if (!err) {
      // Back to the pool only when both messages ended cleanly by their framing.
      ++up_->requests;
      const bool reusable = resp_parser_.message_complete() && resp_parser_.should_keep_alive() &&
                            req_parser_.message_complete();
      if (reusable) {
        worker_.pool().release(ep.key, std::move(*up_), worker_.now());
      } else {
        up_->socket.close(ec);
      }
      up_.reset();
      disarm();
      co_return client_keep_alive_ && !close_after_response_ && !worker_.draining();
    }
    const bool reused = up_->reused;
    up_->socket.close(ec);
    up_.reset();
    // A pooled connection the upstream closed just as we reused it: retry once on a fresh one,
    // but only when nothing of the request body was consumed and no response byte arrived.
    if (err->source == core::ErrorSource::Upstream && err->retryable == Retryable::OnlyIfReused && reused &&
        !got_bytes && !head.has_body() && attempt == 0) {
      worker_.stats().upstream_retries.inc();
      continue;
    }
    PHI_LOG_DEBUG("[w{} c{}] request failed: {}", worker_.id(), id_, err->to_string());
    if (started || (err->source == core::ErrorSource::Downstream && err->status() == 0)) co_return false;
    co_return co_await reply_error(tls_, *err, !req_parser_.message_complete());
  }
}

}  // namespace phigate::proxy::detail
