#pragma once
// The HIPAA rule engine behind `phigate check` and every snapshot build (docs/check.md).
// Rules read a read-only View of the compiled configuration (after fail-closed marks), the loaded
// Kubernetes resources and, from the CLI only, the deployment manifests; each writes Findings
// naming the rule, the 45 CFR 164.312 paragraph it serves, the resource, field and line, and a
// one-line remedy. Pure: no sockets, no clock read except through Options::now; Cli scope may
// read files (certificates, audit keys, the system CA bundle). Control thread or the CLI.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/resources.hpp"
#include "phigate/ingress/workloads.hpp"

namespace phigate::check {

enum class Severity : std::uint8_t { Error, Warning, Info };
/// The five technical safeguards of 45 CFR 164.312, in report order.
enum class Safeguard : std::uint8_t { AccessControl, Audit, Integrity, Authentication, Transmission };
enum class Scope : std::uint8_t { Cli, Runtime };  // Runtime: no file reads, no workloads

std::string_view to_string(Severity s) noexcept;  // "error" | "warning" | "info"
std::string_view citation(Safeguard s) noexcept;  // "164.312(a)(1)" ...
std::string_view title(Safeguard s) noexcept;     // "Access control" ...
inline constexpr Safeguard kSafeguards[] = {Safeguard::AccessControl, Safeguard::Audit, Safeguard::Integrity,
                                            Safeguard::Authentication, Safeguard::Transmission};

struct Location {
  std::string file;      // path as given; "" unknown (API source: resource and field only)
  int doc = -1;          // 0-based document in a manifest file; -1 none
  int item = -1;         // 0-based item inside a `kind: List`; -1 none
  int line = 0;          // 1-based; 0 unknown
  std::string resource;  // "Ingress ns/name", "Secret ns/name", "ClusterRole phigate"; "" = config file
  std::string field;  // "metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect", "tls.hsts.max_age"
};

struct RuleInfo {
  std::string_view id{};     // stable, e.g. "TX005"; the SARIF ruleId
  std::string_view name{};   // PascalCase, e.g. "HstsOnPhiHost"
  std::string_view title{};  // one line
  Safeguard safeguard = Safeguard::AccessControl;
  std::string_view hipaa{};             // "164.312(e)(1)"
  std::string_view nist{};              // "SP 800-52r2 3.1; SP 800-66r2 5.3.5" or ""
  Severity severity = Severity::Error;  // default level (a finding may lower it, e.g. on a non-PHI host)
  std::string_view remedy{};            // one line
  bool runtime = true;                  // evaluated at every snapshot build too
  bool enforceable = false;  // an Ingress-scoped error may fail that Ingress closed (check.enforce)
  /// An error where PHI is served, a warning elsewhere ("E/W" in docs/check.md): the rule lowers
  /// its findings off PHI hosts (or, for config-wide settings, when no host carries PHI).
  bool warning_off_phi = false;
  std::string_view built_in{};  // non-empty: the control is met by construction; this is the evidence
};

struct Finding {
  const RuleInfo* rule = nullptr;
  Severity severity = Severity::Error;
  std::string host;     // "" when not host-scoped
  std::string message;  // one line; never PHI or secret material (no hash, key, header value)
  Location where;
  /// Hex SHA-256 of rule|resource|field|host|file: stable across runs (SARIF partialFingerprints,
  /// log de-duplication across reloads).
  std::string fingerprint() const;
};

struct Options {
  bool phi_hosts_all = false;  // --phi-hosts all / check.phi_hosts: all
  int min_cert_days = 21;
  int audit_key_max_age_days = 365;
  std::string system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::size_t public_ca_count = 20;
  std::int64_t now = 0;  // seconds since the epoch; 0: the current time
  Scope scope = Scope::Cli;

