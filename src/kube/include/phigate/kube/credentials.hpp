#pragma once
// How phigate reaches the API server: in-cluster service-account credentials or a kubeconfig.
// Control thread; reads files, no network.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace phigate::kube {

struct Credentials {
  std::string server;       // "https://host:port" (IPv6 in brackets); no trailing slash
  std::string server_name;  // the name the certificate must carry (host of `server`; tls-server-name)
  std::string ca_pem;       // cluster CA bundle; empty: refused (phigate never skips verification)
  std::string token;        // bearer token (static), or the last read of `token_file`
  std::string token_file;   // re-read when it changes (projected service-account tokens rotate)
  std::string client_cert_pem;  // client certificate authentication (kubeconfig)
  std::string client_key_pem;
  std::string namespace_;  // in-cluster: the service account's namespace; kubeconfig: the context's
  std::string source;      // "in-cluster" or "kubeconfig FILE context NAME", for log lines
};

/// Looks up environment variables (tests pass their own).
using Getenv = std::function<std::optional<std::string>(const std::string&)>;
Getenv process_env();

/// In-cluster: KUBERNETES_SERVICE_HOST/_PORT, the token and CA under `sa_dir`
/// (/var/run/secrets/kubernetes.io/serviceaccount). The error names what is missing.
struct CredentialsError {
  std::string message;
};
std::optional<Credentials> in_cluster(const Getenv& env, CredentialsError& err,
                                      const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

/// A kubeconfig file: `context` (empty: current-context), its cluster (server, certificate-authority
/// or -data, tls-server-name) and user (token, tokenFile, client-certificate/-key or -data).
/// Relative file paths resolve against the kubeconfig's folder. `insecure-skip-tls-verify`,
/// exec and auth-provider plugins are refused with a message naming the field.
std::optional<Credentials> from_kubeconfig(const std::string& path, const std::string& context,
                                           CredentialsError& err);

/// The bearer token to send now: `token_file` re-read when its modification time or size changed
/// since the last read (stat per call; a read only on change), else `token`. Control thread.
class TokenSource {
 public:
  explicit TokenSource(Credentials& creds) : creds_(creds) {}
  const std::string& current();

 private:
  Credentials& creds_;
  std::int64_t mtime_ns_ = -1;
  std::int64_t size_ = -1;
};

}  // namespace phigate::kube
