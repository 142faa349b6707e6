#include "phigate/net/client_hello.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace phigate::net::client_hello {

namespace {

constexpr unsigned kHandshakeRecord = 22;     // ContentType handshake (RFC 8446 §5.1)
constexpr unsigned kClientHello = 1;          // HandshakeType client_hello (§4)
constexpr unsigned kServerNameExtension = 0;  // RFC 6066 §3
constexpr unsigned kHostNameType = 0;         // NameType host_name
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordPayload = 16384;  // TLSPlaintext.length ≤ 2^14
constexpr std::size_t kMaxHostName = 253;

Result invalid(const char* why) {
  Result r;
  r.status = Status::Invalid;
  r.error = why;
  return r;
}

/// A bounds-checked reader over the reassembled handshake message.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool u8(unsigned& v) {
    if (b_.size() < 1) return false;
    v = static_cast<unsigned char>(b_[0]);
    b_.remove_prefix(1);
    return true;
  }
  bool u16(unsigned& v) {
    if (b_.size() < 2) return false;
    v = (static_cast<unsigned>(static_cast<unsigned char>(b_[0])) << 8) | static_cast<unsigned char>(b_[1]);
    b_.remove_prefix(2);
    return true;
  }
  bool bytes(std::size_t n, std::string_view& out) {
    if (b_.size() < n) return false;
    out = b_.substr(0, n);
    b_.remove_prefix(n);
    return true;
  }
  bool skip(std::size_t n) {
    std::string_view ignored;
    return bytes(n, ignored);
  }
  bool empty() const { return b_.empty(); }

 private:
  std::string_view b_;
};

/// RFC 1123 letters, digits, '-' and '_' (as the router's hosts), dots between non-empty labels,
/// one optional trailing dot (removed). Lower-cased. Empty when not such a name.
std::string normalise(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxHostName) return {};
  std::string out;
  out.reserve(name.size());
  char prev = '.';
  for (const char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!(alnum || c == '-' || c == '_' || c == '.')) return {};
    if (c == '.' && prev == '.') return {};  // empty label
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    prev = c;
  }
  if (prev == '.') return {};  // "a.example.." : an empty last label
  return out;
}

/// The ClientHello body (after the 4-byte handshake header), complete.
Result read_hello(std::string_view body) {
  Reader r(body);
  unsigned version = 0;
  if (!r.u16(version) || (version >> 8) != 3) return invalid("ClientHello: legacy_version is not 3.x");
  unsigned len = 0;
  if (!r.skip(32)) return invalid("ClientHello: truncated random");
  if (!r.u8(len) || len > 32 || !r.skip(len)) return invalid("ClientHello: bad session id");
  if (!r.u16(len) || len < 2 || len % 2 != 0 || !r.skip(len))
    return invalid("ClientHello: bad cipher suites");
  if (!r.u8(len) || len < 1 || !r.skip(len)) return invalid("ClientHello: bad compression methods");
  Result done;
  done.status = Status::Done;
  if (r.empty()) return done;  // no extensions (TLS 1.2 allows it): no SNI
  std::string_view exts;
  if (!r.u16(len) || !r.bytes(len, exts) || !r.empty()) return invalid("ClientHello: bad extensions length");
  Reader e(exts);
  bool seen_sni = false;
  while (!e.empty()) {
    unsigned type = 0;
    std::string_view data;
    if (!e.u16(type) || !e.u16(len) || !e.bytes(len, data))
      return invalid("ClientHello: truncated extension");
    if (type != kServerNameExtension) continue;
    // RFC 8446 §4.2: at most one extension of each type.
    if (seen_sni) return invalid("ClientHello: two server_name extensions");
    seen_sni = true;
    Reader s(data);
    std::string_view list;
    if (!s.u16(len) || len == 0 || !s.bytes(len, list) || !s.empty())
      return invalid("ClientHello: bad server_name list");
    Reader l(list);
    bool seen_host = false;
    while (!l.empty()) {
      unsigned name_type = 0;
      std::string_view name;
      if (!l.u8(name_type) || !l.u16(len) || !l.bytes(len, name))
        return invalid("ClientHello: bad server_name");
      if (name_type != kHostNameType) continue;
      // RFC 6066 §3: no more than one name of the same name_type.
      if (seen_host) return invalid("ClientHello: two host_name entries");
      seen_host = true;
      done.server_name = normalise(name);
    }
  }
  return done;
}

}  // namespace

Result parse(const unsigned char* data, std::size_t n) {
  // Reassemble the handshake bytes from consecutive handshake records until the ClientHello's
  // length (from its 4-byte header) is known and present.
  std::string msg;
  std::size_t pos = 0;
  std::size_t need = 0;  // 0 until the handshake header is known: 4 + its length
  for (;;) {
    if (need != 0 && msg.size() >= need) break;
    if (n - pos < kRecordHeader) {
      if (pos + kRecordHeader > kMaxPeekBytes) return invalid("ClientHello: records exceed the peek bound");
      return {};  // NeedMore
    }
    const unsigned char* h = data + pos;
    if (h[0] != kHandshakeRecord) return invalid("not a TLS handshake record");
    if (h[1] != 3) return invalid("TLS record: version is not 3.x");
    const std::size_t rlen = (static_cast<std::size_t>(h[3]) << 8) | h[4];
    if (rlen == 0) return invalid("TLS record: empty handshake record");  // RFC 8446 §5.1
    if (rlen > kMaxRecordPayload) return invalid("TLS record: longer than 2^14");
    if (pos + kRecordHeader + rlen > kMaxPeekBytes)
      return invalid("ClientHello: records exceed the peek bound");
    const std::size_t avail = std::min(rlen, n - pos - kRecordHeader);
    msg.append(reinterpret_cast<const char*>(h + kRecordHeader), avail);
    if (need == 0 && msg.size() >= 4) {
      if (static_cast<unsigned char>(msg[0]) != kClientHello) return invalid("handshake: not a ClientHello");
      const std::size_t hlen = (static_cast<std::size_t>(static_cast<unsigned char>(msg[1])) << 16) |
                               (static_cast<std::size_t>(static_cast<unsigned char>(msg[2])) << 8) |
                               static_cast<unsigned char>(msg[3]);
      if (hlen > kMaxHelloBytes - 4) return invalid("ClientHello: longer than the bound");
      need = 4 + hlen;
    }
    if (avail < rlen) {
      if (need != 0 && msg.size() >= need) break;  // the rest of the record is not the hello's
      return {};                                   // NeedMore: the record is incomplete
    }
    pos += kRecordHeader + rlen;
  }
  return read_hello(std::string_view(msg).substr(4, need - 4));
}

}  // namespace phigate::net::client_hello
