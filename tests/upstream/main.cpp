// phigate-test-upstream: an HTTP/1.1 backend for integration tests and benchmarks that records what
// arrived and misbehaves on request. Options, query parameters and the record format: README.md.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "connection.hpp"

namespace phigate::test_upstream {

namespace {

constexpr const char* kProgram = "phigate-test-upstream";

struct CliOptions {
  std::string listen;
  std::string record;
  std::string tls_cert;
  std::string tls_key;
  std::string name = "upstream";
  std::string health_path;
};

struct ListenAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

void print_usage() {
  std::printf(
      "usage: %s --listen HOST:PORT [--record FILE] [--tls-cert CRT --tls-key KEY] [--name NAME]\n"
      "  --listen HOST:PORT  IPv4 address or [IPv6] address; port 0 lets the kernel choose.\n"
      "                      Prints 'ready HOST:PORT' once listening.\n"
      "  --record FILE       append one JSON line per request received\n"
      "  --tls-cert CRT      serve HTTPS with this PEM certificate chain (needs --tls-key)\n"
      "  --tls-key KEY       PEM private key for --tls-cert\n"
      "  --name NAME         value of the X-Upstream-Name response field (default: upstream)\n"
      "  --health-path PATH  answer GET PATH with 200 (or 503 after /__control?health=fail)\n"
      "Query parameters: status, bytes, echo, chunked, delay_ms, reset, close (see README.md).\n",
      kProgram);
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "%s: %s (try --help)\n", kProgram, message.c_str());
  std::exit(2);
}

[[noreturn]] void startup_error(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  std::exit(1);
}

std::string openssl_errors() {
  std::string out;
  char buf[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

CliOptions parse_cli(int argc, char** argv) {
  CliOptions cli;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_usage();
      std::exit(0);
    }
    if (!arg.starts_with("-")) usage_error("unexpected argument '" + std::string(arg) + "'");
    std::string_view flag = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    std::string* slot = flag == "--listen"        ? &cli.listen
                        : flag == "--record"      ? &cli.record
                        : flag == "--tls-cert"    ? &cli.tls_cert
                        : flag == "--tls-key"     ? &cli.tls_key
                        : flag == "--name"        ? &cli.name
                        : flag == "--health-path" ? &cli.health_path
                                                  : nullptr;
    if (slot == nullptr) usage_error("unknown option '" + std::string(arg) + "'");
    if (!value) {
      if (i + 1 >= argc) usage_error("option " + std::string(flag) + " needs a value");
      value = argv[++i];
    }
    *slot = std::string(*value);
  }
  if (cli.listen.empty()) usage_error("missing --listen HOST:PORT");
  if (!cli.health_path.empty() && cli.health_path[0] != '/') usage_error("--health-path must start with '/'");
  if (cli.tls_cert.empty() != cli.tls_key.empty()) usage_error("--tls-cert and --tls-key go together");
  const bool bad_name = cli.name.empty() || cli.name.find_first_of("\r\n") != std::string::npos ||
                        std::any_of(cli.name.begin(), cli.name.end(), [](char c) {
                          const auto u = static_cast<unsigned char>(c);
                          return (u < 0x20 && c != '\t') || u == 0x7f;
                        });
  if (bad_name) usage_error("--name must be a non-empty field value without control characters");
  return cli;
}

// "127.0.0.1:8080" or "[::1]:0"; numeric addresses only, so that tests never depend on resolvers.
std::optional<ListenAddress> parse_listen(std::string_view text) {
  std::string host;
  std::string_view port;
  const bool bracketed = text.starts_with('[');
  if (bracketed) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int port_number = std::stoi(std::string(port));
  if (port_number > 65535) return std::nullopt;

  ListenAddress out;
  if (bracketed) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out.storage);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<std::uint16_t>(port_number));
    if (inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr) != 1) return std::nullopt;
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&out.storage);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<std::uint16_t>(port_number));
    if (inet_pton(AF_INET, host.c_str(), &sa->sin_addr) != 1) return std::nullopt;
    out.length = sizeof(sockaddr_in);
  }
  return out;
}

