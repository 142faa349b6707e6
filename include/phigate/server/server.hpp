#pragma once
// The process: loads the configuration, compiles snapshots, binds every listener before any
// worker starts, runs the workers, and on the control thread handles signals (SIGTERM/SIGINT
// drain, SIGHUP reload), ticket-key rotation, retired snapshots and the admin listener.
#include <memory>
#include <optional>
#include <string>

#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/proxy/snapshot.hpp"
#include "phigate/tls/ticket_keys.hpp"

namespace phigate::server {

/// Compiles a loaded config into a snapshot (TLS contexts, route table, clusters). Control
/// thread (reads certificate files, resolves backend names). nullptr when `diag` got errors.
proxy::SnapshotPtr build_snapshot(std::shared_ptr<const config::Config> cfg,
                                  std::shared_ptr<tls::TicketKeyRing> keys, std::uint64_t generation,
                                  config::Diagnostics& diag);

/// Runs phigate with the config file at `path` until SIGTERM/SIGINT has drained it.
/// Returns the process exit code (0 after a clean drain; 1 on a startup error, already logged).
int run(const std::string& path, const std::string& log_level_override);

}  // namespace phigate::server
