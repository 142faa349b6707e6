#include "phigate/kube/provider.hpp"