  /// The options a configuration asks for (check: keys), CLI flags override them afterwards.
  static Options from(const config::CheckSpec& spec);
};

/// A TLS-passthrough host (compile::CompiledPolicy::passthrough): spliced, never decrypted.
struct Passthrough {
  std::string host;
  std::string resource;  // "Ingress ns/name"
};

struct View {
  const config::Config& config;  // after compile(): fail-closed marks applied
  std::span<const Passthrough> passthrough{};
  const ingress::Resources* resources = nullptr;  // null: no manifests / API objects
  const ingress::Workloads* workloads = nullptr;  // null: none given (always null at run time)
  const Options& options;
};

/// What every rule may ask, computed once per evaluate().
class Context {
 public:
  explicit Context(const View& v);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// A host carries PHI: every host when phi_hosts_all, else a host with any path marked phi
  /// (phigate.io/phi: "true" or `phi: true`), fail-closed and canary paths included. "" and "*"
  /// stand for the catch-all (routes without host, the default backend).
  bool is_phi_host(std::string_view host) const;
  /// The path's rules apply at PHI severity: phi_hosts_all, or its host carries PHI.
  bool is_phi(const config::RouteSpec& route) const;
  /// Every PHI host, sorted (report evidence); "*" for the catch-all.
  const std::vector<std::string>& phi_hosts() const noexcept;
  std::int64_t now() const noexcept;

  /// Where a config file key is: `key` dotted as in Diagnostics ("tls.hsts.max_age",
  /// "trusted_proxies[2]"); line 0 when the key is absent (the default applies).
  Location config_key(std::string_view key) const;
  /// Where an Ingress annotation is: `short_name` without prefix ("ssl-redirect"); the phigate.io/
  /// then the nginx.ingress.kubernetes.io/ form is looked up. Absent: the Ingress's
  /// metadata.annotations (or the Ingress itself). `resource` is "Ingress ns/name".
  Location annotation(const std::string& resource, std::string_view short_name) const;
  /// A path: the Ingress (PathSpec::where and RoutePolicy::resource) or the static route.
  Location path(const config::PathSpec& path, std::string_view field = {}) const;
  /// A Kubernetes object of View::resources by "Kind ns/name"; file/line when known.
  Location object(const std::string& resource, std::string_view field = {}) const;

  struct Impl;

 private:
  const View& view_;
  std::unique_ptr<Impl> impl_;
};

using Sink = std::vector<Finding>;
using RuleFn = void (*)(const View&, const RuleInfo&, const Context&, Sink&);
struct Rule {
  RuleInfo info;
  RuleFn fn = nullptr;  // null for built-in rows (RuleInfo::built_in)
};

/// Every rule in report order (safeguard groups, then id).
std::span<const Rule> all_rules();
/// A rule by id, or null.
const RuleInfo* find_rule(std::string_view id);
/// The rule CFG000 ("the configuration or a resource has an error"): the CLI turns every error
/// Diagnostic of load and compile into one.
const RuleInfo& config_error_rule();
/// The rule CFG001 (info): the CLI reports with it what it could not examine for lack of input.
const RuleInfo& not_evaluated_rule();

/// Runs every rule of v.options.scope; findings sorted by safeguard, rule, file, line, message.
std::vector<Finding> evaluate(const View& v);

/// One line for logs, config::Diagnostic's form with the finding's severity:
/// "file[#doc]:line: error|warning|info: [resource: ][field: ]ID 164.312(x): message (remedy)",
/// control bytes escaped.
std::string describe(const Finding& f);

/// Helper for rule authors: a finding of `rule` at its default severity.
Finding make_finding(const RuleInfo& rule, std::string message, Location where, std::string host = {});

// Rule groups (one file each); all_rules() concatenates them.
std::span<const Rule> transmission_rules();    // rules_transmission.cpp  TX*
std::span<const Rule> access_rules();          // rules_access.cpp        AC*
std::span<const Rule> integrity_rules();       // rules_integrity.cpp     IN*
std::span<const Rule> authentication_rules();  // rules_authn.cpp         PA*
std::span<const Rule> audit_rules();           // rules_audit.cpp         AU*
std::span<const Rule> certificate_rules();     // rules_certs.cpp         CR* (safeguard (e)(1))
std::span<const Rule> kubernetes_rules();      // rules_k8s.cpp           K8S*, AC004

}  // namespace phigate::check
