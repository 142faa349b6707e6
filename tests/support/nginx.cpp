#include "support/nginx.hpp"

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "support/net.hpp"
#include "support/temp_dir.hpp"

namespace phigate::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNginxBinary = "/usr/sbin/nginx";

std::string make_config(const std::string& conf_dir, std::uint16_t port, const std::string& root,
                        const NginxOptions& opts) {
  std::string c;
  c += "daemon off;\n";
  c += "master_process on;\n";
  c += "worker_processes 1;\n";
  // As root, nginx would run its worker as nobody/www-data, which cannot enter our 0700 temp dirs.
  if (::geteuid() == 0) c += "user root;\n";
  c += "pid " + conf_dir + "/nginx.pid;\n";
  c += "error_log " + conf_dir + "/error.log warn;\n";
  c += "events { worker_connections 1024; }\n";
  c += "http {\n";
  c += "  access_log off;\n";
  c += "  include /etc/nginx/mime.types;\n";
  c += "  default_type application/octet-stream;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    c += "  " + std::string(t) + "_temp_path " + conf_dir + "/" + t + "_temp;\n";
  }
  c += "  keepalive_requests 100000;\n";
  c += opts.extra_http_config + "\n";
  c += "  server {\n";
  c += "    listen 127.0.0.1:" + std::to_string(port) + ";\n";
  c += "    server_name _;\n";
  c += "    root " + root + ";\n";
  c += opts.extra_server_config + "\n";
  c += "  }\n";
  c += "}\n";
  return c;
}

}  // namespace

Nginx Nginx::start(TempDir& dir, NginxOptions opts) {
  // free_port() can race with another process; only a port we chose ourselves is worth retrying.
  const int attempts = opts.port == 0 ? 3 : 1;
  std::string last_output;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    Nginx n;
    n.port_ = opts.port != 0 ? opts.port : free_port();
    n.conf_dir_ = dir.path("nginx-" + std::to_string(n.port_));
    n.root_dir_ = opts.root_dir.empty() ? n.conf_dir_ + "/www" : opts.root_dir;
    std::filesystem::create_directories(n.root_dir_);
    dir.write("nginx-" + std::to_string(n.port_) + "/nginx.conf",
              make_config(n.conf_dir_, n.port_, n.root_dir_, opts));
    // -e: nginx opens its compiled-in error log before reading the config unless told otherwise.
    n.process_.emplace(Process::start({kNginxBinary, "-p", n.conf_dir_ + "/", "-c",
                                       n.conf_dir_ + "/nginx.conf", "-e", n.conf_dir_ + "/error.log"},
                                      ProcessOptions{.output_path = n.conf_dir_ + "/output.log"}));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (n.process_->running() && std::chrono::steady_clock::now() < deadline) {
      if (wait_for_port("127.0.0.1", n.port_, 0ms)) return n;
      std::this_thread::sleep_for(5ms);
    }
    last_output = n.process_->output();
    std::string error_log;
    try {
      error_log = read_file(n.conf_dir_ + "/error.log");
    } catch (const std::exception&) {
    }
    last_output += error_log;
    const bool port_taken = last_output.find("Address already in use") != std::string::npos;
    if (!port_taken || attempt + 1 == attempts) break;
  }
  throw std::runtime_error("nginx did not start:\n" + last_output);
}

Nginx::~Nginx() {
  stop();
}

Nginx::Nginx(Nginx&& other) noexcept
    : port_(other.port_),
      root_dir_(std::move(other.root_dir_)),
      conf_dir_(std::move(other.conf_dir_)),
      process_(std::move(other.process_)) {
  other.process_.reset();
}

Nginx& Nginx::operator=(Nginx&& other) noexcept {
  if (this != &other) {
    stop();
    port_ = other.port_;
    root_dir_ = std::move(other.root_dir_);
    conf_dir_ = std::move(other.conf_dir_);
    process_ = std::move(other.process_);
    other.process_.reset();
  }
  return *this;
}

int Nginx::stop() {
  if (!process_) return -1;
  if (auto code = process_->exit_code()) return *code;
  // Signal only the master: it stops its worker itself (we did not start that one and must not kill it
  // by name). A graceful SIGQUIT waits for open client connections, including up to lingering_timeout
  // (5 s) for each test client that is still open, so fall back to the fast SIGTERM shutdown soon.
  process_->send_signal(SIGQUIT);
  if (auto code = process_->wait_exit(1s)) return *code;
  process_->send_signal(SIGTERM);
  if (auto code = process_->wait_exit(5s)) return *code;
  process_->send_signal(SIGKILL);
  return process_->wait_exit(5s).value_or(-1);
}

std::string Nginx::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

}  // namespace phigate::test
