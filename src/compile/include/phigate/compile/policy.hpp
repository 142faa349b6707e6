#pragma once
// The one compile step from configuration (static routes plus translated Ingresses) to policy:
// every route with its final RoutePolicy (fail-closed marks applied), the per-host TLS policies
// with their CA, CRL and cipher list compiled, the source allow/deny lists and trusted proxies.
// `phigate run` (through server::build_snapshot, which then only assembles runtime objects) and
// both forms of `phigate validate` call it, so what validate reports is what run would do.
// Control thread; reads the manifest folder when asked to, otherwise no I/O.
#include <memory>
#include <optional>
#include <vector>

#include "phigate/access/cidr.hpp"
#include "phigate/check/check.hpp"
#include "phigate/config/diagnostics.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"
#include "phigate/tls/server_contexts.hpp"
#include "phigate/upstream/backend_tls.hpp"

namespace phigate::compile {

struct CompiledPolicy {
  /// The input with Ingress routes, certificates and default backend merged (static routes first)
  /// and every policy that cannot be enforced replaced by a fail-closed copy.
  config::Config config;
  /// Per-host client-certificate/cipher policies, in precedence order (first Ingress wins).
  tls::ServerContexts::HostPolicies host_policies;
  /// One per path of `config.routes` in order, then one for `config.default_backend` when set,
  /// then one per attached canary (PathSpec::canary) in route order;
  /// null where the path has no allow/deny list.
  std::vector<std::shared_ptr<const access::AccessList>> route_access;
  /// TLS to the backends, one per path in the same order as route_access; null: plain HTTP (or
  /// the path fails closed). Equal settings share one context.
  std::vector<std::shared_ptr<const upstream::BackendTls>> backend_tls;
  access::AccessList global_access;  // `access:` of the config file
  access::CidrSet trusted_proxies;
  ingress::TranslationStats ingress;  // zero when there is no Ingress folder
  /// TLS passthrough (ssl-passthrough under listeners.tls_passthrough): one per host, the first
  /// Ingress for the host wins. `path` indexes the paths of `config.routes` in order (the clusters'
  /// and route_access's index).
  struct Passthrough {
    std::string host;      // exact, normalised (lower-case, no trailing dot)
    std::size_t path = 0;  // the host's `/` path, else its first
    std::string resource;  // "Ingress ns/name"
  };
  std::vector<Passthrough> passthrough;
  /// What the check engine (Runtime scope) found in this configuration, before `check.enforce`
  /// failed anything closed; empty when CompileChecks::run is false. docs/check.md.
  std::vector<check::Finding> findings;
  std::size_t enforced_ingresses = 0;  // failed closed by check.enforce
};

/// The check engine's part of compile(): run at every build unless `run` is false (the CLI runs
/// it itself, in Cli scope). `resources` (the loaded Kubernetes objects) only places findings at
/// their annotation's line.
struct CompileChecks {
  const ingress::Resources* resources = nullptr;
  bool run = true;
};

/// Merges a translation into `config`: static routes first (they win over Ingresses claiming the
/// same host and path), a static default backend wins, certificates appended.
void merge(config::Config& config, ingress::Translation translation);

/// The compile step proper: `config` already holds the translated Ingress routes (see merge()).
/// Every problem goes to `diag` naming file, resource and field; an unenforceable policy fails
/// its paths closed (503), never open. `stats` is copied into the result. Then the check engine
/// runs (unless `checks.run` is false): with `check.enforce: true`, every Ingress with an error
/// finding of an enforceable rule gets one error diagnostic per rule naming it, and its paths
/// (with their canaries) fail closed; the configuration is then compiled again without them.
CompiledPolicy compile(config::Config config, config::Diagnostics& diag, ingress::TranslationStats stats = {},
                       const CompileChecks& checks = {});

/// What run and validate call: reads and translates `config.ingress.dir` when set (through
/// `loader` when given: it re-parses only changed files), merges, then compile(). nullopt when a
/// manifest file does not load as a whole (a reload keeps the last good configuration).
std::optional<CompiledPolicy> load_and_compile(config::Config config, config::Diagnostics& diag,
                                               ingress::DirectoryLoader* loader = nullptr);

/// The same step for resources already loaded (the Kubernetes source: kube::Provider::resources()):
/// their diagnostics are copied to `diag`, then translate, merge and compile() as for a folder, so
/// an Ingress from the API server and the same Ingress from a manifest file compile alike.
/// nullopt when `loaded` reports broken files (the API store never does).
/// `run_checks` false: no run-time check (the CLI evaluates in Cli scope itself).
std::optional<CompiledPolicy> load_and_compile(config::Config config, const ingress::LoadResult& loaded,
                                               config::Diagnostics& diag, bool run_checks = true);

}  // namespace phigate::compile
