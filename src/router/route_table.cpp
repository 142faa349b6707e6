#include "phigate/router/route_table.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>

namespace phigate::router {

/// A bucket in regex mode: its routes in ingress-nginx order (path text length descending, then
/// text descending, then definition order), one anchored pattern each, and the RE2::Set over them.
struct RouteTable::RegexBucket {
  std::vector<std::uint32_t> ordered;             // route indices
  std::unique_ptr<re2::RE2::Set> set;             // pattern i is ordered[i]; null: sequential
  std::vector<std::unique_ptr<re2::RE2>> single;  // the same patterns one by one (fallback)
};

namespace {

RE2::Options regex_options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  return o;
}

std::string_view strip_trailing_slashes(std::string_view p) {
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return p;
}

}  // namespace

std::string RouteTable::normalize_host(std::string_view host) {
  std::string out;
  normalize_host_into(host, out);
  return out;
}

void RouteTable::normalize_host_into(std::string_view host, std::string& out) {
  std::string_view h = host;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    h = close == std::string_view::npos ? h : h.substr(0, close + 1);
  } else if (const auto colon = h.rfind(':'); colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  out.assign(h);
  core::to_lower_in_place(out);
}

RouteTable RouteTable::build(const std::vector<config::RouteSpec>& routes, config::Diagnostics& diag,
                             const std::optional<config::PathSpec>& fallback) {
  RouteTable t;
  std::size_t target = 0;
  std::vector<std::string> seen_hosts;
  // Canary clusters follow every path and the fallback, in route order (compile/README.md).
  std::size_t canary_next = fallback ? 1 : 0;
  for (const auto& r : routes) canary_next += r.paths.size();
  // Error backends follow the canaries, in route order.
  std::size_t error_next = canary_next;
  for (const auto& r : routes) {
    for (const auto& p : r.paths) error_next += p.canary ? 1 : 0;
  }
  for (const auto& r : routes) {
    HostRoutes* bucket = nullptr;
    if (r.host.empty()) {
      bucket = &t.default_host_;
      t.has_default_ = true;
    } else {
      bucket = &t.hosts_[r.host];  // "*.suffix" or an exact name
      if (bucket->members.empty()) seen_hosts.push_back(r.host);
    }
    for (const auto& p : r.paths) {
      const std::size_t canary_target = p.canary ? canary_next++ : 0;
      const std::size_t error_target = p.error_backend ? error_next++ : 0;
      const auto index = static_cast<std::uint32_t>(t.routes_.size());
      const bool exact = p.type == config::PathType::Exact;
      // A regex path (its Ingress asked for use-regex or a rewrite) is keyed by its text.
      const bool regex = p.policy != nullptr && p.policy->regex.regex_path(p.path);
      auto& map = regex ? bucket->regex : exact ? bucket->exact : bucket->prefix;
      std::string key(exact || regex ? std::string_view(p.path) : strip_trailing_slashes(p.path));
      const auto [it, inserted] = map.emplace(std::move(key), index);
      if (!inserted) {
        diag.warning(p.where.file, p.where.line, "path",
                     "duplicate route " + (r.host.empty() ? std::string("*") : r.host) + " " + p.path +
                         ": the first definition wins");
        ++target;
        continue;
      }
      Route route{r.host, p.path, p.type, target++, (r.host.empty() ? "*" : r.host) + " " + p.path, p.policy};
      if (regex) {
        // A cookie's Path is literal: a regex route's affinity cookie gets the pattern's literal
        // prefix ("/api(/|$)(.*)" → "/api"), not the pattern text.
        const auto lit = config::regex_literal_prefix(p.path);
        route.cookie_path = lit.empty() ? "/" : std::string(lit);
      }
      if (regex && p.policy->regex.rewrites(p.path)) {
        // Null when the path is no valid RE2 pattern: its Ingress is failed closed (503).
        route.rewrite =
            Rewrite::compile(p.path, p.policy->regex.rewrite_target, p.policy->regex.x_forwarded_prefix);
      }
      if (p.canary) {
        route.canary = compile_canary(*p.canary);
        route.canary_target = canary_target;
      }
      if (p.error_backend) {
        route.has_error_backend = true;
        route.error_target = error_target;
      }
      route.service_name = p.service_name;
      route.service_port = p.service_port;
      bucket->members.push_back(index);
      t.routes_.push_back(std::move(route));
    }
  }
  for (const auto& h : seen_hosts) finish_bucket(t.hosts_[h], t.routes_, diag);
  // from-to-www-redirect, once every bucket is known: a partner name with routes of its own (or
  // under a wildcard) is served, never redirected. Wildcard hosts have no partner.
  for (const auto& h : seen_hosts) {
    if (core::wildcard_suffix(h)) continue;
    const auto& members = t.hosts_[h].members;
    const bool wanted = std::any_of(members.begin(), members.end(), [&](std::uint32_t i) {
      const auto& p = t.routes_[i].policy;
      return p != nullptr && p->fail_closed.empty() && p->redirect.from_to_www;
    });
    if (!wanted) continue;
    std::string partner = h.rfind("www.", 0) == 0 ? h.substr(4) : "www." + h;
    core::to_lower_in_place(partner);
    if (partner.empty() || t.hosts_.find(partner) != nullptr) continue;
    t.www_redirect_.try_emplace(std::move(partner), normalize_host(h));  // the first host wins
  }
  finish_bucket(t.default_host_, t.routes_, diag);
  if (fallback) {
    t.fallback_ = Route{"", fallback->path, fallback->type, target, "default backend", fallback->policy};
    // An Ingress's spec.defaultBackend with rewrite-target: its "/" location rewrites as any other
    // regex path (ingress-nginx: every target becomes the template).
    if (const auto& p = fallback->policy; p != nullptr && p->regex.rewrites(fallback->path)) {
      t.fallback_->rewrite =
          Rewrite::compile(fallback->path, p->regex.rewrite_target, p->regex.x_forwarded_prefix);
    }
  }
  return t;
}

