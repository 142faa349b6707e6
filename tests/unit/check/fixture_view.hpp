#pragma once
// Loads a tests/fixtures/check/ folder as `phigate check` will (config file, manifests, translate,
// merge), for the rule groups' unit tests: unit_check does not link compile, so the two compile
// steps the fixtures rely on are mirrored here (merge; ssl-passthrough hosts spliced and their
// paths failed closed). Placeholders (@GEN@, @B64:file@) are replaced with stand-in materials: the
// TX/AC/IN rules never parse certificates (the CLI test uses real ones).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "phigate/check/check.hpp"
#include "phigate/config/loader.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"

namespace phigate::check::test {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string base64(const std::string& in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

struct LoadedFixture {
  fs::path root;  // the temporary copy
  config::Diagnostics diag;
  std::optional<config::Config> config;
  ingress::LoadResult loaded;
  std::vector<Passthrough> passthrough;
  Options options;

  ~LoadedFixture() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  View view() const {
    return View{
        .config = *config, .passthrough = passthrough, .resources = &loaded.resources, .options = options};
  }
};

/// `name`: "clean" or "rules/TX001".
inline std::unique_ptr<LoadedFixture> load_fixture(const std::string& name) {
  auto fx = std::make_unique<LoadedFixture>();
  std::string tag = name;
  for (auto& c : tag) {
    if (c == '/') c = '-';
  }
  fx->root = fs::temp_directory_path() / ("phigate-check-" + std::to_string(::getpid()) + "-" + tag);
  fs::remove_all(fx->root);
  const auto gen = fx->root / "gen";
  fs::create_directories(gen / "audit-keys");
  fs::create_directories(gen / "audit");
  const auto pem = [](const char* type) {
    return std::string("-----BEGIN ") + type + "-----\nAAAA\n-----END " + type + "-----\n";
  };
  for (const char* f : {"server.crt", "server-ca.crt", "ca.crt"})
    std::ofstream(gen / f) << pem("CERTIFICATE");
  std::ofstream(gen / "server.key") << pem("PRIVATE KEY");
  std::ofstream(gen / "ca.crl") << pem("X509 CRL");
  std::ofstream(gen / "audit-keys" / "k1.key") << base64(std::string(32, 'Z')) << "\n";

  const fs::path src = fs::path(PHIGATE_CHECK_FIXTURES_DIR) / name;
  const auto copy = fx->root / "fx";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    const auto to = copy / fs::relative(e.path(), src);
    if (e.is_directory()) {
      fs::create_directories(to);
      continue;
    }
    fs::create_directories(to.parent_path());
    std::string text = slurp(e.path());
    for (std::size_t at; (at = text.find("@GEN@")) != std::string::npos;) text.replace(at, 5, gen.string());
    for (std::size_t at; (at = text.find("@B64:")) != std::string::npos;) {
      const auto end = text.find('@', at + 5);
      const auto file = text.substr(at + 5, end - at - 5);
      text.replace(at, end + 1 - at, base64(slurp(gen / file)));
    }
    std::ofstream(to, std::ios::binary) << text;
  }
  if (fs::exists(copy / "args")) {
    std::istringstream args(slurp(copy / "args"));
    std::vector<std::string> words;
    for (std::string w; std::getline(args, w);) words.push_back(w);
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] == "--phi-hosts") fx->options.phi_hosts_all = words[i + 1] == "all";
    }
  }
  fx->config = config::load_config((copy / "phigate.yaml").string(), fx->diag);
  if (!fx->config) return fx;
  const bool all = fx->options.phi_hosts_all;
  fx->options = Options::from(fx->config->check);
  fx->options.phi_hosts_all = fx->options.phi_hosts_all || all;
  fx->options.now = 1'780'000'000;
  auto& cfg = *fx->config;
  const auto dir = !cfg.ingress.dir.empty() ? cfg.ingress.dir : (copy / "manifests").string();
  fx->loaded = ingress::load_directory(dir);
  for (const auto& d : fx->loaded.diagnostics.entries()) fx->diag.add(d);
  auto t = ingress::translate(fx->loaded.resources, cfg.ingress, fx->diag);
  // compile::merge: static routes first.
  for (auto& r : t.routes) cfg.routes.push_back(std::move(r));
  if (!cfg.default_backend) cfg.default_backend = std::move(t.default_backend);
  for (auto& c : t.certificates) cfg.tls.certificates.push_back(std::move(c));
  // compile's passthrough(): a served passthrough host is spliced and its paths fail closed.
  for (auto& r : cfg.routes) {
    if (r.paths.empty() || !r.paths.front().policy || !r.paths.front().policy->ssl_passthrough) continue;
    const auto resource = r.paths.front().policy->resource;
    if (cfg.listeners.tls_passthrough && !r.host.empty() && r.host.find('*') == std::string::npos)
      fx->passthrough.push_back({r.host, resource});
    for (auto& p : r.paths) {
      auto copy_policy = std::make_shared<config::RoutePolicy>(*p.policy);
      copy_policy->fail_closed = "ssl-passthrough";
      p.policy = std::move(copy_policy);
    }
  }
  return fx;
}

