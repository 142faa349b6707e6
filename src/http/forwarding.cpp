#include "phigate/http/forwarding.hpp"

#include <array>
#include <string>

namespace phigate::http {

namespace {

/// The fixed hop-by-hop set (RFC 9110 §7.6.1) plus the framing fields the proxy re-emits itself.
/// Dispatch on length first: most fields are rejected without comparing a byte.
bool is_hop_by_hop(std::string_view n) noexcept {
  switch (n.size()) {
    case 2:
      return iequals(n, "te");
    case 6:
      return iequals(n, "expect");
    case 7:
      return iequals(n, "trailer") || iequals(n, "upgrade");
    case 10:
      return iequals(n, "connection") || iequals(n, "keep-alive");
    case 14:
      return iequals(n, "content-length");
    case 16:
      return iequals(n, "proxy-connection");
    case 17:
      return iequals(n, "transfer-encoding");
    default:
      return false;
  }
}

}  // namespace

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
  headers.remove_if([&](const Header& h) {
    if (is_hop_by_hop(h.name)) return true;
    for (std::size_t i = 0; i < n_named; ++i) {
      if (iequals(h.name, named[i])) return true;
    }
    return false;
  });
}

void set_forwarding_headers(HeaderList& headers, const ForwardInfo& info) {
  // One pass over the request's fields: from an untrusted peer every incoming forwarding field
  // goes (spoofing defence); from a trusted proxy they stay and we only note which are present.
  constexpr unsigned kXff = 1, kProto = 2, kHost = 4, kPort = 8, kRealIp = 16, kRequestId = 32;
  auto which = [=](std::string_view n) -> unsigned {
    switch (n.size()) {
      case 9:
        return iequals(n, "x-real-ip") ? kRealIp : 0u;
      case 12:
        return iequals(n, "x-request-id") ? kRequestId : 0u;
      case 15:
        return iequals(n, "x-forwarded-for") ? kXff : 0u;
      case 16:
        return iequals(n, "x-forwarded-host") ? kHost : iequals(n, "x-forwarded-port") ? kPort : 0u;
      case 17:
        return iequals(n, "x-forwarded-proto") ? kProto : 0u;
      default:
        return 0;
    }
  };
  unsigned present = 0;
  std::string chain;
  if (info.peer_trusted) {
    for (auto& h : headers) {
      const unsigned w = which(h.name);
      present |= w;
      if (w == kXff) {
        if (!chain.empty()) chain += ", ";
        chain += h.value;
      }
    }
    headers.remove_if([&](const Header& h) { return (which(h.name) & (kXff | kRealIp)) != 0; });
    present &= ~kRealIp;
  } else {
    headers.remove_if([&](const Header& h) { return which(h.name) != 0; });
  }
  if (!chain.empty()) {
    chain += ", ";
    chain.append(info.client_ip);
    headers.add("X-Forwarded-For", chain);
  } else {
    headers.add("X-Forwarded-For", info.client_ip);
  }
  char port[8];
  const auto port_len = static_cast<std::size_t>(std::snprintf(port, sizeof port, "%u", info.port));
  if (!(present & kProto)) headers.add("X-Forwarded-Proto", info.proto);
  if (!(present & kHost)) headers.add("X-Forwarded-Host", info.host);
  if (!(present & kPort)) headers.add("X-Forwarded-Port", std::string_view(port, port_len));
  if (!(present & kRealIp)) headers.add("X-Real-IP", info.real_ip.empty() ? info.client_ip : info.real_ip);
  if (!(present & kRequestId)) headers.add("X-Request-Id", info.request_id);
}

}  // namespace phigate::http
