#pragma once
// A cluster: the endpoints one route forwards to. Immutable, part of the snapshot.
#include <string>
#include <vector>

#include "phigate/net/asio.hpp"

namespace phigate::upstream {

struct Endpoint {
  net::tcp::endpoint address;
  std::string key;  // "ip:port": stable identity across reloads (pool, health)
};

struct Cluster {
  std::string name;  // route name, for logs
  std::vector<Endpoint> endpoints;
};

}  // namespace phigate::upstream