/// The ids the given rule groups report on `v` (IN005 left out, as the CLI fixture test does).
inline std::set<std::string> rule_ids(const View& v, const std::vector<std::span<const Rule>>& groups,
                                      std::vector<Finding>* findings = nullptr) {
  const Context ctx(v);
  Sink out;
  for (const auto& g : groups) {
    for (const auto& r : g) {
      if (r.fn) r.fn(v, r.info, ctx, out);
    }
  }
  std::set<std::string> ids;
  for (const auto& f : out) {
    if (f.rule->id != "IN005") ids.insert(std::string(f.rule->id));
  }
  if (findings) *findings = std::move(out);
  return ids;
}

/// Every group WP1 owns.
inline std::vector<std::span<const Rule>> wp1_groups() {
  return {transmission_rules(), access_rules(), integrity_rules()};
}

/// Runs the one rule `id` of the WP1 groups on `v`.
inline std::vector<Finding> run_rule(const View& v, std::string_view id) {
  const Context ctx(v);
  Sink out;
  for (const auto& g : wp1_groups()) {
    for (const auto& r : g) {
      if (r.info.id == id && r.fn) r.fn(v, r.info, ctx, out);
    }
  }
  return out;
}

/// A hand-made configuration: routes with one path each, policies given.
struct Scene {
  config::Config cfg;
  Options opt;
  std::vector<Passthrough> pt;
  ingress::Resources res;
  bool with_resources = false;

  Scene() {
    cfg.file = "/etc/phigate/phigate.yaml";
    cfg.listeners.https = {"0.0.0.0:443"};
    cfg.limits.request_body_bytes = 8 << 20;
  }
  /// A policy for Ingress `name` (namespace "ns"): compliant by default (HTTPS verified backend,
  /// an allowlist, a health check), `phi` as given.
  static config::RoutePolicy policy(const std::string& name, bool phi) {
    config::RoutePolicy p;
    p.resource = "Ingress ns/" + name;
    p.phi = phi;
    p.backend_protocol = config::BackendProtocol::Https;
    p.allow_source_ranges = {"10.0.0.0/8"};
    p.health_check_path = "/healthz";
    return p;
  }
  config::PathSpec& add(const std::string& host, const config::RoutePolicy& p,
                        const std::string& path = "/") {
    config::RouteSpec r;
    r.host = host;
    config::PathSpec ps;
    ps.path = path;
    ps.policy = std::make_shared<const config::RoutePolicy>(p);
    ps.where = {"/m/app.yaml#0", 20};
    r.paths.push_back(std::move(ps));
    cfg.routes.push_back(std::move(r));
    return cfg.routes.back().paths.back();
  }
  View view() const {
    return View{
        .config = cfg, .passthrough = pt, .resources = with_resources ? &res : nullptr, .options = opt};
  }
};

inline std::set<std::string> hosts_of(const std::vector<Finding>& fs) {
  std::set<std::string> out;
  for (const auto& f : fs) out.insert(f.host);
  return out;
}

/// The fixture rules/<id> yields exactly `id` from the WP1 groups, loads without error, and its
/// findings are placed in the fixture's files. Returns the findings (IN005 left out).
inline std::vector<Finding> expect_fixture_yields(const std::string& id) {
  std::vector<Finding> all;
  const auto fx = load_fixture("rules/" + id);
  if (!fx->config) {
    ADD_FAILURE() << id << ": " << fx->diag.to_string();
    return all;
  }
  EXPECT_FALSE(fx->diag.has_errors()) << id << ": " << fx->diag.to_string();
  EXPECT_EQ(rule_ids(fx->view(), wp1_groups(), &all), std::set<std::string>{id});
  std::erase_if(all, [](const Finding& f) { return f.rule->id == "IN005"; });
  for (const auto& f : all) {
    EXPECT_FALSE(f.message.empty()) << id;
    // A config key left at its default has no line (Context::config_key); everything else has.
    if (!f.where.resource.empty()) {
      EXPECT_GT(f.where.line, 0) << id << ": " << f.message;
    }
    EXPECT_NE(f.where.file.find(fx->root.string()), std::string::npos) << id << ": " << f.where.file;
  }
  return all;
}

}  // namespace phigate::check::test
