// IN* rules: 45 CFR 164.312(c)(1) integrity. Each rule: a RuleInfo row and a small function over
// the View (check.hpp); IN001 and IN003 are built in (no function, evidence only).
#include <set>
#include <string>
#include <utility>

#include "phigate/check/check.hpp"
#include "walk.hpp"

namespace phigate::check {
namespace {

using walk::for_each_path;
using walk::host_name;
using walk::owner;
using walk::policy_of;
using walk::serves;

using config::PathSpec;
using config::RoutePolicy;

Location path_place(const Context& ctx, const PathSpec& p, const std::string& rf,
                    std::string_view annotation) {
  const auto& pol = policy_of(p);
  if (!pol.resource.empty()) return ctx.annotation(pol.resource, annotation);
  return ctx.path(p, rf.empty() ? std::string_view("spec.defaultBackend") : std::string_view(rf));
}

// --- IN002 ---------------------------------------------------------------------------------------

void body_limit_off(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto global = v.config.limits.request_body_bytes;
  std::set<std::pair<std::string, std::string>> seen;
  std::set<std::string> global_hosts;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (pol.body_size) {
      // proxy-body-size "0": unlimited, asked for explicitly (on any host).
      if (*pol.body_size != 0 || !seen.insert({owner(p), host}).second) return;
      out.push_back(make_finding(
          info,
          host_name(host) + ": " + owner(p) + " accepts request bodies of any size (proxy-body-size \"0\")",
          path_place(ctx, p, rf, "proxy-body-size"), host));
      return;
    }
    if (global == 0 && ctx.is_phi_host(host)) global_hosts.insert(host);
  });
  for (const auto& host : global_hosts) {
    out.push_back(
        make_finding(info,
                     "PHI host " + host_name(host) +
                         " accepts request bodies of any size (limits.request_body_bytes is unlimited)",
                     ctx.config_key("limits.request_body_bytes"), host));
  }
}

// --- IN004 ---------------------------------------------------------------------------------------

void no_health_checks(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (v.config.upstream.health_active.enabled) return;
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (pol.health_check_path || !ctx.is_phi_host(host) || !seen.insert({owner(p), host}).second) return;
    out.push_back(make_finding(info,
                               "PHI host " + host_name(host) + ": the backends of " + owner(p) +
                                   " have no active health check (a failing backend keeps getting requests "
                                   "until passive checks eject it)",
                               path_place(ctx, p, rf, "health-check-path"), host));
  });
}

// --- IN005 ---------------------------------------------------------------------------------------

void no_waf(const View&, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (ctx.phi_hosts().empty()) return;
  out.push_back(make_finding(info,
                             "no web application firewall inspects requests to the " +
                                 std::to_string(ctx.phi_hosts().size()) +
                                 " PHI host(s): phigate has none yet",
                             Location{}));
}

constexpr std::string_view kIn = "164.312(c)(1)";

const Rule kRules[] = {
    {{.id = "IN001",
      .name = "StrictHttpParsing",
      .title = "HTTP/1.1 requests are parsed strictly",
      .safeguard = Safeguard::Integrity,
      .hipaa = kIn,
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Info,
      .remedy = "Nothing to do: not configurable",
      .runtime = true,
      .built_in =
          "HTTP/1.1 is parsed by llhttp with none of its lenient flags (src/http/parser.cpp calls no "
          "llhttp_set_lenient_*): a request with both Content-Length and Transfer-Encoding, "
          "Transfer-Encoding in HTTP/1.0, an invalid header character or an unknown version is refused "
          "(400), so phigate and the backend cannot read one request two ways"},
     nullptr},
    {{.id = "IN002",
      .name = "BodyLimitOff",
      .title = "Request bodies of any size are accepted",
      .safeguard = Safeguard::Integrity,
      .hipaa = kIn,
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Warning,
      .remedy = "Set limits.request_body_bytes (e.g. 8m) and no proxy-body-size \"0\"",
      .runtime = true},
     &body_limit_off},
    {{.id = "IN003",
      .name = "NoPathLeniency",
      .title = "Path parameters, backslashes and dot segments cannot bypass routing",
      .safeguard = Safeguard::Integrity,
      .hipaa = kIn,
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Info,
      .remedy = "Nothing to do: not configurable",
      .runtime = true,
      .built_in =
          "src/http/path.cpp refuses '\\' and encoded '/' or '\\' in a path, a fragment, '..' above the "
          "root and dot segments with ;parameters ('..;'); other dot segments are resolved after "
          "decoding, and routing matches the path with each segment's ;parameters stripped (as "
          "Tomcat and Spring read it), so a path cannot reach a route it is not matched by"},
     nullptr},
    {{.id = "IN004",
      .name = "NoHealthChecksOnPhiBackend",
      .title = "A PHI backend has no active health check",
      .safeguard = Safeguard::Integrity,
      .hipaa = kIn,
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Warning,
      .remedy = "Set phigate.io/health-check-path on the Ingress (or upstream.health.active in the config)",
      .runtime = true},
     &no_health_checks},
    {{.id = "IN005",
      .name = "NoWaf",
      .title = "No web application firewall on PHI hosts",
      .safeguard = Safeguard::Integrity,
      .hipaa = kIn,
      .nist = "SP 800-66r2 5.3.3",
      .severity = Severity::Info,
      .remedy = "None yet: phigate has no WAF; put one in front or accept the risk in the assessment",
      .runtime = true},
     &no_waf},
};

}  // namespace

std::span<const Rule> integrity_rules() {
  return kRules;
}

}  // namespace phigate::check
