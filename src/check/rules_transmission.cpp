// TX* rules: 45 CFR 164.312(e)(1) transmission security. Each rule: a RuleInfo row and a small
// function over the View (check.hpp).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "phigate/check/check.hpp"
#include "phigate/core/host_map.hpp"
#include "phigate/tls/host_policy.hpp"
#include "walk.hpp"

namespace phigate::check {
namespace {

using walk::for_each_path;
using walk::host_name;
using walk::owner;
using walk::policy_of;
using walk::serves;

using config::BackendProtocol;
using config::PathSpec;
using config::RoutePolicy;

constexpr std::uint64_t kHstsYear = 31536000;

/// Where a per-path setting is written: the Ingress annotation, or the static route's key (its
/// path's line when the key is absent).
Location setting(const Context& ctx, const PathSpec& p, const std::string& route_field,
                 std::string_view annotation, std::string_view key) {
  const auto& pol = policy_of(p);
  if (!pol.resource.empty()) return ctx.annotation(pol.resource, annotation);
  if (route_field.empty()) return ctx.path(p, "spec.defaultBackend");
  auto loc = ctx.config_key(route_field + "." + std::string(key));
  if (loc.line == 0) loc.line = p.where.line;
  return loc;
}

/// Lowers `f` to a warning on a host that carries no PHI (the E/W rows of the plan).
Finding& lower_unless_phi(Finding& f, const Context& ctx, const std::string& host) {
  if (!ctx.is_phi_host(host)) f.severity = Severity::Warning;
  return f;
}

bool tls_backend(const RoutePolicy& p) {
  return p.backend_protocol == BackendProtocol::Https || p.backend_protocol == BackendProtocol::Grpcs;
}

/// Why `ciphers` on a scratch context admits a non-AEAD or non-forward-secret TLS <= 1.2 suite
/// (tls::insecure_cipher), or "" (also when OpenSSL refuses the list: a load error, not ours).
std::string cipher_problem_uncached(const std::string& ciphers, bool client) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(
      SSL_CTX_new(client ? TLS_client_method() : TLS_server_method()), SSL_CTX_free);
  if (!ctx || SSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
    ERR_clear_error();
    return {};
  }
  return tls::insecure_cipher(ctx.get());
}

/// cipher_problem_uncached, remembered per process: a snapshot build with thousands of Ingresses
/// naming a few distinct lists builds a few SSL_CTXs, not one per Ingress and build. Bounded: a
/// full cache is cleared (the lists come from the operator's configuration).
std::string cipher_problem(const std::string& ciphers, bool client) {
  if (ciphers.empty()) return {};
  static std::mutex mu;
  static std::unordered_map<std::string, std::string> cache;
  const std::string key = (client ? "c:" : "s:") + ciphers;
  {
    const std::lock_guard lock(mu);
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
  }
  auto verdict = cipher_problem_uncached(ciphers, client);
  const std::lock_guard lock(mu);
  if (cache.size() >= 1024) cache.clear();
  cache.emplace(key, verdict);
  return verdict;
}

bool legacy_version(std::string_view v) {
  return v == "TLSv1" || v == "TLSv1.1" || v == "SSLv3" || v == "SSLv2";
}

/// TLS 1.2 suites can be negotiated at all (min_version below 1.3).
bool tls12_possible(const config::Config& c) {
  return c.tls.min_version != "TLSv1.3";
}

/// Space-separated protocol list naming one below TLS 1.2.
std::string legacy_in(std::string_view protocols) {
  while (!protocols.empty()) {
    const auto sp = protocols.find(' ');
    const auto tok = protocols.substr(0, sp);
    if (legacy_version(tok)) return std::string(tok);
    if (sp == std::string_view::npos) break;
    protocols.remove_prefix(sp + 1);
  }
  return {};
}

/// Something that only loads because of tls.allow_insecure_tls: TLS below 1.2 or a weak client-facing
/// cipher list (TX001, TX002). Backend settings do not count: the flag does not govern them.
bool any_insecure_tls(const View& v) {
  const auto& c = v.config;
  if (legacy_version(c.tls.min_version)) return true;
  if (!tls12_possible(c)) return false;
  if (!cipher_problem(c.tls.ciphers, false).empty()) return true;
  bool found = false;
  std::set<std::string> seen;
  for_each_path(v, [&](const std::string&, const PathSpec& p, const std::string&) {
    const auto& pol = policy_of(p);
    if (!found && !pol.ssl_ciphers.empty() && seen.insert(pol.ssl_ciphers).second &&
        !cipher_problem(pol.ssl_ciphers, false).empty())
      found = true;
  });
  return found;
}

// --- TX001 ---------------------------------------------------------------------------------------

void tls_below_12(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& t = v.config.tls;
  if (!legacy_version(t.min_version)) return;
  out.push_back(make_finding(info,
                             "tls.min_version is " + t.min_version + ": clients may negotiate TLS below 1.2",
                             ctx.config_key("tls.min_version")));
}

// --- TX002 ---------------------------------------------------------------------------------------

void weak_ciphers(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& c = v.config;
  if (tls12_possible(c)) {
    if (const auto why = cipher_problem(c.tls.ciphers, false); !why.empty()) {
      out.push_back(make_finding(info, "tls.ciphers admits " + why, ctx.config_key("tls.ciphers")));
    }
  }
  std::set<std::pair<std::string, std::string>> seen;  // (resource, host) per setting
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (tls12_possible(c) && !pol.ssl_ciphers.empty() && seen.insert({"s" + owner(p), host}).second) {
      if (const auto why = cipher_problem(pol.ssl_ciphers, false); !why.empty()) {
        out.push_back(make_finding(info, host_name(host) + ": ssl-ciphers of " + owner(p) + " admits " + why,
                                   setting(ctx, p, rf, "ssl-ciphers", "ssl_ciphers"), host));
      }
    }
    if (tls_backend(pol) && pol.proxy_ssl_protocols != "TLSv1.3" && !pol.proxy_ssl_ciphers.empty() &&
        seen.insert({"b" + owner(p), host}).second) {
      if (const auto why = cipher_problem(pol.proxy_ssl_ciphers, true); !why.empty()) {
        auto f =
            make_finding(info, host_name(host) + ": the backend ciphers of " + owner(p) + " admit " + why,
                         setting(ctx, p, rf, "proxy-ssl-ciphers", "backend_tls.ciphers"), host);
        out.push_back(lower_unless_phi(f, ctx, host));
      }
    }
  });
}

