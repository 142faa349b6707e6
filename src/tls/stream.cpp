#include "phigate/tls/stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "phigate/net/read_hint.hpp"
#include "phigate/tls/server_contexts.hpp"

namespace phigate::tls {

using net::error_code;

namespace {

/// The read BIO's method: a source that hands OpenSSL the Stream's ciphertext buffer. Built once
/// (thread-safe static), shared by all Streams, never freed.
BIO_METHOD* read_method(int (*rd)(BIO*, char*, std::size_t, std::size_t*),
                        long (*ctrl)(BIO*, int, long, void*)) {
  static BIO_METHOD* const method = [&] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "phigate ciphertext buffer");
    if (m != nullptr && (BIO_meth_set_read_ex(m, rd) != 1 || BIO_meth_set_ctrl(m, ctrl) != 1)) {
      BIO_meth_free(m);
      m = nullptr;
    }
    return m;
  }();
  return method;
}

}  // namespace

int Stream::bio_read(BIO* bio, char* out, std::size_t len, std::size_t* got) {
  auto* self = static_cast<Stream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  *got = 0;
  const std::size_t avail = self->clen_ - self->cpos_;
  if (avail == 0) {
    if (self->eof_) {
      errno = 0;  // as the socket BIO's read of a FIN: classify() reads errno 0 as end of stream
      return 0;   // OpenSSL judges close_notify vs truncation
    }
    BIO_set_retry_read(bio);
    return 0;
  }
  const std::size_t n = std::min(avail, len);
  std::memcpy(out, self->cbuf_.get() + self->cpos_, n);
  self->cpos_ += n;
  if (self->cpos_ == self->clen_) self->cpos_ = self->clen_ = 0;
  *got = n;
  return 1;
}

long Stream::bio_ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  const auto* self = static_cast<const Stream*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_PENDING:
      return static_cast<long>(self->clen_ - self->cpos_);
    case BIO_CTRL_EOF:
      return self->eof_ && self->clen_ == self->cpos_ ? 1 : 0;
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

Stream::Stream(net::tcp::socket sock, SSL_CTX* ctx) : sock_(std::move(sock)), tls_(ctx != nullptr) {
  error_code ec;
  sock_.non_blocking(true, ec);
  if (!tls_) return;
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    last_error_ = drain_errors();
    return;
  }
  // Reads: our BIO over the ciphertext buffer that Asio fills. Writes: a socket BIO on the fd
  // (BIO_NOCLOSE: the socket object owns the descriptor).
  BIO_METHOD* method = read_method(&Stream::bio_read, &Stream::bio_ctrl);
  BIO* rbio = method != nullptr ? BIO_new(method) : nullptr;
  BIO* wbio = BIO_new_socket(static_cast<int>(sock_.native_handle()), BIO_NOCLOSE);
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl_);
    ssl_ = nullptr;
    last_error_ = drain_errors();
    return;
  }
  BIO_set_data(rbio, this);
  BIO_set_init(rbio, 1);
  SSL_set_bio(ssl_, rbio, wbio);  // the SSL owns both
  SSL_set_accept_state(ssl_);
}

Stream::~Stream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void Stream::preload(const unsigned char* data, std::size_t n) {
  if (n == 0) return;
  // Room for the rest of the handshake behind them (fill() reads into the same buffer).
  const std::size_t kept = clen_ - cpos_;
  const std::size_t size = n + kept + kLargeBuffer;
  auto buf = std::make_unique_for_overwrite<char[]>(size);
  std::memcpy(buf.get(), data, n);
  if (kept > 0) std::memcpy(buf.get() + n, cbuf_.get() + cpos_, kept);
  cbuf_ = std::move(buf);
  cbuf_size_ = size;
  cpos_ = 0;
  clen_ = n + kept;
}

net::awaitable<error_code> Stream::fill() {
  if (cpos_ > 0) {  // not expected (OpenSSL asks for more only when it took all), but keep the bytes
    std::memmove(cbuf_.get(), cbuf_.get() + cpos_, clen_ - cpos_);
    clen_ -= cpos_;
    cpos_ = 0;
  }
  const std::size_t want = std::max(big_reads_ ? kLargeBuffer : kSmallBuffer, cbuf_size_);
  if (cbuf_size_ < want) {
    auto bigger = std::make_unique_for_overwrite<char[]>(want);  // no zeroing: read() fills it
    if (clen_ > 0) std::memcpy(bigger.get(), cbuf_.get(), clen_);
    cbuf_ = std::move(bigger);
    cbuf_size_ = want;
  }
  // A full buffer, or a second reader (a write that needs a read while a read waits: not done by
  // TLS 1.2/1.3 without renegotiation), would be a bug here, not a reason to read out of order.
  if (clen_ == cbuf_size_ || filling_) co_return error_code{EPROTO, boost::system::system_category()};
  const std::size_t space = cbuf_size_ - clen_;
  filling_ = true;
  auto [ec, n] =
      co_await sock_.async_read_some(net::asio::buffer(cbuf_.get() + clen_, space), net::deferred_tuple);
  filling_ = false;
  clen_ += n;
  if (n > 0) big_reads_ = n == space;
  // A short read emptied the socket of data: the next fill() waits for its next event, with no
  // read that fails first (the read after each request at one stream per connection). Opt-in: a
  // FIN taken with these bytes would then go unseen (hint_short_reads()).
  if (short_read_hints_ && n > 0 && n < space) net::note_read_drained(sock_);
  if (ec == net::asio::error::eof) {
    eof_ = true;
    co_return error_code{};
  }
  if (ec && ec != net::asio::error::operation_aborted) last_error_ = ec.message();
  co_return ec;
}

