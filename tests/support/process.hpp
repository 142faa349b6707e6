#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phigate::test {

class TempDir;

/// Environment variables added to (or overriding) the test process's environment for a child.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

struct ProcessOptions {
  EnvVars env{};              ///< added to / overriding the inherited environment
  std::string cwd{};          ///< empty: the test's working directory
  std::string output_path{};  ///< stdout+stderr go here; empty: a file in a temp dir owned by the Process
};

/// A child process owned by the test, addressed only by its PID. stdin is /dev/null; stdout and stderr
/// both append to one output file. Move-only; use from one thread. The destructor SIGKILLs a still
/// running child and reaps it, so no zombie or stray process outlives the object.
class Process {
 public:
  /// Spawns argv (argv[0] is looked up in PATH). Throws std::runtime_error if it cannot be started.
  static Process start(std::vector<std::string> argv, ProcessOptions opts = {});

  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// The child's PID (-1 for a moved-from object). Stays the same after the child was reaped.
  pid_t pid() const { return pid_; }
  /// Path of the combined stdout/stderr file.
  const std::string& output_path() const { return output_path_; }
  /// Everything the child has written so far (reads the whole file).
  std::string output() const;
  /// First line at or after byte `from_offset` of the output that contains `needle`, once complete
  /// (its newline written, or the child exited), polled every ~5 ms until `timeout`. Returns nullopt on timeout or once the child has exited without printing it. Pass
  /// `output().size()` as `from_offset` to wait for a line printed after some action (e.g. a reload).
  std::optional<std::string> wait_for_line(std::string_view needle, std::chrono::milliseconds timeout,
                                           std::size_t from_offset = 0);
  /// kill(pid, sig); returns false if the child has already been reaped or kill fails.
  bool send_signal(int sig);
  /// Waits (bounded polling with WNOHANG) for the child to exit; returns its exit code (128 + signal if it
  /// was killed), or nullopt on timeout. Calling it again after the exit returns the same code.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  /// SIGTERM, wait up to `grace`, then SIGKILL; returns the exit code (128 + signal if killed).
  int terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  /// True while the child has not exited (reaps it if it just did).
  bool running();
  /// The exit code once known (after running() returned false or wait_exit succeeded).
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  Process() = default;
  bool reap(bool block);
  void kill_and_reap() noexcept;

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string output_path_;
  std::unique_ptr<TempDir> own_dir_;
};

/// PHIGATE_BIN_DIR + "/" + name: a binary built by this CMake project (e.g. bin("phigate")).
std::string bin(std::string_view name);

}  // namespace phigate::test
