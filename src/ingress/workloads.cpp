// Deployment manifests for `phigate check` (workloads.hpp).
#include "phigate/ingress/workloads.hpp"

namespace phigate::ingress {

Workloads load_workloads(const std::vector<std::string>&) {
  return {};
}

}  // namespace phigate::ingress
