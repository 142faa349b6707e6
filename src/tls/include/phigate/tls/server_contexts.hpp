#pragma once
// One SSL_CTX per certificate, all with the same policy (TLS 1.2/1.3, AEAD+ECDHE, groups, no
// compression or renegotiation, shared ticket keys). The ClientHello's SNI picks the certificate
// (exact name, then a "*.example.com" certificate one label deep, then the default), the host's
// HostPolicy (client certificates, ciphers, session-id context) and whether ALPN offers h2 (first,
// when http2.enabled and the name is not in http2.disabled_hosts) or http/1.1 only.
// Built on the control thread; immutable afterwards and shared by all workers via the snapshot.
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/core/host_map.hpp"
#include "phigate/tls/host_policy.hpp"
#include "phigate/tls/ticket_keys.hpp"

namespace phigate::tls {

/// Drains this thread's OpenSSL error queue into one line (empty when there was none).
std::string drain_errors();

class ServerContexts {
 public:
  ServerContexts(const ServerContexts&) = delete;
  ServerContexts& operator=(const ServerContexts&) = delete;
  ~ServerContexts();

  /// Host name (lower-case, "*.suffix" for a wildcard) → its compiled policy.
  using HostPolicies = std::vector<std::pair<std::string, std::shared_ptr<const HostPolicy>>>;
  /// Loads every certificate of `spec`. Problems go to `diag` naming the file; returns nullptr
  /// when any certificate fails. `keys` is kept alive by the result. Hosts not in `hosts` get
  /// HostPolicy::none(). `http2` (null: HTTP/1.1 only) decides whether ALPN may select h2.
  static std::shared_ptr<const ServerContexts> build(const config::TlsSpec& spec,
                                                     std::shared_ptr<TicketKeyRing> keys,
                                                     config::Diagnostics& diag, HostPolicies hosts = {},
                                                     const config::Http2Spec* http2 = nullptr);

  /// SHA-256 (hex) of everything build() reads: the TLS settings, every certificate (its
  /// in-memory PEM, or the bytes of its files, so a rotated file changes it), the host policies
  /// (name, policy id, resource) and which ticket-key ring. Equal fingerprints: build() would make
  /// the same contexts, so a reload may keep the running ones — an endpoint change must not cost
  /// a rebuild of every SSL_CTX. Control thread (reads the certificate files).
  static std::string fingerprint(const config::TlsSpec& spec, const TicketKeyRing* keys,
                                 const HostPolicies& hosts, const config::Http2Spec* http2 = nullptr);
  /// fingerprint() of this object's inputs.
  const std::string& inputs() const noexcept { return inputs_; }
  /// What build() reported to its `diag` (a reuse reports it again: the same resources still fail).
  const std::vector<config::Diagnostic>& diagnostics() const noexcept { return diagnostics_; }
  /// build() calls in this process that produced contexts (phigate_tls_context_builds_total).
  static std::uint64_t builds_total() noexcept;

  /// The context a new connection starts with (the default certificate). Worker threads.
  SSL_CTX* initial() const noexcept { return contexts_.front().get(); }
  /// The context for an SNI name (already lower-case). Never null.
  SSL_CTX* select(std::string_view server_name) const noexcept;
  /// The policy of a host name (lower-case, no port): exact, then one-label wildcard, then none.
  /// Any thread; the reference lives as long as this object.
  const HostPolicy& policy_for(std::string_view name) const noexcept;
  /// Whether ALPN offers h2 to a connection whose SNI is `server_name` (lower-case; empty when the
  /// client sent none): http2.enabled and the name not in http2.disabled_hosts (exact, then
  /// one-label wildcard). The proxy may ask the same of a request's :authority, since an HTTP/2
  /// client reuses one connection for every host its certificate covers (RFC 9113 §9.1.1).
  bool h2_for(std::string_view server_name) const noexcept {
    return h2_enabled_ && h2_disabled_.find(server_name) == nullptr;
  }
  /// DNS names each certificate covers, for diagnostics.
  const std::vector<std::string>& names(std::size_t i) const { return names_[i]; }
  std::size_t size() const noexcept { return contexts_.size(); }

 private:
  ServerContexts() = default;
  struct CtxFree {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
  };
  std::vector<std::unique_ptr<SSL_CTX, CtxFree>> contexts_;  // [0] is the default
  std::vector<std::vector<std::string>> names_;
  core::HostMap<SSL_CTX*> by_name_;  // exact names and "*.suffix" (one label)
  std::shared_ptr<TicketKeyRing> keys_;
  core::HostMap<std::shared_ptr<const HostPolicy>> policies_;
  std::shared_ptr<const HostPolicy> none_;
  std::string inputs_;
  std::vector<config::Diagnostic> diagnostics_;
  bool h2_enabled_ = false;
  core::HostMap<bool> h2_disabled_;  // http2.disabled_hosts
};

}  // namespace phigate::tls
