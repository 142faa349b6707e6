#include "phigate/http/forwarding.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string>

#include "phigate/http/response_edits.hpp"

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
  // RFC 9110 §7.6.1: fields listed in Connection are meant for this hop only. Every token counts
  // (a cap would let the ninth name through). The values are copied first: removal moves field
  // storage, and a view into a short (inline) string would then read another field.
  std::string named;
  for (const auto& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    if (!named.empty()) named += ',';
    named += h.value;
  }
  headers.remove_if([&](const Header& h) {
    if (is_hop_by_hop(h.name)) return true;
    // Host is end-to-end and routing already used it: `Connection: host` must not make the
    // upstream see a request without one (or fall back to another virtual host). The framing
    // fields are re-emitted from the parsed message whatever Connection says.
    if (named.empty() || iequals(h.name, "host")) return false;
    bool listed = false;
    for_each_token(named, [&](std::string_view tok) { listed = listed || iequals(tok, h.name); });
    return listed;
  });
}

namespace {

/// The work of both entry points below: the client's forwarding fields out of `headers` (or, from
/// a trusted proxy, read and partly kept), then ours, each handed to emit(name, value), then
/// done(). The views emit gets live until done() returns (they may point at locals here).
template <class Emit, class Done>
void forward(HeaderList& headers, const ForwardInfo& info, Emit&& emit, Done&& done) {
  // One pass over the request's fields: from an untrusted peer every incoming forwarding field
  // goes (spoofing defence); from a trusted proxy they stay and we only note which are present.
  constexpr unsigned kXff = 1, kProto = 2, kHost = 4, kPort = 8, kRealIp = 16, kRequestId = 32,
                     kForwarded = 64, kDrop = 128, kUntrusted = 256;
  auto which = [=](std::string_view n) -> unsigned {
    // CGI, PHP-FPM and WSGI map `-`, `_` (and some mappers any other non-alphanumeric) to the
    // same variable: `ssl_client_verify`, `X_Forwarded_For` or `X.Forwarded.For` would reach the
    // application as the field we set or strip. Only letters, digits and `-` pass (nginx's
    // ignore_invalid_headers with underscores_in_headers off), from everyone.
    for (const char c : n) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return kDrop;
    }
    switch (n.size()) {
      case 9:
        return iequals(n, "x-real-ip") ? kRealIp : iequals(n, "forwarded") ? kForwarded : 0u;
      case 13:
        // Read by some frameworks (IIS URL Rewrite, Symfony, Zend) as the path actually
        // requested: a client could route by one path and be served another. Never ours to pass.
        return iequals(n, "x-rewrite-url") ? kDrop : 0u;
      case 14:
        return iequals(n, "x-original-url") ? kDrop : iequals(n, "x-original-uri") ? kUntrusted : 0u;
      case 12:
        return iequals(n, "x-request-id") ? kRequestId : 0u;
      case 15:
        // X-Forwarded-Ssl: Rack and others take it as "the client used HTTPS"; -Uri as the path.
        return iequals(n, "x-forwarded-for")   ? kXff
               : iequals(n, "x-forwarded-ssl") ? kUntrusted
               : iequals(n, "x-forwarded-uri") ? kUntrusted
                                               : 0u;
      case 16:
        return iequals(n, "x-forwarded-host") ? kHost : iequals(n, "x-forwarded-port") ? kPort : 0u;
      case 17:
        return iequals(n, "x-forwarded-proto") ? kProto : 0u;
      case 18:
        // Spring and Flask's ProxyFix prefix generated links and redirects with X-Forwarded-Prefix.
        return iequals(n, "x-forwarded-prefix") || iequals(n, "x-forwarded-scheme") ? kUntrusted : 0u;
      default:
        return 0;
    }
  };
  unsigned present = 0;
  std::string chain;
  thread_local std::string forwarded;  // RFC 7239 elements from a trusted proxy, ours appended
  forwarded.clear();
  if (info.peer_trusted) {
    for (auto& h : headers) {
      const unsigned w = which(h.name);
      present |= w;
      if (w == kXff) {
        if (!chain.empty()) chain += ", ";
        chain += h.value;
      } else if (w == kForwarded) {
        if (!forwarded.empty()) forwarded += ", ";
        forwarded += h.value;
      }
    }
    headers.remove_if(
        [&](const Header& h) { return (which(h.name) & (kXff | kRealIp | kForwarded | kDrop)) != 0; });
    present &= ~kRealIp;
  } else {
    headers.remove_if([&](const Header& h) { return which(h.name) != 0; });
  }
  // RFC 7239 §4: `for` is the client as we saw it, `host` and `proto` as it asked. IPv6 and a
  // Host with a port need the quoted form (`:` and `[` are not token characters); Host was
  // validated, so it holds no quote or backslash.
  if (!forwarded.empty()) forwarded += ", ";
  const bool v6 = info.client_ip.find(':') != std::string_view::npos;
  forwarded += v6 ? "for=\"[" : "for=";
  forwarded += info.client_ip;
  if (v6) forwarded += "]\"";
  if (!info.host.empty()) {
    // A loop, not find_first_of: that is a memchr over ":[]" per byte of the host.
    const bool quote = std::any_of(info.host.begin(), info.host.end(),
                                   [](char c) { return c == ':' || c == '[' || c == ']'; });
    forwarded += quote ? ";host=\"" : ";host=";
    forwarded += info.host;
    if (quote) forwarded += '"';
  }
  forwarded += ";proto=";
  forwarded += info.proto;
  emit("Forwarded", forwarded);
  if (!chain.empty()) {
    chain += ", ";
    chain.append(info.client_ip);
    emit("X-Forwarded-For", chain);
  } else {
    emit("X-Forwarded-For", info.client_ip);
  }
  // std::to_chars, not snprintf: glibc's printf machinery was 1.7 % of an HTTP/2 request's
  // instructions at 100 streams per connection (docs/perf-h2-many-streams.md, round 12).
  char port[8];
  const auto port_len =
      static_cast<std::size_t>(std::to_chars(port, port + sizeof port, info.port).ptr - port);
  if (!(present & kProto)) emit("X-Forwarded-Proto", info.proto);
  if (!(present & kHost)) emit("X-Forwarded-Host", info.host);
  if (!(present & kPort)) emit("X-Forwarded-Port", std::string_view(port, port_len));
  if (!(present & kRealIp)) emit("X-Real-IP", info.real_ip.empty() ? info.client_ip : info.real_ip);
  if (!(present & kRequestId)) emit("X-Request-Id", info.request_id);
  done();
}

}  // namespace

