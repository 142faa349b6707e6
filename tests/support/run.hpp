#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace phigate::test {

struct RunOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  ///< then SIGKILL by PID
  std::string stdin_data{};                                      ///< written to the child's stdin, then EOF
  EnvVars env{};                                                 ///< added to / overriding the environment
  std::string cwd{};                                             ///< empty: the test's working directory
};

struct RunResult {
  int exit_code = -1;  ///< exit status, or 128 + signal number (137 after a timeout kill)
  std::string out{};   ///< everything written to stdout
  std::string err{};   ///< everything written to stderr
  bool timed_out = false;
};

/// Runs argv (argv[0] looked up in PATH) to completion on the calling thread, capturing stdout and stderr
/// separately through pipes (poll, so large outputs cannot deadlock). On timeout the child is SIGKILLed
/// by PID and `timed_out` is set. Throws std::runtime_error only if the child cannot be started.
RunResult run(const std::vector<std::string>& argv, const RunOptions& opts = {});

}  // namespace phigate::test
