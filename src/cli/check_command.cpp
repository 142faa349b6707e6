// `phigate check --config FILE [--manifests DIR]... [--format F] [--min-cert-days N]
// [--phi-hosts all|annotated] [--output FILE] [--now RFC3339]`: loads the configuration and
// manifests through the compile step `run` and `validate` use, evaluates every rule (Cli scope:
// certificate files, audit keys and deployment manifests too) and renders the report.
#include "check_command.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "phigate/check/check.hpp"
#include "phigate/check/report.hpp"
#include "phigate/compile/policy.hpp"
#include "phigate/config/loader.hpp"
#include "phigate/core/time.hpp"
#include "phigate/core/version.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/workloads.hpp"

namespace phigate::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckUsage =
    "usage: phigate check --config FILE [--manifests DIR]... [--format text|json|sarif|html|markdown]\n"
    "                     [--phi-hosts all|annotated] [--min-cert-days N] [--output FILE] [--now RFC3339]\n"
    "\n"
    "Compiles FILE (and the manifests) as run would and reports, rule by rule, which HIPAA technical\n"
    "safeguard (45 CFR 164.312) it misses (docs/check.md).\n"
    "\n"
    "  -c, --config FILE    the configuration file\n"
    "  --manifests DIR      Kubernetes manifests (Ingresses, Secrets, Services, deployment objects);\n"
    "                       repeatable; replaces the configuration's ingress.dir\n"
    "  --format F           text (default), json, sarif, html or markdown\n"
    "  --phi-hosts MODE     all: every host carries PHI; annotated: those marked phigate.io/phi\n"
    "                       (default: check.phi_hosts)\n"
    "  --min-cert-days N    certificates expiring within N days are findings (default 21)\n"
    "  --output FILE        write the report there instead of standard output\n"
    "  --now RFC3339        the time the report is made at (reproducible reports)\n"
    "  -h, --help           print this help and exit\n"
    "\n"
    "Exit codes: 0 no error finding, 1 error findings, 2 input unreadable or usage error.\n";

int usage(const std::string& msg) {
  std::fprintf(stderr, "phigate check: %s (see phigate check --help)\n", msg.c_str());
  return 2;
}

