#pragma once
// The provider's store of typed resources (private to the kube library; unit-tested event by
// event): per reflector scope, "ns/name" → the object as ingress::load_json read it (with its
// diagnostics). A LIST replaces a scope wholesale, a watch event applies or deletes one object.
// Objects outside the scope (another kind, namespace or name than the reflector asked for) are
// refused: the API server is not trusted to have applied our selectors.
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/kube/reflector.hpp"

namespace phigate::kube::detail {

class Store {
 public:
  /// A reflector's scope, named `id`. Adding an existing id keeps its objects.
  void add_scope(const std::string& id, const ResourceKind& kind, const Scope& scope);
  /// Forgets the scope and its objects.
  void remove_scope(const std::string& id);
  /// Replaces every object of the scope by `objects` (JSON each). Returns how many were refused
  /// (their reasons in last_refusal()). Objects missing from `objects` are gone.
  std::size_t replace(const std::string& id, const std::vector<std::string>& objects);
  /// One watch event; false when refused (last_refusal()).
  bool apply(const std::string& id, EventType type, std::string_view object);

  /// Every object, in a stable order: by kind (Ingress, IngressClass, Secret, Service,
  /// EndpointSlice), then "ns/name"; an object held by two scopes appears once.
  ingress::LoadResult resources() const;
  /// The stored Ingresses and IngressClasses (valid until the next change).
  std::vector<const ingress::Ingress*> ingresses() const;
  std::vector<ingress::IngressClass> ingress_classes() const;
  /// Objects stored in scope `id` (0 when unknown).
  std::size_t size(const std::string& id) const;
  const std::string& last_refusal() const noexcept { return last_refusal_; }

 private:
  struct ScopeState {
    ResourceKind kind;
    Scope scope;
    std::map<std::string, ingress::LoadResult> objects;  // "ns/name" (cluster-scoped: "name")
  };
  /// The key of `object` if it belongs in `s`; "" (and last_refusal_) otherwise.
  std::string key_of(const ScopeState& s, std::string_view object);

  std::map<std::string, ScopeState> scopes_;
  std::string last_refusal_;
};

/// "ns/name" of each Secret that an Ingress of ours (ingress::is_ours under `spec`) in the store
/// references (ingress::referenced_secrets), restricted to the watched namespaces.
/// At most this many Secrets are followed per Ingress, per namespace and in all (each is a LIST
/// and a held WATCH); references beyond are counted in `dropped`.
inline constexpr std::size_t kMaxSecretsPerIngress = 32;
inline constexpr std::size_t kMaxSecretsPerNamespace = 500;
inline constexpr std::size_t kMaxFollowedSecrets = 2000;
std::set<std::string> wanted_secrets(const Store& store, const config::IngressSpec& spec,
                                     std::size_t* dropped = nullptr);
/// "ns/name" of each ConfigMap an Ingress of ours references (ingress::referenced_config_maps:
/// custom-headers, proxy-set-headers), under the same rules and caps as Secrets (counted apart).
std::set<std::string> wanted_config_maps(const Store& store, const config::IngressSpec& spec,
                                         std::size_t* dropped = nullptr);

}  // namespace phigate::kube::detail