// Offers http/1.1 only; a client that lists no http/1.1 gets no ALPN answer and falls back to it anyway.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  constexpr std::string_view kHttp11 = "http/1.1";
  for (unsigned int i = 0; i < in_len;) {
    const unsigned int len = in[i];
    if (i + 1 + len > in_len) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == kHttp11) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX* make_tls_context(const std::string& cert, const std::string& key) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) startup_error("SSL_CTX_new: " + openssl_errors());
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    startup_error("cannot require TLS 1.2: " + openssl_errors());
  }
  // A peer closing without close_notify is an ordinary end of stream for a test backend.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    startup_error("cannot load --tls-cert " + cert + ": " + openssl_errors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    startup_error("cannot load --tls-key " + key + ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    startup_error("--tls-key does not match --tls-cert: " + openssl_errors());
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  return ctx;
}

void on_terminate_signal(int) {
  ::_exit(0);
}  // async-signal-safe; records are never half-written

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_terminate_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // Writes to a vanished peer must fail with EPIPE, not kill the process (OpenSSL writes without
  // MSG_NOSIGNAL).
  signal(SIGPIPE, SIG_IGN);
}

int open_listener(const ListenAddress& addr, std::string& ready_address) {
  const int family = addr.storage.ss_family;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) startup_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
    startup_error(std::string("bind: ") + std::strerror(errno));
  }
  if (::listen(fd, SOMAXCONN) != 0) startup_error(std::string("listen: ") + std::strerror(errno));

  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    startup_error(std::string("getsockname: ") + std::strerror(errno));
  }
  char host[INET6_ADDRSTRLEN] = {};
  std::uint16_t port = 0;
  if (family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&bound);
    inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof host);
    port = ntohs(sa->sin6_port);
    ready_address = std::string("[") + host + "]:" + std::to_string(port);
  } else {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&bound);
    inet_ntop(AF_INET, &sa->sin_addr, host, sizeof host);
    port = ntohs(sa->sin_port);
    ready_address = std::string(host) + ":" + std::to_string(port);
  }
  return fd;
}

[[noreturn]] void accept_loop(int listener, const ServerConfig& config) {
  std::uint64_t accepted = 0;
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // wait for connections to end
        continue;
      }
      std::fprintf(stderr, "%s: accept: %s\n", kProgram, std::strerror(errno));
      ::_exit(1);  // detached connection threads still use `config`: no static destructors
    }
    // Small responses are one write, but chunked framing and 100 Continue are not: no Nagle delays.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++accepted;
    try {
      std::thread(serve_connection, std::cref(config), fd, accepted).detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "%s: cannot start a connection thread: %s\n", kProgram, e.what());
      ::close(fd);
    }
  }
}

int run(int argc, char** argv) {
  const CliOptions cli = parse_cli(argc, argv);
  const auto addr = parse_listen(cli.listen);
  if (!addr) usage_error("invalid --listen '" + cli.listen + "': expected IPV4:PORT or [IPV6]:PORT");
  install_signal_handlers();

  static ServerConfig config;  // static: connection threads may outlive run()'s frame at _exit
  config.name = cli.name;
  config.health_path = cli.health_path;
  if (!cli.record.empty()) {
    config.record_fd = ::open(cli.record.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (config.record_fd < 0)
      startup_error("cannot open --record " + cli.record + ": " + std::strerror(errno));
  }
  if (!cli.tls_cert.empty()) config.tls = make_tls_context(cli.tls_cert, cli.tls_key);

  std::string ready_address;
  const int listener = open_listener(*addr, ready_address);
  std::printf("ready %s\n", ready_address.c_str());
  std::fflush(stdout);
  accept_loop(listener, config);
}

}  // namespace

}  // namespace phigate::test_upstream

int main(int argc, char** argv) {
  return phigate::test_upstream::run(argc, argv);
}
