#include "phigate/kube/status.hpp"
