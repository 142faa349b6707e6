#include "phigate/kube/provider.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>

#include "phigate/core/log.hpp"
#include "phigate/ingress/translate.hpp"
#include "store_impl.hpp"

namespace phigate::kube {

namespace detail {

namespace {

constexpr std::string_view kNameSelector = "metadata.name=";

/// The order resources() lists kinds in.
int kind_rank(const std::string& kind) {
  static constexpr std::array<std::string_view, 6> kOrder = {"Ingress", "IngressClass",  "Secret",
                                                             "Service", "EndpointSlice", "ConfigMap"};
  const auto it = std::find(kOrder.begin(), kOrder.end(), kind);
  return static_cast<int>(it - kOrder.begin());
}

}  // namespace

void Store::add_scope(const std::string& id, const ResourceKind& kind, const Scope& scope) {
  auto [it, inserted] = scopes_.try_emplace(id);
  if (inserted) {
    it->second.kind = kind;
    it->second.scope = scope;
  }
}

void Store::remove_scope(const std::string& id) {
  scopes_.erase(id);
}

std::string Store::key_of(const ScopeState& s, std::string_view object) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto refuse = [&](std::string why) {
    last_refusal_ = s.kind.kind + " object refused: " + std::move(why);
    return std::string();
  };
  if (const auto err = parser.parse(object.data(), object.size()).get(doc)) {
    return refuse(std::string("malformed JSON: ") + simdjson::error_message(err));
  }
  std::string_view kind, api, name, ns;
  if (doc["kind"].get(kind) == simdjson::SUCCESS && kind != s.kind.kind)
    return refuse("kind is not " + s.kind.kind);
  if (doc["apiVersion"].get(api) == simdjson::SUCCESS && api != s.kind.group_version) {
    return refuse("apiVersion is not " + s.kind.group_version);
  }
  if (doc["metadata"]["name"].get(name) != simdjson::SUCCESS || name.empty()) {
    return refuse("no metadata.name");
  }
  if (doc["metadata"]["namespace"].get(ns) != simdjson::SUCCESS) ns = {};
  if (!s.kind.namespaced) return std::string(name);
  const std::string where = std::string(ns) + "/" + std::string(name);
  if (ns.empty()) return refuse(std::string(name) + " has no metadata.namespace");
  if (!s.scope.ns.empty() && ns != s.scope.ns) {
    return refuse(where + " is outside the watched namespace " + s.scope.ns);
  }
  const auto& fs = s.scope.field_selector;
  if (fs.starts_with(kNameSelector) && name != std::string_view(fs).substr(kNameSelector.size())) {
    return refuse(where + " is not the object asked for (" + fs + ")");
  }
  return where;
}

std::size_t Store::replace(const std::string& id, const std::vector<std::string>& objects) {
  const auto it = scopes_.find(id);
  if (it == scopes_.end()) return objects.size();
  std::map<std::string, ingress::LoadResult> next;
  std::size_t refused = 0;
  for (const auto& o : objects) {
    auto key = key_of(it->second, o);
    if (key.empty()) {
      ++refused;
      continue;
    }
    ingress::LoadResult lr;
    ingress::load_json(o, "kubernetes:" + it->second.kind.kind + " " + key, lr);
    next.insert_or_assign(std::move(key), std::move(lr));
  }
  it->second.objects = std::move(next);
  return refused;
}

bool Store::apply(const std::string& id, EventType type, std::string_view object) {
  const auto it = scopes_.find(id);
  if (it == scopes_.end()) return false;
  auto key = key_of(it->second, object);
  if (key.empty()) return false;
  if (type == EventType::Deleted) {
    it->second.objects.erase(key);
    return true;
  }
  ingress::LoadResult lr;
  ingress::load_json(object, "kubernetes:" + it->second.kind.kind + " " + key, lr);
  it->second.objects.insert_or_assign(std::move(key), std::move(lr));
  return true;
}

ingress::LoadResult Store::resources() const {
  std::map<std::pair<int, std::string>, const ingress::LoadResult*> order;
  for (const auto& [id, s] : scopes_) {
    for (const auto& [key, lr] : s.objects) order.try_emplace({kind_rank(s.kind.kind), key}, &lr);
  }
  ingress::LoadResult out;
  for (const auto& [k, lr] : order) ingress::append(out, *lr);
  // An object that did not load is missing with its diagnostics; unlike a broken manifest file it
  // must not hold back every other change (Provider::resources: never broken_files).
  out.files = 0;
  out.broken_files = 0;
  out.parsed_files = 0;
  return out;
}

std::vector<const ingress::Ingress*> Store::ingresses() const {
  std::vector<const ingress::Ingress*> out;
  for (const auto& [id, s] : scopes_) {
    for (const auto& [key, lr] : s.objects) {
      for (const auto& i : lr.resources.ingresses) out.push_back(&i);
    }
  }
  return out;
}

std::vector<ingress::IngressClass> Store::ingress_classes() const {
  std::vector<ingress::IngressClass> out;
  for (const auto& [id, s] : scopes_) {
    for (const auto& [key, lr] : s.objects) {
      out.insert(out.end(), lr.resources.ingress_classes.begin(), lr.resources.ingress_classes.end());
    }
  }
  return out;
}

std::size_t Store::size(const std::string& id) const {
  const auto it = scopes_.find(id);
  return it == scopes_.end() ? 0 : it->second.objects.size();
}

namespace {

/// The references `refs` gives for each Ingress of ours, in the watched namespaces, under the caps.
template <class Refs>
std::set<std::string> wanted_refs(const Store& store, const config::IngressSpec& spec, std::size_t* dropped,
                                  Refs&& refs) {
  const auto classes = store.ingress_classes();
  const auto& namespaces = spec.kubernetes.namespaces;
  std::set<std::string> out;
  std::map<std::string, std::size_t> per_namespace;
  std::size_t over = 0;
  for (const auto* ing : store.ingresses()) {
    // Another controller's Ingress: its Secrets are none of our business (least privilege).
    if (!ingress::is_ours(*ing, classes, spec)) continue;
    // Each followed Secret is a LIST and a held WATCH connection: a tenant's Ingress naming
    // thousands of Secrets must not exhaust our descriptors or the API server's budget, nor crowd
    // out other namespaces. Beyond the caps a Secret is not followed (its TLS host gets the default
    // certificate; an auth-tls or proxy-ssl Secret that is missing fails its Ingress closed).
    std::size_t mine = 0;
    for (auto& ref : refs(*ing)) {
      const auto ns = ref.substr(0, ref.find('/'));
      if (!namespaces.empty() && std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end())
        continue;
      if (out.count(ref) != 0) continue;
      if (++mine > kMaxSecretsPerIngress || per_namespace[ns] >= kMaxSecretsPerNamespace ||
          out.size() >= kMaxFollowedSecrets) {
        ++over;
        continue;
      }
      ++per_namespace[ns];
      out.insert(std::move(ref));
    }
  }
  if (dropped != nullptr) *dropped = over;
  return out;
}

}  // namespace

std::set<std::string> wanted_secrets(const Store& store, const config::IngressSpec& spec,
                                     std::size_t* dropped) {
  return wanted_refs(store, spec, dropped,
                     [](const ingress::Ingress& i) { return ingress::referenced_secrets(i); });
}

std::set<std::string> wanted_config_maps(const Store& store, const config::IngressSpec& spec,
                                         std::size_t* dropped) {
  return wanted_refs(store, spec, dropped,
                     [](const ingress::Ingress& i) { return ingress::referenced_config_maps(i); });
}

}  // namespace detail