void set_forwarding_headers(HeaderList& headers, const ForwardInfo& info) {
  forward(
      headers, info, [&](std::string_view name, std::string_view value) { headers.add(name, value); }, [] {});
}

void forwarding_lines(HeaderList& headers, const ForwardInfo& info, std::string& lines) {
  // Collected, then written in one pass into one resize: seven appends of four pieces each cost
  // more than the copies (docs/perf-h2-many-streams.md, round 15).
  std::array<FieldRef, 8> ours;
  std::size_t n = 0;
  std::size_t bytes = 0;
  const auto collect = [&](std::string_view name, std::string_view value) {
    ours[n++] = {name, value};
    bytes += name.size() + value.size() + 4;
  };
  const auto write = [&] {
    const std::size_t at = lines.size();
    lines.resize(at + bytes);
    char* p = lines.data() + at;
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(p, ours[i].name.data(), ours[i].name.size());
      p += ours[i].name.size();
      *p++ = ':';
      *p++ = ' ';
      std::memcpy(p, ours[i].value.data(), ours[i].value.size());
      p += ours[i].value.size();
      *p++ = '\r';
      *p++ = '\n';
    }
  };
  forward(headers, info, collect, write);
}

bool is_forwarding_field(std::string_view name) noexcept {
  return iequals(name, "forwarded") || iequals(name, "x-forwarded-for") ||
         iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host") ||
         iequals(name, "x-forwarded-port") || iequals(name, "x-real-ip") || iequals(name, "x-request-id");
}

void add_raw_lines(HeaderList& headers, std::string_view lines) {
  for_each_raw_line(lines, [&](std::string_view name, std::string_view value) {
    if (!name.empty()) headers.add(name, value);
  });
}

std::optional<std::string_view> forwarded_value(const HeaderList& headers, std::string_view lines,
                                                std::string_view name) noexcept {
  if (const auto* field = headers.find(name)) return *field;
  std::optional<std::string_view> found;
  for_each_raw_line(lines, [&](std::string_view n, std::string_view value) {
    if (!found && !n.empty() && iequals(n, name)) found = value;
  });
  return found;
}

}  // namespace phigate::http
