#include "phigate/compile/policy.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "phigate/core/host_port.hpp"

namespace phigate::compile {

namespace {

/// Replaces `p`'s policy by a copy marked fail-closed (503) with `why` (no PHI: names and reasons).
void fail_path(config::PathSpec& p, const std::string& why) {
  auto copy =
      p.policy ? std::make_shared<config::RoutePolicy>(*p.policy) : std::make_shared<config::RoutePolicy>();
  copy->fail_closed = why;
  p.policy = std::move(copy);
}

/// TLS to the backends, one slot per path in route order then the default backend (the clusters'
/// order): HTTPS backends get their client context compiled here, once per distinct setting, so
/// that `validate` reports what `run` would; a setting that does not compile fails its path closed
/// (never plain). upstream.tls.require makes plain HTTP, or TLS without verification, to a path's
/// backends a fail-closed error naming the Ingress and field. Unverified TLS is a warning.
void backend_tls(CompiledPolicy& out, config::Diagnostics& diag) {
  using Require = config::UpstreamSpec::RequireTls;
  const auto require = out.config.upstream.require_tls;
  std::unordered_map<std::string, std::shared_ptr<const upstream::BackendTls>> built;
  const auto add = [&](config::PathSpec& p) {
    std::shared_ptr<const upstream::BackendTls> slot;
    const auto* pol = p.policy.get();
    const bool ingress = pol != nullptr && !pol->resource.empty();
    const std::string resource = pol != nullptr ? pol->resource : "";
    const auto field = [&](const char* annotation, const char* key) {
      return ingress ? std::string("metadata.annotations.") + annotation : std::string(key);
    };
    const bool required = require == Require::All || (require == Require::Phi && pol != nullptr && pol->phi);
    const char* why_required = require == Require::All
                                   ? "upstream.tls.require is all"
                                   : "upstream.tls.require is phi and the path carries PHI";
    if (pol != nullptr && !pol->fail_closed.empty()) {
      out.backend_tls.push_back(nullptr);
      return;
    }
    // GRPCS is TLS to the backend exactly as HTTPS is (same checks), plus ALPN h2 only.
    const bool tls = pol != nullptr && (pol->backend_protocol == config::BackendProtocol::Https ||
                                        pol->backend_protocol == config::BackendProtocol::Grpcs);
    if (!tls) {
      if (required) {
        diag.error(p.where.file, p.where.line, field("backend-protocol", "backend_tls"),
                   std::string("plain HTTP to the backend, but ") + why_required +
                       ": failing closed (503); set backend-protocol HTTPS or GRPCS (or backend_tls:)",
                   resource);
        fail_path(p, "plain HTTP backend where upstream.tls.require demands TLS");
      }
      out.backend_tls.push_back(nullptr);
      return;
    }
    upstream::BackendTlsSpec spec;
    spec.ca_pem = pol->proxy_ssl_ca_pem;
    spec.cert_pem = pol->proxy_ssl_cert_pem;
    spec.key_pem = pol->proxy_ssl_key_pem;
    spec.server_name = pol->proxy_ssl_server_name;
    spec.verify = pol->proxy_ssl_verify;
    spec.verify_depth = pol->proxy_ssl_verify_depth;
    spec.protocols = pol->proxy_ssl_protocols;
    spec.ciphers = pol->proxy_ssl_ciphers;
    spec.verify_name = pol->proxy_ssl_name;
    spec.alpn_h2 = pol->backend_protocol == config::BackendProtocol::Grpcs;
    if (spec.verify_name.empty()) spec.verify_name = p.service_host;
    if (spec.verify_name.empty()) {
      // A static route: the backends' host, when they share one.
      for (const auto& b : p.backends) {
        std::string host;
        std::uint16_t port = 0;
        if (!core::split_host_port(b, host, port)) continue;
        if (spec.verify_name.empty()) {
          spec.verify_name = host;
        } else if (spec.verify_name != host) {
          spec.verify_name.clear();
          break;
        }
      }
    }
    std::string problem;
    if (required && !spec.verify) {
      problem = std::string("proxy-ssl-verify is off, but ") + why_required +
                ": an unverified backend could be anyone on the path";
    } else if (spec.verify && spec.verify_name.empty()) {
      problem = "no name to check the backend's certificate against: set the name (proxy-ssl-name)";
    } else {
      const auto id = upstream::BackendTls::identity_of(spec);
      auto& cached = built[id];
      if (!cached) {
        auto r = upstream::BackendTls::build(spec);
        if (r) {
          cached = std::move(r.value());
        } else {
          problem = "invalid TLS settings for the backend: " + r.error().context;
        }
      }
      slot = cached;
    }
    if (!problem.empty()) {
      diag.error(p.where.file, p.where.line,
                 required && !spec.verify ? field("proxy-ssl-verify", "backend_tls.verify")
                                          : field("proxy-ssl-secret", "backend_tls"),
                 problem + ": failing closed (503)", resource);
      fail_path(p, "invalid TLS to the backend");
      out.backend_tls.push_back(nullptr);
      return;
    }
    if (!spec.verify) {
      diag.warning(p.where.file, p.where.line, field("proxy-ssl-verify", "backend_tls.verify"),
                   "the backend's certificate is not verified (proxy-ssl-verify off): anyone between phigate "
                   "and the backend can read and change the traffic",
                   resource);
    }
    out.backend_tls.push_back(std::move(slot));
  };
  for (auto& r : out.config.routes) {
    for (auto& p : r.paths) add(p);
  }
  if (out.config.default_backend) add(*out.config.default_backend);
  // Attached canaries, in route order, after the default backend (RouteTable's canary_target). A
  // canary whose TLS to its backends cannot be set up is detached: it gets no traffic, its main
  // is untouched.
  for (auto& r : out.config.routes) {
    for (auto& p : r.paths) {
      if (!p.canary) continue;
      auto canary = *p.canary;
      add(canary);
      if (canary.policy == nullptr || canary.policy->fail_closed.empty()) continue;
      out.backend_tls.pop_back();
      diag.warning(canary.where.file, canary.where.line, "metadata.annotations",
                   "the canary's TLS to its backends cannot be set up: the canary is detached (no traffic; "
                   "its main serves every request)",
                   canary.policy->resource);
      p.canary = nullptr;
    }
  }
  // Error backends (default-backend), in route order, after the canaries (Route::error_target).
  // One whose TLS policy cannot be met (upstream.tls.require) is detached: error pages are then
  // phigate's own answers, and an intercepted backend answer is still never let through.
  for (auto& r : out.config.routes) {
    for (auto& p : r.paths) {
      if (!p.error_backend) continue;
      auto eb = *p.error_backend;
      add(eb);
      if (eb.policy == nullptr || eb.policy->fail_closed.empty() ||
          (p.policy != nullptr && !p.policy->fail_closed.empty()))
        continue;
      out.backend_tls.pop_back();
      diag.warning(eb.where.file, eb.where.line, "metadata.annotations.default-backend",
                   "the error backend cannot be used (" + eb.policy->fail_closed +
                       "): error pages are phigate's own answers",
                   eb.policy->resource);
      p.error_backend = nullptr;
    }
  }
  // External-authentication Services (auth-url), in route order then the default backend, after
  // the error backends (Snapshot::auth_clusters). One whose TLS cannot be set up (or that
  // upstream.tls.require refuses) fails its path closed: a path is never served without its check.
  const auto add_auth = [&](config::PathSpec& p) {
    if (!p.auth_backend) return;
    auto ab = *p.auth_backend;
    add(ab);
    if (ab.policy == nullptr || ab.policy->fail_closed.empty() ||
        (p.policy != nullptr && !p.policy->fail_closed.empty()))
      return;
    fail_path(p, "auth-url: " + ab.policy->fail_closed);
  };
  for (auto& r : out.config.routes) {
    for (auto& p : r.paths) add_auth(p);
  }
  if (out.config.default_backend) add_auth(*out.config.default_backend);
}

/// client-body-buffer-size over limits.request_buffer_bytes is capped there (the proxy takes the
/// smaller): said once per Ingress, since its owner may count on the larger bound.
void request_buffer_caps(const CompiledPolicy& out, config::Diagnostics& diag) {
  const auto cap = out.config.limits.request_buffer_bytes;
  std::unordered_set<const config::RoutePolicy*> seen;
  for (const auto& r : out.config.routes) {
    for (const auto& p : r.paths) {
      const auto* pol = p.policy.get();
      if (pol == nullptr || !pol->request_buffering || !pol->body_buffer_bytes ||
          *pol->body_buffer_bytes <= cap || !seen.insert(pol).second)
        continue;
      diag.warning(p.where.file, p.where.line, "metadata.annotations.client-body-buffer-size",
                   std::to_string(*pol->body_buffer_bytes) +
                       " bytes is over limits.request_buffer_bytes: capped to " + std::to_string(cap) +
                       " (larger bodies get 413)",
                   pol->resource);
    }
  }
}

/// Client-certificate and cipher settings are per host (ingress-nginx applies them to the server
/// block): the first Ingress in precedence order that sets them for a host decides. A later one
/// asking for different settings on that host fails closed rather than being served under
/// someone else's client-certificate policy; a host whose settings do not compile fails closed
/// as a whole (its paths answer 503), never open.
tls::ServerContexts::HostPolicies host_tls_policies(config::Config& config, config::Diagnostics& diag) {
  struct Entry {
    tls::HostTlsSpec spec;
    const config::RoutePolicy* owner;
    config::SourceRef where;  // the first path that asked: diagnostics name its manifest
  };
  std::unordered_map<std::string, Entry> hosts;
  std::vector<std::string> order;
  const auto spec_of = [](const std::string& host, const config::RoutePolicy& pol) {
    tls::HostTlsSpec s;
    s.host = host;
    s.verify = pol.verify_client;
    s.verify_depth = pol.auth_tls_verify_depth;
    s.ca_pem = pol.auth_tls_ca_pem;
    s.crl_pem = pol.auth_tls_crl_pem;
    s.ciphers = pol.ssl_ciphers;
    s.resource = pol.resource;
    return s;
  };
  const auto same = [](const tls::HostTlsSpec& a, const tls::HostTlsSpec& b) {
    return a.verify == b.verify && a.verify_depth == b.verify_depth && a.ca_pem == b.ca_pem &&
           a.crl_pem == b.crl_pem && a.ciphers == b.ciphers;
  };
  for (auto& r : config.routes) {
    if (r.host.empty() || r.host == "*") continue;
    for (auto& p : r.paths) {
      const auto* pol = p.policy.get();
      if (pol == nullptr || !pol->fail_closed.empty()) continue;
      if (pol->verify_client == config::VerifyClient::Off && pol->ssl_ciphers.empty()) continue;
      auto spec = spec_of(r.host, *pol);
      auto [it, inserted] = hosts.try_emplace(r.host, Entry{spec, pol, p.where});
      if (inserted) {
        order.push_back(r.host);
      } else if (it->second.owner != pol && !same(it->second.spec, spec)) {
        diag.error(p.where.file, p.where.line, "metadata.annotations",
                   "host " + r.host + " already has client-certificate/cipher settings from " +
                       it->second.spec.resource + ": failing closed (503)",
                   pol->resource);
        fail_path(p, "conflicting TLS settings for host " + r.host);
      }
    }
  }
  tls::ServerContexts::HostPolicies out;
  std::unordered_map<std::string, std::string> broken;  // host → why
  for (const auto& host : order) {
    auto& e = hosts.at(host);
    std::string error;
    auto compiled = tls::HostPolicy::compile(e.spec, config.tls.allow_insecure_tls, error);
    if (!compiled) {
      // Named after the manifest of the Ingress that set it (not the config file): the same line
      // whether validate is given the config file or the manifest folder alone.
      diag.error(e.where.file, e.where.line, "metadata.annotations",
                 "host " + host + ": " + error + ": failing closed (503)", e.spec.resource);
      broken.emplace(host, error);
      continue;
    }
    out.emplace_back(host, std::move(compiled));
  }
  if (broken.empty()) return out;
  std::unordered_set<std::string> own;  // hosts with a compiled policy of their own
  for (const auto& hp : out) own.insert(hp.first);
  for (auto& r : config.routes) {
    auto it = broken.find(r.host);
    // A host under a broken "*.suffix" (one label, as ServerContexts::policy_for) with no
    // policy of its own would fall back to none, i.e. be served without the client
    // certificates the wildcard asks of every name under it: it fails closed with it.
    if (it == broken.end() && !r.host.empty() && r.host.front() != '*' && own.count(r.host) == 0) {
      if (const auto dot = r.host.find('.'); dot != std::string::npos && dot > 0) {
        std::string wildcard = "*";
        wildcard.append(r.host, dot, std::string::npos);
        it = broken.find(wildcard);
        if (it != broken.end() && !r.paths.empty()) {
          const auto* pol = r.paths.front().policy.get();
          diag.error(r.where.file, r.where.line, "host",
                     "host " + r.host + " relies on the TLS settings of " + it->first +
                         ", which are invalid: failing closed (503)",
                     pol != nullptr ? pol->resource : "");
        }
      }
    }
    if (it == broken.end()) continue;
    for (auto& p : r.paths) {
      if (p.policy == nullptr || p.policy->fail_closed.empty())
        fail_path(p, "invalid TLS settings for host " + it->first);
    }
  }
  return out;
}

void add_cidrs(const std::vector<std::string>& cidrs, access::CidrSet& into, const config::SourceRef& where,
               const std::string& field, const std::string& resource, config::Diagnostics& diag) {
  for (const auto& text : cidrs) {
    if (auto c = access::parse_cidr(text)) {
      into.add(*c);
    } else {
      diag.error(where.file, where.line, field, "invalid CIDR '" + text + "'", resource);
    }
  }
}

/// Source allow/deny lists, compiled once per policy (an Ingress's paths share one), one slot per
/// path in route order then the default backend: the route table's target order.
void access_lists(CompiledPolicy& out, config::Diagnostics& diag) {
  std::unordered_map<const config::RoutePolicy*, std::shared_ptr<const access::AccessList>> compiled;
  const auto add = [&](const config::PathSpec& p) {
    const auto* pol = p.policy.get();
    std::shared_ptr<const access::AccessList> acl;
    if (pol != nullptr && (!pol->allow_source_ranges.empty() || !pol->deny_source_ranges.empty())) {
      auto& slot = compiled[pol];
      if (!slot) {
        auto list = std::make_shared<access::AccessList>();
        add_cidrs(pol->allow_source_ranges, list->allow, p.where, "allowlist-source-range", pol->resource,
                  diag);
        add_cidrs(pol->deny_source_ranges, list->deny, p.where, "denylist-source-range", pol->resource, diag);
        slot = std::move(list);
      }
      acl = slot;
    }
    out.route_access.push_back(std::move(acl));
  };
  for (const auto& r : out.config.routes) {
    for (const auto& p : r.paths) add(p);
  }
  if (out.config.default_backend) add(*out.config.default_backend);
  for (const auto& r : out.config.routes) {
    for (const auto& p : r.paths) {
      if (p.canary) add(*p.canary);  // unused (the access phase checks the main's), keeps the order
    }
  }
  for (const auto& r : out.config.routes) {
    for (const auto& p : r.paths) {
      if (p.error_backend) add(*p.error_backend);  // unused, keeps the order
    }
  }
  for (const auto& r : out.config.routes) {
    for (const auto& p : r.paths) {
      if (p.auth_backend) add(*p.auth_backend);  // unused, keeps the order
    }
  }
  if (out.config.default_backend && out.config.default_backend->auth_backend)
    add(*out.config.default_backend->auth_backend);
  const auto& cfg = out.config;
  add_cidrs(cfg.allow_source_ranges, out.global_access.allow, {cfg.file, 0}, "access.allow", "", diag);
  add_cidrs(cfg.deny_source_ranges, out.global_access.deny, {cfg.file, 0}, "access.deny", "", diag);
  for (std::size_t i = 0; i < cfg.trusted_proxies.size(); ++i) {
    const auto c = access::parse_cidr(cfg.trusted_proxies[i]);
    if (!c) {
      diag.error(cfg.file, 0, "trusted_proxies[" + std::to_string(i) + "]",
                 "invalid CIDR '" + cfg.trusted_proxies[i] + "'");
      continue;
    }
    out.trusted_proxies.add(*c);
  }
}

}  // namespace

namespace {

/// ssl-passthrough: refused (fail closed) while listeners.tls_passthrough is off, on a host that
/// is not one exact name, and with a client-certificate policy (phigate never sees the TLS session
/// it would apply to). Otherwise the host's connections are spliced undecrypted, and its paths fail
/// closed for requests phigate does terminate (another SNI on the same connection): the backend
/// expects TLS from its clients, never plain HTTP from phigate.
std::vector<CompiledPolicy::Passthrough> passthrough(config::Config& config, config::Diagnostics& diag) {
  std::vector<CompiledPolicy::Passthrough> out;
  std::unordered_set<std::string> hosts;
  std::unordered_set<const config::RoutePolicy*> warned;
  // Who else serves each host, and which hosts (exact or wildcard) ask for client certificates or
  // ciphers: a passthrough would take the whole host's TLS connections away from them, so it is
  // only allowed on a host that no other resource serves, under no such TLS setting.
  const auto owner_of = [](const config::RoutePolicy* pol) {
    return pol != nullptr && !pol->resource.empty() ? pol->resource : std::string("the configuration file");
  };
  std::unordered_map<std::string, std::vector<std::string>> owners;  // host → resources serving it
  std::unordered_map<std::string, std::string> tls_setting;          // host → resource with the setting
  for (const auto& r : config.routes) {
    for (const auto& p : r.paths) {
      auto& list = owners[r.host];
      const auto who = owner_of(p.policy.get());
      if (std::find(list.begin(), list.end(), who) == list.end()) list.push_back(who);
      const auto* pol = p.policy.get();
      if (pol != nullptr && !pol->ssl_passthrough &&
          (pol->verify_client != config::VerifyClient::Off || !pol->auth_tls_secret.empty() ||
           !pol->ssl_ciphers.empty())) {
        tls_setting.try_emplace(r.host, who);
      }
    }
  }
  const auto wildcard_of = [](const std::string& host) {
    const auto dot = host.find('.');
    return dot == std::string::npos ? std::string() : "*" + host.substr(dot);
  };
  std::size_t index = 0;  // the path's index over every route's paths (the clusters' order)
  for (auto& r : config.routes) {
    const std::size_t first = index;
    index += r.paths.size();
    if (r.paths.empty()) continue;
    const auto* pol = r.paths.front().policy.get();
    if (pol == nullptr || !pol->ssl_passthrough || !pol->fail_closed.empty()) continue;
    const auto& where = r.paths.front().where;
    const std::string field = "metadata.annotations.ssl-passthrough";
    std::string refused;
    std::string other;  // another resource serving the host
    if (const auto it = owners.find(r.host); it != owners.end()) {
      for (const auto& who : it->second) {
        if (who != pol->resource) {
          other = who;
          break;
        }
      }
    }
    const auto wildcard = wildcard_of(r.host);
    const auto wild_tls = wildcard.empty() ? tls_setting.end() : tls_setting.find(wildcard);
    if (!config.listeners.tls_passthrough) {
      refused = "ssl-passthrough needs listeners.tls_passthrough: true in the configuration (it is false)";
    } else if (r.host.empty() || r.host == "*" || r.host.find('*') != std::string::npos) {
      refused = "ssl-passthrough needs a rule with one exact host (the ClientHello's server name), not \"" +
                (r.host.empty() ? std::string("*") : r.host) + "\"";
    } else if (pol->verify_client != config::VerifyClient::Off || !pol->auth_tls_secret.empty()) {
      refused =
          "ssl-passthrough contradicts auth-tls-*: phigate does not terminate the connection, so it cannot "
          "ask for or verify a client certificate";
    } else if (!pol->ssl_ciphers.empty()) {
      refused =
          "ssl-passthrough contradicts ssl-ciphers: phigate does not terminate the connection, so it "
          "cannot choose its ciphers";
    } else if (!other.empty()) {
      refused =
          "host " + r.host + " is also served by " + other +
          ": ssl-passthrough would take every TLS connection to it away from that resource's routes and "
          "policies";
    } else if (wild_tls != tls_setting.end()) {
      refused = "host " + r.host + " is under " + wildcard + ", whose client-certificate/cipher settings (" +
                wild_tls->second + ") a passthrough connection would skip";
    }
    if (!refused.empty()) {
      diag.error(where.file, where.line, field, refused + ": the Ingress's paths fail closed", pol->resource);
      for (auto& p : r.paths) fail_path(p, refused);
      continue;
    }
    if (warned.insert(pol).second) {
      diag.warning(where.file, where.line, field,
                   "passthrough connections are not decrypted: the Ingress's other annotations (except the "
                   "source ranges, enforced per connection) have no effect on them",
                   pol->resource);
    }
    std::size_t chosen = first;
    for (std::size_t i = 0; i < r.paths.size(); ++i) {
      if (r.paths[i].path == "/") {
        chosen = first + i;
        break;
      }
    }
    if (hosts.insert(r.host).second) out.push_back({r.host, chosen, pol->resource});
    for (auto& p : r.paths) {
      fail_path(p, "ssl-passthrough: the host's TLS connections are passed through undecrypted");
    }
  }
  return out;
}

}  // namespace

void merge(config::Config& config, ingress::Translation translation) {
  // Static routes first: they win over Ingresses claiming the same host and path.
  for (auto& r : translation.routes) config.routes.push_back(std::move(r));
  if (!config.default_backend) config.default_backend = std::move(translation.default_backend);
  for (auto& c : translation.certificates) config.tls.certificates.push_back(std::move(c));
}

namespace {

CompiledPolicy compile_once(config::Config config, config::Diagnostics& diag,
                            ingress::TranslationStats stats) {
  CompiledPolicy out;
  out.ingress = stats;
  out.passthrough = passthrough(config, diag);
  out.host_policies = host_tls_policies(config, diag);
  out.config = std::move(config);
  backend_tls(out, diag);
  request_buffer_caps(out, diag);
  access_lists(out, diag);
  return out;
}

/// The check engine over a compiled policy, Runtime scope (no file reads).
std::vector<check::Finding> run_checks(const CompiledPolicy& out, const ingress::Resources* resources) {
  auto options = check::Options::from(out.config.check);
  options.scope = check::Scope::Runtime;
  std::vector<check::Passthrough> passthrough;
  passthrough.reserve(out.passthrough.size());
  for (const auto& p : out.passthrough) passthrough.push_back({p.host, p.resource});
  const check::View view{.config = out.config,
                         .passthrough = passthrough,
                         .resources = resources,
                         .workloads = nullptr,
                         .options = options};
  return check::evaluate(view);
}

/// check.enforce: the Ingresses with an error finding of an enforceable rule, each with its
/// findings (one per rule), in resource order.
std::map<std::string, std::vector<const check::Finding*>> offending(
    const std::vector<check::Finding>& findings) {
  std::map<std::string, std::vector<const check::Finding*>> out;
  for (const auto& f : findings) {
    if (f.severity != check::Severity::Error || f.rule == nullptr || !f.rule->enforceable ||
        !f.where.resource.starts_with("Ingress ")) {
      continue;
    }
    auto& list = out[f.where.resource];
    if (std::none_of(list.begin(), list.end(), [&](const check::Finding* g) { return g->rule == f.rule; })) {
      list.push_back(&f);
    }
  }
  return out;
}

}  // namespace

CompiledPolicy compile(config::Config config, config::Diagnostics& diag, ingress::TranslationStats stats,
                       const CompileChecks& checks) {
  if (!checks.run) return compile_once(std::move(config), diag, stats);
  // Enforcement compiles twice: the input is kept (policies are shared pointers, so the copy is
  // shallow where it matters) and the first pass's diagnostics are kept apart until it is known
  // whether they stand.
  const bool enforce = config.check.enforce;
  std::optional<config::Config> input;
  if (enforce) input = config;
  config::Diagnostics first;
  auto out = compile_once(std::move(config), enforce ? first : diag, stats);
  auto findings = run_checks(out, checks.resources);
  const auto bad = enforce ? offending(findings) : decltype(offending(findings)){};
  if (bad.empty()) {
    if (enforce) {
      for (const auto& d : first.entries()) diag.add(d);
    }
    out.findings = std::move(findings);
    return out;
  }
  // Each offending Ingress: one error per rule (logged, counted, an Event on the Ingress, a refusal
  // by the admission webhook), then its paths fail closed and the configuration compiles again.
  std::map<std::string, std::string> why;  // resource -> the rule ids, for the 503's reason
  for (const auto& [resource, list] : bad) {
    for (const auto* f : list) {
      std::string file = f->where.file;
      if (f->where.doc >= 0) file.append("#").append(std::to_string(f->where.doc));
      if (f->where.item >= 0) file.append(".items[").append(std::to_string(f->where.item)).append("]");
      diag.error(std::move(file), f->where.line, f->where.field,
                 "[" + std::string(f->rule->id) + " 45 CFR " + std::string(f->rule->hipaa) + "] " +
                     f->message + ": failing closed (check.enforce)",
                 resource);
      auto& w = why[resource];
      w += (w.empty() ? "check.enforce: " : ", ") + std::string(f->rule->id);
    }
  }
  std::set<std::string> newly_failed;
  const auto fail = [&](config::PathSpec& p) {
    const auto it = p.policy ? why.find(p.policy->resource) : why.end();
    if (it == why.end()) return false;
    if (p.policy->fail_closed.empty()) newly_failed.insert(it->first);
    fail_path(p, it->second);
    return true;
  };
  // A canary of an offending Ingress is detached (its main serves every request); a failing main
  // takes its canary with it (every request of the path answers 503).
  const auto fail_canary = [&](config::PathSpec& p, bool main_failed) {
    if (!p.canary) return;
    const auto& cp = p.canary->policy;
    const bool canary_bad = cp && why.contains(cp->resource);
    if (canary_bad && cp->fail_closed.empty()) newly_failed.insert(cp->resource);
    if (canary_bad || main_failed) p.canary = nullptr;
  };
  for (auto& r : input->routes) {
    for (auto& p : r.paths) {
      const bool failed = fail(p);
      fail_canary(p, failed);
    }
  }
  if (input->default_backend) fail(*input->default_backend);
  stats.failed_closed += newly_failed.size();
  out = compile_once(std::move(*input), diag, stats);
  out.findings = std::move(findings);
  out.enforced_ingresses = bad.size();
  return out;
}

std::optional<CompiledPolicy> load_and_compile(config::Config config, config::Diagnostics& diag,
                                               ingress::DirectoryLoader* loader) {
  if (!config.ingress.dir.empty()) {
    auto loaded = loader ? loader->load(config.ingress.dir) : ingress::load_directory(config.ingress.dir);
    return load_and_compile(std::move(config), loaded, diag);
  }
  return compile(std::move(config), diag, {});
}

std::optional<CompiledPolicy> load_and_compile(config::Config config, const ingress::LoadResult& loaded,
                                               config::Diagnostics& diag, bool run_checks) {
  for (const auto& d : loaded.diagnostics.entries()) diag.add(d);
  if (loaded.broken_files > 0) return std::nullopt;  // a change that does not load as a whole
  auto t = ingress::translate(loaded.resources, config.ingress, diag);
  auto stats = t.stats;
  merge(config, std::move(t));
  return compile(std::move(config), diag, std::move(stats),
                 {.resources = &loaded.resources, .run = run_checks});
}

}  // namespace phigate::compile
