#pragma once
// A running test Kubernetes API server (tests/kube/fake_apiserver.py) on loopback: HTTPS with its
// own CA, bearer tokens and client certificates, RBAC-style rules per identity, LIST pagination,
// WATCH streams (chunked, newline-delimited JSON events, BOOKMARKs), 410 Gone after compaction,
// Status objects for errors; plus a plain-HTTP control port for the test (seed and change objects
// without going through the API, cut streams, slow them, expire resourceVersions, read the log).
// Owned by PID; stopped by the destructor.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {

/// One API request as the server saw and authorised it.
struct ApiRequest {
  std::string user;       // token or certificate identity ("" when anonymous)
  std::string verb;       // get list watch create update patch delete (Kubernetes RBAC verbs)
  std::string group;      // "" for core
  std::string resource;   // plural, with "/status" for the subresource
  std::string ns;         // "" cluster-wide
  std::string name;       // "" for collections
  std::string method, path;  // as sent (path with query)
  int status = 0;         // what the server answered
};

struct FakeApiOptions {
  /// identity → token. Rules per identity: `rules` lines "verb,verb group/resource[,resource] [ns]"
  /// e.g. "get,list,watch networking.k8s.io/ingresses", "update networking.k8s.io/ingresses/status",
  /// "get,list,watch /secrets default" ("/x" is the core group). "*" allows everything.
  struct Identity {
    std::string name;
    std::string token;                // empty: this identity uses a client certificate (CN = name)
    std::vector<std::string> rules;   // empty: allowed everything
  };
  std::vector<Identity> identities{{"admin", "admin-token", {}}};
  int bookmark_interval_ms = 1000;  // BOOKMARK events on open watches
  int max_watch_seconds = 0;        // >0: the server ends each watch after at most this many seconds
  int max_history = 0;  // >0: watch events kept for replay (default 50000); older RVs get 410 (fakeapi)
};

class FakeApiServer {
 public:
  /// Starts the server on 127.0.0.1 (kernel-chosen ports), waits until it answers.
  static std::unique_ptr<FakeApiServer> start(TempDir& dir, FakeApiOptions options = {});
  ~FakeApiServer();

  const std::string& url() const { return url_; }  // https://127.0.0.1:PORT
  const CertPaths& ca() const { return ca_; }       // the server certificate's CA (cert path)
  std::uint16_t port() const { return port_; }
  /// The CA the server trusts for client certificates (cert and key: sign test client certificates).
  const CertPaths& client_ca() const { return client_ca_; }

  /// A kubeconfig for `identity` (bearer token, or client certificate made here and signed by the
  /// server's client CA when the identity has no token). Returns its path.
  std::string kubeconfig(const std::string& identity = "admin");
  /// An in-cluster service-account folder (token, ca.crt, namespace) for `identity`, for
  /// KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=port(). Returns the folder.
  std::string service_account_dir(const std::string& identity, const std::string& ns = "default");
  /// Changes an identity's token (the old one is refused from now on): token rotation.
  void set_token(const std::string& identity, const std::string& token);

  // The control port: changes that the API reports to watchers as ADDED/MODIFIED/DELETED.
  /// Creates or replaces objects (JSON or YAML text, one object or several separated by "---");
  /// returns the resourceVersion after the last.
  std::string apply(const std::string& objects);
  void remove(const std::string& kind, const std::string& ns, const std::string& name);
  /// `count` MODIFIED events on one EndpointSlice (its endpoints' addresses rotate), as fast as
  /// the server can; returns when all are queued to the watchers.
  void storm(const std::string& ns, const std::string& name, int count);
  /// Forgets history up to now: watches from an older resourceVersion get 410 Gone (reason Expired,
  /// as an ERROR event on open watches), and LIST continue tokens expire.
  void compact();
  /// Closes every open watch connection abruptly (no final chunk).
  void cut_watches();
  /// Delays every response byte chunk by `ms` (0: normal).
  void set_slow(int ms);
  /// Objects currently stored of a kind (JSON text each).
  std::vector<std::string> objects(const std::string& kind, const std::string& ns = "");
  /// The requests served so far, in order.
  std::vector<ApiRequest> requests();
  /// Open watch connections right now.
  int open_watches();
  /// A hostile or broken API server, for the next `count` responses (or watch events): mode
  /// "malformed" (a 2xx JSON body cut in half, Content-Length matching), "huge" (a 2xx body padded
  /// with a `bytes`-long string), "watch-garbage" (an event line that is not JSON), "watch-huge"
  /// (an event line of more than `bytes`), "status-500" (500 InternalError Status). Added by fakeapi.
  void misbehave(const std::string& mode, int count = 1, std::size_t bytes = 16u << 20);

 private:
  FakeApiServer() = default;
  std::string control(const std::string& method, const std::string& path, const std::string& body = "");

  Process process_;
  std::string url_;
  std::uint16_t port_ = 0;
  std::uint16_t control_port_ = 0;
  CertPaths ca_;
  CertPaths client_ca_;
  std::string dir_;
  // Added by the fakeapi branch (private; the declared API above is unchanged). Process has no
  // default constructor, so the server is built around its already started process.
  explicit FakeApiServer(Process process) : process_(std::move(process)) {}
  const FakeApiOptions::Identity* identity(const std::string& name) const;
  FakeApiOptions options_;  // identities as configured, tokens updated by set_token()
  int files_ = 0;           // suffix for kubeconfig / service-account folders made here
};

}  // namespace phigate::test
