#pragma once
// Per-host TLS policy: client certificates (Ingress auth-tls-*) and the TLS <= 1.2 cipher list
// (ssl-ciphers). Several hosts share one listener and often one certificate, so the policy is
// applied per connection from the ClientHello's SNI, and checked again per request against Host.
// Compiled on the control thread; immutable and shared read-only by workers afterwards.
#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "phigate/config/spec.hpp"

namespace phigate::tls {

/// What an operator asked of one host (before compilation).
struct HostTlsSpec {
  std::string host;  // lower-case; "*.example.com" for a one-label wildcard
  config::VerifyClient verify = config::VerifyClient::Off;
  int verify_depth = 1;
  std::string ca_pem;    // trusted client CAs (auth-tls-secret ca.crt)
  std::string crl_pem;   // revocations (ca.crl); empty: none
  std::string ciphers;   // TLS <= 1.2 OpenSSL cipher list; empty: the global one
  std::string resource;  // "Ingress ns/name" that set it
};

class HostPolicy {
 public:
  /// The policy of hosts nobody configured: no client certificate, global ciphers.
  static std::shared_ptr<const HostPolicy> none();
  /// Compiles `spec`: parses the CA and CRL, checks the cipher list against the transmission
  /// security rule (AEAD + forward secrecy unless `allow_insecure`). Null with `error` set on failure.
  static std::shared_ptr<const HostPolicy> compile(const HostTlsSpec& spec, bool allow_insecure,
                                                   std::string& error);

  config::VerifyClient verify() const noexcept { return verify_; }
  int verify_depth() const noexcept { return depth_; }
  const std::string& ciphers() const noexcept { return ciphers_; }
  const std::string& resource() const noexcept { return resource_; }
  /// SHA-256 over everything above: the session-id context that binds resumed sessions to this
  /// policy, and what a request's Host must match (421 otherwise). Equal ids: equal policies.
  const std::array<unsigned char, 32>& id() const noexcept { return id_; }
  bool same(const HostPolicy& other) const noexcept { return id_ == other.id_; }

  /// Worker thread, from the ClientHello callback: configures `ssl` for this policy.
  void apply(SSL* ssl) const noexcept;

 private:
  HostPolicy() = default;
  struct StoreFree {
    void operator()(X509_STORE* s) const noexcept { X509_STORE_free(s); }
  };
  struct NamesFree {
    void operator()(STACK_OF(X509_NAME) * n) const noexcept { sk_X509_NAME_pop_free(n, X509_NAME_free); }
  };
  config::VerifyClient verify_ = config::VerifyClient::Off;
  int depth_ = 1;
  std::string ciphers_;
  std::string resource_;
  std::array<unsigned char, 32> id_{};
  std::unique_ptr<X509_STORE, StoreFree> store_;
  std::unique_ptr<STACK_OF(X509_NAME), NamesFree> ca_names_;
};

/// Why a TLS <= 1.2 cipher list enabled on `ctx` breaks the AEAD + forward-secrecy rule, or "".
std::string insecure_cipher(const SSL_CTX* ctx);

/// What the client's certificate says, as ingress-nginx passes it to the backend (ssl-client-*).
struct ClientCertificate {
  std::string verify;       // "SUCCESS", "NONE" or "FAILED:<reason>" (nginx $ssl_client_verify)
  std::string subject;      // RFC 2253
  std::string issuer;       // RFC 2253
  std::string serial;       // upper-case hex
  std::string fingerprint;  // SHA-256, lower-case hex
  std::string escaped_pem;  // URL-encoded PEM (nginx $ssl_client_escaped_cert)
  bool present = false;
  /// The request must be refused (400): why, or nullptr. Follows nginx's ssl_verify_client rules.
  const char* refusal = nullptr;
};

/// Worker thread, after the handshake: describes the peer certificate of `ssl` under `policy`.
ClientCertificate describe_client(SSL* ssl, const HostPolicy& policy);

/// The policy the ClientHello callback chose for `ssl` (the default for plain or early use).
const HostPolicy* policy_of(const SSL* ssl) noexcept;
/// Worker thread, ClientHello callback: records `policy` on `ssl` and applies it.
void set_policy(SSL* ssl, const HostPolicy& policy) noexcept;

}  // namespace phigate::tls
