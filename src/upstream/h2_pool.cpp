// HTTP/2 to gRPC backends (h2_pool.hpp): per-worker multiplexed connections, each one nghttp2
// client session (h2_client_impl.hpp) driven by one reader and one writer coroutine.
#include "phigate/upstream/h2_pool.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <vector>

#include "h2_client_impl.hpp"
#include "phigate/upstream/pool.hpp"

namespace phigate::upstream {

using core::Error;
using core::ErrorKind;
using core::Retryable;

namespace {

constexpr std::size_t kMaxConnectionsPerEndpoint = 4;    // per worker; then "no stream slot"
constexpr std::uint32_t kMaxStreamsPerConnection = 100;  // even if the backend allows more
constexpr std::size_t kSendQueueBytes = 64 * 1024;       // request body queued before send_data waits
constexpr std::size_t kReadBytes = 16 * 1024;

}  // namespace

class H2CallImpl;

class H2Connection : public std::enable_shared_from_this<H2Connection> {
 public:
  H2Connection(net::asio::io_context& io, std::string key, metrics::WorkerShard& stats)
      : socket_(io), write_wake_(io), idle_(io), ready_(io), key_(std::move(key)), stats_(stats) {
    ready_.expires_at(Clock::time_point::max());
  }

  net::tcp::socket socket_;
  SslPtr ssl_{};  // after socket_: freed before the descriptor closes
  detail::H2ClientSession session_;
  net::asio::steady_timer write_wake_;
  net::asio::steady_timer idle_;
  /// Opens that found this connection still connecting wait here (cancelled when the connect
  /// ends either way): concurrent calls share one new connection instead of opening one each.
  net::asio::steady_timer ready_;
  std::string key_;
  metrics::WorkerShard& stats_;
  std::map<std::int32_t, H2CallImpl*> calls_;
  bool connected_ = false;  // connect (and TLS) done
  bool closed_ = false;
  std::optional<Error> connect_error_;  // why the connect failed: what the opens waiting on it return
  bool reused_ = false;                 // carried a stream before (a failure before any byte may be retried)
  std::chrono::milliseconds idle_timeout_{60000};

  bool usable() const noexcept {
    if (closed_ || session_.goaway_received() || !session_.error().empty()) return false;
    const auto peer = std::min(session_.peer_max_concurrent(), kMaxStreamsPerConnection);
    return session_.open_streams() < peer;
  }
  void wake_writer() noexcept { write_wake_.cancel(); }
  void start();
  void close(const Error& why);
  void after_io();
  void dispatch();
  void arm_idle();
  net::awaitable<void> reader(std::shared_ptr<H2Connection> self);
  net::awaitable<void> writer(std::shared_ptr<H2Connection> self);
};

class H2CallImpl final : public H2Call {
 public:
  H2CallImpl(std::shared_ptr<H2Connection> conn, std::int32_t id, net::asio::io_context& io)
      : conn_(std::move(conn)), id_(id), send_wake_(io), read_wake_(io) {
    conn_->calls_[id_] = this;
  }
  ~H2CallImpl() override {
    conn_->calls_.erase(id_);
    conn_->session_.release(id_);
    conn_->wake_writer();
    conn_->after_io();
  }

