#include "phigate/ingress/loader.hpp"
