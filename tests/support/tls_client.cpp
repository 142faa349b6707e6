#include "support/tls_client.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "support/net.hpp"
#include "support/spawn_impl.hpp"

namespace phigate::test {

struct TlsClient::State {
  std::string alert;
  bool close_notify = false;
};

namespace {

using Clock = std::chrono::steady_clock;

// Drains the whole thread-local error queue so that no stale entry leaks into the next SSL_get_error().
std::string drain_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

// OpenSSL 3.0's SSL_alert_desc_string_long() predates some TLS 1.3 alerts (RFC 8446 §6) and calls them
// "unknown"; tests match on these names.
std::string alert_name(int ret) {
  switch (ret & 0xff) {
    case 86:
      return "inappropriate fallback";
    case 109:
      return "missing extension";
    case 116:
      return "certificate required";
    default:
      return SSL_alert_desc_string_long(ret);
  }
}

void info_callback(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_READ) != 0) {
    if (auto* state = static_cast<std::string*>(SSL_get_app_data(ssl))) *state = alert_name(ret);
  }
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

// Builds the client context; returns nullptr with `error` set on a bad option.
std::unique_ptr<SSL_CTX, CtxDeleter> make_ctx(const TlsClientOptions& o, std::string& error) {
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  auto fail = [&](const std::string& what) {
    error = what + ": " + drain_errors();
    ctx.reset();
  };
  if (!ctx) {
    fail("SSL_CTX_new");
    return ctx;
  }
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Client-side caching is what makes SSL_get1_session() return a session usable for resumption.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  if (o.min_version != 0 && SSL_CTX_set_min_proto_version(ctx.get(), o.min_version) != 1) {
    fail("min_version");
  } else if (o.max_version != 0 && SSL_CTX_set_max_proto_version(ctx.get(), o.max_version) != 1) {
    fail("max_version");
  } else if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx.get(), o.cipher_list.c_str()) != 1) {
    fail("cipher_list " + o.cipher_list);
  } else if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx.get(), o.ciphersuites.c_str()) != 1) {
    fail("ciphersuites " + o.ciphersuites);
  } else if (!o.groups.empty() && SSL_CTX_set1_groups_list(ctx.get(), o.groups.c_str()) != 1) {
    fail("groups " + o.groups);
  } else if (!o.ca_file.empty() &&
             SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1) {
    fail("load CA " + o.ca_file);
  } else if (!o.cert_file.empty() &&
             SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert_file.c_str()) != 1) {
    fail("client certificate " + o.cert_file);
  } else if (!o.key_file.empty() &&
             SSL_CTX_use_PrivateKey_file(ctx.get(), o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail("client key " + o.key_file);
  }
  if (!ctx) return ctx;
  SSL_CTX_set_verify(ctx.get(), o.ca_file.empty() ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  if (!o.alpn.empty()) {
    std::string wire;  // RFC 7301 §3.1: length-prefixed protocol names
    for (const auto& p : o.alpn) {
      wire += static_cast<char>(p.size());
      wire += p;
    }
    // Unlike most of OpenSSL, set_alpn_protos returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      fail("alpn");
    }
  }
  return ctx;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

TlsClient::TlsClient(int fd, SSL* ssl, std::unique_ptr<State> state)
    : ByteStream(fd), ssl_(ssl), state_(std::move(state)) {}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsClient::TlsClient(TlsClient&& other) noexcept
    : ByteStream(std::move(other)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      state_(std::move(other.state_)) {}

TlsClient& TlsClient::operator=(TlsClient&& other) noexcept {
  if (this != &other) {
    // Free our SSL before the base closes the fd it refers to.
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    state_ = std::move(other.state_);
    ByteStream::operator=(std::move(other));
  }
  return *this;
}

ConnectResult<TlsClient> TlsClient::connect(const std::string& host, std::uint16_t port,
                                            const TlsClientOptions& opts) {
  detail::ignore_sigpipe();
  ERR_clear_error();
  ConnectResult<TlsClient> out;
  const auto deadline = Clock::now() + opts.timeout;
  auto ctx = make_ctx(opts, out.error);
  if (!ctx) return out;
  const int fd = detail::connect_tcp(host, port, opts.timeout, out.error);
  if (fd < 0) return out;
  // Loopback and a short preamble: one blocking-enough send is all it takes, but check it.
  for (std::size_t sent = 0; sent < opts.preamble.size();) {
    const ssize_t n = ::send(fd, opts.preamble.data() + sent, opts.preamble.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      out.error = std::string("sending the preamble: ") + std::strerror(errno);
      ::close(fd);
      return out;
    }
    sent += static_cast<std::size_t>(n);
  }
  SSL* ssl = SSL_new(ctx.get());  // takes its own reference on ctx
  auto state = std::make_unique<State>();
  // Owning the fd and SSL from here on means every early return below cleans up.
  TlsClient client(fd, ssl, std::move(state));
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
    out.error = "SSL_new/SSL_set_fd: " + drain_errors();
    return out;
  }
  SSL_set_app_data(ssl, &client.state_->alert);
  SSL_set_info_callback(ssl, info_callback);
  if (!opts.sni.empty() && SSL_set_tlsext_host_name(ssl, opts.sni.c_str()) != 1) {
    out.error = "SNI " + opts.sni + ": " + drain_errors();
    return out;
  }
  const std::string& name = opts.verify_name.empty() ? opts.sni : opts.verify_name;
  if (!opts.ca_file.empty() && !name.empty()) {
    const int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                                       : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) {
      out.error = "verify name " + name + ": " + drain_errors();
      return out;
    }
  }
  if (opts.session && SSL_set_session(ssl, opts.session.get()) != 1) {
    out.error = "SSL_set_session: " + drain_errors();
    return out;
  }

  for (;;) {
    ERR_clear_error();
    const int ret = SSL_connect(ssl);
    if (ret == 1) break;
    const int err = SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (remaining_ms(deadline) == 0 || !client.wait_fd(err == SSL_ERROR_WANT_WRITE, deadline)) {
        out.error = "TLS handshake timed out after " + std::to_string(opts.timeout.count()) + " ms";
        return out;
      }
      continue;
    }
    const int sys_errno = errno;
    std::string why = drain_errors();
    if (why.empty()) {
      why =
          err == SSL_ERROR_SYSCALL && sys_errno != 0 ? std::strerror(sys_errno) : "connection closed by peer";
    }
    out.error = "TLS handshake failed: " + why;
    if (!client.state_->alert.empty()) out.error += " (alert: " + client.state_->alert + ")";
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
      out.error += std::string(" (verify: ") + X509_verify_cert_error_string(v) + ")";
    }
    return out;
  }
  out.client.emplace(std::move(client));
  return out;
}