  net::awaitable<std::optional<Error>> send_data(std::string_view bytes, bool end_stream, Timeouts t,
                                                 Deadline& d) override {
    if (auto e = gone()) co_return e;
    if (!conn_->session_.send_body(id_, bytes, end_stream)) {
      co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "stream closed by the backend");
    }
    conn_->wake_writer();
    // Backpressure: the backend's window (or our writer) holds the bytes; wait for room.
    const auto deadline = Clock::now() + t.send;
    while (conn_->session_.queued_body(id_) > kSendQueueBytes) {
      if (auto e = gone()) co_return e;
      d.arm_upstream(Deadline::Wait::Send, t.send);
      waiting_send_ = true;
      const bool timed_out = co_await wait(send_wake_, deadline);
      waiting_send_ = false;
      if (timed_out || d.upstream_timed_out()) {
        cancel();
        co_return Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No, "upstream send timeout");
      }
    }
    co_return std::nullopt;
  }

  net::awaitable<std::optional<Error>> send_trailers(const http::HeaderList& trailers, Timeouts /*t*/,
                                                     Deadline& /*d*/) override {
    if (auto e = gone()) co_return e;
    if (!conn_->session_.send_trailers(id_, trailers)) {
      co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "stream closed by the backend");
    }
    conn_->wake_writer();
    co_return std::nullopt;
  }

  net::awaitable<Event> next(Timeouts t, Deadline& d) override {
    Event out;
    const auto deadline = Clock::now() + t.read;
    for (;;) {
      if (conn_->session_.pop(id_, current_)) break;
      if (lost_) {
        out.kind = Event::Kind::Error;
        out.error = *lost_;
        co_return out;
      }
      if (cancelled_) {
        out.kind = Event::Kind::Error;
        out.error = Error::upstream(
            d.upstream_timed_out() || timed_out_ ? ErrorKind::UpstreamTimeout : ErrorKind::UpstreamReset,
            Retryable::No, "stream cancelled");
        co_return out;
      }
      d.arm_upstream(Deadline::Wait::Read, t.read);
      const bool expired = co_await wait(read_wake_, deadline);
      if (expired && !conn_->session_.pop(id_, current_)) {
        timed_out_ = true;
        conn_->stats_.upstream_timeouts.inc();
        cancel();
        out.kind = Event::Kind::Error;
        out.error = Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No, "upstream timeout");
        co_return out;
      } else if (expired) {
        break;
      }
    }
    using K = detail::H2StreamEvent::Kind;
    switch (current_.kind) {
      case K::Headers:
        got_response_ = true;
        out.kind = Event::Kind::Headers;
        out.status = current_.status;
        out.fields = &current_.fields;
        break;
      case K::Data:
        got_response_ = true;
        out.kind = Event::Kind::Data;
        out.data = current_.data;
        break;
      case K::Trailers:
        out.kind = Event::Kind::Trailers;
        out.fields = &current_.fields;
        break;
      case K::End:
        out.kind = Event::Kind::End;
        break;
      case K::Reset:
        out.kind = Event::Kind::Error;
        if (timed_out_ || (cancelled_ && d.upstream_timed_out())) {
          out.error = Error::upstream(ErrorKind::UpstreamTimeout, Retryable::No, "upstream timeout");
        } else {
          // REFUSED_STREAM: the backend did not process it (RFC 9113 §8.7).
          const bool refused = current_.error_code == NGHTTP2_REFUSED_STREAM && !got_response_;
          out.error = Error::upstream(ErrorKind::UpstreamReset, refused ? Retryable::Yes : Retryable::No,
                                      "HTTP/2 stream from the backend: " + current_.reason + " (" +
                                          nghttp2_http2_strerror(current_.error_code) + ")");
        }
        break;
    }
    co_return out;
  }

  void consume(std::size_t n) noexcept override {
    conn_->session_.consume(id_, n);
    conn_->wake_writer();
  }

  void cancel() noexcept override {
    if (cancelled_) return;
    cancelled_ = true;
    conn_->session_.cancel(id_);
    conn_->wake_writer();
    wake();
  }

  bool got_response() const noexcept override { return got_response_; }

  void wake() noexcept {
    send_wake_.cancel();
    read_wake_.cancel();
  }
  void connection_lost(const Error& why) {
    if (!lost_) {
      lost_ = why;
      // No response byte: nothing of the response reached anyone; the caller may retry only
      // under Link's rule for a reused connection.
      lost_->retryable = got_response_ ? Retryable::No : Retryable::OnlyIfReused;
    }
    wake();
  }
  bool waiting_send_ = false;

 private:
  std::optional<Error> gone() const {
    if (lost_) return *lost_;
    if (cancelled_) return Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "stream cancelled");
    return std::nullopt;
  }
  /// Waits on `timer` for an event or `deadline`; true when the deadline passed. send_data and
  /// next each have their own timer: a gRPC relay runs both at once, and re-arming a shared timer
  /// would cancel the other's wait (a busy loop in which no deadline ever fired).
  net::awaitable<bool> wait(net::asio::steady_timer& timer, Clock::time_point deadline) {
    if (Clock::now() >= deadline) co_return true;
    timer.expires_at(deadline);
    auto [ec] = co_await timer.async_wait(net::use_awaitable_tuple);
    // The caller's coroutine was cancelled (Asio per-operation cancellation, e.g. the other half
    // of a bidirectional relay ended): the stream ends here, and no further wait is started
    // (a cancelled coroutine's next co_await would throw).
    const auto cs = co_await net::asio::this_coro::cancellation_state;
    if (cs.cancelled() != net::asio::cancellation_type::none) {
      cancel();
      co_return false;
    }
    co_return !ec && Clock::now() >= deadline;
  }

  std::shared_ptr<H2Connection> conn_;
  std::int32_t id_;
  net::asio::steady_timer send_wake_;  // send_data's wait
  net::asio::steady_timer read_wake_;  // next's wait
  detail::H2StreamEvent current_;
  std::optional<Error> lost_;
  bool cancelled_ = false;
  bool timed_out_ = false;
  bool got_response_ = false;
};

