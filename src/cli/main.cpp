// phigate command line: run / validate / check / annotations / audit / probe / --version / --help.
// Usage errors (unknown flag, missing file) print one line and exit 2.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check_command.hpp"
#include "huge_pages.hpp"
#include "phigate/audit/verify.hpp"
#include "phigate/compile/policy.hpp"
#include "phigate/config/loader.hpp"
#include "phigate/core/host_port.hpp"
#include "phigate/core/log.hpp"
#include "phigate/core/version.hpp"
#include "phigate/ingress/annotation_registry.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/ingress/translate.hpp"
#include "phigate/net/asio.hpp"
#include "phigate/net/socket.hpp"
#include "phigate/server/server.hpp"

namespace {

constexpr const char* kUsage =
    "usage: phigate <command> [options]\n"
    "\n"
    "commands:\n"
    "  run --config FILE [--log-level LEVEL]   serve with the configuration in FILE\n"
    "  validate --config FILE                  load and check FILE (and its ingress.dir), print every\n"
    "                                          problem, serve nothing\n"
    "  validate --ingress-dir DIR              check Kubernetes manifests alone (default settings),\n"
    "                                          compiled exactly as run would compile them; both forms\n"
    "                                          then list, per Ingress, the annotations phigate does\n"
    "                                          not fully honour\n"
    "  check --config FILE [--manifests DIR]... [--format text|json|sarif|html|markdown]\n"
    "        [--phi-hosts all|annotated] [--min-cert-days N] [--output FILE] [--now RFC3339]\n"
    "                                          the HIPAA technical safeguards (45 CFR 164.312),\n"
    "                                          rule by rule (docs/check.md); exit 0 no error\n"
    "                                          finding, 1 error findings, 2 input unreadable\n"
    "  annotations [--markdown|--json]         print every ingress-nginx annotation name and what\n"
    "                                          phigate does with it (docs/annotations.md is the\n"
    "                                          Markdown output)\n"
    "  audit verify --keys DIR [--state FILE] PATH...\n"
    "                                          check audit segments (files or folders): every frame,\n"
    "                                          the chain across segments, its end against the state\n"
    "                                          file (default: audit.state in a folder given); exit 1\n"
    "                                          on any problem\n"
    "  audit decrypt --keys DIR PATH... [--since T] [--until T] [--host H]\n"
    "                                          authenticated records as JSON lines on stdout\n"
    "  probe URL [--timeout SECONDS]           GET http://host:port/path once (default timeout 2);\n"
    "                                          exit 0 on status 200, 1 otherwise (a container\n"
    "                                          HEALTHCHECK for images without a shell)\n"
    "\n"
    "options:\n"
    "  --version    print the version and exit\n"
    "  --help       print this help and exit\n"
    "\n"
    "LEVEL is one of trace, debug, info, warn, error, off (default: the file's log.level).\n"
    "Exit codes: 0 ok, 1 configuration or startup error, 2 usage error.\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "phigate: %s (see phigate --help)\n", msg.c_str());
  return 2;
}

struct Args {
  std::string config;
  std::string log_level;
  std::string ingress_dir;  // validate only
};

/// One "--name=value" or "--name" argument: its name, and its inline value when it has one.
struct Option {
  std::string_view name;
  std::string_view value;
  bool inline_value = false;
};

Option split_option(std::string_view a) {
  if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string_view::npos) {
    return {a.substr(0, eq), a.substr(eq + 1), true};
  }
  return {a, {}, false};
}

/// Parses "--config FILE", "--config=FILE", "--log-level L" (run) and "--ingress-dir DIR"
/// (validate). Returns an error message or "".
std::string parse(const std::vector<std::string_view>& rest, bool run, Args& out) {
  const bool allow_log_level = run;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    std::string_view a = rest[i];
    auto [name, value, inline_value] = split_option(a);
    const bool is_config = name == "--config" || name == "-c";
    const bool is_level = allow_log_level && name == "--log-level";
    const bool is_dir = !run && name == "--ingress-dir";
    if (!is_config && !is_level && !is_dir) return "unknown option '" + std::string(a) + "'";
    if (!inline_value) {
      if (i + 1 >= rest.size()) return "option '" + std::string(name) + "' needs a value";
      value = rest[++i];
    }
    if (is_config) out.config = value;
    if (is_dir) out.ingress_dir = value;
    if (is_level) {
      spdlog::level::level_enum lvl{};
      if (!phigate::core::parse_log_level(value, lvl))
        return "invalid --log-level '" + std::string(value) + "'";
      out.log_level = value;
    }
  }
  std::error_code ec;
  if (!out.ingress_dir.empty() && !std::filesystem::is_directory(out.ingress_dir, ec)) {
    return "directory not found: " + out.ingress_dir;
  }
  if (out.config.empty()) return out.ingress_dir.empty() ? "missing --config FILE" : "";
  if (!std::filesystem::is_regular_file(out.config, ec)) return "config file not found: " + out.config;
  return {};
}

