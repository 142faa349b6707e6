#include "phigate/config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <type_traits>

#include "phigate/core/host_map.hpp"
#include "phigate/core/host_port.hpp"
#include "phigate/core/strings.hpp"

namespace phigate::config {

namespace fs = std::filesystem;
using core::split_host_port;

bool parse_duration(const std::string& text, Duration& out) {
  std::uint64_t n = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [ptr, ec] = std::from_chars(b, e, n);
  // Bounded so that no unit multiplication overflows (10^12 s is ~31,700 years).
  if (ec != std::errc{} || ptr == b || n > 1'000'000'000'000ULL) return false;
  const std::string_view unit(ptr, static_cast<std::size_t>(e - ptr));
  std::uint64_t ms = 0;
  if (unit.empty() || unit == "s") {
    ms = n * 1000;
  } else if (unit == "ms") {
    ms = n;
  } else if (unit == "m") {
    ms = n * 60'000;
  } else if (unit == "h") {
    ms = n * 3'600'000;
  } else {
    return false;
  }
  out = Duration(ms);
  return true;
}

bool parse_size(const std::string& text, std::uint64_t& out) {
  std::uint64_t n = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [ptr, ec] = std::from_chars(b, e, n);
  if (ec != std::errc{} || ptr == b) return false;
  std::string_view unit(ptr, static_cast<std::size_t>(e - ptr));
  std::uint64_t mult = 1;
  if (unit == "k" || unit == "K") {
    mult = 1ULL << 10;
  } else if (unit == "m" || unit == "M") {
    mult = 1ULL << 20;
  } else if (unit == "g" || unit == "G") {
    mult = 1ULL << 30;
  } else if (!unit.empty()) {
    return false;
  }
  if (n > std::numeric_limits<std::uint64_t>::max() / mult) return false;
  out = n * mult;
  return true;
}

namespace {

/// Walks one YAML document, reporting problems with file, line and dotted key path.
class Reader {
 public:
  Reader(std::string file, Diagnostics& diag) : file_(std::move(file)), diag_(diag) {}

  static int line_of(const YAML::Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

  void error(const YAML::Node& n, const std::string& field, const std::string& msg) {
    diag_.error(file_, line_of(n), field, msg);
  }

  /// A map whose keys must all be in `allowed`; reports every other key.
  bool expect_map(const YAML::Node& n, const std::string& field,
                  std::initializer_list<std::string_view> allowed) {
    if (!n.IsMap()) {
      error(n, field, "expected a mapping");
      return false;
    }
    if (!field.empty()) note(field, n);  // a list item's map ("routes[0]") keeps its own line
    for (const auto& kv : n) {
      const auto key = kv.first.as<std::string>("");
      note(join(field, key), kv.first);
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(kv.first, join(field, key), "unknown key");
      }
    }
    return true;
  }

  static std::string join(const std::string& a, std::string_view b) {
    return a.empty() ? std::string(b) : a + "." + std::string(b);
  }