void H2Connection::start() {
  auto self = shared_from_this();
  net::asio::co_spawn(socket_.get_executor(), reader(self), net::asio::detached);
  net::asio::co_spawn(socket_.get_executor(), writer(self), net::asio::detached);
}

void H2Connection::dispatch() {
  for (const auto id : session_.take_touched()) {
    const auto it = calls_.find(id);
    if (it != calls_.end()) it->second->wake();
  }
  for (auto& [id, call] : calls_) {
    if (call->waiting_send_) call->wake();
  }
}

void H2Connection::close(const Error& why) {
  if (closed_) return;
  closed_ = true;
  idle_.cancel();
  ready_.cancel();
  write_wake_.cancel();
  net::error_code ec;
  if (socket_.is_open()) {
    ::shutdown(socket_.native_handle(), SHUT_RDWR);
    socket_.cancel(ec);
  }
  // Every open call learns it (an Error event), never hangs on a dead connection.
  const auto calls = calls_;
  for (auto& [id, call] : calls) call->connection_lost(why);
}

void H2Connection::arm_idle() {
  idle_.expires_after(idle_timeout_);
  idle_.async_wait([weak = weak_from_this()](net::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_ || !self->calls_.empty()) return;
    self->session_.shutdown();  // GOAWAY NO_ERROR, then the writer closes
    self->wake_writer();
  });
}

void H2Connection::after_io() {
  if (closed_) return;
  if (calls_.empty()) {
    if (session_.goaway_received()) {
      session_.shutdown();  // the backend said no new streams and none is left: done
      wake_writer();
    } else {
      arm_idle();
    }
  } else {
    idle_.cancel();
  }
}

net::awaitable<void> H2Connection::reader(std::shared_ptr<H2Connection> /*self: keeps it alive*/) {
  std::string buf(kReadBytes, '\0');
  while (!closed_) {
    std::size_t n = 0;
    net::error_code ec;
    if (ssl_) {
      const auto io = co_await tls_read_some(socket_, ssl_.get(), buf.data(), buf.size());
      ec = io.ec;
      n = io.bytes;
    } else {
      auto [rec, rn] = co_await socket_.async_read_some(net::asio::buffer(buf), net::use_awaitable_tuple);
      ec = rec;
      n = rn;
    }
    if (closed_) break;
    if (ec || n == 0) {
      close(
          Error::upstream(ErrorKind::UpstreamReset, Retryable::OnlyIfReused,
                          ec ? "backend connection lost: " + ec.message() : "backend closed the connection"));
      break;
    }
    const bool ok = session_.receive(std::string_view(buf.data(), n));
    dispatch();
    wake_writer();
    if (!ok) {
      close(Error::upstream(ErrorKind::UpstreamBadResponse, Retryable::No, session_.error()));
      break;
    }
    after_io();
  }
  co_return;
}

