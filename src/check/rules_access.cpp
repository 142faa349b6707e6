// AC* rules: 45 CFR 164.312(a)(1) access control (AC004, the admin listener, is in rules_k8s.cpp:
// it needs the deployment manifests). Each rule: a RuleInfo row and a small function over the
// View (check.hpp).
#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "phigate/access/cidr.hpp"
#include "phigate/check/check.hpp"
#include "walk.hpp"

namespace phigate::check {
namespace {

using walk::for_each_path;
using walk::host_name;
using walk::owner;
using walk::policy_of;
using walk::serves;

using access::Address;
using config::PathSpec;
using config::RoutePolicy;

// --- address ranges --------------------------------------------------------------------------------

std::optional<access::Cidr> parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return access::parse_cidr(text);
}

/// What the union of `cidrs` covers entirely that an allowlist or a proxy list never should:
/// "every IPv4 address", "every global IPv6 address" (2000::/3), or "" (also for the trivially
/// complete splits such as 0.0.0.0/1 + 128.0.0.0/1, and IPv4-mapped IPv6 ranges such as
/// ::ffff:0:0/96: the access lists hold IPv4 in that form). `widest` is the index of the widest entry.
std::string covers_everyone(const std::vector<std::string>& cidrs, std::size_t& widest) {
  access::CidrSet set;
  unsigned best = 129;
  for (std::size_t i = 0; i < cidrs.size(); ++i) {
    const auto c = parse(cidrs[i]);
    if (!c) continue;
    set.add(*c);
    if (c->prefix < best) {
      best = c->prefix;
      widest = i;
    }
  }
  Address v4_lo{}, v4_hi{};
  v4_lo[10] = v4_lo[11] = 0xff;
  v4_hi = v4_lo;
  for (std::size_t i = 12; i < 16; ++i) v4_hi[i] = 0xff;
  if (set.covers(v4_lo, v4_hi)) return "every IPv4 address";
  Address v6_lo{}, v6_hi{};
  v6_lo[0] = 0x20;
  v6_hi.fill(0xff);
  v6_hi[0] = 0x3f;
  if (set.covers(v6_lo, v6_hi)) return "every global IPv6 address";
  return {};
}

/// A non-empty list that does not admit everyone.
bool restricts(const std::vector<std::string>& cidrs) {
  std::size_t widest = 0;
  return !cidrs.empty() && covers_everyone(cidrs, widest).empty();
}

// --- AC001 ---------------------------------------------------------------------------------------

/// The path admits only an allowlist, verified client certificates or authenticated users.
bool guarded(const View& v, const RoutePolicy& p) {
  if (restricts(v.config.allow_source_ranges) || restricts(p.allow_source_ranges)) return true;
  if (p.verify_client == config::VerifyClient::On) return true;
  const bool auth = p.basic_auth.enabled || p.external_auth.enabled;
  // satisfy: any with an allowlist that admits everyone: everyone skips the authentication.
  const bool bypassed = p.satisfy == config::Satisfy::Any && !p.allow_source_ranges.empty();
  return auth && !bypassed;
}

void phi_open(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (!ctx.is_phi_host(host) || guarded(v, pol) || !seen.insert({owner(p), host}).second) return;
    Location where;
    if (!pol.resource.empty()) {
      where = ctx.annotation(pol.resource, "allowlist-source-range");
    } else {
      where = ctx.path(p, rf.empty() ? std::string_view("spec.defaultBackend") : std::string_view(rf));
    }
    out.push_back(
        make_finding(info,
                     "PHI host " + host_name(host) + ": " + owner(p) +
                         " admits any client: no source allowlist, client certificate or authentication",
                     std::move(where), host));
  });
}

// --- AC002 ---------------------------------------------------------------------------------------

void allowlist_everyone(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  std::size_t widest = 0;
  if (const auto what = covers_everyone(v.config.allow_source_ranges, widest); !what.empty()) {
    out.push_back(make_finding(info, "access.allow admits " + what + ": it restricts nothing",
                               ctx.config_key("access.allow[" + std::to_string(widest) + "]")));
  }
  std::set<std::string> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (pol.allow_source_ranges.empty() || !seen.insert(owner(p)).second) return;
    std::size_t w = 0;
    const auto what = covers_everyone(pol.allow_source_ranges, w);
    if (what.empty()) return;
    Location where = pol.resource.empty() ? ctx.path(p, rf.empty() ? std::string_view("spec.defaultBackend")
                                                                   : std::string_view(rf))
                                          : ctx.annotation(pol.resource, "allowlist-source-range");
    out.push_back(make_finding(
        info,
        host_name(host) + ": the allowlist of " + owner(p) + " admits " + what +
            (pol.satisfy == config::Satisfy::Any ? " (and satisfy: any skips authentication)" : ""),
        std::move(where), host));
  });
}

