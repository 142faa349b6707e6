#include "support/spawn_impl.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>

extern char** environ;

namespace phigate::test::detail {
namespace {

std::vector<std::string> merged_environment(const std::vector<std::pair<std::string, std::string>>* extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    if (extra != nullptr) {
      for (const auto& [k, v] : *extra) overridden = overridden || k == key;
    }
    if (!overridden) out.push_back(std::move(entry));
  }
  if (extra != nullptr) {
    for (const auto& [k, v] : *extra) out.push_back(k + "=" + v);
  }
  return out;
}

// RAII for the posix_spawn attribute objects so that every early throw releases them.
struct SpawnAttrs {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnAttrs() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttrs(const SpawnAttrs&) = delete;
  SpawnAttrs& operator=(const SpawnAttrs&) = delete;
};

void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string("spawn: ") + what + ": " + std::strerror(rc));
}

}  // namespace

pid_t spawn(const SpawnSpec& spec) {
  if (spec.argv == nullptr || spec.argv->empty()) throw std::runtime_error("spawn: empty argv");
  ignore_sigpipe();

  SpawnAttrs a;
  // Children must see a normal signal environment even though the test process ignores SIGPIPE.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigset_t empty;
  sigemptyset(&empty);
  check(posix_spawnattr_setsigdefault(&a.attr, &defaults), "setsigdefault");
  check(posix_spawnattr_setsigmask(&a.attr, &empty), "setsigmask");
  check(posix_spawnattr_setflags(&a.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), "setflags");

  if (!spec.cwd.empty()) {
    check(posix_spawn_file_actions_addchdir_np(&a.actions, spec.cwd.c_str()), "addchdir");
  }
  if (spec.stdin_fd >= 0) {
    check(posix_spawn_file_actions_adddup2(&a.actions, spec.stdin_fd, 0), "dup2 stdin");
  } else {
    check(posix_spawn_file_actions_addopen(&a.actions, 0, "/dev/null", O_RDONLY, 0), "open /dev/null");
  }
  if (spec.stdout_fd >= 0) check(posix_spawn_file_actions_adddup2(&a.actions, spec.stdout_fd, 1), "dup2 out");
  if (spec.stderr_fd >= 0) check(posix_spawn_file_actions_adddup2(&a.actions, spec.stderr_fd, 2), "dup2 err");

  std::vector<char*> argv;
  for (const auto& s : *spec.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = merged_environment(spec.env);
  std::vector<char*> envp;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &a.actions, &a.attr, argv.data(), envp.data());
  if (rc != 0) {
    throw std::runtime_error("spawn " + spec.argv->front() + ": " + std::strerror(rc));
  }
  return pid;
}

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

}  // namespace phigate::test::detail
