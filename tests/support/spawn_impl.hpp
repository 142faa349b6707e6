#pragma once

// Private to the harness: the one place that starts child processes, shared by Process and run().

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace phigate::test::detail {

struct SpawnSpec {
  const std::vector<std::string>* argv = nullptr;
  const std::vector<std::pair<std::string, std::string>>* env = nullptr;  // added to / overriding environ
  std::string cwd{};                                                      // empty: inherit
  int stdin_fd = -1;                                                      // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
};

/// posix_spawnp()s argv[0] (PATH lookup) with SIGPIPE reset to default and an empty signal mask. The
/// given fds are dup2()ed onto 0/1/2; every other harness fd is O_CLOEXEC. Throws std::runtime_error.
pid_t spawn(const SpawnSpec& spec);

/// Maps a waitpid() status to an exit code, or 128 + signal number for a killed process.
int decode_wait_status(int status);

/// The harness writes to sockets and pipes whose peer may be gone: ignore SIGPIPE in the test process so
/// such writes fail with EPIPE instead of killing the test. Idempotent; children get SIGPIPE back.
void ignore_sigpipe();

}  // namespace phigate::test::detail
