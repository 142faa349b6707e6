#include "phigate/compile/review.hpp"
