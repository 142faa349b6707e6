#pragma once
// Deployment manifests `phigate check --manifests` reads besides Ingresses and Secrets: workloads
// (Deployment, StatefulSet, DaemonSet), RBAC, NetworkPolicy, PodDisruptionBudget. Plain structs
// with 1-based lines; no YAML types leak out. CLI only (never read at run time).
#include <string>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/ingress/resources.hpp"

namespace phigate::ingress {

struct Workloads {
  config::Diagnostics diagnostics;
  std::size_t broken_files = 0;
};

/// Reads every manifest under `paths` (folders walked as load_directory does, or single files).
Workloads load_workloads(const std::vector<std::string>& paths);

}  // namespace phigate::ingress
