#include "phigate/kube/leader.hpp"
