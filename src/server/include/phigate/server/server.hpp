#pragma once
// The process: loads the configuration, compiles snapshots, binds every listener before any
// worker starts, runs the workers, and on the control thread handles signals (SIGTERM/SIGINT
// drain, SIGHUP reload), ticket-key rotation, retired snapshots and the admin listener.
#include <memory>
#include <optional>
#include <string>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/proxy/snapshot.hpp"
#include "phigate/tls/ticket_keys.hpp"

namespace phigate::upstream {
class HealthRegistry;
}

namespace phigate::server {

/// Compiles a loaded config into a snapshot: compile::load_and_compile() (reads and translates the
/// Ingress directory when `cfg.ingress.dir` is set, and makes every policy decision, exactly as
/// `phigate validate` does), then assembles TLS contexts, the route table and clusters. Control thread
/// (reads files, resolves backend names). Returns nullptr on a fatal error (the main config, an
/// unreadable manifest file); a problem confined to one Kubernetes resource is reported in `diag`
/// (with its resource) and the rest applies.
/// `loader`, when given, caches parsed manifest files between reloads (only changed files are
/// parsed again).
/// `health`, when given, hands endpoints that stay (same cluster, address and check settings) the
/// health state they had; the caller commits it once the snapshot is published (abandons it when
/// not). Without it every endpoint starts as `upstream.health.initial` says.
proxy::SnapshotPtr build_snapshot(config::Config cfg, std::shared_ptr<tls::TicketKeyRing> keys,
                                  std::uint64_t generation, config::Diagnostics& diag,
                                  ingress::DirectoryLoader* loader = nullptr,
                                  upstream::HealthRegistry* health = nullptr);

/// What a build reads besides the config file (see build_snapshot above for `loader` and `health`).
struct BuildInputs {
  ingress::DirectoryLoader* loader = nullptr;
  upstream::HealthRegistry* health = nullptr;
  /// The Kubernetes source: the API store's objects (kube::Provider::resources()), compiled
  /// instead of a folder. Null: `cfg.ingress.dir` when set, else static routes only.
  const ingress::LoadResult* resources = nullptr;
  /// The snapshot being served: its TLS contexts are reused when everything they were built from
  /// (tls::ServerContexts::fingerprint) is unchanged, so an endpoint change rebuilds no SSL_CTX.
  const proxy::Snapshot* previous = nullptr;
};
proxy::SnapshotPtr build_snapshot(config::Config cfg, std::shared_ptr<tls::TicketKeyRing> keys,
                                  std::uint64_t generation, config::Diagnostics& diag, const BuildInputs& in);

/// Errors in `diag` that stop a load: those not confined to one Kubernetes resource.
std::size_t fatal_errors(const config::Diagnostics& diag);

/// Runs phigate with the config file at `path` until SIGTERM/SIGINT has drained it.
/// Returns the process exit code (0 after a clean drain; 1 on a startup error, already logged).
int run(const std::string& path, const std::string& log_level_override);

}  // namespace phigate::server
