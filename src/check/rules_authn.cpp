// PA* rules: person or entity authentication, 164.312(d). Client certificates (auth-tls-*) and
// basic authentication (auth-type: basic) of each Ingress. A message never names a user or a hash.
#include <algorithm>
#include <map>
#include <set>

#include "phigate/check/check.hpp"
#include "walk.hpp"
#include "x509_impl.hpp"

namespace phigate::check {
namespace {

/// One Ingress as its serving paths see it: its policy (every path of an Ingress carries the same
/// annotations), the hosts it serves and whether one of them carries PHI. Paths already failing
/// closed serve nothing and are left out.
struct Served {
  const config::RoutePolicy* policy = nullptr;
  std::vector<std::string> hosts;
  bool phi = false;
};

std::vector<Served> by_ingress(const View& v, const Context& ctx) {
  std::vector<Served> out;
  std::map<std::string, std::size_t, std::less<>> index;
  auto add = [&](const std::string& host, const config::PathSpec& p) {
    const auto* pol = p.policy.get();
    if (pol == nullptr || !pol->fail_closed.empty() || pol->resource.empty()) return;
    auto [it, fresh] = index.try_emplace(pol->resource, out.size());
    if (fresh) out.push_back(Served{pol, {}, false});
    auto& s = out[it->second];
    if (std::find(s.hosts.begin(), s.hosts.end(), host) == s.hosts.end()) s.hosts.push_back(host);
    s.phi = s.phi || ctx.is_phi_host(host);
  };
  walk::for_each_path(
      v, [&](const std::string& host, const config::PathSpec& p, const std::string&) { add(host, p); });
  return out;
}

std::string_view shown(const std::string& host) {
  return host.empty() ? std::string_view{"*"} : std::string_view{host};
}

bool verifies_with_ca(config::VerifyClient m) {
  return m == config::VerifyClient::On || m == config::VerifyClient::Optional;
}

void optional_client_certs(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for (const auto& s : by_ingress(v, ctx)) {
    const auto m = s.policy->verify_client;
    if (m != config::VerifyClient::Optional && m != config::VerifyClient::OptionalNoCa) continue;
    for (const auto& h : s.hosts) {
      if (!ctx.is_phi_host(h)) continue;
      out.push_back(make_finding(
          info,
          "PHI host " + std::string(shown(h)) + " of " + s.policy->resource + " accepts clients without " +
              (m == config::VerifyClient::Optional ? "a certificate (optional)"
                                                   : "a verified certificate (optional_no_ca)"),
          ctx.annotation(s.policy->resource, "auth-tls-verify-client"), h));
    }
  }
}

void public_client_ca(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  bool told_missing = false;
  for (const auto& s : by_ingress(v, ctx)) {
    const auto& p = *s.policy;
    if (!verifies_with_ca(p.verify_client) || p.auth_tls_ca_pem.empty()) continue;
    const auto certs = x509::parse_certs(p.auth_tls_ca_pem);
    const std::string host = s.hosts.empty() ? std::string() : s.hosts.front();
    const std::string what = "client CA bundle of Secret " + p.auth_tls_secret + " (" + p.resource + ")";
    // The system bundle is a file: the CLI reads it (once per process); a snapshot build does not.
    std::shared_ptr<const std::set<x509::Digest>> web;
    if (v.options.scope == Scope::Cli) {
      web = x509::system_bundle(v.options.system_ca_bundle);
      if (!web && !told_missing) {
        told_missing = true;
        auto f = make_finding(info,
                              "public CA bundle " + v.options.system_ca_bundle +
                                  " cannot be read: client CAs were only counted, not compared with it",
                              ctx.config_key("check.system_ca_bundle"));
        f.severity = Severity::Info;
        out.push_back(std::move(f));
      }
    }
    std::size_t public_cas = 0;
    if (web) {
      for (const auto& fp : certs->fingerprints) public_cas += web->contains(fp) ? 1 : 0;
    }
    const auto where = ctx.annotation(p.resource, "auth-tls-secret");
    if (public_cas > 0) {
      out.push_back(make_finding(info,
                                 what + " holds " + std::to_string(public_cas) +
                                     " public web CA certificate(s): anyone can obtain a client certificate",
                                 where, host));
    } else if (certs->certs.size() > v.options.public_ca_count) {
      auto f = make_finding(info,
                            what + " holds " + std::to_string(certs->certs.size()) +
                                " CA certificates (over " + std::to_string(v.options.public_ca_count) +
                                "): it looks like a copied web CA bundle",
                            where, host);
      f.severity = Severity::Warning;
      out.push_back(std::move(f));
    }
  }
}

void client_ca_without_crl(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for (const auto& s : by_ingress(v, ctx)) {
    const auto& p = *s.policy;
    if (!verifies_with_ca(p.verify_client) || !p.auth_tls_crl_pem.empty()) continue;
    out.push_back(make_finding(info,
                               "client CA of Secret " + p.auth_tls_secret + " (" + p.resource +
                                   ") has no CRL (ca.crl): a revoked client certificate is still accepted",
                               ctx.annotation(p.resource, "auth-tls-secret"),
                               s.hosts.empty() ? std::string() : s.hosts.front()));
  }
}

bool crypt_chars(std::string_view h) {
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
  });
}

