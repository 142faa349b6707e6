#include "ingress_watcher.hpp"

#include <sys/inotify.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "phigate/core/log.hpp"

namespace phigate::server::detail {

namespace fs = std::filesystem;

IngressWatcher::IngressWatcher(net::asio::io_context& io, std::string dir, std::chrono::milliseconds rescan,
                               std::function<void()> on_change)
    : dir_(std::move(dir)),
      rescan_(rescan),
      on_change_(std::move(on_change)),
      inotify_(io),
      rescan_timer_(io) {}

IngressWatcher::~IngressWatcher() {
  stop();
}

void IngressWatcher::start() {
  last_fingerprint_ = fingerprint();
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    PHI_LOG_WARN("inotify unavailable ({}): watching {} by rescan every {} ms only", std::strerror(errno),
                 dir_, rescan_.count());
  } else {
    inotify_.assign(fd);
    add_watches();
    read_events();
  }
  schedule_rescan();
}

void IngressWatcher::stop() {
  stopped_ = true;
  net::error_code ec;
  rescan_timer_.cancel();
  if (inotify_.is_open()) inotify_.close(ec);
}

void IngressWatcher::add_watches() {
  // Watching a folder twice returns the same descriptor: re-adding all of them is harmless and
  // picks up folders created since (Kubernetes volume updates swap `..data` symlinked folders).
  constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |
                                  IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
  std::error_code ec;
  inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kMask);
  for (fs::recursive_directory_iterator it(dir_, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) inotify_add_watch(inotify_.native_handle(), it->path().c_str(), kMask);
  }
}

void IngressWatcher::read_events() {
  inotify_.async_read_some(net::asio::buffer(buf_), [this](const net::error_code& ec, std::size_t) {
    if (ec || stopped_) return;
    add_watches();
    on_change_();
    read_events();
  });
}

void IngressWatcher::schedule_rescan() {
  rescan_timer_.expires_after(rescan_);
  rescan_timer_.async_wait([this](const net::error_code& ec) {
    if (ec || stopped_) return;
    auto now = fingerprint();
    if (now != last_fingerprint_) {
      last_fingerprint_ = std::move(now);
      PHI_LOG_INFO("rescan found a change under {}", dir_);
      on_change_();
    }
    schedule_rescan();
  });
}

std::string IngressWatcher::fingerprint() const {
  std::vector<std::string> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir_, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto size = it->file_size(ec);
    const auto mtime = it->last_write_time(ec).time_since_epoch().count();
    entries.push_back(it->path().string() + ":" + std::to_string(size) + ":" + std::to_string(mtime));
  }
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const auto& e : entries) (out += e) += '\n';
  return out;
}

}  // namespace phigate::server::detail
