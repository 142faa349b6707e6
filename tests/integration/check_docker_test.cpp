// check_docker_test: see tests/integration/CMakeLists.txt.
#include <gtest/gtest.h>
