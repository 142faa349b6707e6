// check_enforce_test: see tests/integration/CMakeLists.txt.
#include <gtest/gtest.h>
