#pragma once
// The Kubernetes source of Ingress resources: one Reflector per kind and namespace scope
// (IngressClass cluster-wide; Ingress, Service, EndpointSlice per configured namespace or all),
// Secrets only as Ingresses reference them (one name-scoped reflector each: spec.tls secretName,
// auth-tls-secret, proxy-ssl-secret) or by `secrets_label_selector`, ConfigMaps only as Ingresses
// reference them (custom-headers, proxy-set-headers; by name, as Secrets). Objects land in a store of
// typed ingress::Resources (the same structs the folder source loads, through the same readers),
// and every change calls `on_change` (the server debounces and rebuilds). Control thread.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/kube/client.hpp"
#include "phigate/kube/reflector.hpp"

namespace phigate::kube {

struct ProviderStats {
  std::uint64_t changes = 0;  // on_change calls
  std::uint64_t lists = 0, relists_gone = 0, watches = 0, events = 0, bookmarks = 0, failures = 0;
  std::size_t reflectors = 0;
  std::size_t secrets_followed = 0;
  std::size_t config_maps_followed = 0;
};

class Provider {
 public:
  Provider(net::asio::io_context& io, const config::IngressSpec& spec, Credentials creds,
           std::function<void()> on_change);
  ~Provider();
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  void start();
  void stop();
  /// Every reflector has completed its first LIST (Secrets included): a build now sees the
  /// cluster as it is. Until then the server reports not-ready.
  bool synced() const;
  /// The current objects, in a stable order (namespace/name per kind), with the diagnostics of
  /// objects that did not load (`file` is "kubernetes:Kind ns/name"). Never `broken_files`.
  ingress::LoadResult resources() const;
  ProviderStats stats() const;
  Client& client();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace phigate::kube
