// Context: which hosts carry PHI, and where a fact is written (config key, annotation, path,
// Kubernetes object), computed once per evaluate().
#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>
#include <unordered_map>

#include "phigate/check/check.hpp"

namespace phigate::check {

struct Context::Impl {
  std::set<std::string, std::less<>> phi;  // hosts ("*" = catch-all)
  std::vector<std::string> phi_list;
  std::int64_t now = 0;
  // View::resources by "ns/name", built once: findings are placed in O(1) (a snapshot build with
  // thousands of Ingresses places thousands of findings).
  std::unordered_map<std::string, const ingress::Ingress*> ingresses;
  std::unordered_map<std::string, const ingress::Secret*> secrets;
};

namespace {

/// Hosts compare without case (the proxy lower-cases Host and SNI; the loaders lower-case hosts).
std::string host_key(std::string_view host) {
  if (host.empty() || host == "*") return "*";
  std::string out(host);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// "file#doc[.items[i]]" (ingress::Origin::where) back into its parts.
void split_origin(const std::string& where, Location& loc) {
  const auto hash = where.rfind('#');
  if (hash == std::string::npos) {
    loc.file = where;
    return;
  }
  loc.file = where.substr(0, hash);
  const std::string rest = where.substr(hash + 1);
  loc.doc = std::atoi(rest.c_str());
  if (const auto it = rest.find(".items["); it != std::string::npos)
    loc.item = std::atoi(rest.c_str() + it + 7);
}

Location from_origin(const ingress::Origin& o, std::string resource, std::string field) {
  Location loc;
  if (o.doc >= 0) {
    loc.file = o.file;
    loc.doc = o.doc;
    loc.item = o.item;
    loc.line = o.line;
  }
  loc.resource = std::move(resource);
  loc.field = std::move(field);
  return loc;
}

template <class Objects>
const auto* find_object(const Objects& objects, std::string_view key) {
  for (const auto& o : objects) {
    if (o.meta.key() == key) return &o;
  }
  return static_cast<decltype(&objects.front())>(nullptr);
}

}  // namespace

Context::Context(const View& v) : view_(v), impl_(std::make_unique<Impl>()) {
  impl_->now = v.options.now != 0 ? v.options.now : static_cast<std::int64_t>(std::time(nullptr));
  auto mark = [&](const std::string& host, const config::PathSpec& p) {
    const bool phi = (p.policy && p.policy->phi) || (p.canary && p.canary->policy && p.canary->policy->phi);
    if (phi) impl_->phi.emplace(host_key(host));
  };
  for (const auto& r : v.config.routes) {
    for (const auto& p : r.paths) mark(r.host, p);
  }
  if (v.config.default_backend) mark("", *v.config.default_backend);
  if (v.options.phi_hosts_all) {
    for (const auto& r : v.config.routes) impl_->phi.emplace(host_key(r.host));
    impl_->phi.emplace("*");
  }
  // A request to a PHI host that none of the host's paths matches goes to the default backend
  // (RouteTable): unless every PHI host has a root path, the catch-all receives PHI requests too.
  if (v.config.default_backend && !impl_->phi.contains("*")) {
    std::set<std::string, std::less<>> rooted;
    for (const auto& r : v.config.routes) {
      for (const auto& p : r.paths) {
        if (p.path == "/" && p.type != config::PathType::Exact) rooted.emplace(host_key(r.host));
      }
    }
    for (const auto& h : impl_->phi) {
      if (!rooted.contains(h)) {
        impl_->phi.emplace("*");
        break;
      }
    }
  }
  impl_->phi_list.assign(impl_->phi.begin(), impl_->phi.end());
  if (v.resources != nullptr) {
    impl_->ingresses.reserve(v.resources->ingresses.size());
    for (const auto& i : v.resources->ingresses) impl_->ingresses.emplace(i.meta.key(), &i);
    for (const auto& s : v.resources->secrets) impl_->secrets.emplace(s.meta.key(), &s);
  }
}

Context::~Context() = default;

bool Context::is_phi_host(std::string_view host) const {
  if (view_.options.phi_hosts_all) return true;
  if (impl_->phi.empty()) return false;
  if (host.empty() || host == "*") return impl_->phi.contains(std::string_view{"*"});
  // Hosts are lower-case as loaded: look up without a copy unless one is not.
  if (std::none_of(host.begin(), host.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return impl_->phi.contains(host);
  }
  return impl_->phi.contains(host_key(host));
}

bool Context::is_phi(const config::RouteSpec& route) const {
  return is_phi_host(route.host);
}

const std::vector<std::string>& Context::phi_hosts() const noexcept {
  return impl_->phi_list;
}

std::int64_t Context::now() const noexcept {
  return impl_->now;
}

Location Context::config_key(std::string_view key) const {
  Location loc;
  loc.file = view_.config.file;
  loc.field = std::string(key);
  if (const auto& lines = view_.config.key_lines) {
    if (const auto it = lines->find(loc.field); it != lines->end()) loc.line = it->second;
  }
  return loc;
}

Location Context::annotation(const std::string& resource, std::string_view short_name) const {
  constexpr std::string_view kPrefix = "Ingress ";
  const ingress::Ingress* ing = nullptr;
  if (view_.resources && resource.starts_with(kPrefix)) {
    const auto it = impl_->ingresses.find(resource.substr(kPrefix.size()));
    if (it != impl_->ingresses.end()) ing = it->second;
  }
  if (!ing) {
    // No manifest to read lines from (a hand-built configuration): the Ingress's first path.
    for (const auto& r : view_.config.routes) {
      for (const auto& p : r.paths) {
        if (p.policy && p.policy->resource == resource) return path(p, "metadata.annotations");
      }
    }
    Location loc;
    loc.resource = resource;
    loc.field = "metadata.annotations";
    return loc;
  }
  for (std::string_view prefix : {"phigate.io/", "nginx.ingress.kubernetes.io/"}) {
    std::string key(prefix);
    key.append(short_name);
    if (ing->meta.annotations.contains(key)) {
      auto loc = from_origin(ing->origin, resource, "metadata.annotations." + key);
      if (const auto line = ing->meta.annotation_lines.find(key); line != ing->meta.annotation_lines.end()) {
        loc.line = line->second;
      } else if (ing->meta.annotations_line > 0) {
        loc.line = ing->meta.annotations_line;
      }
      return loc;
    }
  }
  auto loc = from_origin(ing->origin, resource, "metadata.annotations");
  if (ing->meta.annotations_line > 0) loc.line = ing->meta.annotations_line;
  return loc;
}

Location Context::path(const config::PathSpec& p, std::string_view field) const {
  Location loc;
  split_origin(p.where.file, loc);
  loc.line = p.where.line;
  if (p.policy) loc.resource = p.policy->resource;
  loc.field = std::string(field);
  return loc;
}

Location Context::object(const std::string& resource, std::string_view field) const {
  const auto space = resource.find(' ');
  if (view_.resources && space != std::string::npos) {
    const std::string_view kind = std::string_view(resource).substr(0, space);
    const std::string_view key = std::string_view(resource).substr(space + 1);
    const auto& r = *view_.resources;
    if (kind == "Ingress") {
      if (const auto it = impl_->ingresses.find(std::string(key)); it != impl_->ingresses.end())
        return from_origin(it->second->origin, resource, std::string(field));
    } else if (kind == "Secret") {
      if (const auto it = impl_->secrets.find(std::string(key)); it != impl_->secrets.end())
        return from_origin(it->second->origin, resource, std::string(field));
    } else if (kind == "Service") {
      if (const auto* o = find_object(r.services, key))
        return from_origin(o->origin, resource, std::string(field));
    } else if (kind == "ConfigMap") {
      if (const auto* o = find_object(r.config_maps, key))
        return from_origin(o->origin, resource, std::string(field));
    }
  }
  Location loc;
  loc.resource = resource;
  loc.field = std::string(field);
  return loc;
}

}  // namespace phigate::check