/// Per Ingress, the annotations phigate does not fully honour (no effect, unsupported, supported
/// with a difference), from translate()'s result: the supported-with-differences ones are no
/// diagnostics (their difference is documented, docs/annotations.md), so they are listed here.
/// `s` with bytes outside printable ASCII as \xNN: annotation keys and file names from a folder of
/// manifests are not validated by an API server, and a CR/LF would forge output lines.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

void print_unhonoured(const phigate::config::IngressSpec& spec) {
  if (spec.dir.empty()) return;
  const auto loaded = phigate::ingress::load_directory(spec.dir);
  if (loaded.broken_files > 0) return;   // nothing is translated: the errors above say why
  phigate::config::Diagnostics scratch;  // already printed, by the compile step above
  const auto t = phigate::ingress::translate(loaded.resources, spec, scratch);
  const bool fail = spec.unsupported_annotations == phigate::config::UnsupportedAnnotations::FailClosed;
  for (const auto& ing : t.unhonoured) {
    std::printf("%s (%s): %zu annotation(s) not fully honoured\n", printable(ing.resource).c_str(),
                printable(ing.where).c_str(), ing.annotations.size());
    std::size_t width = 0;
    for (const auto& a : ing.annotations) width = std::max(width, printable(a.key).size());
    for (const auto& a : ing.annotations) {
      std::string state;
      switch (a.support) {
        case phigate::ingress::Support::NoEffect:
          state = "no effect";
          break;
        case phigate::ingress::Support::Unsupported:
          state = fail ? "unsupported (fail_closed)" : "unsupported (warn)";
          break;
        case phigate::ingress::Support::SupportedWithDifferences:
          state = "differs";
          break;
        default:
          state = std::string(phigate::ingress::to_string(a.support));
          break;
      }
      std::printf("  %-*s  %s: %s\n", static_cast<int>(width), printable(a.key).c_str(), state.c_str(),
                  printable(a.why).c_str());
    }
  }
}

int validate(const Args& args) {
  phigate::config::Diagnostics diag;
  std::string what = args.config;
  phigate::config::IngressSpec ingress;  // what the summary of unhonoured annotations reads
  if (!args.config.empty()) {
    auto cfg = phigate::config::load_config(args.config, diag);
    if (cfg && !args.ingress_dir.empty()) {
      cfg->ingress.dir = args.ingress_dir;
      cfg->ingress.source = phigate::config::IngressSource::Directory;
    }
    if (cfg && cfg->ingress.source == phigate::config::IngressSource::Directory) ingress = cfg->ingress;
    if (cfg) {
      auto keys = std::make_shared<phigate::tls::TicketKeyRing>();
      phigate::server::build_snapshot(std::move(*cfg), keys, 0, diag);
    }
  } else {
    // Manifests alone, with the default class, controller and TLS settings: the same compile step
    // as `run` (and as --config, through build_snapshot), so client-certificate CAs, cipher lists
    // and per-host conflicts are checked here too and both forms report the same problems.
    what = args.ingress_dir;
    phigate::config::Config cfg;
    cfg.ingress.dir = args.ingress_dir;
    cfg.ingress.source = phigate::config::IngressSource::Directory;
    ingress = cfg.ingress;
    phigate::compile::load_and_compile(std::move(cfg), diag);
  }
  for (const auto& d : diag.entries()) std::printf("%s\n", d.to_string().c_str());
  print_unhonoured(ingress);
  if (diag.has_errors()) {
    // A resource error does not stop `run` (that resource fails closed) but fails validation.
    std::printf("%s: %zu error(s), %zu outside single resources\n", what.c_str(), diag.error_count(),
                phigate::server::fatal_errors(diag));
    return 1;
  }
  std::printf("%s: ok\n", what.c_str());
  return 0;
}

