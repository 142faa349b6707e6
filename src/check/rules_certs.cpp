// CR* rules: the served certificates (tls.default_certificate, tls.certificates, Ingress TLS
// Secrets). Safeguard (e)(1). Runtime scope looks at in-memory PEMs (Secrets) only; the CLI also
// reads certificate files. Parsed certificates are cached per process (x509_impl.hpp).
// None is enforceable (docs/check.md, "At run time"): a finding is about a Secret, which any
// namespace's Ingress may name for a host (failing that host's Ingresses for it would let one
// tenant fail another's closed); an RSA key under 2048 bits, a SHA-1 chain or a mismatched key is
// never served anyway (OpenSSL's security level refuses to load it: its hosts get the default
// certificate); a name mismatch is refused by every client; and failing closed on a date (CR001)
// turns a late renewal into a scheduled outage.
#include <ctime>

#include "phigate/check/check.hpp"
#include "x509_impl.hpp"

namespace phigate::check {
namespace {

constexpr std::string_view kNistCert = "SP 800-52r2 3.2.1; SP 800-66r2 5.3.5";

/// One served certificate: its PEM (files read in Cli scope), where it is written, what it serves.
struct Served {
  const config::CertificateSpec* spec = nullptr;
  std::string name;  // "Secret ns/name" or "tls.default_certificate" / "tls.certificates[i]"
  bool is_default = false;
  std::string text;  // the certificate PEM as read
  std::shared_ptr<const x509::Certs> certs;
  std::string cert_error;  // the file cannot be read
};

std::string cert_text(const View& v, const config::CertificateSpec& c, bool key, std::string& why) {
  const std::string& pem = key ? c.key_pem : c.cert_pem;
  if (!c.cert_pem.empty()) return pem;
  if (v.options.scope != Scope::Cli) return {};
  std::string out;
  if (!x509::read_file(key ? c.key : c.cert, out, why)) return {};
  return out;
}

template <class Fn>
void for_each_served(const View& v, Fn&& fn) {
  auto visit = [&](const config::CertificateSpec& c, std::string name, bool is_default) {
    // Runtime: in-memory PEMs only (a snapshot build reads no file).
    if (c.cert_pem.empty() && v.options.scope != Scope::Cli) return;
    Served s;
    s.spec = &c;
    s.name = c.resource.empty() ? std::move(name) : c.resource;
    s.is_default = is_default;
    std::string why;
    s.text = cert_text(v, c, false, why);
    if (!why.empty()) {
      s.cert_error = why;
    } else {
      s.certs = x509::parse_certs(s.text);
    }
    fn(s);
  };
  const auto& tls = v.config.tls;
  if (tls.default_certificate) visit(*tls.default_certificate, "tls.default_certificate", true);
  for (std::size_t i = 0; i < tls.certificates.size(); ++i) {
    visit(tls.certificates[i], "tls.certificates[" + std::to_string(i) + "]", false);
  }
}

const X509* leaf(const Served& s) {
  return s.certs && !s.certs->certs.empty() ? s.certs->certs.front().get() : nullptr;
}

Location where(const Served& s, const Context& ctx, bool key) {
  const auto& c = *s.spec;
  if (!c.resource.empty()) return ctx.object(c.resource, key ? "data.tls.key" : "data.tls.crt");
  Location loc = ctx.config_key(s.name + (key ? ".key" : ".cert"));
  if (loc.line == 0) loc.line = c.where.line;
  if (loc.file.empty()) loc.file = c.where.file;
  return loc;
}

/// "Secret ns/name (a.example, b.example)": how a message names the certificate.
std::string label(const Served& s) {
  std::string out = s.name;
  const auto& hosts = s.spec->hosts;
  if (!hosts.empty()) {
    out += " (";
    for (std::size_t i = 0; i < hosts.size() && i < 3; ++i) out += (i ? ", " : "") + hosts[i];
    if (hosts.size() > 3) out += ", +" + std::to_string(hosts.size() - 3);
    out += ")";
  }
  return out;
}

/// The certificate serves a PHI host: one of its hosts, a PHI host its names cover, or it is the
/// default certificate (served to every client whose SNI matches no other) while any host is PHI.
bool serves_phi(const Served& s, const View& v, const Context& ctx) {
  if (v.options.phi_hosts_all) return true;
  for (const auto& h : s.spec->hosts) {
    if (ctx.is_phi_host(h)) return true;
  }
  if (ctx.phi_hosts().empty()) return false;
  if (s.is_default) return true;
  if (const X509* x = leaf(s)) {
    for (const auto& h : ctx.phi_hosts()) {
      if (h != "*" && x509::covers(x, h)) return true;
    }
  }
  return false;
}

/// "leaf" or "chain certificate N" (1-based, as written in the PEM).
std::string position(std::size_t i) {
  return i == 0 ? "leaf" : "chain certificate " + std::to_string(i + 1);
}

/// The certificates a client checks: the leaf, and every chain certificate that is not a
/// self-signed trust anchor (whose own signature and validity no client relies on).
template <class Fn>
void for_each_checked(const Served& s, Fn&& fn) {
  if (!s.certs) return;
  for (std::size_t i = 0; i < s.certs->certs.size(); ++i) {
    const X509* x = s.certs->certs[i].get();
    if (i != 0 && x509::self_signed(x)) continue;
    fn(i, x);
  }
}

std::string utc_date(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (gmtime_r(&tt, &tm) == nullptr) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void cert_expiry(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const std::int64_t now = ctx.now();
  const std::int64_t window = static_cast<std::int64_t>(v.options.min_cert_days) * 86400;
  for_each_served(v, [&](const Served& s) {
    std::int64_t first = 0;
    std::size_t which = 0;
    bool found = false;
    for_each_checked(s, [&](std::size_t i, const X509* x) {
      std::int64_t t = 0;
      if (x509::not_after(x, t) && (!found || t < first)) {
        first = t;
        which = i;
        found = true;
      }
    });
    if (!found || first - now >= window) return;
    const bool phi = serves_phi(s, v, ctx);
    std::string msg = "certificate " + label(s) + ": " + position(which);
    Severity sev = Severity::Error;
    if (first <= now) {
      msg += " expired " + std::to_string((now - first) / 86400) + " days ago (" + utc_date(first) + ")";
    } else {
      msg += " expires in " + std::to_string((first - now + 86399) / 86400) + " days (" + utc_date(first) +
             "), under the " + std::to_string(v.options.min_cert_days) + " days asked";
      if (!phi) sev = Severity::Warning;
    }
    auto f = make_finding(info, std::move(msg), where(s, ctx, false));
    f.severity = sev;
    out.push_back(std::move(f));
  });
}

void weak_key(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for_each_served(v, [&](const Served& s) {
    std::string weak;
    for_each_checked(s, [&](std::size_t i, const X509* x) {
      std::string desc;
      if (x509::weak_public_key(x, desc)) weak += (weak.empty() ? "" : ", ") + position(i) + " " + desc;
    });
    if (weak.empty()) return;
    out.push_back(
        make_finding(info, "certificate " + label(s) + ": weak public key: " + weak, where(s, ctx, false)));
  });
}

void weak_signature(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for_each_served(v, [&](const Served& s) {
    std::string weak;
    for_each_checked(s, [&](std::size_t i, const X509* x) {
      std::string desc;
      if (x509::weak_signature(x, desc)) weak += (weak.empty() ? "" : ", ") + position(i) + " " + desc;
    });
    if (weak.empty()) return;
    out.push_back(make_finding(info, "certificate " + label(s) + ": signed with a broken digest: " + weak,
                               where(s, ctx, false)));
  });
}

void names_cover_hosts(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for_each_served(v, [&](const Served& s) {
    const X509* x = leaf(s);
    if (x == nullptr) return;
    for (const auto& h : s.spec->hosts) {
      if (x509::covers(x, h)) continue;
      out.push_back(make_finding(
          info, "certificate " + s.name + " does not name host " + h + " in its subjectAltName DNS names",
          where(s, ctx, false), h));
    }
  });
}

void usable_and_matching(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for_each_served(v, [&](const Served& s) {
    const std::string name = "certificate " + label(s);
    if (!s.cert_error.empty()) {
      out.push_back(make_finding(info, name + ": " + s.cert_error, where(s, ctx, false)));
      return;
    }
    if (!s.certs->error.empty()) {
      out.push_back(make_finding(info, name + ": " + s.certs->error, where(s, ctx, false)));
    } else if (s.certs->truncated) {
      out.push_back(make_finding(
          info, name + ": more than " + std::to_string(x509::kMostCerts) + " certificates in the chain",
          where(s, ctx, false)));
    }
    const X509* x = leaf(s);
    if (x == nullptr) return;
    std::string why;
    const std::string pem = cert_text(v, *s.spec, true, why);
    if (!why.empty()) {
      out.push_back(make_finding(info, name + ": key " + why, where(s, ctx, true)));
      return;
    }
    const auto key = x509::check_key(s.text, pem);
    if (!key->error.empty()) {
      out.push_back(make_finding(info, name + ": the key " + key->error, where(s, ctx, true)));
      return;
    }
    if (!key->matches) {
      out.push_back(make_finding(info, name + ": the private key does not belong to the leaf certificate",
                                 where(s, ctx, true)));
    }
  });
}

constexpr Rule kRules[] = {
    {{.id = "CR001",
      .name = "CertificateExpiry",
      .title = "A served certificate expires soon or has expired",
      .safeguard = Safeguard::Transmission,
      .hipaa = "164.312(e)(1)",
      .nist = kNistCert,
      .severity = Severity::Error,
      .remedy = "Renew the certificate (automate it, e.g. cert-manager) well before the expiry window",
      .runtime = true,
      .warning_off_phi = true},
     &cert_expiry},
    {{.id = "CR002",
      .name = "CertificateWeakKey",
      .title = "A served certificate has an RSA key under 2048 bits or an EC key under 256 bits",
      .safeguard = Safeguard::Transmission,
      .hipaa = "164.312(e)(1)",
      .nist = kNistCert,
      .severity = Severity::Error,
      .remedy = "Issue the certificate for an RSA 2048+ or EC P-256/P-384 key",
      .runtime = true},
     &weak_key},
    {{.id = "CR003",
      .name = "CertificateSha1Signature",
      .title = "A served certificate or chain certificate is signed with SHA-1 or MD5",
      .safeguard = Safeguard::Transmission,
      .hipaa = "164.312(e)(1)",
      .nist = kNistCert,
      .severity = Severity::Error,
      .remedy = "Reissue the certificate and its intermediates with SHA-256 or stronger signatures",
      .runtime = true},
     &weak_signature},
    {{.id = "CR004",
      .name = "CertificateNamesHost",
      .title = "A certificate's subjectAltNames do not cover a host it serves",
      .safeguard = Safeguard::Transmission,
      .hipaa = "164.312(e)(1)",
      .nist = kNistCert,
      .severity = Severity::Error,
      .remedy = "Reissue the certificate with every host of the Ingress's spec.tls[].hosts as a DNS SAN",
      .runtime = true},
     &names_cover_hosts},
    {{.id = "CR005",
      .name = "CertificateKeyMatch",
      .title = "A certificate or its key cannot be read, or the key does not match the certificate",
      .safeguard = Safeguard::Transmission,
      .hipaa = "164.312(e)(1)",
      .nist = "SP 800-52r2 3.2; SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy =
          "Put the certificate chain (leaf first) and its own unencrypted private key in the Secret or files",
      .runtime = true},
     &usable_and_matching},
};

}  // namespace

std::span<const Rule> certificate_rules() {
  return kRules;
}

}  // namespace phigate::check
