#include "phigate/kube/client.hpp"
