#include "phigate/kube/credentials.hpp"
