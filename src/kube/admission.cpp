#include "phigate/kube/admission.hpp"