net::awaitable<void> H2Connection::writer(std::shared_ptr<H2Connection> /*self: keeps it alive*/) {
  std::string out;
  while (!closed_) {
    out.clear();
    session_.produce(out);
    dispatch();  // body bytes left the queues: senders may continue
    if (out.empty()) {
      if (!session_.alive()) {
        // GOAWAY sent or received and nothing left, or a connection error: done.
        close(Error::upstream(
            ErrorKind::UpstreamReset, Retryable::OnlyIfReused,
            session_.error().empty() ? "backend connection closed (GOAWAY)" : session_.error()));
        break;
      }
      write_wake_.expires_at(Clock::time_point::max());
      co_await write_wake_.async_wait(net::use_awaitable_tuple);
      continue;
    }
    net::error_code ec;
    if (ssl_) {
      const auto io = co_await tls_write_all(socket_, ssl_.get(), out);
      ec = io.ec;
    } else {
      auto [wec, wn] =
          co_await net::asio::async_write(socket_, net::asio::buffer(out), net::use_awaitable_tuple);
      ec = wec;
    }
    if (ec) {
      close(Error::upstream(ErrorKind::UpstreamReset, Retryable::OnlyIfReused,
                            "backend connection lost: " + ec.message()));
      break;
    }
  }
  co_return;  // the descriptor closes with the last owner (calls may still hold the connection)
}

struct H2Pool::Impl {
  net::asio::io_context& io;
  metrics::WorkerShard& stats;
  std::map<std::string, std::vector<std::shared_ptr<H2Connection>>, std::less<>> conns;
  std::chrono::milliseconds idle_timeout{60000};

  /// Drops closed connections of `key`'s list.
  std::vector<std::shared_ptr<H2Connection>>& list(const std::string& key) {
    auto& v = conns[key];
    std::erase_if(v, [](const std::shared_ptr<H2Connection>& c) { return c->closed_; });
    return v;
  }
};

H2Pool::H2Pool(net::asio::io_context& io, metrics::WorkerShard& stats)
    : impl_(std::make_unique<Impl>(Impl{io, stats, {}, std::chrono::milliseconds(60000)})) {}
H2Pool::~H2Pool() {
  close_all();
}

void H2Pool::set_idle_timeout(std::chrono::milliseconds t) noexcept {
  impl_->idle_timeout = t;
}