namespace {

std::string scope_id(const ResourceKind& kind, const Scope& scope) {
  return kind.plural + "|" + scope.ns + "|" + scope.label_selector + "|" + scope.field_selector;
}

const char* state_name(ReflectorState s) {
  switch (s) {
    case ReflectorState::Listing:
      return "listing";
    case ReflectorState::Watching:
      return "watching";
    case ReflectorState::Backoff:
      return "backing off";
    case ReflectorState::Forbidden:
      return "forbidden";
  }
  return "?";
}

void add_stats(ProviderStats& to, const ReflectorStats& s) {
  to.lists += s.lists;
  to.relists_gone += s.relists_gone;
  to.watches += s.watches;
  to.events += s.events;
  to.bookmarks += s.bookmarks;
  to.failures += s.failures;
}

}  // namespace

struct Provider::Impl {
  Impl(net::asio::io_context& i, const config::IngressSpec& s, Credentials creds, std::function<void()> cb)
      : io(i), spec(s), client(i, std::move(creds)), on_change(std::move(cb)) {}

  struct Entry {
    std::unique_ptr<Reflector> reflector;
    ResourceKind kind;
    std::string secret;      // "ns/name" of a Secret followed by name; "" otherwise
    std::string config_map;  // "ns/name" of a ConfigMap followed by name; "" otherwise
  };

