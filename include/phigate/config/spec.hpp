#pragma once
// Plain configuration structs: what the operator asked for, validated but not compiled.
// Built on the control thread by the loaders; compiled into a snapshot by server.
// Defaults here are the documented defaults (config/README.md).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace phigate::config {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

/// Where a value came from, for error messages later in the pipeline.
struct SourceRef {
  std::string file;
  int line = 0;
};

struct CertificateSpec {
  std::string cert;  // absolute path (resolved against the config file's folder)
  std::string key;
  SourceRef where;
};

inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kDefaultCipherSuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* kDefaultGroups = "X25519:P-256:P-384";

struct TlsSpec {
  std::string min_version = "TLSv1.2";              // TLSv1.2 | TLSv1.3
  std::string ciphers = kDefaultCiphers;            // TLS 1.2 (OpenSSL cipher list)
  std::string ciphersuites = kDefaultCipherSuites;  // TLS 1.3
  std::string groups = kDefaultGroups;
  bool session_tickets = true;
  Duration ticket_key_rotation = 1h;
  std::optional<CertificateSpec> default_certificate;
  std::vector<CertificateSpec> certificates;
};

struct ListenersSpec {
  std::vector<std::string> https;  // "ip:port" or "[v6]:port"; port 0 lets the kernel choose
  std::vector<std::string> http;   // plain HTTP: redirects only, never proxies
  std::string admin = "127.0.0.1:9901";
  int https_redirect_port = 0;  // port put in redirects; 0: the first https listener's port
};

struct TimeoutsSpec {
  Duration tls_handshake = 10s;
  Duration request_header = 10s;  // from the first byte of a request to the end of its head
  Duration keepalive_idle = 60s;  // between requests on a client connection
  Duration body_idle = 60s;       // between two reads of a request body
  Duration upstream_connect = 5s;
  Duration upstream_read = 60s;  // between two reads from the upstream (nginx proxy_read_timeout)
  Duration upstream_send = 60s;
  Duration drain = 30s;  // SIGTERM: how long in-flight requests may take
};

struct LimitsSpec {
  std::size_t max_connections_per_worker = 10000;
  std::size_t request_line_bytes = 8192;
  std::size_t request_header_bytes = 32768;  // all header fields together
  std::size_t header_count = 100;
  std::uint64_t request_body_bytes = 0;  // 0: unlimited
};

struct UpstreamSpec {
  std::size_t keepalive_connections = 64;  // idle connections kept per endpoint per worker
  Duration keepalive_timeout = 60s;        // an idle pooled connection is closed after this
  std::size_t keepalive_requests = 10000;  // requests on one upstream connection before closing it
};

enum class PathType { Exact, Prefix, ImplementationSpecific };

struct PathSpec {
  std::string path;
  PathType type = PathType::Prefix;
  std::vector<std::string> backends;  // "host:port"
  SourceRef where;
};

struct RouteSpec {
  std::string host;  // "" or "*": any host (the default)
  std::vector<PathSpec> paths;
  SourceRef where;
};

struct Config {
  std::string file;  // the config file, as given
  std::string dir;   // its folder (relative paths resolve against it)
  ListenersSpec listeners;
  unsigned workers = 0;  // 0 in the file means: number of hardware threads (resolved at load)
  TlsSpec tls;
  TimeoutsSpec timeouts;
  LimitsSpec limits;
  UpstreamSpec upstream;
  std::vector<std::string> trusted_proxies;  // CIDRs
  std::string log_level = "info";
  std::vector<RouteSpec> routes;
};

/// "host:port" / "[v6]:port" split. False when malformed or the port is not 0..65535.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace phigate::config