net::awaitable<std::variant<Error, std::shared_ptr<H2Call>>> H2Pool::open(
    const Endpoint& ep, const BackendTls* tls, const http::MessageHead& head, std::string_view authority,
    std::string_view scheme, bool end_stream, Timeouts t, Deadline& d) {
  std::string key;
  Pool::pool_key(key, ep.key, tls);
  std::shared_ptr<H2Connection> conn;
  // Bounded: each round either finds a slot, starts a connection, fails, or waits for a
  // connection being opened (which then is connected or closed).
  for (int round = 0; round < 8 && !conn; ++round) {
    auto& v = impl_->list(key);
    std::shared_ptr<H2Connection> connecting;
    for (auto& c : v) {
      if (c->connected_ && c->usable()) {
        conn = c;
        break;
      }
      if (!c->connected_ && !c->closed_) connecting = c;
    }
    if (conn) break;
    if (connecting) {
      d.arm_upstream(Deadline::Wait::Connect, t.connect);
      // No expiry of our own (changing it would wake the other waiters): the connecting open's
      // timer bounds the connect, and closes the connection when it fires.
      co_await connecting->ready_.async_wait(net::use_awaitable_tuple);
      if (!connecting->connected_) {
        // The same failure as the open that made the connect (a timeout stays a timeout).
        co_return connecting->connect_error_.value_or(
            Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes, "backend connection failed"));
      }
      continue;
    }
    if (v.size() >= kMaxConnectionsPerEndpoint) {
      // Nothing was sent: another endpoint may take it.
      co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::Yes, "no stream slot");
    }
    break;  // connect anew below
  }
  if (!conn) {
    conn = std::make_shared<H2Connection>(impl_->io, key, impl_->stats);
    conn->idle_timeout_ = impl_->idle_timeout;
    if (!conn->session_.ok()) co_return Error::internal("cannot create an HTTP/2 session");
    impl_->list(key).push_back(conn);
    // Our own timer bounds the connect and the handshake whatever the caller's deadline does.
    const auto start = Clock::now();
    bool timed_out = false;
    net::asio::steady_timer timer(impl_->io);
    timer.expires_after(t.connect);
    timer.async_wait([&timed_out, weak = std::weak_ptr<H2Connection>(conn)](net::error_code ec) {
      auto c = weak.lock();
      if (ec || !c) return;
      timed_out = true;
      net::error_code ignored;
      c->socket_.cancel(ignored);
    });
    d.arm_upstream(Deadline::Wait::Connect, t.connect);
    auto [ec] = co_await conn->socket_.async_connect(ep.address, net::use_awaitable_tuple);
    const auto failed = [&](Error e) {
      timer.cancel();
      conn->connect_error_ = e;
      conn->closed_ = true;
      conn->ready_.cancel();
      net::error_code ignored;
      conn->socket_.close(ignored);
      return e;
    };
    if (ec) {
      impl_->stats.upstream_connect_failures.inc();
      if (timed_out || d.upstream_timed_out()) {
        co_return failed(
            Error::upstream(ErrorKind::ConnectTimeout, Retryable::No, "upstream connect timeout"));
      }
      co_return failed(Error::upstream(ErrorKind::ConnectRefused, Retryable::Yes, ec.message()));
    }
    net::error_code ignored;
    conn->socket_.set_option(net::tcp::no_delay(true), ignored);
    impl_->stats.upstream_connects.inc();
    if (tls != nullptr) {
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      d.arm_upstream(Deadline::Wait::Connect, std::max(t.connect - spent, std::chrono::milliseconds(1)));
      auto ssl = tls->new_ssl();
      if (!ssl || SSL_set_fd(ssl.get(), static_cast<int>(conn->socket_.native_handle())) != 1) {
        ERR_clear_error();
        co_return failed(Error::internal("cannot create a TLS connection to the backend"));
      }
      conn->ssl_ = std::move(ssl);
      impl_->stats.backend_tls_handshakes.inc();
      auto failure = co_await handshake(conn->socket_, conn->ssl_.get());
      // ALPN: a GRPCS backend must select h2 (RFC 9113 §3.2); anything else is refused.
      if (!failure && tls->alpn_h2()) failure = check_alpn_h2(conn->ssl_.get());
      if (failure) {
        impl_->stats.backend_tls_failures.inc();
        if (timed_out || d.upstream_timed_out()) {
          co_return failed(
              Error::upstream(ErrorKind::ConnectTimeout, Retryable::No, "upstream TLS handshake timeout"));
        }
        co_return failed(failure->to_error(Retryable::Yes));
      }
      if (!tls->verify()) impl_->stats.backend_tls_unverified_requests.inc();
    }
    if (conn->closed_) {
      co_return failed(Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "phigate is closing"));
    }
    timer.cancel();
    conn->connected_ = true;
    conn->ready_.cancel();
    impl_->stats.grpc_upstream_connects.inc();
    conn->start();
  } else {
    conn->reused_ = true;
    impl_->stats.upstream_reuses.inc();
  }
  const auto id = conn->session_.submit(head, authority, scheme, end_stream);
  if (id < 0) {
    co_return Error::upstream(ErrorKind::UpstreamReset, Retryable::Yes,
                              std::string("cannot open an HTTP/2 stream: ") + nghttp2_strerror(id));
  }
  impl_->stats.grpc_upstream_streams.inc();
  auto call = std::make_shared<H2CallImpl>(conn, id, impl_->io);
  conn->idle_.cancel();
  conn->wake_writer();
  co_return std::shared_ptr<H2Call>(std::move(call));
}

void H2Pool::close_all() noexcept {
  for (auto& [key, v] : impl_->conns) {
    for (auto& c : v) {
      c->close(Error::upstream(ErrorKind::UpstreamReset, Retryable::No, "phigate is closing"));
    }
  }
  impl_->conns.clear();
}

std::size_t H2Pool::connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, v] : impl_->conns) {
    n += static_cast<std::size_t>(std::count_if(
        v.begin(), v.end(), [](const std::shared_ptr<H2Connection>& c) { return !c->closed_; }));
  }
  return n;
}

}  // namespace phigate::upstream