/// `phigate audit verify|decrypt --keys DIR [--state FILE] [--since T] [--until T] [--host H] PATH...`
/// (--state: verify only)
int audit_command(const std::vector<std::string_view>& rest) {
  if (rest.empty()) return usage_error("audit needs verify or decrypt");
  const auto sub = rest.front();
  const bool decrypt = sub == "decrypt";
  if (!decrypt && sub != "verify") return usage_error("unknown audit command '" + std::string(sub) + "'");
  std::string keys, state;
  std::optional<std::string> since, until, host;
  std::vector<std::string> paths;
  for (std::size_t i = 1; i < rest.size(); ++i) {
    std::string_view a = rest[i];
    auto [name, value, inline_value] = split_option(a);
    if (name.rfind("--", 0) != 0) {
      paths.emplace_back(a);
      continue;
    }
    const bool known = name == "--keys" || (!decrypt && name == "--state") ||
                       (decrypt && (name == "--since" || name == "--until" || name == "--host"));
    if (!known) return usage_error("unknown option '" + std::string(a) + "'");
    if (!inline_value) {
      if (i + 1 >= rest.size()) return usage_error("option '" + std::string(name) + "' needs a value");
      value = rest[++i];
    }
    if (name == "--keys") keys = value;
    if (name == "--state") {
      if (value.empty()) return usage_error("option '--state' needs a file");
      state = value;
    }
    if (name == "--since") since = std::string(value);
    if (name == "--until") until = std::string(value);
    if (name == "--host") host = std::string(value);
  }
  if (keys.empty()) return usage_error("audit " + std::string(sub) + " needs --keys DIR");
  if (paths.empty())
    return usage_error("audit " + std::string(sub) + " needs at least one segment file or folder");
  return decrypt ? phigate::audit::decrypt_main(keys, paths, since, until, host, std::cout, std::cerr)
                 : phigate::audit::verify_main(keys, paths, std::cout, std::cerr, state);
}

/// `phigate probe http://host:port/path [--timeout SECONDS]`: one GET, exit 0 on 200 and 1 on
/// anything else (refused, timed out, another status, not HTTP). The image has no shell, curl or
/// wget (less to attack), so its HEALTHCHECK execs phigate itself. Only plain http: the admin
/// listener it probes is plain HTTP on the pod network.
int probe_command(const std::vector<std::string_view>& rest) {
  std::string url;
  int timeout_s = 2;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    auto [name, value, inline_value] = split_option(rest[i]);
    if (name == "--timeout") {
      if (!inline_value) {
        if (i + 1 >= rest.size()) return usage_error("option '--timeout' needs a value");
        value = rest[++i];
      }
      int t = 0;
      const bool digits = !value.empty() && value.size() <= 3 &&
                          value.find_first_not_of("0123456789") == std::string_view::npos;
      if (digits) t = std::stoi(std::string(value));
      if (t < 1 || t > 60) return usage_error("--timeout must be 1 to 60 seconds");
      timeout_s = t;
    } else if (name.rfind("--", 0) == 0 || !url.empty()) {
      return usage_error("unexpected argument '" + std::string(rest[i]) + "'");
    } else {
      url = rest[i];
    }
  }
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return usage_error("probe needs an http://host:port/path URL");
  const auto slash = url.find('/', kScheme.size());
  const std::string authority = url.substr(kScheme.size(), slash - kScheme.size());
  const std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  std::string host;
  std::uint16_t port = 0;
  // The path goes into the request line as it is: refuse what would split or end it.
  const bool path_ok = path.find_first_of(" \r\n\t") == std::string::npos;
  if (!phigate::core::split_host_port(authority, host, port) || port == 0 || !path_ok) {
    return usage_error("probe needs an http://host:port/path URL");
  }
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "phigate probe: %s: %s\n", url.c_str(), why.c_str());
    return 1;
  };
  auto ep = phigate::net::resolve_endpoint(authority);
  if (!ep) return fail(ep.error().context);

  namespace asio = phigate::net::asio;
  asio::io_context io;
  phigate::net::tcp::socket sock(io);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + authority +
                              "\r\nUser-Agent: phigate-probe\r\nConnection: close\r\n\r\n";
  std::string outcome = "timed out";  // until the exchange below says otherwise
  auto exchange = [&]() -> phigate::net::awaitable<void> {
    constexpr auto kTok = asio::as_tuple(asio::use_awaitable);
    if (auto [ec] = co_await sock.async_connect(*ep, kTok); ec) {
      outcome = ec.message();
      co_return;
    }
    if (auto [ec, n] = co_await asio::async_write(sock, asio::buffer(request), kTok); ec) {
      outcome = ec.message();
      co_return;
    }
    std::string line;
    char buf[512];
    while (line.find("\r\n") == std::string::npos) {
      if (line.size() > 4096) {  // no status line is this long
        outcome = "not an HTTP response";
        co_return;
      }
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), kTok);
      if (ec) {
        outcome = ec == asio::error::eof ? "closed before a status line" : ec.message();
        co_return;
      }
      line.append(buf, n);
    }
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    const auto digit = [&](std::size_t i) { return line[i] >= '0' && line[i] <= '9'; };
    const bool http = line.size() >= 14 && line.rfind("HTTP/1.", 0) == 0 && line[8] == ' ' && digit(9) &&
                      digit(10) && digit(11) && (line[12] == ' ' || line[12] == '\r');
    outcome = !http ? "not an HTTP response" : "status " + line.substr(9, 3);
  };
  asio::co_spawn(io, exchange(), asio::detached);
  io.run_for(std::chrono::seconds(timeout_s));
  if (outcome == "status 200") return 0;
  return fail(outcome);
}

}  // namespace

