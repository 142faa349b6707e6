// Boost.JSON, compiled once for the audit library (header-only use: the unpacked Boost 1.83
// packages ship no libboost_json). verify.cpp reads records through it.
#include <boost/json/src.hpp>