// --- AC003 ---------------------------------------------------------------------------------------

bool mapped_v4(const access::Cidr& c) {
  if (c.prefix < 96) return false;
  for (std::size_t i = 0; i < 10; ++i) {
    if (c.network[i] != 0) return false;
  }
  return c.network[10] == 0xff && c.network[11] == 0xff;
}

void trusted_proxies_wide(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& list = v.config.trusted_proxies;
  std::size_t widest = 0;
  if (const auto what = covers_everyone(list, widest); !what.empty()) {
    out.push_back(make_finding(info,
                               "trusted_proxies covers " + what +
                                   ": any client can choose the address phigate acts on (X-Forwarded-For)",
                               ctx.config_key("trusted_proxies[" + std::to_string(widest) + "]")));
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto c = parse(list[i]);
    if (!c) continue;
    const bool v4 = mapped_v4(*c);
    if (v4 ? c->prefix - 96 >= 8 : c->prefix >= 32) continue;
    auto f = make_finding(info,
                          "trusted_proxies[" + std::to_string(i) + "] " + list[i] + " is wider than " +
                              (v4 ? "/8" : "/32") + ": clients in it can choose the address phigate acts on",
                          ctx.config_key("trusted_proxies[" + std::to_string(i) + "]"));
    f.severity = Severity::Warning;
    out.push_back(std::move(f));
  }
}

// --- AC005 ---------------------------------------------------------------------------------------

void catch_all_phi(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (!ctx.is_phi_host("")) return;
  std::set<std::string> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    if (!host.empty() || !seen.insert(owner(p) + (rf.empty() ? "#default" : "")).second) return;
    if (rf.empty()) {
      out.push_back(
          make_finding(info,
                       "the catch-all default backend of " + owner(p) +
                           " serves PHI to requests for any host name (no per-host TLS policy applies)",
                       ctx.path(p, "spec.defaultBackend"), "*"));
      return;
    }
    const auto& pol = policy_of(p);
    out.push_back(make_finding(info,
                               owner(p) + " serves PHI on a rule without host: every host name reaches it",
                               pol.resource.empty() ? ctx.path(p, rf.substr(0, rf.find('.')) + ".host")
                                                    : ctx.path(p, "spec.rules[].host"),
                               "*"));
  });
}

constexpr std::string_view kAc = "164.312(a)(1)";

const Rule kRules[] = {
    {{.id = "AC001",
      .name = "PhiHostOpenToAnyone",
      .title = "A PHI host admits any client",
      .safeguard = Safeguard::AccessControl,
      .hipaa = kAc,
      .nist = "SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "Add allowlist-source-range, auth-tls-verify-client \"on\", auth-type basic or auth-url to "
                "the Ingress",
      .runtime = true,
      .enforceable = true},
     &phi_open},
    {{.id = "AC002",
      .name = "AllowlistAdmitsEveryone",
      .title = "An allowlist admits every address (0.0.0.0/0, ::/0 or an equivalent union)",
      .safeguard = Safeguard::AccessControl,
      .hipaa = kAc,
      .nist = "SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "List only the networks that need access (an allowlist of everything restricts nothing)",
      .runtime = true,
      .enforceable = true},
     &allowlist_everyone},
    {{.id = "AC003",
      .name = "TrustedProxiesTooWide",
      .title = "trusted_proxies is so wide that clients can choose their address",
      .safeguard = Safeguard::AccessControl,
      .hipaa = kAc,
      .nist = "SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "List only the load balancers' own addresses in trusted_proxies",
      .runtime = true},
     &trusted_proxies_wide},
    {{.id = "AC005",
      .name = "CatchAllServesPhi",
      .title = "A catch-all (default backend or rule without host) serves PHI",
      .safeguard = Safeguard::AccessControl,
      .hipaa = kAc,
      .nist = "SP 800-66r2 5.3.1",
      .severity = Severity::Error,
      .remedy = "Serve PHI only on rules with an exact host; keep the default backend free of PHI",
      .runtime = true,
      .enforceable = true},
     &catch_all_phi},
};

}  // namespace

std::span<const Rule> access_rules() {
  return kRules;
}

}  // namespace phigate::check