// --- TX003 ---------------------------------------------------------------------------------------

void insecure_allowed_unused(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (!v.config.tls.allow_insecure_tls || any_insecure_tls(v)) return;
  out.push_back(make_finding(info,
                             "tls.allow_insecure_tls is true though nothing insecure is configured: a later "
                             "edit could weaken TLS without a load error",
                             ctx.config_key("tls.allow_insecure_tls")));
}

// --- TX004 ---------------------------------------------------------------------------------------

void plain_http(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  if (v.config.listeners.http.empty()) return;
  // A host where any path asks for client certificates is never served over plain HTTP
  // (proxy phase client-cert-needs-tls).
  std::set<std::string> cert_hosts;
  for (const auto& r : v.config.routes) {
    for (const auto& p : r.paths) {
      if (policy_of(p).verify_client != config::VerifyClient::Off) cert_hosts.insert(r.host);
    }
  }
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    // translate.cpp allows_plain_http: ssl-redirect "false" without force-ssl-redirect.
    if (pol.ssl_redirect || pol.force_ssl_redirect || pol.verify_client != config::VerifyClient::Off) return;
    if (cert_hosts.contains(host) || !seen.insert({owner(p), host}).second) return;
    auto f =
        make_finding(info,
                     host_name(host) + ": " + owner(p) +
                         " is served over plain HTTP without a redirect to HTTPS (ssl-redirect \"false\")",
                     setting(ctx, p, rf, "ssl-redirect", "ssl_redirect"), host);
    out.push_back(lower_unless_phi(f, ctx, host));
  });
}

// --- TX005 ---------------------------------------------------------------------------------------

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

/// A tls.hsts.disabled_hosts entry takes HSTS away from (part of) `host`: as proxy/phases.cpp
/// hsts_applies (exact, or "*.suffix" one label deeper), and a wildcard route host one of whose
/// names is listed.
bool hsts_off_for(const std::string& disabled, const std::string& host) {
  const auto d = lower(disabled);
  const auto h = lower(host);
  return core::host_matches(d, h) || (core::wildcard_suffix(h) && core::host_matches(h, d));
}