namespace {

/// glibc's allocator (builds without tcmalloc, src/CMakeLists.txt; under tcmalloc mallopt does
/// nothing), set for a long-running server with one arena per worker thread. By default
/// it returns the free top of an arena to the kernel once it passes 128 KiB (M_TRIM_THRESHOLD),
/// so a worker whose in-flight requests rise and fall (100 HTTP/2 streams per connection start and
/// end a 16 KiB upstream buffer and their heads each) gave pages back and faulted them in again
/// all the time: 7 % of its CPU (docs/perf-h2-many-streams.md, round 4). Both thresholds are set to
/// the ceilings glibc's own dynamic adjustment would reach after the first large free (32 MiB for
/// mmap on 64-bit, twice that for trimming), so memory is still returned after a real peak. An
/// operator's MALLOC_*_ or GLIBC_TUNABLES settings win.
void tune_allocator() {
  if (std::getenv("GLIBC_TUNABLES") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    return;
  }
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("missing command");
  const auto cmd = args.front();
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("phigate %s\nallocator: %s\n", std::string(phigate::core::version()).c_str(),
                PHIGATE_ALLOCATOR);
    return 0;
  }
  const std::vector<std::string_view> rest(args.begin() + 1, args.end());
  Args parsed;
  if (cmd == "run") {
    if (auto err = parse(rest, true, parsed); !err.empty()) return usage_error(err);
    tune_allocator();
    if (const auto err = phigate::cli::use_huge_pages(); !err.empty()) return usage_error(err);
    return phigate::server::run(parsed.config, parsed.log_level);
  }
  if (cmd == "annotations") {
    if (rest.size() > 1 || (rest.size() == 1 && rest[0] != "--markdown" && rest[0] != "--json")) {
      return usage_error("annotations takes --markdown (the default) or --json");
    }
    const bool json = rest.size() == 1 && rest[0] == "--json";
    std::fputs(
        (json ? phigate::ingress::annotations_json() : phigate::ingress::annotations_markdown()).c_str(),
        stdout);
    return 0;
  }
  if (cmd == "audit") return audit_command(rest);
  if (cmd == "check") return phigate::cli::check_command(rest);
  if (cmd == "probe") return probe_command(rest);
  if (cmd == "validate") {
    if (auto err = parse(rest, false, parsed); !err.empty()) return usage_error(err);
    return validate(parsed);
  }
  return usage_error("unknown command '" + std::string(cmd) + "'");
}
