#pragma once
// TLS to an HTTPS backend (`backend-protocol: HTTPS`, `backend_tls:` of a static route): one
// OpenSSL client context per distinct setting, built once on the control thread when the
// snapshot is compiled, then shared read-only by every worker (SSL_CTX is safe to share once
// configured). A setting that does not compile is an error value: its path fails closed, never
// plain. Also used by active health checks (new_ssl + handshake).
#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/core/error.hpp"
#include "phigate/core/result.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::upstream {

/// What a route asks of the TLS connection to its backends (RoutePolicy proxy-ssl-* or a static
/// route's backend_tls:). Plain values; BackendTls::build compiles them.
struct BackendTlsSpec {
  std::string ca_pem;    // trust anchors (proxy-ssl-secret ca.crt); empty: the system store
  std::string cert_pem;  // client certificate (+ chain) for mTLS to the backend; empty: none
  std::string key_pem;   // its private key (with cert_pem, or both empty)
  /// Name the backend's certificate must carry (DNS name, or an IP literal checked against an
  /// IP subjectAltName). Required when verify is on.
  std::string verify_name;
  bool server_name = false;  // send verify_name as SNI (proxy-ssl-server-name)
  bool verify = true;        // proxy-ssl-verify (phigate default on; ingress-nginx's is off)
  int verify_depth = 1;      // proxy-ssl-verify-depth
  std::string protocols;     // space-separated subset of "TLSv1.2 TLSv1.3"; empty: both
  std::string ciphers;       // TLS 1.2 OpenSSL cipher list; empty: ECDHE + AEAD only
  /// backend-protocol GRPCS: offer ALPN "h2" only (RFC 9113 §3.2), and the connection is refused
  /// unless the backend selects it (h2_pool). False (HTTPS): no ALPN, HTTP/1.1 as always.
  bool alpn_h2 = false;
};

/// Frees without I/O (no close_notify: the descriptor may be shut down or about to close). Marked
/// as shut down first, else OpenSSL flags the session not resumable when the SSL is freed, and
/// every reconnect would pay a full handshake; RFC 5246 §7.2.1 (and TLS 1.3) no longer require
/// dropping a session whose connection ended without close_notify. A session a fatal alert
/// ended is already unusable (OpenSSL drops it when the alert is sent or received).
struct SslFree {
  void operator()(SSL* s) const noexcept {
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s);
  }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

/// Why an upstream TLS handshake or record failed: `reason` is a static snake_case name (the
/// audit event.reason, bounded); `detail` OpenSSL's words (no PHI: no certificate fields).
struct TlsFailure {
  std::string_view reason;
  std::string detail;
  /// The error the request ends with: ErrorKind::UpstreamTls (502) with this reason.
  core::Error to_error(core::Retryable r) const;
};

inline constexpr std::string_view kTlsUnknownCa = "upstream_tls_unknown_ca";
inline constexpr std::string_view kTlsNameMismatch = "upstream_tls_name_mismatch";
inline constexpr std::string_view kTlsExpired = "upstream_tls_expired";
inline constexpr std::string_view kTlsCertificate = "upstream_tls_certificate";  // other verify failures
inline constexpr std::string_view kTlsClientCertRefused = "upstream_tls_client_certificate_refused";
inline constexpr std::string_view kTlsHandshake = "upstream_tls_handshake";
inline constexpr std::string_view kTlsAlpn = "upstream_tls_alpn";  // GRPCS backend did not select h2

class BackendTls {
 public:
  /// Compiles `spec` into a client context. Error (kind Config) naming what is wrong: a CA,
  /// certificate or key that is not PEM, a key that does not match, an unknown protocol, a cipher
  /// list OpenSSL rejects, verify on without a name.
  static core::Result<std::shared_ptr<const BackendTls>> build(const BackendTlsSpec& spec);
  /// Stable identity of a spec: equal for equal settings (a hash of every field, keys included),
  /// so pooled connections and cached sessions are only ever shared between routes that would
  /// have made the same connection.
  static std::string identity_of(const BackendTlsSpec& spec);

  ~BackendTls();
  BackendTls(const BackendTls&) = delete;
  BackendTls& operator=(const BackendTls&) = delete;

  SSL_CTX* context() const noexcept { return ctx_; }
  const std::string& identity() const noexcept { return identity_; }
  const std::string& verify_name() const noexcept { return spec_.verify_name; }
  bool verify() const noexcept { return spec_.verify; }
  bool server_name() const noexcept { return spec_.server_name; }
  bool client_certificate() const noexcept { return !spec_.cert_pem.empty(); }
  /// The context offers ALPN h2 only (GRPCS).
  bool alpn_h2() const noexcept { return spec_.alpn_h2; }

  /// A client SSL for one new connection: connect state, SNI when asked, the name check armed
  /// (DNS or IP), `session` (may be null) offered for resumption. Null when OpenSSL fails.
  SslPtr new_ssl(SSL_SESSION* session = nullptr) const;

 private:
  BackendTls() = default;
  BackendTlsSpec spec_;
  std::string identity_;
  SSL_CTX* ctx_ = nullptr;
};

/// Runs the client handshake of `ssl` on the connected socket `s` (made non-blocking here; the
/// socket's descriptor must be the one set on `ssl`). nullopt: done. Waits through Asio, so a
/// socket cancel() (the connection's deadline) ends it with a failure.
net::awaitable<std::optional<TlsFailure>> handshake(net::tcp::socket& s, SSL* ssl);

/// What a TLS read or write on a non-blocking socket came to.
struct TlsIo {
  net::error_code ec;           // empty: done; eof: close_notify or a FIN
  std::size_t bytes = 0;        // written (all of them unless ec) or read
  bool protocol_error = false;  // a TLS error (an alert, a bad record): classify_failure(ssl) says which
};

/// Writes all of `bytes` through `ssl`, waiting through Asio (so a socket cancel() ends it).
/// OpenSSL reports a whole write or nothing: after an error, `bytes` is what completed, and part of
/// the failed write may have left.
net::awaitable<TlsIo> tls_write_all(net::tcp::socket& s, SSL* ssl, std::string_view bytes);
/// Reads what is there (at most `size` bytes) through `ssl`, waiting through Asio.
net::awaitable<TlsIo> tls_read_some(net::tcp::socket& s, SSL* ssl, char* buf, std::size_t size);

/// After a handshake with an `alpn_h2` context: nullopt when the backend selected "h2", else the
/// failure (kTlsAlpn): a backend that would speak HTTP/1.1 to an HTTP/2 client is refused.
std::optional<TlsFailure> check_alpn_h2(const SSL* ssl);

/// Classifies a failed SSL call on `ssl` (verify result, then the error queue, which it empties).
TlsFailure classify_failure(const SSL* ssl);

}  // namespace phigate::upstream