void hsts(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  const auto& c = v.config;
  const auto& h = c.tls.hsts;
  if (ctx.phi_hosts().empty() || c.listeners.https.empty()) return;
  const auto example =
      host_name(ctx.phi_hosts().front() == "*" && ctx.phi_hosts().size() > 1 ? ctx.phi_hosts()[1]
                                                                             : ctx.phi_hosts().front());
  if (!h.enabled) {
    out.push_back(
        make_finding(info,
                     "Strict-Transport-Security is off (tls.hsts.enabled: false) while PHI hosts such "
                     "as " +
                         example + " are served",
                     ctx.config_key("tls.hsts.enabled")));
    return;  // the per-host settings below change nothing while HSTS is off
  }
  if (h.max_age < kHstsYear) {
    out.push_back(make_finding(info,
                               "tls.hsts.max_age is " + std::to_string(h.max_age) +
                                   " seconds, under one year (31536000), while PHI hosts such as " + example +
                                   " are served",
                               ctx.config_key("tls.hsts.max_age")));
  }
  for (std::size_t i = 0; i < h.disabled_hosts.size(); ++i) {
    const auto& d = h.disabled_hosts[i];
    std::string hit;
    if (ctx.is_phi_host(lower(d))) {
      hit = lower(d);
    } else {
      for (const auto& r : c.routes) {
        if (ctx.is_phi_host(r.host) && hsts_off_for(d, r.host)) {
          hit = host_name(r.host);
          break;
        }
      }
    }
    if (hit.empty()) continue;
    out.push_back(make_finding(
        info, "tls.hsts.disabled_hosts lists " + d + ": PHI host " + hit + " is served without HSTS",
        ctx.config_key("tls.hsts.disabled_hosts[" + std::to_string(i) + "]"), hit));
  }
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    if (policy_of(p).hsts || !ctx.is_phi_host(host) || !seen.insert({owner(p), host}).second) return;
    out.push_back(make_finding(info,
                               "PHI host " + host_name(host) + ": " + owner(p) +
                                   " turns Strict-Transport-Security off (hsts \"false\")",
                               setting(ctx, p, rf, "hsts", "hsts"), host));
  });
}

// --- TX006 ---------------------------------------------------------------------------------------

void passthrough_phi(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  for (const auto& pt : v.passthrough) {
    if (!ctx.is_phi_host(pt.host)) continue;
    out.push_back(make_finding(info,
                               "PHI host " + host_name(pt.host) + ": " + pt.resource +
                                   " passes TLS through undecrypted (ssl-passthrough): no access list per "
                                   "request, no audit record, no HSTS",
                               ctx.annotation(pt.resource, "ssl-passthrough"), pt.host));
  }
}

// --- TX007 ---------------------------------------------------------------------------------------

void backend_in_clear(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  std::set<std::pair<std::string, std::string>> seen, auth_seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (!tls_backend(pol) && seen.insert({owner(p), host}).second) {
      const char* proto = pol.backend_protocol == BackendProtocol::Grpc ? "GRPC" : "HTTP";
      auto f = make_finding(
          info, host_name(host) + ": " + owner(p) + " sends requests to its backend in clear (" + proto + ")",
          setting(ctx, p, rf, "backend-protocol", "backend_protocol"), host);
      out.push_back(lower_unless_phi(f, ctx, host));
    }
    // The external-authentication subrequest carries the client's cookies and Authorization.
    const auto& ea = pol.external_auth;
    if (ea.enabled && !ea.https && auth_seen.insert({owner(p), host}).second) {
      auto where =
          ea.global ? ctx.config_key("ingress.global_auth.url") : setting(ctx, p, rf, "auth-url", "auth_url");
      auto f = make_finding(info,
                            host_name(host) + ": the authentication subrequests of " + owner(p) +
                                " go to their service in clear (auth-url http://)",
                            std::move(where), host);
      out.push_back(lower_unless_phi(f, ctx, host));
    }
  });
}

// --- TX008 ---------------------------------------------------------------------------------------

void backend_unverified(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (!tls_backend(pol) || pol.proxy_ssl_verify || !seen.insert({owner(p), host}).second) return;
    auto f =
        make_finding(info,
                     host_name(host) + ": " + owner(p) +
                         " does not verify its backend's certificate (proxy-ssl-verify \"off\"): anyone on "
                         "the path to the backend can intercept",
                     setting(ctx, p, rf, "proxy-ssl-verify", "backend_tls.verify"), host);
    out.push_back(lower_unless_phi(f, ctx, host));
  });
}

// --- TX009 ---------------------------------------------------------------------------------------

