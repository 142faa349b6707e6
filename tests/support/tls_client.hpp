#pragma once

#include <openssl/prov_ssl.h>  // TLS1_2_VERSION, TLS1_3_VERSION for TlsClientOptions
#include <openssl/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/byte_stream.hpp"

// Declared by <openssl/ssl.h>; repeated here to keep that header out of every test.
typedef struct ssl_session_st SSL_SESSION;

namespace phigate::test {

/// A TLS session that can be offered for resumption; shared ownership of OpenSSL's refcounted object.
using SessionPtr = std::shared_ptr<SSL_SESSION>;

struct TlsClientOptions {
  std::string sni{};          ///< server_name to send; "" sends none
  std::string ca_file{};      ///< set: verify the chain against it and check `verify_name`; "": no checks
  std::string verify_name{};  ///< DNS name or IP the certificate must match; "" = `sni` (if set)
  std::vector<std::string> alpn{};  ///< e.g. {"h2", "http/1.1"}; empty: no ALPN extension
  int min_version = 0;              ///< TLS1_2_VERSION etc.; 0 = OpenSSL default
  int max_version = 0;              ///< 0 = OpenSSL default
  std::string cipher_list{};        ///< TLS <= 1.2 cipher string; "" = default
  std::string ciphersuites{};       ///< TLS 1.3 suites; "" = default
  std::string groups{};             ///< key exchange groups, e.g. "X25519:P-256"; "" = default
  std::string cert_file{};          ///< client certificate (chain) PEM for mTLS
  std::string key_file{};           ///< its private key PEM
  SessionPtr session{};             ///< offered for resumption when set
  std::string preamble{};           ///< raw bytes sent before the ClientHello (a PROXY protocol header)
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  ///< TCP connect + handshake
};

/// A blocking OpenSSL client with the ByteStream read/write API, for tests that need raw bytes or TLS
/// details curl does not expose. Move-only; use from one thread. Destroying it closes the socket without
/// close_notify (call send_close_notify() first to be polite).
class TlsClient : public ByteStream {
 public:
  /// TCP-connects to host:port and completes the handshake. On failure `error` holds the OpenSSL error
  /// queue, any alert received, and the verification error, e.g. "... (alert: handshake failure)".
  static ConnectResult<TlsClient> connect(const std::string& host, std::uint16_t port,
                                          const TlsClientOptions& opts = {});

  ~TlsClient() override;
  TlsClient(TlsClient&& other) noexcept;
  TlsClient& operator=(TlsClient&& other) noexcept;

  /// ALPN protocol selected by the server ("h2", "http/1.1"), or "" if none.
  std::string negotiated_protocol() const;
  /// "TLSv1.2" or "TLSv1.3".
  std::string negotiated_version() const;
  /// OpenSSL name of the cipher, e.g. "TLS_AES_128_GCM_SHA256".
  std::string negotiated_cipher() const;
  /// Server certificate subject in RFC 2253 form ("CN=a.test,O=x"), or "" if none was sent.
  std::string peer_certificate_subject() const;
  /// True if the handshake resumed `TlsClientOptions::session`.
  bool session_reused() const;
  /// The session for resumption. TLS 1.3 tickets arrive after the handshake, so this reads (buffering any
  /// application data) for up to `wait` until the session is resumable; returns nullptr if there is none.
  SessionPtr get_session(std::chrono::milliseconds wait = std::chrono::seconds(2));
  /// Description of the last TLS alert received from the server, e.g. "certificate required"; "" if none.
  std::string received_alert() const;
  /// True once the server's close_notify has been read.
  bool close_notify_received() const;
  /// Sends our close_notify (does not wait for the server's); false on failure.
  bool send_close_notify();
  /// The underlying SSL, owned by this object, for checks this API does not cover.
  SSL* ssl() const { return ssl_; }

 protected:
  Io recv_raw(char* buf, std::size_t cap, std::size_t& got) override;
  Io send_raw(const char* buf, std::size_t len, std::size_t& sent) override;

 private:
  struct State;
  TlsClient(int fd, SSL* ssl, std::unique_ptr<State> state);
  Io classify(int ret, const char* what);

  SSL* ssl_ = nullptr;
  std::unique_ptr<State> state_;  // heap-stable: SSL's info callback writes into it
};

}  // namespace phigate::test