  bool scalar(const YAML::Node& n, const std::string& field, std::string& out) {
    if (!n.IsScalar()) {
      error(n, field, "expected a string");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  template <class Int>
  void integer(const YAML::Node& parent, std::string_view key, const std::string& field, Int& out, Int min,
               Int max) {
    const auto n = parent[std::string(key)];
    if (!n) return;
    const auto f = join(field, key);
    long long v = 0;
    const auto& s = n.IsScalar() ? n.Scalar() : std::string();
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!n.IsScalar() || ec != std::errc{} || ptr != s.data() + s.size()) {
      error(n, f, "expected an integer");
      return;
    }
    if (v < static_cast<long long>(min) || v > static_cast<long long>(max)) {
      error(n, f, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return;
    }
    out = static_cast<Int>(v);
  }

  void boolean(const YAML::Node& parent, std::string_view key, const std::string& field, bool& out) {
    const auto n = parent[std::string(key)];
    if (!n) return;
    const auto& s = n.IsScalar() ? n.Scalar() : std::string();
    if (s == "true") {
      out = true;
    } else if (s == "false") {
      out = false;
    } else {
      error(n, join(field, key), "expected true or false");
    }
  }

  void string(const YAML::Node& parent, std::string_view key, const std::string& field, std::string& out) {
    const auto n = parent[std::string(key)];
    if (n) scalar(n, join(field, key), out);
  }

  void duration(const YAML::Node& parent, std::string_view key, const std::string& field, Duration& out) {
    const auto n = parent[std::string(key)];
    if (!n) return;
    Duration d{};
    if (!n.IsScalar() || !parse_duration(n.Scalar(), d)) {
      error(n, join(field, key), "expected a duration such as 250ms, 10s, 5m or 1h");
      return;
    }
    out = d;
  }

  template <class Size>
  void size(const YAML::Node& parent, std::string_view key, const std::string& field, Size& out) {
    const auto n = parent[std::string(key)];
    if (!n) return;
    std::uint64_t v = 0;
    if (!n.IsScalar() || !parse_size(n.Scalar(), v)) {
      error(n, join(field, key), "expected a size such as 8192, 16k or 1m");
      return;
    }
    out = static_cast<Size>(v);
  }

  void string_list(const YAML::Node& parent, std::string_view key, const std::string& field,
                   std::vector<std::string>& out) {
    const auto n = parent[std::string(key)];
    if (!n) return;
    const auto f = join(field, key);
    if (!n.IsSequence()) {
      error(n, f, "expected a list");
      return;
    }
    out.clear();
    for (std::size_t i = 0; i < n.size(); ++i) {
      std::string s;
      const auto item = f + "[" + std::to_string(i) + "]";
      note(item, n[i]);
      if (scalar(n[i], item, s)) out.push_back(std::move(s));
    }
  }

  /// Remembers where `field` is written (the first time it is seen); `phigate check` places
  /// findings with it (Config::key_lines).
  void note(const std::string& field, const YAML::Node& n) {
    if (const int line = line_of(n); line > 0) lines_->emplace(field, line);
  }
  std::shared_ptr<const std::map<std::string, int>> lines() const { return lines_; }

  const std::string& file() const { return file_; }
  Diagnostics& diag() { return diag_; }

 private:
  std::string file_;
  Diagnostics& diag_;
  std::shared_ptr<std::map<std::string, int>> lines_ = std::make_shared<std::map<std::string, int>>();
};

}  // namespace

std::string parse_next_upstream(std::string_view text, std::uint16_t& out) {
  static constexpr std::string_view kWhat =
      "expected \"off\" or a space-separated list of error, timeout, invalid_header, http_500, http_502, "
      "http_503, http_504, http_403, http_404, http_429";
  static constexpr std::pair<std::string_view, std::uint16_t> kWords[] = {
      {"error", kNextUpstreamError},          {"timeout", kNextUpstreamTimeout},
      {"invalid_header", kNextUpstreamError},  // a malformed answer is an error here
      {"http_500", kNextUpstreamHttp500},     {"http_502", kNextUpstreamHttp502},
      {"http_503", kNextUpstreamHttp503},     {"http_504", kNextUpstreamHttp504},
      {"http_403", kNextUpstreamHttp403},     {"http_404", kNextUpstreamHttp404},
      {"http_429", kNextUpstreamHttp429}};
  std::uint16_t bits = 0;
  bool off = false;
  bool any = false;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const auto word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (word.empty()) continue;
    any = true;
    if (word == "off") {
      off = true;
      continue;
    }
    if (word == "non_idempotent") {
      return "non_idempotent is not supported: phigate never sends a second copy of a POST or PATCH (a "
             "backend may already have acted on the first)";
    }
    const auto* w =
        std::find_if(std::begin(kWords), std::end(kWords), [&](const auto& e) { return e.first == word; });
    if (w == std::end(kWords)) return std::string(kWhat);
    bits |= w->second;
  }
  if (!any || (off && bits != 0)) return std::string(kWhat);
  out = bits;
  return {};
}

namespace {

/// RFC 1123 label as Kubernetes names namespaces: lower-case alphanumerics and '-', 1..63, no '-' at the
/// ends.
bool valid_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

/// RFC 1123 subdomain (most object names): labels joined by '.', at most 253 characters.
bool valid_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (std::size_t start = 0;;) {
    const auto dot = s.find('.', start);
    if (!valid_dns_label(
            s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(dir) / p).lexically_normal().string();
}

void read_certificate(Reader& r, const YAML::Node& n, const std::string& field, const std::string& dir,
                      CertificateSpec& out) {
  if (!r.expect_map(n, field, {"cert", "key"})) return;
  out.where = {r.file(), Reader::line_of(n)};
  for (auto [key, target] : {std::pair{"cert", &out.cert}, std::pair{"key", &out.key}}) {
    const auto v = n[key];
    const auto f = Reader::join(field, key);
    if (!v) {
      r.error(n, f, "required");
      continue;
    }
    std::string s;
    if (!r.scalar(v, f, s)) continue;
    *target = resolve(dir, s);
    std::error_code ec;
    if (!fs::is_regular_file(*target, ec)) r.error(v, f, "file not found: " + *target);
  }
}

bool valid_hostname(const std::string& h) {
  std::string_view v = h;
  if (const auto suffix = core::wildcard_suffix(v)) v = *suffix;  // one "*." label, as HostMap matches
  if (v.empty() || v.size() > 253) return false;
  std::size_t label = 0;
  for (char c : v) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

/// The whole of a PEM file named by `key` of `n` (resolved against `dir`) into `out`.
void read_pem_file(Reader& r, const YAML::Node& n, std::string_view key, const std::string& field,
                   const std::string& dir, std::string& out) {
  const auto v = n[std::string(key)];
  if (!v) return;
  const auto f = Reader::join(field, key);
  std::string s;
  if (!r.scalar(v, f, s)) return;
  const auto path = resolve(dir, s);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    r.error(v, f, "cannot read " + path);
    return;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  if (out.find("-----BEGIN ") == std::string::npos) r.error(v, f, "not a PEM file: " + path);
}

/// A static path's `backend_protocol:` (as ingress-nginx's backend-protocol annotation: HTTP,
/// HTTPS, GRPC, GRPCS), `backend_tls:` (the TLS settings of HTTPS and GRPCS; alone it means HTTPS)
/// and `phi:` as the RoutePolicy fields an Ingress's annotations fill, so that one compile step
/// serves both. Without them the path keeps no policy (defaults).
void read_path_policy(Reader& r, const YAML::Node& pn, const std::string& pf, const std::string& dir,
                      PathSpec& p) {
  const auto tn = pn["backend_tls"];
  const auto bp = pn["backend_protocol"];
  if (!tn && !bp && !pn["phi"]) return;
  auto pol = std::make_shared<RoutePolicy>();
  r.boolean(pn, "phi", pf, pol->phi);
  if (tn) pol->backend_protocol = BackendProtocol::Https;
  if (bp) {
    std::string v;
    r.string(pn, "backend_protocol", pf, v);
    for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto bf = pf + ".backend_protocol";
    if (v == "HTTP" || v == "GRPC") {
      pol->backend_protocol = v == "HTTP" ? BackendProtocol::Http : BackendProtocol::Grpc;
      if (tn) r.error(bp, bf, v + " is plain text to the backend, but backend_tls is set: use " + v + "S");
    } else if (v == "HTTPS" || v == "GRPCS") {
      pol->backend_protocol = v == "HTTPS" ? BackendProtocol::Https : BackendProtocol::Grpcs;
    } else {
      r.error(bp, bf, "must be HTTP, HTTPS, GRPC or GRPCS, not '" + v + "'");
    }
  }
  const auto f = pf + ".backend_tls";
  if (tn && r.expect_map(tn, f,
                         {"ca", "cert", "key", "name", "server_name", "verify", "verify_depth", "protocols",
                          "ciphers"})) {
    read_pem_file(r, tn, "ca", f, dir, pol->proxy_ssl_ca_pem);
    read_pem_file(r, tn, "cert", f, dir, pol->proxy_ssl_cert_pem);
    read_pem_file(r, tn, "key", f, dir, pol->proxy_ssl_key_pem);
    if (pol->proxy_ssl_cert_pem.empty() != pol->proxy_ssl_key_pem.empty()) {
      r.error(tn, f, "cert and key go together (the client certificate for mTLS to the backend)");
    }
    r.string(tn, "name", f, pol->proxy_ssl_name);
    r.boolean(tn, "server_name", f, pol->proxy_ssl_server_name);
    r.boolean(tn, "verify", f, pol->proxy_ssl_verify);
    r.integer(tn, "verify_depth", f, pol->proxy_ssl_verify_depth, 0, 100);
    r.string(tn, "protocols", f, pol->proxy_ssl_protocols);
    r.string(tn, "ciphers", f, pol->proxy_ssl_ciphers);
  }
  p.policy = std::move(pol);
}

void read_routes(Reader& r, const YAML::Node& n, Config& cfg) {
  if (!n.IsSequence()) {
    r.error(n, "routes", "expected a list");
    return;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const auto rn = n[i];
    const auto field = "routes[" + std::to_string(i) + "]";
    if (!r.expect_map(rn, field, {"host", "paths"})) continue;
    RouteSpec route;
    route.where = {r.file(), Reader::line_of(rn)};
    r.string(rn, "host", field, route.host);
    if (route.host == "*") route.host.clear();
    if (!route.host.empty() && !valid_hostname(route.host)) {
      r.error(rn["host"], field + ".host",
              "invalid host '" + route.host + "' (lowercase DNS name, optionally starting with '*.')");
    }
    const auto paths = rn["paths"];
    if (!paths || !paths.IsSequence() || paths.size() == 0) {
      r.error(paths ? paths : rn, field + ".paths", "expected a non-empty list");
      continue;
    }
    for (std::size_t j = 0; j < paths.size(); ++j) {
      const auto pn = paths[j];
      const auto pf = field + ".paths[" + std::to_string(j) + "]";
      if (!r.expect_map(pn, pf, {"path", "type", "backends", "backend_protocol", "backend_tls", "phi"}))
        continue;
      PathSpec p;
      p.where = {r.file(), Reader::line_of(pn)};
      r.string(pn, "path", pf, p.path);
      if (p.path.empty() || p.path.front() != '/') r.error(pn, pf + ".path", "must start with '/'");
      std::string type = "Prefix";
      r.string(pn, "type", pf, type);
      if (type == "Exact") {
        p.type = PathType::Exact;
      } else if (type == "Prefix") {
        p.type = PathType::Prefix;
      } else if (type == "ImplementationSpecific") {
        p.type = PathType::ImplementationSpecific;
      } else {
        r.error(pn["type"], pf + ".type",
                "must be Exact, Prefix or ImplementationSpecific, not '" + type + "'");
      }
      r.string_list(pn, "backends", pf, p.backends);
      if (p.backends.empty()) r.error(pn, pf + ".backends", "expected a non-empty list of host:port");
      for (std::size_t k = 0; k < p.backends.size(); ++k) {
        std::string h;
        std::uint16_t port = 0;
        if (!split_host_port(p.backends[k], h, port) || port == 0) {
          r.error(pn["backends"][k], pf + ".backends[" + std::to_string(k) + "]",
                  "expected host:port, got '" + p.backends[k] + "'");
        }
      }
      read_path_policy(r, pn, pf, cfg.dir, p);
      route.paths.push_back(std::move(p));
    }
    cfg.routes.push_back(std::move(route));
  }
}

void check_address(Reader& r, const YAML::Node& n, const std::string& field, const std::string& addr) {
  std::string h;
  std::uint16_t port = 0;
  if (!split_host_port(addr, h, port))
    r.error(n, field, "expected ip:port or [ipv6]:port, got '" + addr + "'");
}

/// `http2:`: HTTP/2 to clients. Every bound is one the codec enforces per connection, so each
/// range keeps it meaningful: none may be switched off, and none may exceed what RFC 9113 allows.
void read_http2(Reader& r, const YAML::Node& n, Http2Spec& h) {
  if (!r.expect_map(
          n, "http2",
          {"enabled", "disabled_hosts", "max_concurrent_streams", "max_header_list_bytes",
           "header_table_bytes", "max_continuation_frames", "initial_window_bytes", "connection_window_bytes",
           "max_frame_bytes", "reset_budget", "reset_refill", "control_budget", "control_refill",
           "connection_memory_bytes", "websocket", "max_websockets_per_connection"})) {
    return;
  }
  const std::string f = "http2";
  r.boolean(n, "enabled", f, h.enabled);
  r.boolean(n, "websocket", f, h.websocket);
  r.string_list(n, "disabled_hosts", f, h.disabled_hosts);
  for (std::size_t i = 0; i < h.disabled_hosts.size(); ++i) {
    auto& host = h.disabled_hosts[i];
    core::to_lower_in_place(host);
    // Matched against the SNI name as certificates are (exact, then one-label "*."): anything
    // else would never match and silently leave h2 on for the host the operator meant.
    if (!valid_hostname(host)) {
      r.error(n["disabled_hosts"][i], "http2.disabled_hosts[" + std::to_string(i) + "]",
              "invalid host '" + host + "' (DNS name, optionally starting with '*.')");
    }
  }
  // A size key read into a wide value first, so that "16m" for a 32-bit field is range-checked
  // rather than truncated.
  const auto bounded_size = [&](std::string_view key, auto& out, std::uint64_t min, std::uint64_t max,
                                std::string_view why) {
    const auto v = n[std::string(key)];
    if (!v) return;
    std::uint64_t wide = out;
    const auto errors = r.diag().error_count();
    r.size(n, key, f, wide);
    if (r.diag().error_count() != errors) return;
    if (wide < min || wide > max) {
      r.error(v, Reader::join(f, key),
              "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (" +
                  std::string(why) + ")");
      return;
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(wide);
  };
  // SETTINGS_MAX_CONCURRENT_STREAMS: 0 would refuse every request; each open stream holds
  // buffers, so the bound is what one client may hold open at once.
  r.integer(n, "max_concurrent_streams", f, h.max_concurrent_streams, 1u, 1000u);
  // RFC 8441 tunnels per connection: each holds a backend connection for hours; 0 turns them off.
  r.integer(n, "max_websockets_per_connection", f, h.max_websockets_per_connection, 0u, 1000u);
  // HPACK bomb: the decoded header list, not the compressed bytes, is what is bounded.
  bounded_size("max_header_list_bytes", h.max_header_list_bytes, 1024, 1u << 20,
               "decoded header fields of one request");
  bounded_size("header_table_bytes", h.header_table_bytes, 0, 65536,
               "HPACK dynamic table held per connection; 0 turns it off");
  // CVE-2024-27316: CONTINUATION frames of one header block; 0 means a block fits one frame.
  r.integer(n, "max_continuation_frames", f, h.max_continuation_frames, std::size_t{0}, std::size_t{100});
  // RFC 9113 §6.9.1: a flow-control window is at most 2^31-1; §6.9.2: the connection window
  // starts at 65535 and can only be raised.
  bounded_size("initial_window_bytes", h.initial_window_bytes, 1024, 2147483647,
               "RFC 9113 6.9.1: per-stream receive window");
  bounded_size("connection_window_bytes", h.connection_window_bytes, 65535, 2147483647,
               "RFC 9113 6.9.2: the connection window starts at 65535");
  // RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE is 2^14..2^24-1.
  bounded_size("max_frame_bytes", h.max_frame_bytes, 16384, 16777215, "RFC 9113 6.5.2");
  // Token buckets (CVE-2023-44487 rapid reset; SETTINGS/PING/PRIORITY/WINDOW_UPDATE floods): a
  // budget or refill of 0 would end every connection at its first reset or control frame.
  r.integer(n, "reset_budget", f, h.reset_budget, 1u, 1'000'000u);
  r.integer(n, "reset_refill", f, h.reset_refill, 1u, 1'000'000u);
  r.integer(n, "control_budget", f, h.control_budget, 1u, 1'000'000u);
  r.integer(n, "control_refill", f, h.control_refill, 1u, 1'000'000u);
  bounded_size("connection_memory_bytes", h.connection_memory_bytes, 256u << 10, 1u << 30,
               "per-connection memory budget");
  // The budget must hold what the settings let a well-behaved client send at once (a full
  // connection window, one header list, the HPACK table); otherwise a legitimate client is cut off.
  if (const std::uint64_t need =
          std::uint64_t{h.connection_window_bytes} + h.max_header_list_bytes + h.header_table_bytes;
      h.connection_memory_bytes < need) {
    r.error(n["connection_memory_bytes"] ? n["connection_memory_bytes"] : n, "http2.connection_memory_bytes",
            "must be at least connection_window_bytes + max_header_list_bytes + header_table_bytes (" +
                std::to_string(need) + ")");
  }
}

void read_root(Reader& r, const YAML::Node& root, Config& cfg) {
  if (!r.expect_map(root, "",
                    {"listeners", "workers", "tls", "timeouts", "limits", "upstream", "http2",
                     "trusted_proxies", "log", "routes", "ingress", "access", "audit", "check"})) {
    return;
  }
  if (const auto n = root["listeners"]; n && r.expect_map(n, "listeners",
                                                          {"https", "http", "admin", "https_redirect_port",
                                                           "proxy_protocol", "tls_passthrough"})) {
    r.string_list(n, "https", "listeners", cfg.listeners.https);
    r.string_list(n, "http", "listeners", cfg.listeners.http);
    r.string(n, "admin", "listeners", cfg.listeners.admin);
    r.integer(n, "https_redirect_port", "listeners", cfg.listeners.https_redirect_port, 0, 65535);
    r.boolean(n, "proxy_protocol", "listeners", cfg.listeners.proxy_protocol);
    r.boolean(n, "tls_passthrough", "listeners", cfg.listeners.tls_passthrough);
    for (std::size_t i = 0; i < cfg.listeners.https.size(); ++i)
      check_address(r, n["https"][i], "listeners.https[" + std::to_string(i) + "]", cfg.listeners.https[i]);
    for (std::size_t i = 0; i < cfg.listeners.http.size(); ++i)
      check_address(r, n["http"][i], "listeners.http[" + std::to_string(i) + "]", cfg.listeners.http[i]);
    if (n["admin"]) check_address(r, n["admin"], "listeners.admin", cfg.listeners.admin);
  }
  r.integer(root, "workers", "", cfg.workers, 0u, 256u);

  if (const auto n = root["tls"];
      n && r.expect_map(
               n, "tls",
               {"profile", "allow_insecure_tls", "min_version", "ciphers", "ciphersuites", "groups",
                "session_tickets", "ticket_key_rotation", "default_certificate", "certificates", "hsts"})) {
    auto& t = cfg.tls;
    r.string(n, "profile", "tls", t.profile);
    r.boolean(n, "allow_insecure_tls", "tls", t.allow_insecure_tls);
    if (t.profile == "nist-800-52r2") {
      t.ciphers =
          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
      t.ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
      t.groups = "P-256:P-384";
    } else if (t.profile == "modern") {
      t.min_version = "TLSv1.3";
    } else if (t.profile != "default") {
      r.error(n["profile"], "tls.profile",
              "must be default, nist-800-52r2 or modern, not '" + t.profile + "'");
    }
    // Explicit settings override the profile's.
    r.string(n, "min_version", "tls", t.min_version);
    const bool legacy = t.min_version == "TLSv1" || t.min_version == "TLSv1.1";
    if (legacy && !t.allow_insecure_tls) {
      r.error(n["min_version"], "tls.min_version",
              t.min_version + " is below TLS 1.2: refused unless tls.allow_insecure_tls is true");
    } else if (!legacy && t.min_version != "TLSv1.2" && t.min_version != "TLSv1.3") {
      r.error(n["min_version"], "tls.min_version", "must be TLSv1.2 or TLSv1.3, not '" + t.min_version + "'");
    }
    r.string(n, "ciphers", "tls", t.ciphers);
    r.string(n, "ciphersuites", "tls", t.ciphersuites);
    r.string(n, "groups", "tls", t.groups);
    r.boolean(n, "session_tickets", "tls", t.session_tickets);
    r.duration(n, "ticket_key_rotation", "tls", t.ticket_key_rotation);
    if (t.ticket_key_rotation < 1min) {
      r.error(n["ticket_key_rotation"], "tls.ticket_key_rotation", "must be at least 1m");
    }
    if (const auto h = n["hsts"];
        h && r.expect_map(h, "tls.hsts",
                          {"enabled", "max_age", "include_subdomains", "preload", "disabled_hosts"})) {
      r.boolean(h, "enabled", "tls.hsts", t.hsts.enabled);
      r.integer(h, "max_age", "tls.hsts", t.hsts.max_age, std::uint64_t{0}, std::uint64_t{1'000'000'000});
      r.boolean(h, "include_subdomains", "tls.hsts", t.hsts.include_subdomains);
      r.boolean(h, "preload", "tls.hsts", t.hsts.preload);
      r.string_list(h, "disabled_hosts", "tls.hsts", t.hsts.disabled_hosts);
      for (auto& host : t.hsts.disabled_hosts) core::to_lower_in_place(host);
    }
    if (const auto d = n["default_certificate"]) {
      t.default_certificate.emplace();
      read_certificate(r, d, "tls.default_certificate", cfg.dir, *t.default_certificate);
    }
    if (const auto c = n["certificates"]) {
      if (!c.IsSequence()) {
        r.error(c, "tls.certificates", "expected a list");
      } else {
        for (std::size_t i = 0; i < c.size(); ++i) {
          CertificateSpec spec;
          read_certificate(r, c[i], "tls.certificates[" + std::to_string(i) + "]", cfg.dir, spec);
          t.certificates.push_back(std::move(spec));
        }
      }
    }
  }

  if (const auto n = root["timeouts"];
      n && r.expect_map(n, "timeouts",
                        {"tls_handshake", "request_header", "keepalive_idle", "body_idle", "upstream_connect",
                         "upstream_read", "upstream_send", "drain"})) {
    auto& t = cfg.timeouts;
    r.duration(n, "tls_handshake", "timeouts", t.tls_handshake);
    r.duration(n, "request_header", "timeouts", t.request_header);
    r.duration(n, "keepalive_idle", "timeouts", t.keepalive_idle);
    r.duration(n, "body_idle", "timeouts", t.body_idle);
    r.duration(n, "upstream_connect", "timeouts", t.upstream_connect);
    r.duration(n, "upstream_read", "timeouts", t.upstream_read);
    r.duration(n, "upstream_send", "timeouts", t.upstream_send);
    r.duration(n, "drain", "timeouts", t.drain);
  }

  if (const auto n = root["limits"];
      n && r.expect_map(n, "limits",
                        {"max_connections_per_worker", "request_line_bytes", "request_header_bytes",
                         "header_count", "request_body_bytes", "min_body_rate", "request_buffer_bytes",
                         "request_buffer_worker_bytes", "rate_limit_status", "rate_limit_keys",
                         "response_rate", "response_rate_after", "auth_timeout"})) {
    auto& l = cfg.limits;
    r.integer(n, "max_connections_per_worker", "limits", l.max_connections_per_worker, std::size_t{1},
              std::size_t{1'000'000});
    r.size(n, "request_line_bytes", "limits", l.request_line_bytes);
    r.size(n, "request_header_bytes", "limits", l.request_header_bytes);
    r.integer(n, "header_count", "limits", l.header_count, std::size_t{1}, std::size_t{10'000});
    r.size(n, "request_body_bytes", "limits", l.request_body_bytes);
    r.size(n, "min_body_rate", "limits", l.min_body_rate);
    r.size(n, "request_buffer_bytes", "limits", l.request_buffer_bytes);
    r.size(n, "request_buffer_worker_bytes", "limits", l.request_buffer_worker_bytes);
    // A bound or budget of 0 would refuse every buffered body; past 1 TiB it means nothing here
    // (and would wrap the budget's signed gauge).
    constexpr std::uint64_t kMostBuffer = std::uint64_t{1} << 40;
    for (const auto* key : {"request_buffer_bytes", "request_buffer_worker_bytes"}) {
      const auto v = std::string_view(key) == "request_buffer_bytes" ? l.request_buffer_bytes
                                                                     : l.request_buffer_worker_bytes;
      if (n[key] && (v == 0 || v > kMostBuffer))
        r.error(n[key], std::string("limits.") + key, "must be between 1 and 1024g (1 TiB)");
    }
    if ((n["request_buffer_bytes"] || n["request_buffer_worker_bytes"]) &&
        l.request_buffer_bytes > l.request_buffer_worker_bytes) {
      const bool bound_set = static_cast<bool>(n["request_buffer_bytes"]);
      r.error(
          bound_set ? n["request_buffer_bytes"] : n["request_buffer_worker_bytes"],
          bound_set ? "limits.request_buffer_bytes" : "limits.request_buffer_worker_bytes",
          "limits.request_buffer_bytes must not be more than limits.request_buffer_worker_bytes (one body "
          "would take the whole budget)");
    }
    // limit-rps/-rpm/-connections refusals: ingress-nginx's 503, or 429 (with Retry-After).
    if (const auto s = n["rate_limit_status"]; s) {
      if (!s.IsScalar() || (s.Scalar() != "503" && s.Scalar() != "429")) {
        r.error(s, "limits.rate_limit_status", "expected 503 or 429");
      } else {
        l.rate_limit_status = s.Scalar() == "429" ? 429 : 503;
      }
    }
    r.integer(n, "rate_limit_keys", "limits", l.rate_limit_keys, std::size_t{1024}, std::size_t{10'000'000});
    // limit-rate / limit-rate-after for Ingresses that do not set them (ingress-nginx's ConfigMap
    // limit-rate / limit-rate-after): bytes per second and bytes, in size syntax ("256k").
    r.size(n, "response_rate", "limits", l.response_rate);
    r.size(n, "response_rate_after", "limits", l.response_rate_after);
    if (n["response_rate"] && l.response_rate > (std::uint64_t{10} << 30))
      r.error(n["response_rate"], "limits.response_rate",
              "must be at most 10g (bytes per second; 0: no limit)");
    // The pacer writes at least 1 KiB per slice: a lower rate (e.g. "100", meant as "100k") would
    // wait many seconds between writes without noticing a client that left.
    if (n["response_rate"] && l.response_rate > 0 && l.response_rate < 1024)
      r.error(n["response_rate"], "limits.response_rate",
              "must be 0 (no limit) or at least 1k (bytes per second, as limit-rate's KiB)");
    if (n["response_rate_after"] && l.response_rate_after > (std::uint64_t{1} << 40))
      r.error(n["response_rate_after"], "limits.response_rate_after", "must be at most 1024g");
    r.duration(n, "auth_timeout", "limits", l.auth_timeout);
    if (l.auth_timeout < std::chrono::milliseconds(100) || l.auth_timeout > std::chrono::seconds(60))
      r.error(n["auth_timeout"], "limits.auth_timeout", "must be between 100ms and 60s");
  }

  if (const auto n = root["upstream"];
      n && r.expect_map(n, "upstream",
                        {"keepalive_connections", "keepalive_timeout", "keepalive_requests", "balance",
                         "health", "retry", "tls", "upgrades"})) {
    auto& u = cfg.upstream;
    r.integer(n, "keepalive_connections", "upstream", u.keepalive_connections, std::size_t{0},
              std::size_t{100'000});
    r.duration(n, "keepalive_timeout", "upstream", u.keepalive_timeout);
    r.integer(n, "keepalive_requests", "upstream", u.keepalive_requests, std::size_t{1},
              std::size_t{1'000'000'000});

    // --- upstream.balance ---
    if (const auto b = n["balance"]; b && r.expect_map(b, "upstream.balance", {"load_balance"})) {
      std::string lb;
      r.string(b, "load_balance", "upstream.balance", lb);
      if (lb == "round_robin") {
        u.load_balance = LoadBalance::RoundRobin;
      } else if (lb == "least_request") {
        u.load_balance = LoadBalance::LeastRequest;
      } else if (lb == "ewma") {
        u.load_balance = LoadBalance::Ewma;
      } else if (b["load_balance"]) {
        r.error(b["load_balance"], "upstream.balance.load_balance",
                "must be round_robin, least_request or ewma, not '" + lb + "'");
      }
    }

    // --- upstream.health ---
    if (const auto h = n["health"];
        h && r.expect_map(h, "upstream.health", {"active", "passive", "initial"})) {
      if (const auto i = h["initial"]) {
        std::string v;
        if (r.scalar(i, "upstream.health.initial", v) && v != "healthy" && v != "unhealthy") {
          r.error(i, "upstream.health.initial", "must be healthy or unhealthy");
        }
        u.health_initial_healthy = v != "unhealthy";
      }
      if (const auto a = h["active"];
          a && r.expect_map(a, "upstream.health.active",
                            {"enabled", "path", "host", "port", "interval", "timeout", "healthy_threshold",
                             "unhealthy_threshold", "expected_status"})) {
        const std::string f = "upstream.health.active";
        auto& s = u.health_active;
        s.enabled = true;  // the section turns them on unless it says enabled: false
        r.boolean(a, "enabled", f, s.enabled);
        r.string(a, "path", f, s.path);
        // The path goes into a request line: printable ASCII without spaces (no CRLF injection).
        if (a["path"] &&
            (s.path.empty() || s.path[0] != '/' ||
             !std::all_of(s.path.begin(), s.path.end(), [](char c) { return c > 0x20 && c < 0x7f; }))) {
          r.error(a["path"], f + ".path", "must start with '/' and be printable ASCII without spaces");
        }
        r.string(a, "host", f, s.host);
        if (!std::all_of(s.host.begin(), s.host.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                     c == '-' || c == ':' || c == '[' || c == ']';
            })) {
          r.error(a["host"], f + ".host", "must be a host name or address");
        }
        r.integer(a, "port", f, s.port, 0, 65535);
        r.duration(a, "interval", f, s.interval);
        r.duration(a, "timeout", f, s.timeout);
        if (s.interval < 100ms || s.interval > 1h)
          r.error(a, f + ".interval", "must be between 100ms and 1h");
        if (s.timeout < 10ms || s.timeout > s.interval)
          r.error(a, f + ".timeout", "must be between 10ms and the interval");
        r.integer(a, "healthy_threshold", f, s.healthy_threshold, 1u, 100u);
        r.integer(a, "unhealthy_threshold", f, s.unhealthy_threshold, 1u, 100u);
        if (const auto es = a["expected_status"]) {
          // "200-399" or "200": three-digit codes, low <= high.
          std::string v;
          int lo = 0, hi = 0;
          bool ok = r.scalar(es, f + ".expected_status", v);
          const auto dash = v.find('-');
          const auto code = [](std::string_view t, int& out) {
            if (t.size() != 3 ||
                !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
              return false;
            out = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
            return out >= 100 && out <= 599;
          };
          const std::string_view sv(v);
          ok = ok &&
               (dash == std::string::npos ? code(sv, lo) && code(sv, hi)
                                          : code(sv.substr(0, dash), lo) && code(sv.substr(dash + 1), hi));
          if (!ok || lo > hi) {
            r.error(es, f + ".expected_status", "expected a status or a range such as 200-399");
          } else {
            s.status_min = lo;
            s.status_max = hi;
          }
        }
      }
      if (const auto p = h["passive"]; p && r.expect_map(p, "upstream.health.passive",
                                                         {"enabled", "consecutive_failures", "base_ejection",
                                                          "max_ejection", "max_ejected_percent"})) {
        const std::string f = "upstream.health.passive";
        auto& s = u.health_passive;
        r.boolean(p, "enabled", f, s.enabled);
        r.integer(p, "consecutive_failures", f, s.consecutive_failures, 1u, 1000u);
        r.duration(p, "base_ejection", f, s.base_ejection);
        r.duration(p, "max_ejection", f, s.max_ejection);
        r.integer(p, "max_ejected_percent", f, s.max_ejected_percent, 0u, 100u);
        if (s.base_ejection < 1ms || s.base_ejection > 1h)
          r.error(p, f + ".base_ejection", "must be between 1ms and 1h");
        if (s.max_ejection < s.base_ejection || s.max_ejection > 24h)
          r.error(p, f + ".max_ejection", "must be between base_ejection and 24h");
      }
    }

    // --- upstream.retry ---
    if (const auto rn = n["retry"]; rn && r.expect_map(rn, "upstream.retry",
                                                       {"next_upstream", "tries", "timeout", "budget_percent",
                                                        "budget_min_per_second"})) {
      if (const auto nu = rn["next_upstream"]) {
        std::vector<std::string> words;
        r.string_list(rn, "next_upstream", "upstream.retry", words);
        std::string joined;
        for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
        if (nu.IsSequence()) {
          if (const auto why = parse_next_upstream(joined, u.next_upstream); !why.empty()) {
            r.error(nu, "upstream.retry.next_upstream", why);
          }
        }
      }
      r.integer(rn, "tries", "upstream.retry", u.next_upstream_tries, 0u, 100u);
      r.duration(rn, "timeout", "upstream.retry", u.next_upstream_timeout);
      r.integer(rn, "budget_percent", "upstream.retry", u.retry_budget_percent, 0u, 100u);
      r.integer(rn, "budget_min_per_second", "upstream.retry", u.retry_budget_min_per_second, 0u, 100000u);
    }

    // --- upstream.tls ---
    if (const auto tn = n["tls"]; tn && r.expect_map(tn, "upstream.tls", {"require"})) {
      std::string req = "none";
      r.string(tn, "require", "upstream.tls", req);
      if (req == "none") {
        u.require_tls = UpstreamSpec::RequireTls::None;
      } else if (req == "phi") {
        u.require_tls = UpstreamSpec::RequireTls::Phi;
      } else if (req == "all") {
        u.require_tls = UpstreamSpec::RequireTls::All;
      } else {
        r.error(tn["require"], "upstream.tls.require", "must be none, phi or all, not '" + req + "'");
      }
    }

    // --- upstream.upgrades ---
    r.string_list(n, "upgrades", "upstream", u.upgrades);
    if (const auto list = n["upgrades"]; list && list.IsSequence()) {
      for (std::size_t i = 0; i < list.size() && i < u.upgrades.size(); ++i) {
        const auto& p = u.upgrades[i];
        const auto field = "upstream.upgrades[" + std::to_string(i) + "]";
        const bool token = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        });
        if (!token) {
          r.error(list[i], field, "must be a protocol name (an HTTP token without version), e.g. websocket");
        } else if (core::iequals(p, "h2c")) {
          // RFC 9113 §3.1: HTTP/2 over cleartext upgrade is gone; tunnelling it would hide HTTP/2
          // requests from every check.
          r.error(list[i], field, "h2c is never tunnelled (HTTP/2 is not spoken through an upgrade)");
        }
      }
    }
  }

  if (const auto n = root["http2"]) read_http2(r, n, cfg.http2);

  r.string_list(root, "trusted_proxies", "", cfg.trusted_proxies);
  if (const auto n = root["access"]; n && r.expect_map(n, "access", {"allow", "deny"})) {
    r.string_list(n, "allow", "access", cfg.allow_source_ranges);
    r.string_list(n, "deny", "access", cfg.deny_source_ranges);
  }
  if (const auto n = root["log"]; n && r.expect_map(n, "log", {"level"})) {
    r.string(n, "level", "log", cfg.log_level);
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), cfg.log_level) == std::end(kLevels)) {
      r.error(n["level"], "log.level", "must be one of trace, debug, info, warn, error, off");
    }
  }
  if (const auto n = root["routes"]) read_routes(r, n, cfg);
  if (const auto n = root["check"];
      n && r.expect_map(n, "check",
                        {"enforce", "phi_hosts", "min_cert_days", "audit_key_max_age_days",
                         "system_ca_bundle", "public_ca_count"})) {
    auto& c = cfg.check;
    r.boolean(n, "enforce", "check", c.enforce);
    std::string phi = "annotated";
    r.string(n, "phi_hosts", "check", phi);
    if (phi == "all") {
      c.phi_hosts_all = true;
    } else if (phi != "annotated") {
      r.error(n["phi_hosts"], "check.phi_hosts", "must be annotated or all");
    }
    r.integer(n, "min_cert_days", "check", c.min_cert_days, 0, 3650);
    r.integer(n, "audit_key_max_age_days", "check", c.audit_key_max_age_days, 1, 36500);
    r.string(n, "system_ca_bundle", "check", c.system_ca_bundle);
    if (n["system_ca_bundle"] && !c.system_ca_bundle.empty())
      c.system_ca_bundle = resolve(cfg.dir, c.system_ca_bundle);
    r.integer(n, "public_ca_count", "check", c.public_ca_count, std::size_t{1}, std::size_t{100'000});
  }
  if (const auto n = root["audit"];
      n && r.expect_map(n, "audit",
                        {"dir", "keys", "active_key", "archive_dir", "segment_max_bytes", "segment_max_age",
                         "flush_interval", "batch_records", "queue_bytes", "overflow", "query", "headers"})) {
    auto& a = cfg.audit;
    a.where = {r.file(), n.Mark().line + 1};
    r.string(n, "dir", "audit", a.dir);
    r.string(n, "keys", "audit", a.keys);
    r.string(n, "active_key", "audit", a.active_key);
    r.string(n, "archive_dir", "audit", a.archive_dir);
    for (const char* key : {"dir", "keys", "active_key"}) {
      if (!n[key] || n[key].Scalar().empty()) r.error(n, std::string("audit.") + key, "required");
    }
    if (!a.dir.empty()) a.dir = resolve(cfg.dir, a.dir);
    if (!a.keys.empty()) {
      a.keys = resolve(cfg.dir, a.keys);
      std::error_code ec;
      if (!fs::is_directory(a.keys, ec)) r.error(n["keys"], "audit.keys", "not a directory: " + a.keys);
    }
    if (!a.archive_dir.empty()) a.archive_dir = resolve(cfg.dir, a.archive_dir);
    r.size(n, "segment_max_bytes", "audit", a.segment_max_bytes);
    r.duration(n, "segment_max_age", "audit", a.segment_max_age);
    r.duration(n, "flush_interval", "audit", a.flush_interval);
    r.integer(n, "batch_records", "audit", a.batch_records, std::size_t{1}, std::size_t{100'000});
    r.size(n, "queue_bytes", "audit", a.queue_bytes);
    if (a.segment_max_bytes < 4096) r.error(n["segment_max_bytes"], "audit.segment_max_bytes", "at least 4k");
    if (a.queue_bytes < 65536) r.error(n["queue_bytes"], "audit.queue_bytes", "at least 64k");
    if (a.flush_interval.count() <= 0)
      r.error(n["flush_interval"], "audit.flush_interval", "must be positive");
    std::string overflow = "fail_closed";
    r.string(n, "overflow", "audit", overflow);
    if (overflow == "block") {
      a.block_on_overflow = true;
    } else if (overflow != "fail_closed") {
      r.error(n["overflow"], "audit.overflow", "must be fail_closed or block");
    }
    std::string query = "redact";
    r.string(n, "query", "audit", query);
    if (query == "keep") {
      a.query = AuditQuery::Keep;
    } else if (query == "hash") {
      a.query = AuditQuery::Hash;
    } else if (query == "drop") {
      a.query = AuditQuery::Drop;
    } else if (query != "redact") {
      r.error(n["query"], "audit.query", "must be redact, keep, hash or drop");
    }
    r.string_list(n, "headers", "audit", a.headers);
    for (auto& h : a.headers) {
      core::to_lower_in_place(h);
      // RFC 9110 §5.1 field names are tokens (they become record keys as they are).
      const bool token = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      });
      if (!token) r.error(n["headers"], "audit.headers", "'" + h + "' is not an HTTP field name");
    }
  }
  if (const auto n = root["ingress"];
      n && r.expect_map(n, "ingress",
                        {"source", "dir", "class", "controller", "watch", "debounce", "rescan", "namespaces",
                         "kubernetes", "status", "leader_election", "events", "webhook",
                         "unsupported_annotations", "canary_cross_namespace", "regex_cross_namespace",
                         "allowed_response_headers", "auth_url_namespaces", "global_auth"})) {
    auto& i = cfg.ingress;
    std::string source = n["dir"] ? "directory" : "";
    r.string(n, "source", "ingress", source);
    if (source == "directory") {
      i.source = IngressSource::Directory;
    } else if (source == "kubernetes") {
      i.source = IngressSource::Kubernetes;
    } else {
      r.error(n["source"] ? n["source"] : n, "ingress.source",
              source.empty() ? "required (directory or kubernetes)" : "expected directory or kubernetes");
    }
    r.string(n, "dir", "ingress", i.dir);
    if (i.source == IngressSource::Directory) {
      if (i.dir.empty()) {
        r.error(n, "ingress.dir", "required");
      } else {
        i.dir = resolve(cfg.dir, i.dir);
        std::error_code ec;
        if (!fs::is_directory(i.dir, ec)) r.error(n["dir"], "ingress.dir", "not a directory: " + i.dir);
      }
    } else if (n["dir"]) {
      r.error(n["dir"], "ingress.dir", "only with source: directory");
      i.dir.clear();
    }
    r.string(n, "class", "ingress", i.class_name);
    r.string(n, "controller", "ingress", i.controller);
    r.boolean(n, "watch", "ingress", i.watch);
    r.duration(n, "debounce", "ingress", i.debounce);
    r.duration(n, "rescan", "ingress", i.rescan);
    r.boolean(n, "canary_cross_namespace", "ingress", i.canary_cross_namespace);
    r.boolean(n, "regex_cross_namespace", "ingress", i.regex_cross_namespace);
    r.string_list(n, "allowed_response_headers", "ingress", i.allowed_response_headers);
    r.string_list(n, "auth_url_namespaces", "ingress", i.auth_url_namespaces);
    for (const auto& ns : i.auth_url_namespaces) {
      const bool label = !ns.empty() && ns.size() <= 63 && ns.front() != '-' && ns.back() != '-' &&
                         std::all_of(ns.begin(), ns.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                         });
      if (!label)
        r.error(n["auth_url_namespaces"], "ingress.auth_url_namespaces",
                "not a namespace name: '" + ns + "'");
    }
    for (auto& h : i.allowed_response_headers) {
      const bool token = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      });
      if (!token)
        r.error(n["allowed_response_headers"], "ingress.allowed_response_headers",
                "not a header name: '" + h + "'");
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    if (i.rescan < 1s) r.error(n["rescan"], "ingress.rescan", "must be at least 1s");
    std::string unsupported = "warn";
    r.string(n, "unsupported_annotations", "ingress", unsupported);
    if (unsupported == "warn") {
      i.unsupported_annotations = UnsupportedAnnotations::Warn;
    } else if (unsupported == "fail_closed") {
      i.unsupported_annotations = UnsupportedAnnotations::FailClosed;
    } else {
      r.error(n["unsupported_annotations"], "ingress.unsupported_annotations",
              "expected warn or fail_closed, not '" + unsupported + "'");
    }
    auto& k = i.kubernetes;
    const bool kube = i.source == IngressSource::Kubernetes;
    for (const char* key : {"namespaces", "kubernetes", "status", "leader_election", "events"}) {
      if (!kube && n[key]) r.error(n[key], std::string("ingress.") + key, "only with source: kubernetes");
    }
    if (const auto ns = n["namespaces"]; ns) {
      if (ns.IsScalar() && ns.Scalar() == "all") {
        k.namespaces.clear();
      } else if (ns.IsSequence() && ns.size() > 0) {
        r.string_list(n, "namespaces", "ingress", k.namespaces);
        for (const auto& name : k.namespaces) {
          if (!valid_dns_label(name))
            r.error(ns, "ingress.namespaces", "'" + name + "' is not a namespace name");
        }
      } else {
        r.error(ns, "ingress.namespaces", "expected all or a non-empty list of namespaces");
      }
    }
    if (const auto kn = n["kubernetes"];
        kn && r.expect_map(kn, "ingress.kubernetes",
                           {"kubeconfig", "context", "secrets_label_selector", "page_size", "watch_timeout",
                            "backoff_initial", "backoff_max", "request_timeout", "service_account_dir"})) {
      r.string(kn, "kubeconfig", "ingress.kubernetes", k.kubeconfig);
      if (!k.kubeconfig.empty()) k.kubeconfig = resolve(cfg.dir, k.kubeconfig);
      r.string(kn, "context", "ingress.kubernetes", k.context);
      r.string(kn, "service_account_dir", "ingress.kubernetes", k.service_account_dir);
      if (k.service_account_dir.empty()) {
        r.error(kn["service_account_dir"], "ingress.kubernetes.service_account_dir", "must not be empty");
      } else {
        k.service_account_dir = resolve(cfg.dir, k.service_account_dir);
      }
      r.string(kn, "secrets_label_selector", "ingress.kubernetes", k.secrets_label_selector);
      r.integer(kn, "page_size", "ingress.kubernetes", k.page_size, std::int64_t{1}, std::int64_t{10000});
      r.duration(kn, "watch_timeout", "ingress.kubernetes", k.watch_timeout);
      r.duration(kn, "backoff_initial", "ingress.kubernetes", k.backoff_initial);
      r.duration(kn, "backoff_max", "ingress.kubernetes", k.backoff_max);
      r.duration(kn, "request_timeout", "ingress.kubernetes", k.request_timeout);
      if (k.watch_timeout < 10s || k.watch_timeout > 1h)
        r.error(kn["watch_timeout"], "ingress.kubernetes.watch_timeout", "must be between 10s and 1h");
      if (k.backoff_initial < 10ms || k.backoff_max < k.backoff_initial)
        r.error(kn, "ingress.kubernetes.backoff_initial",
                "must be at least 10ms and at most ingress.kubernetes.backoff_max");
      if (k.request_timeout < 1s)
        r.error(kn["request_timeout"], "ingress.kubernetes.request_timeout", "must be at least 1s");
    }
    if (const auto sn = n["status"];
        sn && r.expect_map(sn, "ingress.status", {"enabled", "publish_service", "publish_address"})) {
      k.status = true;
      r.boolean(sn, "enabled", "ingress.status", k.status);
      r.string(sn, "publish_service", "ingress.status", k.publish_service);
      r.string(sn, "publish_address", "ingress.status", k.publish_address);
      if (!k.publish_service.empty() && !k.publish_address.empty()) {
        r.error(sn, "ingress.status", "publish_service and publish_address exclude each other");
      } else if (k.status && k.publish_service.empty() && k.publish_address.empty()) {
        r.error(sn, "ingress.status", "publish_service (ns/name) or publish_address is required");
      }
      if (const auto slash = k.publish_service.find('/');
          !k.publish_service.empty() &&
          (slash == std::string::npos || !valid_dns_label(k.publish_service.substr(0, slash)) ||
           !valid_dns_label(k.publish_service.substr(slash + 1)))) {
        r.error(sn["publish_service"], "ingress.status.publish_service", "expected namespace/name");
      }
    }
    if (const auto ln = n["leader_election"];
        ln && r.expect_map(ln, "ingress.leader_election",
                           {"enabled", "lease_name", "lease_namespace", "identity", "lease_duration",
                            "renew_deadline", "retry_period"})) {
      r.boolean(ln, "enabled", "ingress.leader_election", k.leader_election);
      r.string(ln, "lease_name", "ingress.leader_election", k.lease_name);
      r.string(ln, "lease_namespace", "ingress.leader_election", k.lease_namespace);
      r.string(ln, "identity", "ingress.leader_election", k.identity);
      r.duration(ln, "lease_duration", "ingress.leader_election", k.lease_duration);
      r.duration(ln, "renew_deadline", "ingress.leader_election", k.renew_deadline);
      r.duration(ln, "retry_period", "ingress.leader_election", k.retry_period);
      if (!(k.retry_period < k.renew_deadline && k.renew_deadline < k.lease_duration) ||
          k.retry_period < 100ms)
        r.error(ln, "ingress.leader_election",
                "need 100ms <= retry_period < renew_deadline < lease_duration");
      if (!valid_dns_subdomain(k.lease_name))
        r.error(ln["lease_name"], "ingress.leader_election.lease_name", "not a valid object name");
    }
    r.boolean(n, "events", "ingress", k.events);
    if (const auto gn = n["global_auth"];
        gn && r.expect_map(gn, "ingress.global_auth",
                           {"url", "signin", "signin_redirect_param", "response_headers", "method",
                            "request_redirect", "always_set_cookie"})) {
      auto& g = i.global_auth;
      r.string(gn, "url", "ingress.global_auth", g.url);
      r.string(gn, "signin", "ingress.global_auth", g.signin);
      r.string(gn, "signin_redirect_param", "ingress.global_auth", g.signin_redirect_param);
      r.string(gn, "response_headers", "ingress.global_auth", g.response_headers);
      r.string(gn, "method", "ingress.global_auth", g.method);
      r.string(gn, "request_redirect", "ingress.global_auth", g.request_redirect);
      r.boolean(gn, "always_set_cookie", "ingress.global_auth", g.always_set_cookie);
      g.where = {r.file(), gn.Mark().line + 1};
      if (g.url.empty()) r.error(gn, "ingress.global_auth.url", "required");
    }
    if (const auto wn = n["webhook"];
        wn && r.expect_map(wn, "ingress.webhook", {"listen", "certificate", "key"})) {
      auto& w = i.webhook;
      r.string(wn, "listen", "ingress.webhook", w.listen);
      r.string(wn, "certificate", "ingress.webhook", w.cert);
      r.string(wn, "key", "ingress.webhook", w.key);
      if (w.listen.empty() || w.cert.empty() || w.key.empty()) {
        r.error(wn, "ingress.webhook", "listen, certificate and key are all required");
      } else {
        w.cert = resolve(cfg.dir, w.cert);
        w.key = resolve(cfg.dir, w.key);
      }
    }
  }

  // Cross-field checks.
  if (cfg.listeners.https.empty() && cfg.listeners.http.empty()) {
    r.error(root, "listeners", "at least one https or http listener is required");
  }
  if (!cfg.listeners.https.empty() && !cfg.tls.default_certificate) {
    r.error(root["tls"] ? root["tls"] : root, "tls.default_certificate",
            "required when listeners.https is set");
  }
}

}  // namespace

std::optional<Config> load_config_text(const std::string& text, const std::string& file, Diagnostics& diag) {
  Config cfg;
  cfg.file = file;
  cfg.dir = fs::path(file).parent_path().string();
  if (cfg.dir.empty()) cfg.dir = ".";
  Reader reader(file, diag);
  const auto errors_before = diag.error_count();
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) {
      diag.error(file, 0, "", "the file is empty");
    } else {
      read_root(reader, root, cfg);
      cfg.key_lines = reader.lines();
    }
  } catch (const YAML::Exception& e) {
    diag.error(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "invalid YAML: " + e.msg);
  }
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  if (diag.error_count() > errors_before) return std::nullopt;
  return cfg;
}

std::optional<Config> load_config(const std::string& path, Diagnostics& diag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diag.error(path, 0, "", "cannot read the file");
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str(), path, diag);
}

}  // namespace phigate::config
