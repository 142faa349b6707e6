#include "phigate/kube/reflector.hpp"
