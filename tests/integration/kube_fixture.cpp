// (being written)
#include <gtest/gtest.h>
#include "kube_fixture.hpp"
