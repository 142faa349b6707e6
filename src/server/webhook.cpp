#include "webhook.hpp"