void RouteTable::finish_bucket(HostRoutes& h, const std::vector<Route>& routes, config::Diagnostics&) {
  const auto regex_route = [&](std::uint32_t i) {
    const auto& p = routes[i].policy;
    return p != nullptr && p->regex.regex_path(routes[i].path);
  };
  if (std::none_of(h.members.begin(), h.members.end(), regex_route)) return;
  // ingress-nginx (controller.go): locations sorted by path text descending, then stable by
  // length descending; nginx takes the first regex that matches.
  auto b = std::make_shared<RegexBucket>();
  b->ordered = h.members;
  std::stable_sort(b->ordered.begin(), b->ordered.end(), [&](std::uint32_t x, std::uint32_t y) {
    const auto& a = routes[x].path;
    const auto& c = routes[y].path;
    return a.size() != c.size() ? a.size() > c.size() : a > c;
  });
  auto opts = regex_options();
  opts.set_max_mem(8 << 20);
  b->set = std::make_unique<re2::RE2::Set>(opts, RE2::ANCHOR_START);
  bool set_ok = true;
  for (const auto i : b->ordered) {
    const std::string_view path = routes[i].path;
    // Only the routes of Ingresses that asked for regex are read as regexes; every other path
    // (another tenant's Prefix or Exact path, a static route) is quoted: "." stays a dot.
    std::string pattern;
    if (regex_route(i)) {
      auto one = regex_options();
      one.set_max_mem(1 << 20);
      const RE2 check(re2::StringPiece(path.data(), path.size()), one);
      // An invalid pattern (its Ingress is failed closed) claims its literal prefix.
      pattern = check.ok() ? std::string(path) : RE2::QuoteMeta(config::regex_literal_prefix(path));
    } else if (routes[i].type == config::PathType::Exact) {
      // Quoted, and bounded as written: entering regex mode never widens another path's scope
      // (ingress-nginx would read Exact "/" as every path and Prefix "/public" as "/publicity").
      pattern = RE2::QuoteMeta(path) + "$";
    } else if (path.size() > 1 && path.back() == '/') {
      pattern = RE2::QuoteMeta(path);  // "/foo/" as ingress-nginx reads it: "/foo/…" only
    } else {
      pattern = path == "/" ? std::string() : RE2::QuoteMeta(path) + "(?:/|$)";
    }
    if (set_ok && b->set->Add(pattern, nullptr) < 0) set_ok = false;
    auto one = regex_options();
    one.set_max_mem(1 << 20);  // as translate checked it
    b->single.push_back(std::make_unique<re2::RE2>(pattern, one));
  }
  if (!set_ok || !b->set->Compile()) b->set.reset();
  h.regex_mode = std::move(b);
}

const Route* RouteTable::match_regex(const RegexBucket& b, std::string_view path) const {
  const re2::StringPiece text(path.data(), path.size());
  if (b.set) {
    thread_local std::vector<int> hits;
    re2::RE2::Set::ErrorInfo info{};
    if (b.set->Match(text, &hits, &info))
      return &routes_[b.ordered[*std::min_element(hits.begin(), hits.end())]];
    if (info.kind == re2::RE2::Set::kNoError) return nullptr;
    // The DFA ran out of memory: one pattern at a time, still linear each.
  }
  for (std::size_t i = 0; i < b.single.size(); ++i) {
    if (b.single[i]->ok() && b.single[i]->Match(text, 0, text.size(), RE2::ANCHOR_START, nullptr, 0)) {
      return &routes_[b.ordered[i]];
    }
  }
  return nullptr;
}

const RouteTable::HostRoutes* RouteTable::bucket_of(std::string_view h) const {
  if (const HostRoutes* bucket = hosts_.find(h)) return bucket;
  return has_default_ ? &default_host_ : nullptr;
}

std::string_view RouteTable::www_redirect(std::string_view host) const {
  if (www_redirect_.empty() || hosts_.find(host) != nullptr) return {};
  const auto it = www_redirect_.find(host);
  return it != www_redirect_.end() ? std::string_view(it->second) : std::string_view{};
}

const Route* RouteTable::match_in(const HostRoutes& h, std::string_view path) const {
  if (h.regex_mode) return match_regex(*h.regex_mode, path);
  if (!h.exact.empty()) {
    if (auto it = h.exact.find(path); it != h.exact.end()) return &routes_[it->second];
  }
  if (h.prefix.empty()) return nullptr;
  // Kubernetes Prefix semantics: element-wise, trailing slash ignored. Try the whole path, then
  // drop one segment at a time down to the root.
  std::string_view p = strip_trailing_slashes(path);
  for (;;) {
    if (auto it = h.prefix.find(p); it != h.prefix.end()) return &routes_[it->second];
    if (p.empty()) return nullptr;
    p = p.substr(0, p.rfind('/'));
  }
}

const Route* RouteTable::match(std::string_view host, std::string_view path) const {
  return match_normalized(normalize_host(host), path);
}

const Route* RouteTable::match_normalized(std::string_view h, std::string_view path) const {
  const Route* r = match_host(h, path);
  return r != nullptr ? r : (fallback_ ? &*fallback_ : nullptr);
}

const Route* RouteTable::match_host(std::string_view h, std::string_view path) const {
  // Exact name, else "*.example.com" for exactly one extra label ("a.example.com", not
  // "a.b.example.com"). A host bucket without this path does not fall through to the default host.
  const HostRoutes* bucket = bucket_of(h);
  return bucket != nullptr ? match_in(*bucket, path) : nullptr;
}

}  // namespace phigate::router
