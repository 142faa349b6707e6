#include "support/process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "support/spawn_impl.hpp"
#include "support/temp_dir.hpp"

#ifndef PHIGATE_BIN_DIR
#error "PHIGATE_BIN_DIR must be defined by the build"
#endif

namespace phigate::test {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

}  // namespace

Process Process::start(std::vector<std::string> argv, ProcessOptions opts) {
  Process p;
  if (opts.output_path.empty()) {
    p.own_dir_ = std::make_unique<TempDir>();
    p.output_path_ = p.own_dir_->path("output.log");
  } else {
    p.output_path_ = std::move(opts.output_path);
  }
  // O_APPEND: stdout and stderr share the file without overwriting each other.
  const int fd = ::open(p.output_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + p.output_path_ + ": " + std::strerror(errno));
  detail::SpawnSpec spec;
  spec.argv = &argv;
  spec.env = &opts.env;
  spec.cwd = opts.cwd;
  spec.stdout_fd = fd;
  spec.stderr_fd = fd;
  try {
    p.pid_ = detail::spawn(spec);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return p;
}

Process::~Process() {
  kill_and_reap();
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_code_(std::exchange(other.exit_code_, std::nullopt)),
      output_path_(std::move(other.output_path_)),
      own_dir_(std::move(other.own_dir_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = std::exchange(other.exit_code_, std::nullopt);
    output_path_ = std::move(other.output_path_);
    own_dir_ = std::move(other.own_dir_);
  }
  return *this;
}

void Process::kill_and_reap() noexcept {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool Process::reap(bool block) {
  if (pid_ <= 0 || exit_code_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = detail::decode_wait_status(status);
    return true;
  }
  if (r < 0) {
    // ECHILD: someone else reaped it; never touch the PID again, it may be recycled.
    exit_code_ = -1;
    return true;
  }
  return false;
}

std::string Process::output() const {
  try {
    return read_file(output_path_);
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<std::string> Process::wait_for_line(std::string_view needle, std::chrono::milliseconds timeout,
                                                  std::size_t from_offset) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Check for exit before reading, so that output written just before exiting is still seen.
    const bool exited = !running();
    const std::string out = output();
    if (from_offset < out.size()) {
      const std::size_t hit = out.find(needle, from_offset);
      if (hit != std::string::npos) {
        const std::size_t nl = out.rfind('\n', hit);
        const std::size_t begin = nl == std::string::npos || nl < from_offset ? from_offset : nl + 1;
        std::size_t end = out.find('\n', hit);
        // Only a whole line: a child may write one in several pieces (python3 -u writes print()'s
        // arguments one by one), and "READY " without its port is not the line. The last line of a
        // child that exited counts without its newline.
        if (end != std::string::npos || exited) {
          if (end == std::string::npos) end = out.size();
          if (end > begin && out[end - 1] == '\r') --end;
          return out.substr(begin, end - begin);
        }
      }
    }
    if (exited || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool Process::send_signal(int sig) {
  if (pid_ <= 0 || exit_code_) return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
  return exit_code_;
}

int Process::terminate(std::chrono::milliseconds grace) {
  send_signal(SIGTERM);
  if (auto code = wait_exit(grace)) return *code;
  kill_and_reap();
  return exit_code_.value_or(-1);
}

bool Process::running() {
  return !reap(false);
}

std::string bin(std::string_view name) {
  std::string out = PHIGATE_BIN_DIR;
  out += '/';
  out += name;
  return out;
}

}  // namespace phigate::test