  net::asio::io_context& io;
  config::IngressSpec spec;
  Client client;
  std::function<void()> on_change;
  detail::Store store;
  std::map<std::string, Entry> reflectors;  // by scope id
  ProviderStats retired;                    // stats of reflectors stopped (Secrets no longer referenced)
  std::uint64_t changes = 0;
  bool started = false;

  void add_reflector(const ResourceKind& kind, const Scope& scope, std::string secret = {},
                     std::string config_map = {}) {
    const auto id = scope_id(kind, scope);
    if (reflectors.count(id) != 0) return;  // e.g. a namespace listed twice
    store.add_scope(id, kind, scope);
    Reflector::Handlers h;
    h.on_list = [this, id, kind](std::vector<std::string> objects) {
      const auto refused = store.replace(id, objects);
      if (refused != 0) {
        PHI_LOG_WARN("kube: {} of {} objects from the API server refused in {}; last: {}", refused,
                     objects.size(), describe(id), store.last_refusal());
      }
      changed(kind);
    };
    h.on_event = [this, id, kind](EventType type, std::string_view object) {
      if (!store.apply(id, type, object)) {
        PHI_LOG_WARN("kube: watch event refused in {}: {}", describe(id), store.last_refusal());
        return;
      }
      changed(kind);
    };
    h.on_state = [this, id](ReflectorState state, const std::string& why) {
      // One line per change of state; `why` comes from our own text or the API server's Status
      // message, never a token or Secret data.
      if (state == ReflectorState::Backoff || state == ReflectorState::Forbidden) {
        PHI_LOG_WARN("kube: {}: {}: {}", describe(id), state_name(state), why);
      } else {
        PHI_LOG_INFO("kube: {}: {} ({})", describe(id), state_name(state), why);
      }
    };
    auto r = std::make_unique<Reflector>(io, client, kind, scope, spec.kubernetes, std::move(h));
    auto& e = reflectors[id];
    e.kind = kind;
    e.secret = std::move(secret);
    e.config_map = std::move(config_map);
    e.reflector = std::move(r);
    if (started) e.reflector->start();
  }

  std::string describe(const std::string& id) const {
    const auto it = reflectors.find(id);
    return it != reflectors.end() && it->second.reflector ? it->second.reflector->describe() : id;
  }

  void changed(const ResourceKind& kind) {
    if (kind.kind == ResourceKind::ingress().kind || kind.kind == ResourceKind::ingress_class().kind) {
      if (spec.kubernetes.secrets_label_selector.empty()) follow_secrets();
      follow_config_maps();
    }
    ++changes;
    if (on_change) on_change();
  }

  /// Secrets by name: one reflector per referenced Secret; those no longer referenced stop and
  /// their objects leave the store (a Secret we no longer need is not kept in memory).
  std::size_t secrets_dropped = 0;  // references over the caps at the last follow_secrets()

  void follow_secrets() {
    std::size_t dropped = 0;
    const auto wanted = detail::wanted_secrets(store, spec, &dropped);
    if (dropped != secrets_dropped) {
      secrets_dropped = dropped;
      if (dropped > 0) {
        PHI_LOG_WARN(
            "kube: {} Secret references not followed: over {} per Ingress, {} per namespace or {} in all",
            dropped, detail::kMaxSecretsPerIngress, detail::kMaxSecretsPerNamespace,
            detail::kMaxFollowedSecrets);
      }
    }
    follow_named(ResourceKind::secret(), wanted, &Entry::secret);
  }

  /// ConfigMaps by name, as Secrets (whatever secrets_label_selector says: ConfigMaps are never
  /// listed by label).
  std::size_t config_maps_dropped = 0;