void backend_tls_below_12(const View& v, const RuleInfo& info, const Context& ctx, Sink& out) {
  std::set<std::pair<std::string, std::string>> seen;
  for_each_path(v, [&](const std::string& host, const PathSpec& p, const std::string& rf) {
    const auto& pol = policy_of(p);
    if (!tls_backend(pol)) return;
    const auto legacy = legacy_in(pol.proxy_ssl_protocols);
    if (legacy.empty() || !seen.insert({owner(p), host}).second) return;
    out.push_back(
        make_finding(info, host_name(host) + ": " + owner(p) + " lets its backend connection use " + legacy,
                     setting(ctx, p, rf, "proxy-ssl-protocols", "backend_tls.protocols"), host));
  });
}

constexpr std::string_view kTx = "164.312(e)(1)";

const Rule kRules[] = {
    {{.id = "TX001",
      .name = "TlsBelow12",
      .title = "TLS below 1.2 is accepted from clients",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-52r2 3.1; SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy = "Set tls.min_version to TLSv1.2 or TLSv1.3 and remove tls.allow_insecure_tls",
      .runtime = true},
     &tls_below_12},
    {{.id = "TX002",
      .name = "NonAeadOrNonPfsCiphers",
      .title = "A TLS 1.2 cipher list admits suites without AEAD or forward secrecy",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-52r2 3.3.1; SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy =
          "Use only ECDHE/DHE suites with AES-GCM or CHACHA20-POLY1305 (drop the cipher setting for the "
          "default list)",
      .runtime = true,
      .enforceable = true,
      .warning_off_phi = true},
     &weak_ciphers},
    {{.id = "TX003",
      .name = "InsecureTlsAllowed",
      .title = "tls.allow_insecure_tls is on though nothing needs it",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-52r2 3.1; SP 800-66r2 5.3.5",
      .severity = Severity::Warning,
      .remedy = "Remove tls.allow_insecure_tls so that weak TLS settings are refused at load",
      .runtime = true},
     &insecure_allowed_unused},
    {{.id = "TX004",
      .name = "PlainHttpWithoutRedirect",
      .title = "A host is served over plain HTTP without a redirect to HTTPS",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy =
          "Remove ssl-redirect: \"false\" (or set force-ssl-redirect: \"true\") so plain HTTP is redirected",
      .runtime = true,
      .enforceable = true,
      .warning_off_phi = true},
     &plain_http},
    {{.id = "TX005",
      .name = "HstsOnPhiHost",
      .title = "A PHI host is served without HSTS of at least one year",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy =
          "Keep tls.hsts.enabled with max_age >= 31536000, no PHI host in disabled_hosts, no hsts: \"false\"",
      .runtime = true,
      .enforceable = true},
     &hsts},
    {{.id = "TX006",
      .name = "PassthroughOnPhiHost",
      .title = "A PHI host uses TLS passthrough (cannot be audited or access-controlled per request)",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy =
          "Remove ssl-passthrough: let phigate terminate TLS and re-encrypt to the backend (backend-protocol "
          "HTTPS)",
      .runtime = true,
      .enforceable = true},
     &passthrough_phi},
    {{.id = "TX007",
      .name = "BackendInClear",
      .title = "Requests go to a backend (or an auth service) without TLS",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy = "Set backend-protocol HTTPS (or GRPCS) with proxy-ssl-secret and proxy-ssl-verify \"on\" "
                "(upstream.tls.require: phi enforces it)",
      .runtime = true,
      .enforceable = true,
      .warning_off_phi = true},
     &backend_in_clear},
    {{.id = "TX008",
      .name = "BackendNotVerified",
      .title = "A TLS backend's certificate is not verified",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy = "Remove proxy-ssl-verify: \"off\" and give the backend's CA in proxy-ssl-secret (ca.crt)",
      .runtime = true,
      .enforceable = true,
      .warning_off_phi = true},
     &backend_unverified},
    {{.id = "TX009",
      .name = "BackendTlsBelow12",
      .title = "A backend connection may use TLS below 1.2",
      .safeguard = Safeguard::Transmission,
      .hipaa = kTx,
      .nist = "SP 800-52r2 4.1; SP 800-66r2 5.3.5",
      .severity = Severity::Error,
      .remedy = "Set proxy-ssl-protocols to \"TLSv1.2 TLSv1.3\" (or leave it unset)",
      .runtime = true,
      .enforceable = true},
     &backend_tls_below_12},
};

}  // namespace

std::span<const Rule> transmission_rules() {
  return kRules;
}

}  // namespace phigate::check
