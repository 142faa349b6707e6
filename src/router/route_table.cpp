#include "phigate/router/route_table.hpp"

namespace phigate::router {

namespace {

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
  // Canary clusters follow every path and the fallback, in route order (compile/README.md).
  std::size_t canary_next = fallback ? 1 : 0;
  for (const auto& r : routes) canary_next += r.paths.size();
  for (const auto& r : routes) {
    HostRoutes* bucket = nullptr;
    if (r.host.empty()) {
      bucket = &t.default_host_;
      t.has_default_ = true;
    } else {
      bucket = &t.hosts_[r.host];  // "*.suffix" or an exact name
    }
    for (const auto& p : r.paths) {
      const std::size_t canary_target = p.canary ? canary_next++ : 0;
      const auto index = static_cast<std::uint32_t>(t.routes_.size());
      const bool exact = p.type == config::PathType::Exact;
      auto& map = exact ? bucket->exact : bucket->prefix;
      std::string key(exact ? std::string_view(p.path) : strip_trailing_slashes(p.path));
      const auto [it, inserted] = map.emplace(std::move(key), index);
      if (!inserted) {
        diag.warning(p.where.file, p.where.line, "path",
                     "duplicate route " + (r.host.empty() ? std::string("*") : r.host) + " " + p.path +
                         ": the first definition wins");
        ++target;
        continue;
      }
      t.routes_.push_back(
          {r.host, p.path, p.type, target++, (r.host.empty() ? "*" : r.host) + " " + p.path, p.policy});
      if (p.canary) {
        t.routes_.back().canary = compile_canary(*p.canary);
        t.routes_.back().canary_target = canary_target;
      }
    }
  }
  if (fallback)
    t.fallback_ = Route{"", fallback->path, fallback->type, target, "default backend", fallback->policy};
  return t;
}

const Route* RouteTable::match_in(const HostRoutes& h, std::string_view path) const {
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
  if (const HostRoutes* bucket = hosts_.find(h)) return match_in(*bucket, path);
  return has_default_ ? match_in(default_host_, path) : nullptr;
}

}  // namespace phigate::router
