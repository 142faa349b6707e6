#include "phigate/http/forwarding.hpp"

#include <array>
#include <string>

namespace phigate::http {

void remove_hop_by_hop(HeaderList& headers) {
  // RFC 9110 §7.6.1: fields listed in Connection are meant for this hop only. Collect them first,
  // because removing Connection invalidates the value we are reading.
  std::array<std::string, 8> named;
  std::size_t n_named = 0;
  for (const auto& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    for_each_token(h.value, [&](std::string_view tok) {
      if (n_named < named.size()) named[n_named++].assign(tok);
    });
  }
  static constexpr std::string_view kHopByHop[] = {"connection", "keep-alive",     "proxy-connection",
                                                   "te",         "trailer",        "transfer-encoding",
                                                   "upgrade",    "content-length", "expect"};
  for (auto name : kHopByHop) headers.remove(name);
  for (std::size_t i = 0; i < n_named; ++i) headers.remove(named[i]);
}

void set_forwarding_headers(HeaderList& headers, const ForwardInfo& info) {
  if (const auto* xff = info.peer_trusted ? headers.find("x-forwarded-for") : nullptr) {
    std::string chain = *xff;
    chain += ", ";
    chain.append(info.client_ip);
    headers.set("X-Forwarded-For", chain);
  } else {
    headers.set("X-Forwarded-For", info.client_ip);
  }
  auto keep_or_set = [&](std::string_view name, std::string_view value) {
    if (info.peer_trusted && headers.find(name) != nullptr) return;
    headers.set(name, value);
  };
  char port[8];
  const auto port_len = static_cast<std::size_t>(std::snprintf(port, sizeof port, "%u", info.port));
  keep_or_set("X-Forwarded-Proto", info.proto);
  keep_or_set("X-Forwarded-Host", info.host);
  keep_or_set("X-Forwarded-Port", std::string_view(port, port_len));
  keep_or_set("X-Real-IP", info.client_ip);
  keep_or_set("X-Request-Id", info.request_id);
}

}  // namespace phigate::http