  void follow_config_maps() {
    std::size_t dropped = 0;
    const auto wanted = detail::wanted_config_maps(store, spec, &dropped);
    if (dropped != config_maps_dropped) {
      config_maps_dropped = dropped;
      if (dropped > 0) {
        PHI_LOG_WARN(
            "kube: {} ConfigMap references not followed: over {} per Ingress, {} per namespace or {} in all",
            dropped, detail::kMaxSecretsPerIngress, detail::kMaxSecretsPerNamespace,
            detail::kMaxFollowedSecrets);
      }
    }
    follow_named(ResourceKind::config_map(), wanted, &Entry::config_map);
  }

  /// One name-scoped reflector of `kind` per "ns/name" of `wanted` (its Entry's `ref` member set);
  /// those of `kind` no longer wanted stop, and their objects leave the store.
  void follow_named(const ResourceKind& kind, const std::set<std::string>& wanted, std::string Entry::*ref) {
    for (auto it = reflectors.begin(); it != reflectors.end();) {
      const auto& followed = it->second.*ref;
      if (!followed.empty() && wanted.count(followed) == 0) {
        it->second.reflector->stop();
        add_stats(retired, it->second.reflector->stats());
        store.remove_scope(it->first);
        it = reflectors.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& name : wanted) {
      const auto slash = name.find('/');
      Scope s;
      s.ns = name.substr(0, slash);
      s.field_selector = "metadata.name=" + name.substr(slash + 1);
      if (ref == &Entry::secret) {
        add_reflector(kind, s, name);
      } else {
        add_reflector(kind, s, {}, name);
      }
    }
  }
};

Provider::Provider(net::asio::io_context& io, const config::IngressSpec& spec, Credentials creds,
                   std::function<void()> on_change)
    : impl_(std::make_unique<Impl>(io, spec, std::move(creds), std::move(on_change))) {}

Provider::~Provider() {
  stop();
}

void Provider::start() {
  auto& im = *impl_;
  if (im.started) return;
  im.started = true;
  const auto& k = im.spec.kubernetes;
  im.add_reflector(ResourceKind::ingress_class(), Scope{});
  std::vector<std::string> namespaces = k.namespaces;
  if (namespaces.empty()) namespaces.emplace_back();  // all namespaces
  for (const auto& ns : namespaces) {
    im.add_reflector(ResourceKind::ingress(), Scope{ns, "", ""});
    im.add_reflector(ResourceKind::service(), Scope{ns, "", ""});
    im.add_reflector(ResourceKind::endpoint_slice(), Scope{ns, "", ""});
    if (!k.secrets_label_selector.empty()) {
      im.add_reflector(ResourceKind::secret(), Scope{ns, k.secrets_label_selector, ""});
    }
  }
  // auth-url may name a Service of ingress.auth_url_namespaces (a shared oauth2-proxy): its
  // Services and EndpointSlices are followed like a backend's, when not watched already.
  if (!k.namespaces.empty()) {
    for (const auto& ns : im.spec.auth_url_namespaces) {
      if (std::find(k.namespaces.begin(), k.namespaces.end(), ns) != k.namespaces.end()) continue;
      im.add_reflector(ResourceKind::service(), Scope{ns, "", ""});
      im.add_reflector(ResourceKind::endpoint_slice(), Scope{ns, "", ""});
    }
  }
}

void Provider::stop() {
  if (!impl_) return;
  for (auto& [id, e] : impl_->reflectors) e.reflector->stop();
}

bool Provider::synced() const {
  if (!impl_->started || impl_->reflectors.empty()) return false;
  return std::all_of(impl_->reflectors.begin(), impl_->reflectors.end(),
                     [](const auto& kv) { return kv.second.reflector->synced(); });
}

ingress::LoadResult Provider::resources() const {
  return impl_->store.resources();
}

ProviderStats Provider::stats() const {
  ProviderStats out = impl_->retired;
  out.changes = impl_->changes;
  out.reflectors = impl_->reflectors.size();
  for (const auto& [id, e] : impl_->reflectors) {
    add_stats(out, e.reflector->stats());
    if (!e.secret.empty()) ++out.secrets_followed;
    if (!e.config_map.empty()) ++out.config_maps_followed;
  }
  return out;
}

Client& Provider::client() {
  return impl_->client;
}

}  // namespace phigate::kube
