#include "phigate/http/path.hpp"

namespace phigate::http {

namespace {

int hex(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

const char* normalize_target(std::string_view target, std::string& out) {
  out.clear();
  // RFC 9112 §3.2: a request target has no fragment. llhttp passes `/admin#x` through, which
  // would be routed by `/` here and served as `/admin` by servers that strip fragments.
  if (target.find('#') != std::string_view::npos) return "fragment in request target";
  // Absolute-form: keep only what follows the authority (RFC 9112 §3.2.2).
  if (!target.empty() && target.front() != '/') {
    const auto scheme = target.find("://");
    if (scheme == std::string_view::npos) return "request target is not a path";
    const auto rest = target.substr(scheme + 3);
    const auto slash = rest.find_first_of("/?");
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (target.front() == '?') {
      out = "/";
      out += target;
      return nullptr;
    }
  }
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (path.empty() || path.front() != '/') return "request target is not a path";
  // Windows-based and some Java servers treat `\` as a separator, so `/public\..\admin` would be
  // resolved there after being routed here by `/public` (the encoded form is refused below).
  if (path.find('\\') != std::string_view::npos) return "'\\' in path";
  // Fast path, the common case: nothing to decode, no empty or dot segment.
  if (path.find('%') == std::string_view::npos && path.find("//") == std::string_view::npos &&
      path.find("/.") == std::string_view::npos) {
    out.assign(target);
    return nullptr;
  }
  // Decode unreserved escapes first, so that "%2e%2e" is the ".." it means.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) return "malformed percent-escape";
    const int hi = hex(path[i + 1]);
    const int lo = hex(path[i + 2]);
    if (hi < 0 || lo < 0) return "malformed percent-escape";
    const auto byte = static_cast<unsigned char>(hi * 16 + lo);
    // An encoded separator would be split differently here and at the upstream: refuse it.
    if (byte == '/' || byte == '\\') return "encoded '/' or '\\' in path";
    if (unreserved(byte)) {
      decoded += static_cast<char>(byte);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += kHex[byte >> 4];
      decoded += kHex[byte & 15];
    }
    i += 2;
  }
  // Resolve segments (RFC 3986 §5.2.4), collapsing empty ones ("//").
  out.reserve(decoded.size() + (q == std::string_view::npos ? 0 : target.size() - q));
  std::size_t pos = 0;
  bool trailing_slash = false;
  while (pos < decoded.size()) {
    const auto next = decoded.find('/', pos);
    const auto seg =
        std::string_view(decoded).substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    trailing_slash = next != std::string::npos && next + 1 == decoded.size();
    pos = next == std::string::npos ? decoded.size() : next + 1;
    // Tomcat, Jetty and Spring drop `;parameters` from each segment before resolving dot
    // segments: `/public/..;/admin` is `/admin` there, but `/public/..;` here. Refuse such a
    // segment rather than guess which resolution the upstream applies.
    if (const auto semi = seg.find(';'); semi != std::string_view::npos) {
      const auto base = seg.substr(0, semi);
      if (base == "." || base == "..") return "dot segment with parameters";
    }
    if (seg.empty() || seg == ".") {
      if (seg == "." && next == std::string::npos) trailing_slash = true;
      continue;
    }
    if (seg == "..") {
      if (out.empty()) return "'..' above the root";
      out.resize(out.rfind('/'));
      if (next == std::string::npos) trailing_slash = true;
      continue;
    }
    out += '/';
    out += seg;
  }
  if (out.empty() || trailing_slash) out += '/';
  if (q != std::string_view::npos) out += target.substr(q);
  return nullptr;
}

std::string_view routing_path(std::string_view path, std::string& scratch) {
  if (path.find(';') == std::string_view::npos) return path;
  scratch.clear();
  std::size_t pos = 0;
  while (pos < path.size()) {
    // path starts with '/': each step copies "/segment" minus its parameters.
    const auto next = path.find('/', pos + 1);
    auto seg = path.substr(pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1);
    seg = seg.substr(0, seg.find(';'));
    // A segment that was only parameters (`/;x/admin`) leaves nothing, as in Tomcat: `/admin`.
    if (!seg.empty() || next == std::string_view::npos) {
      scratch += '/';
      scratch += seg;
    }
    if (next == std::string_view::npos) break;
    pos = next;
  }
  if (scratch.empty()) scratch = "/";
  return scratch;
}

}  // namespace phigate::http