ByteStream::Io TlsClient::classify(int ret, const char* what) {
  const int sys_errno = errno;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Io::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      state_->close_notify = true;
      return Io::Eof;
    default:
      break;
  }
  // OpenSSL 3 reports a TCP FIN without close_notify as an SSL error; for tests that is just EOF
  // (close_notify_received() tells the two apart).
  if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    drain_errors();
    return Io::Eof;
  }
  std::string why = drain_errors();
  if (why.empty()) {
    if (err == SSL_ERROR_SYSCALL && sys_errno == 0) return Io::Eof;
    why = std::strerror(sys_errno);
  }
  error_ = std::string(what) + ": " + why;
  if (!state_->alert.empty()) error_ += " (alert: " + state_->alert + ")";
  return Io::Error;
}

ByteStream::Io TlsClient::recv_raw(char* buf, std::size_t cap, std::size_t& got) {
  ERR_clear_error();
  const int ret = SSL_read_ex(ssl_, buf, cap, &got);
  return ret == 1 ? Io::Done : classify(ret, "TLS read");
}

ByteStream::Io TlsClient::send_raw(const char* buf, std::size_t len, std::size_t& sent) {
  ERR_clear_error();
  const int ret = SSL_write_ex(ssl_, buf, len, &sent);
  return ret == 1 ? Io::Done : classify(ret, "TLS write");
}

std::string TlsClient::negotiated_protocol() const {
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(data), len);
}

std::string TlsClient::negotiated_version() const {
  return SSL_get_version(ssl_);
}

std::string TlsClient::negotiated_cipher() const {
  return SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_));
}

std::string TlsClient::peer_certificate_subject() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

bool TlsClient::session_reused() const {
  return SSL_session_reused(ssl_) == 1;
}

SessionPtr TlsClient::get_session(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  char buf[16384];
  int wait_for = -1;  // -1: none; 0: readable; 1: writable
  for (;;) {
    // Check before every wait: the read that returned WANT_READ may just have processed a ticket.
    SSL_SESSION* s = SSL_get1_session(ssl_);
    if (s != nullptr && SSL_SESSION_is_resumable(s) == 1) return SessionPtr(s, SSL_SESSION_free);
    if (s != nullptr) SSL_SESSION_free(s);
    if (closed_ || fd_ < 0) return nullptr;
    if (wait_for >= 0 && !wait_fd(wait_for == 1, deadline)) return nullptr;
    wait_for = -1;
    // Reading processes NewSessionTicket messages; any application data is kept for later reads.
    std::size_t got = 0;
    switch (recv_raw(buf, sizeof(buf), got)) {
      case Io::Done:
        buffer_input(buf, got);
        break;
      case Io::WantRead:
        wait_for = 0;
        break;
      case Io::WantWrite:
        wait_for = 1;
        break;
      case Io::Eof:
      case Io::Error:
        closed_ = true;
        break;
    }
  }
}

std::string TlsClient::received_alert() const {
  return state_ ? state_->alert : std::string();
}

bool TlsClient::close_notify_received() const {
  return state_ && state_->close_notify;
}

bool TlsClient::send_close_notify() {
  if (ssl_ == nullptr || fd_ < 0) return false;
  ERR_clear_error();
  const int ret = SSL_shutdown(ssl_);
  drain_errors();
  return ret >= 0;
}

}  // namespace phigate::test
