#include "support/run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include "support/spawn_impl.hpp"

namespace phigate::test {
namespace {

// Owns one pipe end; closing is idempotent.
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  read_end.fd = fds[0];
  write_end.fd = fds[1];
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const RunOptions& opts) {
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  detail::SpawnSpec spec;
  spec.argv = &argv;
  spec.env = &opts.env;
  spec.cwd = opts.cwd;
  spec.stdin_fd = in_r.fd;
  spec.stdout_fd = out_w.fd;
  spec.stderr_fd = err_w.fd;
  const pid_t pid = detail::spawn(spec);
  // Our copies of the child's ends must go, or we would never see EOF on stdout/stderr.
  in_r.reset();
  out_w.reset();
  err_w.reset();
  for (int fd : {in_w.fd, out_r.fd, err_r.fd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (opts.stdin_data.empty()) in_w.reset();

  RunResult res;
  const auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  std::size_t written = 0;
  std::array<char, 65536> buf{};
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    std::array<pollfd, 3> pfds{};
    nfds_t n = 0;
    Fd* owners[3] = {};
    auto add = [&](Fd& f, short events) {
      if (f.fd < 0) return;
      pfds[n] = pollfd{f.fd, events, 0};
      owners[n++] = &f;
    };
    add(in_w, POLLOUT);
    add(out_r, POLLIN);
    add(err_r, POLLIN);
    const int timeout_ms = remaining_ms(deadline);
    if (timeout_ms == 0) {
      res.timed_out = true;
      break;
    }
    const int rc = ::poll(pfds.data(), n, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) break;
    for (nfds_t i = 0; i < n; ++i) {
      if (pfds[i].revents == 0) continue;
      Fd& f = *owners[i];
      if (&f == &in_w) {
        const ssize_t w = ::write(f.fd, opts.stdin_data.data() + written, opts.stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        // EPIPE (child closed stdin early) is not an error for us: stop feeding it.
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == opts.stdin_data.size()) f.reset();
        continue;
      }
      const ssize_t r = ::read(f.fd, buf.data(), buf.size());
      if (r > 0) {
        (&f == &out_r ? res.out : res.err).append(buf.data(), static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        f.reset();
      }
    }
  }

  int status = 0;
  if (res.timed_out) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    res.exit_code = detail::decode_wait_status(status);
    return res;
  }
  // Both pipes hit EOF; the child has exited or is about to. Wait for it within the same deadline.
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      res.exit_code = detail::decode_wait_status(status);
      return res;
    }
    if (r < 0 && errno != EINTR) return res;
    if (remaining_ms(deadline) == 0) {
      res.timed_out = true;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      res.exit_code = detail::decode_wait_status(status);
      return res;
    }
    ::poll(nullptr, 0, 1);
  }
}

}  // namespace phigate::test