/// bcrypt below this cost is weak: SP 800-63B asks for a cost as high as verification allows, and
/// OWASP's floor is 10 (htpasswd -B writes 5 unless given -C).
constexpr int kLeastBcryptCost = 10;

/// The scheme of an htpasswd hash; "" for bcrypt ($2a$, $2b$, $2y$) of cost kLeastBcryptCost or more,
/// the only one accepted. A bcrypt hash without a two-digit cost counts as a cheap one (the loader
/// refuses it anyway).
std::string_view htpasswd_weak_class(std::string_view h) {
  if (h.size() > 4 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
      h[3] == '$') {
    const bool digits =
        h.size() > 6 && h[4] >= '0' && h[4] <= '9' && h[5] >= '0' && h[5] <= '9' && h[6] == '$';
    if (digits && (h[4] - '0') * 10 + (h[5] - '0') >= kLeastBcryptCost) return {};
    return "bcrypt cost < 10";
  }
  if (h.starts_with("$2x$")) return "bcrypt $2x$";
  if (h.starts_with("{SHA}")) return "{SHA}";
  if (h.starts_with("$apr1$")) return "apr1";
  if (h.starts_with("$1$")) return "md5-crypt";
  if (h.starts_with("$5$")) return "sha256-crypt";
  if (h.starts_with("$6$")) return "sha512-crypt";
  if (h.starts_with("$")) return "other";
  if (h.size() == 13 && crypt_chars(h)) return "crypt";
  return "plain text";
}

void weak_htpasswd(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for (const auto& s : by_ingress(v, ctx)) {
    const auto& b = s.policy->basic_auth;
    if (!b.enabled || !b.users || b.users->empty()) continue;
    std::map<std::string_view, std::size_t> classes;
    std::size_t weak = 0;
    for (const auto& u : *b.users) {
      const auto c = htpasswd_weak_class(u.hash);
      if (c.empty()) continue;
      ++classes[c];
      ++weak;
    }
    if (weak == 0) continue;
    std::string counts;
    for (const auto& [c, n] : classes)
      counts += (counts.empty() ? "" : ", ") + std::string(c) + ": " + std::to_string(n);
    auto f = make_finding(
        info,
        std::to_string(weak) + " of " + std::to_string(b.users->size()) + " users of Secret " + b.secret +
            " (" + s.policy->resource + ") have weak password hashes (" + counts + ")",
        ctx.annotation(s.policy->resource, "auth-secret"), s.hosts.empty() ? std::string() : s.hosts.front());
    if (!s.phi) f.severity = Severity::Warning;
    out.push_back(std::move(f));
  }
}

constexpr std::string_view kNistClient = "SP 800-52r2 3.5; SP 800-66r2 5.3.4";

constexpr Rule kRules[] = {
    {{.id = "PA001",
      .name = "OptionalClientCertificate",
      .title = "A PHI host accepts clients without a verified certificate (auth-tls-verify-client optional)",
      .safeguard = Safeguard::Authentication,
      .hipaa = "164.312(d)",
      .nist = kNistClient,
      .severity = Severity::Error,
      .remedy = "Set auth-tls-verify-client: \"on\" on Ingresses of PHI hosts",
      .runtime = true,
      .enforceable = true},
     &optional_client_certs},
    {{.id = "PA002",
      .name = "PublicClientCa",
      .title = "The client CA bundle is (or looks like) a public web CA bundle",
      .safeguard = Safeguard::Authentication,
      .hipaa = "164.312(d)",
      .nist = "SP 800-52r2 3.5.2; SP 800-66r2 5.3.4",
      .severity = Severity::Error,
      .remedy = "Put only your private client CA in the auth-tls-secret's ca.crt, never a web CA bundle",
      .runtime = true,
      .enforceable = true},
     &public_client_ca},
    {{.id = "PA003",
      .name = "ClientCaWithoutCrl",
      .title = "Client certificates are verified without a CRL",
      .safeguard = Safeguard::Authentication,
      .hipaa = "164.312(d)",
      .nist = "SP 800-52r2 3.2.2; SP 800-66r2 5.3.4",
      .severity = Severity::Warning,
      .remedy = "Add the client CA's CRL as ca.crl to the auth-tls-secret and keep it current",
      .runtime = true},
     &client_ca_without_crl},
    {{.id = "PA004",
      .name = "WeakPasswordHash",
      .title =
          "Basic authentication users with weak password hashes (anything but bcrypt of cost 10 or more)",
      .safeguard = Safeguard::Authentication,
      .hipaa = "164.312(d)",
      .nist = "SP 800-63B (2017) 5.1.1.2; SP 800-66r2 5.3.4",
      .severity = Severity::Error,
      .remedy = "Recreate the users with htpasswd -B -C 10 (bcrypt, cost 10 to 12) in the auth-secret",
      .runtime = true,
      .enforceable = true,
      .warning_off_phi = true},
     &weak_htpasswd},
};

}  // namespace

std::span<const Rule> authentication_rules() {
  return kRules;
}

}  // namespace phigate::check