/// Input that cannot be read: every reason on stderr, exit 2.
int unreadable(const config::Diagnostics& diag) {
  for (const auto& d : diag.entries()) {
    if (d.severity == config::Severity::Error) std::fprintf(stderr, "%s\n", d.to_string().c_str());
  }
  return 2;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

bool slurp(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

/// The manifest files of a folder exactly as the loaders read them, each with its SHA-256: the
/// report's evidence.
void manifest_digests(const std::string& dir, std::vector<std::pair<std::string, std::string>>& out) {
  config::Diagnostics ignored;  // the loaders report the same problems
  for (const auto& f : ingress::manifest_files(dir, ignored)) {
    std::string bytes;
    if (slurp(f, bytes)) out.emplace_back(f, sha256_hex(bytes));
  }
}

/// A load or compile error as a CFG000 finding, placed where the diagnostic says.
check::Finding config_finding(const config::Diagnostic& d) {
  check::Location where;
  where.file = d.file;
  // "file#doc[.items[i]]" (manifest objects) back into its parts.
  if (const auto hash = d.file.rfind('#'); hash != std::string::npos) {
    where.file = d.file.substr(0, hash);
    const std::string rest = d.file.substr(hash + 1);
    where.doc = std::atoi(rest.c_str());
    if (const auto it = rest.find(".items["); it != std::string::npos)
      where.item = std::atoi(rest.c_str() + it + 7);
  }
  where.line = d.line;
  where.resource = d.resource;
  where.field = d.field;
  return check::make_finding(check::config_error_rule(), d.message, std::move(where));
}

}  // namespace

int check_command(const std::vector<std::string_view>& args) {
  std::string config_path, output, now_text, phi_mode;
  std::vector<std::string> manifests;
  check::Format format = check::Format::Text;
  int min_cert_days = -1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    const auto eq = a.find('=');
    const bool inline_value = a.starts_with("--") && eq != std::string_view::npos;
    const std::string_view name = inline_value ? a.substr(0, eq) : a;
    if (a == "-h" || a == "--help") {  // where an option stands (a value "-h" is a value)
      std::fputs(kCheckUsage, stdout);
      return 0;
    }
    static constexpr std::string_view kOptions[] = {"--config",        "-c",       "--manifests", "--format",
                                                    "--min-cert-days", "--output", "--phi-hosts", "--now"};
    if (std::find(std::begin(kOptions), std::end(kOptions), name) == std::end(kOptions)) {
      return usage("unknown option '" + std::string(a) + "'");
    }
    if (inline_value) {
      value = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return usage("option '" + std::string(name) + "' needs a value");
      value = args[++i];
    }
    if (name == "--config" || name == "-c") {
      config_path = value;
    } else if (name == "--manifests") {
      manifests.emplace_back(value);
    } else if (name == "--format") {
      if (!check::parse_format(value, format)) {
        return usage("--format must be text, json, sarif, html or markdown, not '" + std::string(value) +
                     "'");
      }
    } else if (name == "--min-cert-days") {
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), min_cert_days);
      if (ec != std::errc{} || p != value.data() + value.size() || min_cert_days < 0 ||
          min_cert_days > 3650) {
        return usage("--min-cert-days must be a number of days from 0 to 3650");
      }
    } else if (name == "--output") {
      output = value;
    } else if (name == "--phi-hosts") {
      if (value != "all" && value != "annotated") return usage("--phi-hosts must be all or annotated");
      phi_mode = value;
    } else if (name == "--now") {
      now_text = value;
    }
  }
  if (config_path.empty()) return usage("missing --config FILE");
  std::error_code ec;
  for (const auto& m : manifests) {
    if (!fs::is_directory(m, ec)) return usage("--manifests: not a folder: " + m);
  }
  std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (!now_text.empty()) {
    const auto t = core::parse_rfc3339(now_text);
    if (!t) return usage("--now must be an RFC 3339 time (2026-12-01T00:00:00Z)");
    now = t->seconds;
  }

  // 1. The configuration: unreadable or not YAML -> 2; any other error -> CFG000 findings.
  std::string config_bytes;
  if (!fs::is_regular_file(config_path, ec) || !slurp(config_path, config_bytes)) {
    std::fprintf(stderr, "phigate check: cannot read %s\n", config_path.c_str());
    return 2;
  }
  config::Diagnostics diag;
  auto cfg = config::load_config(config_path, diag);
  if (!cfg) {
    const bool not_yaml = std::any_of(diag.entries().begin(), diag.entries().end(), [](const auto& d) {
      return d.severity == config::Severity::Error && d.field.empty() &&
             d.message.starts_with("invalid YAML");
    });
    if (not_yaml) return unreadable(diag);
  }

  // 2. Manifests: --manifests folders, else the configuration's ingress.dir.
  std::vector<std::string> folders = manifests;
  // (load_config already refuses an ingress.dir that is no folder: a CFG000 finding at its line.)
  if (folders.empty() && cfg && !cfg->ingress.dir.empty()) folders.push_back(cfg->ingress.dir);
  ingress::LoadResult loaded;
  for (const auto& f : folders) ingress::append(loaded, ingress::load_directory(f));  // one set
  if (loaded.broken_files > 0) return unreadable(loaded.diagnostics);
  ingress::Workloads workloads = ingress::load_workloads(folders);
  if (workloads.broken_files > 0) return unreadable(workloads.diagnostics);

  check::Evidence evidence;
  evidence.version = std::string(core::version());
  evidence.time = now;
  evidence.config_file = config_path;
  evidence.config_digest = sha256_hex(config_bytes);
  for (const auto& f : folders) manifest_digests(f, evidence.manifests);
  std::sort(evidence.manifests.begin(), evidence.manifests.end());

  std::vector<check::Finding> findings;
  if (cfg) {
    // 3. The compile step of run and validate (its own run-time check off: this is the Cli scope).
    if (!manifests.empty()) {
      cfg->ingress.dir = manifests.front();
      if (cfg->ingress.source == config::IngressSource::None)
        cfg->ingress.source = config::IngressSource::Directory;
    }
    auto compiled = compile::load_and_compile(*cfg, loaded, diag, /*run_checks=*/false);
    if (!compiled) return unreadable(diag);
    auto options = check::Options::from(compiled->config.check);
    options.scope = check::Scope::Cli;
    options.now = now;
    if (min_cert_days >= 0) options.min_cert_days = min_cert_days;
    if (!phi_mode.empty()) options.phi_hosts_all = phi_mode == "all";
    std::vector<check::Passthrough> passthrough;
    for (const auto& p : compiled->passthrough) passthrough.push_back({p.host, p.resource});
    const check::View view{.config = compiled->config,
                           .passthrough = passthrough,
                           .resources = folders.empty() ? nullptr : &loaded.resources,
                           .workloads = folders.empty() ? nullptr : &workloads,
                           .options = options};
    findings = check::evaluate(view);
    const check::Context ctx(view);
    evidence.phi_hosts_all = options.phi_hosts_all;
    evidence.phi_hosts = ctx.phi_hosts();
  }
  // What could not be examined is said, never passed: an info finding, and the rules it concerns
  // are "not evaluated" in the report rather than controls met.
  if (cfg && cfg->ingress.source == config::IngressSource::Kubernetes && manifests.empty()) {
    check::Location where;
    where.file = config_path;
    where.field = "ingress.source";
    findings.push_back(check::make_finding(check::not_evaluated_rule(),
                                           "ingress.source is kubernetes and no --manifests were given: no "
                                           "Ingress, Secret or Service of the cluster "
                                           "was examined, only the config file",
                                           std::move(where)));
  }
  if (workloads.workloads.empty()) {
    for (const auto& r : check::all_rules()) {
      if (r.info.id.starts_with("K8S")) evidence.not_evaluated.emplace_back(r.info.id);
    }
    check::Location where;
    where.file = config_path;
    findings.push_back(check::make_finding(
        check::not_evaluated_rule(),
        "no Deployment, StatefulSet or DaemonSet in the manifests: the deployment rules (K8S001-K8S009) were "
        "not evaluated",
        std::move(where)));
  }
  for (const auto& d : workloads.diagnostics.entries()) diag.add(d);
  for (const auto& d : diag.entries()) {
    if (d.severity == config::Severity::Error) findings.push_back(config_finding(d));
  }

  const std::string report = check::render(format, findings, evidence);
  if (output.empty()) {
    std::fwrite(report.data(), 1, report.size(), stdout);
  } else {
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(report.data(), static_cast<std::streamsize>(report.size())) || !out.flush()) {
      std::fprintf(stderr, "phigate check: cannot write %s\n", output.c_str());
      return 2;
    }
  }
  const bool errors = std::any_of(findings.begin(), findings.end(), [](const check::Finding& f) {
    return f.severity == check::Severity::Error;
  });
  return errors ? 1 : 0;
}

}  // namespace phigate::cli