void Stream::release_if_empty() noexcept {
  if (cbuf_ != nullptr && clen_ == cpos_) {
    cbuf_.reset();
    cbuf_size_ = cpos_ = clen_ = 0;
  }
}

net::awaitable<error_code> Stream::wait_for(net::tcp::socket::wait_type wait) {
  if (wait == net::tcp::socket::wait_read) {
    auto ec = co_await fill();
    co_return ec;
  }
  auto [ec] = co_await sock_.async_wait(wait, net::deferred_tuple);
  co_return ec;
}

error_code Stream::classify(int ret, net::tcp::socket::wait_type& wait, bool& retry) {
  retry = false;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      wait = net::tcp::socket::wait_read;
      retry = true;
      return {};
    case SSL_ERROR_WANT_WRITE:
      wait = net::tcp::socket::wait_write;
      retry = true;
      return {};
    case SSL_ERROR_ZERO_RETURN:
      return net::asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      const int e = errno;
      ERR_clear_error();
      if (e == 0) return net::asio::error::eof;
      last_error_ = std::strerror(e);
      return {e, boost::system::system_category()};
    }
    default:
      // Leave nothing queued: the next SSL_get_error on this thread would report it.
      last_error_ = drain_errors();
      return {EPROTO, boost::system::system_category()};
  }
}

net::awaitable<error_code> Stream::handshake() {
  if (!tls_) co_return error_code{};
  if (ssl_ == nullptr) co_return error_code{ENOMEM, boost::system::system_category()};
  for (;;) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      release_if_empty();  // bytes pipelined behind the Finished stay for the first read
      co_return error_code{};
    }
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) co_return ec;
    const auto wec = co_await wait_for(wait);
    if (wec) co_return wec;
  }
}

net::awaitable<std::pair<error_code, std::size_t>> Stream::read_some(char* data, std::size_t size) {
  if (!tls_) {
    auto [ec, n] = co_await sock_.async_read_some(net::asio::buffer(data, size), net::deferred_tuple);
    co_return std::pair{ec, n};
  }
  for (;;) {
    // Nothing received and nothing held by OpenSSL (no record bytes, no decrypted data) after the
    // handshake: SSL_read_ex could only ask for more, and a call that fails costs the record
    // layer's set-up and an error-queue look (one per request at one stream per connection;
    // docs/perf-h2-many-streams.md, round 12). Read first.
    if (clen_ == cpos_ && !eof_ && SSL_is_init_finished(ssl_) == 1 && SSL_has_pending(ssl_) == 0) {
      const auto wec = co_await fill();
      if (wec) {
        release_if_empty();
        co_return std::pair{wec, std::size_t{0}};
      }
    }
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, data, size, &n);
    if (r == 1) {
      release_if_empty();
      co_return std::pair{error_code{}, n};
    }
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) {
      release_if_empty();
      co_return std::pair{ec, std::size_t{0}};
    }
    const auto wec = co_await wait_for(wait);
    if (wec) {
      release_if_empty();
      co_return std::pair{wec, std::size_t{0}};
    }
  }
}

net::awaitable<error_code> Stream::wait_readable() {
  // Received but not yet returned: decrypted or not, in OpenSSL or in our buffer (a request that
  // came with the previous one's bytes must not wait for the socket: it may never become readable).
  if (tls_ && ssl_ != nullptr && (SSL_has_pending(ssl_) == 1 || clen_ > cpos_ || eof_))
    co_return error_code{};
  auto [ec] = co_await sock_.async_wait(net::tcp::socket::wait_read, net::deferred_tuple);
  co_return ec;
}

net::awaitable<error_code> Stream::write_all(const char* data, std::size_t size) {
  if (!tls_) {
    auto [ec, n] = co_await net::asio::async_write(sock_, net::asio::buffer(data, size), net::deferred_tuple);
    co_return ec;
  }
  while (size > 0) {
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, data, size, &n);
    if (r == 1) {
      data += n;
      size -= n;
      continue;
    }
    net::tcp::socket::wait_type wait{};
    bool retry = false;
    const auto ec = classify(r, wait, retry);
    if (!retry) co_return ec;
    const auto wec = co_await wait_for(wait);
    if (wec) co_return wec;
  }
  co_return error_code{};
}

void Stream::shutdown_nowait() noexcept {
  if (ssl_ == nullptr || !sock_.is_open()) return;
  if (SSL_is_init_finished(ssl_) == 1 && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) {
    SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's reply
  }
  ERR_clear_error();
}

}  // namespace phigate::tls
