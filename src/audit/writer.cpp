#include "phigate/audit/writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "byte_ring_impl.hpp"
#include "format_impl.hpp"
#include "phigate/audit/json_line.hpp"
#include "phigate/core/assert.hpp"
#include "phigate/core/log.hpp"
#include "state_file_impl.hpp"

namespace phigate::audit {

using namespace detail;
using Clock = std::chrono::system_clock;

namespace {

// A frame's plaintext stops growing past this (plus one record): frames stay far below
// kMaxFrameBody, and a crash loses at most the frames of one unflushed batch.
constexpr std::size_t kFramePlainTarget = 1u << 20;
constexpr std::size_t kMaxRecord = 1u << 20;

core::Error config_error(std::string ctx) {
  return {core::ErrorKind::Config, core::ErrorSource::Config, core::Retryable::No, std::move(ctx)};
}
core::Error io_error(const std::string& what, const std::string& path, int err) {
  return core::Error::internal("audit " + what + " " + path + ": " + std::strerror(err));
}

std::string join(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Creates `dir` and its missing parents with 0700. An existing directory with group or other access
// is tightened to 0700 (logged) rather than refused: volume mounts often come 0777 or 2775, and the
// segments inside are 0600 anyway. A chmod that fails (not our directory) is an error.
std::optional<core::Error> ensure_private_dir(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return io_error("cannot create dir", part, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return io_error("cannot stat dir", dir, errno);
  if (!S_ISDIR(st.st_mode)) return io_error("not a directory:", dir, ENOTDIR);
  if ((st.st_mode & 077) != 0) {
    if (::chmod(dir.c_str(), 0700) != 0) return io_error("cannot restrict dir to 0700", dir, errno);
    PHI_LOG_WARN("audit: tightened permissions of {} to 0700", dir);
  }
  return std::nullopt;
}

struct Found {
  std::string path;
  std::uint64_t seq = 0;
  bool open = false;
};

// The segment file with the highest sequence number in `dir` (by name), if any.
std::optional<Found> newest_segment(const std::string& dir) {
  std::optional<Found> best;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return best;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    const bool open = name.ends_with(".open");
    if (!open && !name.ends_with(".seg")) continue;
    const auto seq = parse_segment_file_name(name);
    if (seq && (!best || *seq > best->seq)) best = Found{join(dir, name), *seq, open};
  }
  ::closedir(d);
  return best;
}

struct Producer {
  explicit Producer(std::size_t bytes) : ring(bytes) {}
  ByteRing ring;
  std::size_t since_wake = 0;              // producer thread only
  std::atomic<std::uint64_t> rejected{0};  // written by the producer only
  std::atomic<bool> overflow{false};       // set by the producer, cleared by the writer after draining
  // FailClosed: records the full ring could not take, in submission order (producer thread only),
  // bounded by the ring's size; `spilling` (read by healthy()) while it holds any.
  std::deque<std::string> spill;
  std::size_t spill_bytes = 0;
  std::atomic<bool> spilling{false};

  // Moves spilled records into the ring while it has room; true when the spill is empty.
  bool unspill() {
    while (!spill.empty() && ring.push(spill.front())) {
      spill_bytes -= spill.front().size();
      spill.pop_front();
    }
    if (spill.empty() && spilling.load(std::memory_order_relaxed))
      spilling.store(false, std::memory_order_relaxed);
    return spill.empty();
  }
};

enum class SegState : std::uint8_t { None, Open, Sealing, Renaming };

}  // namespace

struct Writer::Impl {
  WriterOptions opt;
  KeyRing keys;
  std::vector<std::unique_ptr<Producer>> producers;
  std::size_t max_record = 0;

  // Shared state; mu guards the plain fields.
  std::mutex mu;
  std::condition_variable wake_cv;  // wakes the writer
  std::condition_variable done_cv;  // flush() and stop() waiters
  bool wake = false, stop_requested = false, abandon = false, exited = false, last_ok = true;
  bool held = false;  // hold_for_test
  std::uint64_t flush_requested = 0, flush_done = 0;
  std::optional<std::pair<std::string, KeyRing>> rotation_requested;
  std::mutex space_mu;          // Block mode and pump(): producers wait on space_cv for ring space
  std::uint64_t space_gen = 0;  // guarded by space_mu: drains that freed ring space (pump's wait)
  std::condition_variable space_cv;
  std::atomic<bool> failed{false}, stopped{false};
  std::atomic<int> fail_errno{0};
  std::atomic<std::uint64_t> records_written{0}, frames_written{0}, bytes_written{0}, segments_sealed{0},
      write_errors{0}, segment_seq{0}, tamper_events{0};
  std::thread thread;

  // Writer-thread state (also used by start() before the thread exists).
  SegmentCipher cipher;
  struct Segment {
    SegState state = SegState::None;
    int fd = -1;
    std::string base;  // "audit-<seq>-<stamp>"
    SegmentHeader header;
    Tag last_tag{};
    std::uint32_t next_frame = 1;
    std::uint64_t records = 0, data_frames = 0;
    std::uint64_t synced = 0;  // durable file length
    std::string pending;       // encoded bytes after `synced`, kept until fsync succeeds
    std::uint64_t pending_records = 0, pending_frames = 0;
    bool dir_sync = false;
    bool state_saved = false;  // the state file names this segment's seal
    Clock::time_point created;
  } seg;
  struct Link {  // what the next segment header says about its predecessor
    PrevState state = PrevState::None;
    SegmentId id{};
    std::uint64_t seq = 0;
    std::uint32_t frames = 0;
    Tag tag{};
  } link;
  std::uint64_t next_seq = 1;
  std::string pending_event;  // a chain event found at start: frame 1 of the next segment
  std::optional<std::pair<std::string, KeyRing>> rotation;
  std::string plain;
  std::size_t plain_records = 0;
  bool logged_failure = false;
  std::string last_failure;  // "write /dir/file: No space left on device"

  ~Impl() {
    if (seg.fd >= 0) ::close(seg.fd);
  }

  Clock::time_point now() const { return opt.clock_for_test ? opt.clock_for_test() : Clock::now(); }

  // --- I/O wrappers: the single place where the failure test hook applies ------------------------
  bool injected(int& err) const noexcept {
    err = fail_errno.load(std::memory_order_relaxed);
    return err != 0;
  }
  int sync_dir(const std::string& dir, int& err) {
    if (injected(err)) return -1;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err = errno, -1;
    const int rc = ::fsync(fd);
    if (rc != 0) err = errno;
    ::close(fd);
    return rc;
  }
  int rename_file(const std::string& from, const std::string& to, int& err) {
    if (injected(err)) return -1;
    const int rc = ::rename(from.c_str(), to.c_str());
    if (rc != 0) err = errno;
    return rc;
  }

  void note_failure(const std::string& what, const std::string& path, int err) {
    last_failure = what + " " + path + ": " + std::strerror(err);
    write_errors.fetch_add(1, std::memory_order_relaxed);
    if (!failed.exchange(true)) {
      // Wake Block-mode producers: they now refuse instead of waiting.
      { std::lock_guard lk(space_mu); }
      space_cv.notify_all();
    }
    if (!logged_failure) {
      PHI_LOG_ERROR("audit: {} {} failed: {}; failing closed until it succeeds", what, path,
                    std::strerror(err));
      logged_failure = true;
    }
  }
  void note_success() {
    if (failed.exchange(false)) PHI_LOG_WARN("audit: writing works again; accepting records");
    logged_failure = false;
  }

  std::string open_path() const { return join(opt.dir, seg.base + ".open"); }
  std::string state_path() const { return join(opt.dir, kStateFileName); }

  // Replaces the state file atomically (temp file, fsync, rename, fsync dir): after a crash it holds
  // either the old or the new state, never a torn one. MAC key: derived from the active key.
  // Returns 0 or an errno value.
  int save_state(const Link& l) {
    const Key* key = keys.find(opt.active_key);
    PHI_CHECK(key != nullptr);  // start() and rotate_key() only accept keys present in the ring
    const std::string text = encode_state(ChainState{l.state, l.id, l.seq, l.frames, l.tag, key->id}, *key);
    if (text.empty()) {
      ERR_clear_error();
      return EIO;  // HMAC failed: only without the default provider or memory
    }
    const std::string path = state_path(), tmp = path + ".tmp";
    int err = 0;
    if (injected(err)) return err;
    // O_NOFOLLOW: a symlink planted at the temp name must not make us truncate its target.
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return errno;
    std::size_t done = 0;
    while (done < text.size() && err == 0) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno != EINTR) err = errno;
      if (n == 0) err = EIO;  // a regular file never takes nothing: do not spin
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    // fchmod: a stale temp file left by someone else keeps its mode through O_CREAT.
    if (err == 0 && (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0)) err = errno;
    ::close(fd);
    if (err == 0 && rename_file(tmp, path, err) == 0 && sync_dir(opt.dir, err) == 0) return 0;
    ::unlink(tmp.c_str());
    return err ? err : EIO;
  }

  // --- Segment lifecycle -----------------------------------------------------------------------
  // Encodes the header of a new segment into `pending`. The file is created by commit().
  bool begin_segment() {
    const Key* key = keys.find(opt.active_key);
    PHI_CHECK(key != nullptr);  // start() and rotate_key() only accept keys present in the ring
    Segment s;
    s.created = now();
    SegmentHeader& h = s.header;
    if (!random_bytes(h.id.data(), h.id.size()) || !random_bytes(h.salt.data(), h.salt.size())) return false;
    h.seq = next_seq;
    h.created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s.created.time_since_epoch()).count();
    h.prev_state = link.state;
    h.prev_id = link.id;
    h.prev_seq = link.seq;
    h.prev_frames = link.frames;
    h.prev_tag = link.tag;
    h.key_id = key->id;
    if (!cipher.set_segment(*key, h.id, h.salt, h.seq, h.key_check)) return false;
    s.pending = encode_header(h);
    if (!cipher.header_tag(s.pending, s.last_tag)) return false;
    s.pending.append(reinterpret_cast<const char*>(s.last_tag.data()), s.last_tag.size());
    s.base = segment_file_name(h.seq, h.created_ns, false);
    s.base.resize(s.base.size() - 4);  // drop ".seg"
    s.state = SegState::Open;
    s.dir_sync = true;
    seg = std::move(s);
    ++next_seq;
    segment_seq.store(h.seq, std::memory_order_relaxed);
    if (!pending_event.empty()) {
      // Frame 1, written and fsynced with the header: authenticated and chained like any frame, so
      // the event cannot be removed without verify noticing (README.md, "Tamper events").
      if (!encode_frame(FrameType::Event, pending_event)) return false;
      pending_event.clear();
    }
    return true;
  }

  bool encode_frame(FrameType type, std::string_view body) {
    Tag tag;
    if (!cipher.append_frame(seg.pending, seg.next_frame, type, seg.last_tag, body, tag)) {
      PHI_LOG_ERROR("audit: {}", openssl_error("AES-GCM encryption failed").context);
      return false;
    }
    seg.last_tag = tag;
    ++seg.next_frame;
    ++seg.pending_frames;
    return true;
  }

  bool flush_plain() {
    if (plain_records == 0) return true;
    if (!encode_frame(FrameType::Data, plain)) return false;
    seg.records += plain_records;
    seg.pending_records += plain_records;
    ++seg.data_frames;
    plain.clear();
    plain_records = 0;
    return true;
  }

  // Writes `pending` at the durable end of the file and fsyncs it. After a failure the same bytes are
  // written again at the same offset: a frame is encrypted exactly once (a GCM nonce is never reused
  // for other plaintext), and after a failed fsync the page cache may have dropped them (Linux
  // marks failed dirty pages clean), so they are never assumed to be on disk.
  bool commit() {
    if (seg.pending.empty() && !seg.dir_sync) return true;
    const std::string path = open_path();
    int err = 0;
    if (seg.fd < 0) {
      if (injected(err) || (seg.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        if (!err) err = errno;
        note_failure("create", path, err);
        return false;
      }
    }
    std::size_t done = 0;
    while (done < seg.pending.size()) {
      ssize_t n = -1;
      if (!injected(err)) {
        n = ::pwrite(seg.fd, seg.pending.data() + done, seg.pending.size() - done,
                     static_cast<off_t>(seg.synced + done));
        if (n < 0) err = errno;
      }
      if (n < 0 && err == EINTR) continue;
      if (n < 0) {
        note_failure("write", path, err);
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    if (injected(err) || ::fdatasync(seg.fd) != 0) {
      if (!err) err = errno;
      note_failure("fsync", path, err);
      return false;
    }
    if (seg.dir_sync) {
      if (sync_dir(opt.dir, err) != 0) {
        note_failure("fsync dir", opt.dir, err);
        return false;
      }
      seg.dir_sync = false;
    }
    seg.synced += seg.pending.size();
    bytes_written.fetch_add(seg.pending.size(), std::memory_order_relaxed);
    records_written.fetch_add(seg.pending_records, std::memory_order_relaxed);
    frames_written.fetch_add(seg.pending_frames, std::memory_order_relaxed);
    seg.pending.clear();
    seg.pending_records = seg.pending_frames = 0;
    return true;
  }

  void begin_seal() {
    unsigned char body[kSealBody];
    put_be(body, seg.records, 8);
    put_be(body + 8, seg.data_frames, 4);
    if (encode_frame(FrameType::Seal, std::string_view(reinterpret_cast<const char*>(body), sizeof body))) {
      seg.state = SegState::Sealing;
    }
  }

  // Moves a sealed (or recovered) segment to archive_dir: rename, or copy + fsync + unlink across
  // file systems. A failure leaves it in `dir` (nothing is lost) and is logged.
  void archive(const std::string& path) {
    if (opt.archive_dir.empty()) return;
    const std::string name = base_name(path);
    const std::string dest = join(opt.archive_dir, name);
    int err = 0;
    if (rename_file(path, dest, err) == 0) {
      if (sync_dir(opt.archive_dir, err) != 0 || sync_dir(opt.dir, err) != 0) {
        write_errors.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (err == EXDEV && copy_file(path, dest, err) && ::unlink(path.c_str()) == 0 &&
        sync_dir(opt.dir, err) == 0) {
      return;
    }
    if (!err) err = errno;
    write_errors.fetch_add(1, std::memory_order_relaxed);
    PHI_LOG_WARN("audit: archiving {} to {} failed: {}; it stays in {}", name, opt.archive_dir,
                 std::strerror(err), opt.dir);
  }

  bool copy_file(const std::string& from, const std::string& to, int& err) {
    std::string data;
    if ((err = read_file(from, data)) != 0) return false;
    const std::string tmp = to + ".tmp";
    if (injected(err)) return false;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return err = errno, false;
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      done += static_cast<std::size_t>(n);
    }
    const bool ok = done == data.size() && ::fsync(fd) == 0;
    if (!ok) err = errno;
    ::close(fd);
    if (!ok || rename_file(tmp, to, err) != 0 || sync_dir(opt.archive_dir, err) != 0) {
      ::unlink(tmp.c_str());
      return false;
    }
    return true;
  }

  // Brings the file up to date with the in-memory state. False on an I/O failure (retried later).
  bool advance() {
    if (seg.state == SegState::Open || seg.state == SegState::Sealing) {
      if (!commit()) return false;
      if (seg.state == SegState::Sealing) {
        ::close(seg.fd);
        seg.fd = -1;
        seg.state = SegState::Renaming;
      }
    }
    if (seg.state == SegState::Renaming) {
      const Link sealed{PrevState::Sealed, seg.header.id, seg.header.seq, seg.next_frame - 1, seg.last_tag};
      int err = 0;
      if (!seg.state_saved) {
        // Before the rename: the state file never lags a `.seg` file (a restart treats a sealed `.seg`
        // beyond the state as tampering), and a crash in between leaves a sealed `.open` file that
        // the state already names.
        if ((err = save_state(sealed)) != 0) {
          note_failure("write", state_path(), err);
          return false;
        }
        seg.state_saved = true;
      }
      const std::string to = join(opt.dir, seg.base + ".seg");
      if (rename_file(open_path(), to, err) != 0 || sync_dir(opt.dir, err) != 0) {
        note_failure("rename", open_path(), err);
        return false;
      }
      link = sealed;
      seg.state = SegState::None;
      segments_sealed.fetch_add(1, std::memory_order_relaxed);
      archive(to);
    }
    return true;
  }

  bool should_rotate() {
    if (rotation) return true;
    if (seg.synced >= opt.segment_max_bytes) return true;
    return seg.records > 0 && now() - seg.created >= opt.segment_max_age;
  }

  void apply_rotation() {
    if (!rotation) return;
    opt.active_key = std::move(rotation->first);
    keys = std::move(rotation->second);
    rotation.reset();
  }

  // Copies every queued record into frames. Runs only while writing works: while failed, records stay
  // in the rings (bounded by them: a full ring refuses) and are written on recovery.
  bool drain() {
    bool ok = true;
    for (auto& p : producers) {
      p->ring.drain([&](std::string_view rec) {
        if (!ok) return;  // unreachable in practice: encryption does not fail once initialised
        if (plain_records > 0 &&
            (plain_records >= opt.batch_records || plain.size() + rec.size() + 1 > kFramePlainTarget)) {
          ok = flush_plain();
        }
        plain.append(rec);
        plain += '\n';
        ++plain_records;
      });
      if (p->overflow.load(std::memory_order_relaxed)) p->overflow.store(false, std::memory_order_relaxed);
    }
    const bool spilled = std::any_of(producers.begin(), producers.end(), [](const auto& p) {
      return p->spilling.load(std::memory_order_relaxed);
    });
    if (opt.overflow == WriterOptions::Overflow::Block || spilled) {
      {
        std::lock_guard lk(space_mu);
        ++space_gen;
      }
      space_cv.notify_all();
    }
    return ok && flush_plain();
  }

  // One writer pass. Returns true when everything accepted so far is durable.
  bool pass(bool stopping) {
    if (!advance()) return false;
    if (seg.state == SegState::None && !stopping) {
      apply_rotation();
      if (!begin_segment()) return false;
      if (!advance()) return false;
    }
    if (seg.state == SegState::Open) {
      if (!drain() || !advance()) return false;
      if (stopping || should_rotate()) {
        begin_seal();
        if (!advance()) return false;
        if (!stopping) {
          apply_rotation();
          if (!begin_segment() || !advance()) return false;
        }
      }
    }
    note_success();
    // Stopping after a failed segment start leaves records queued that nothing will write.
    return !stopping ||
           std::all_of(producers.begin(), producers.end(), [](const auto& p) { return p->ring.empty(); });
  }

  void run() {
    auto next = std::chrono::steady_clock::now() + opt.flush_interval;
    for (;;) {
      std::unique_lock lk(mu);
      wake_cv.wait_until(lk, next, [&] {
        return abandon || stop_requested ||
               (!held && (wake || flush_requested > flush_done || rotation_requested));
      });
      if (abandon) break;
      if (held && !stop_requested) {  // hold_for_test: nothing is taken until the release wakes us
        next = std::chrono::steady_clock::now() + opt.flush_interval;
        continue;
      }
      wake = false;
      const bool stopping = stop_requested;
      const std::uint64_t target = flush_requested;
      if (rotation_requested) {
        rotation = std::move(rotation_requested);
        rotation_requested.reset();
      }
      lk.unlock();
      const bool ok = pass(stopping);
      lk.lock();
      flush_done = target;
      last_ok = ok;
      lk.unlock();
      done_cv.notify_all();
      if (stopping) break;
      next = std::chrono::steady_clock::now() + opt.flush_interval;
    }
    std::lock_guard lk(mu);
    exited = true;
    done_cv.notify_all();
  }

  // --- Startup: recover the chain from the newest segment ----------------------------------------
  struct StateRead {
    std::optional<ChainState> state;  // authentic
    bool absent = false;
    std::string problem;  // why a present file cannot be trusted
  };

  StateRead read_state() {
    StateRead r;
    std::string text;
    const std::string path = state_path();
    // 4 KiB: far above the ~330 bytes we write; anything longer is not ours and fails to parse.
    if (const int err = read_file(path, text, 4096)) {
      if (err == ENOENT) {
        r.absent = true;
      } else {
        r.problem = "state file " + path + " cannot be read: " + std::strerror(err);
      }
      return r;
    }
    ChainState cs;
    switch (parse_state(text, keys, cs)) {
      case StateParse::Ok:
        r.state = cs;
        break;
      case StateParse::Malformed:
        r.problem = "state file " + path + " is malformed";
        break;
      case StateParse::UnknownKey:
        r.problem =
            "state file " + path + " is authenticated with key " + cs.key_id + ", which is not loaded";
        break;
      case StateParse::BadMac:
        r.problem = "state file " + path + " fails authentication (altered, or written with another key " +
                    cs.key_id + ")";
        break;
    }
    return r;
  }

  std::optional<Found> newest_anywhere() const {
    std::optional<Found> found = newest_segment(opt.dir);
    if (!opt.archive_dir.empty()) {
      auto archived = newest_segment(opt.archive_dir);
      if (archived && (!found || archived->seq > found->seq)) found = std::move(archived);
    }
    return found;
  }

  static Link link_of(const ChainState& s) { return Link{s.end, s.id, s.seq, s.frames, s.tag}; }
  static bool chains_to(const SegmentHeader& h, const Link& l) {
    if (h.prev_state != l.state) return false;
    return l.state == PrevState::None ||
           (h.prev_id == l.id && h.prev_seq == l.seq && h.prev_frames == l.frames && h.prev_tag == l.tag);
  }
  static std::string describe(const Link& l) {
    return describe_state(ChainState{l.state, l.id, l.seq, l.frames, l.tag, {}});
  }

  // A tamper event: counted, logged once at error level, and written as frame 1 of the next segment.
  void tamper(std::string_view reason, const std::string& detail) {
    tamper_events.fetch_add(1, std::memory_order_relaxed);
    PHI_LOG_ERROR("audit: chain tamper event {}: {}; recorded in the next segment (see phigate audit verify)",
                  reason, detail);
    JsonLine j;
    j.field("@timestamp", format_timestamp(now()));
    j.begin_object("event");
    j.plain_field("kind", "alert");
    j.plain_field("action", "audit-chain-check");
    j.plain_field("reason", reason);
    j.end_object();
    j.field("message", detail);
    pending_event = std::string(j.finish());
  }

  // Finds where the chain ends: the newest segment in `dir` or `archive_dir`, checked against the
  // state file. A crash (the newest segment unsealed, or sealed but not yet named in the state,
  // chaining to what the state records) recovers as before. A sealed segment that no longer ends as
  // recorded, a missing one, or a sequence number going backwards is a tamper event: the new segment
  // then chains to what the state file records (so verify reports the gap or truncation too) and takes
  // a sequence number above every one seen (never reusing the number of a deleted segment).
  std::optional<core::Error> recover() {
    const StateRead st = read_state();
    if (!st.problem.empty()) tamper("state_invalid", st.problem);
    const std::optional<Link> recorded = st.state ? std::optional<Link>(link_of(*st.state)) : std::nullopt;
    for (;;) {
      std::optional<Found> found = newest_anywhere();
      if (!found) {
        if (recorded && recorded->state != PrevState::None) {
          tamper("sealed_segment_missing", "state file says " + describe(*recorded) +
                                               "; no segment found in " + opt.dir +
                                               (opt.archive_dir.empty() ? "" : " or " + opt.archive_dir));
          link = *recorded;
          next_seq = recorded->seq + 1;
        }
        return finish_recovery(nullptr);
      }
      std::string file;
      if (int err = read_file(found->path, file)) return io_error("cannot read segment", found->path, err);
      SegmentHeader h;
      std::size_t header_len = 0;
      const HeaderParse parsed = parse_header(file, h, header_len);
      if (parsed == HeaderParse::Short && found->open) {
        // A crash while the header was being created: the file holds no record. Remove it and
        // chain to the segment before it.
        PHI_LOG_WARN("audit: removing {}: crashed before its header was complete", found->path);
        if (::unlink(found->path.c_str()) != 0) return io_error("cannot remove", found->path, errno);
        continue;
      }
      if (parsed != HeaderParse::Ok || h.seq != found->seq) {
        if (!recorded) {
          return core::Error::internal("audit segment " + found->path +
                                       ": unreadable header; verify the directory and move the file aside");
        }
        // The state file says where the chain ended: continue from there, above every number seen.
        const bool older = parsed == HeaderParse::Ok && h.seq < recorded->seq;
        tamper(older ? "sequence_rollback" : "segment_unreadable",
               "state file says " + describe(*recorded) + "; " + found->path +
                   (parsed != HeaderParse::Ok ? " has an unreadable header"
                                              : " holds segment " + std::to_string(h.seq)));
        link = *recorded;
        next_seq = std::max({recorded->seq, found->seq, parsed == HeaderParse::Ok ? h.seq : 0}) + 1;
        return finish_recovery(nullptr);
      }
      const Key* key = keys.find(h.key_id);
      SegmentCipher reader;
      bool authenticate = key != nullptr;
      Tag last{};
      if (authenticate) {
        KeyCheck check;
        if (!reader.set_segment(*key, h.id, h.salt, h.seq, check) ||
            !reader.header_tag(std::string_view(file).substr(0, header_len), last) ||
            CRYPTO_memcmp(check.data(), h.key_check.data(), check.size()) != 0 ||
            CRYPTO_memcmp(last.data(), file.data() + header_len, last.size()) != 0) {
          return core::Error::internal("audit segment " + found->path +
                                       ": header fails authentication (key " + h.key_id + "); run verify");
        }
      } else {
        PHI_LOG_WARN("audit: key {} of {} not loaded: recovering its chain end without authentication",
                     h.key_id, found->path);
        std::memcpy(last.data(), file.data() + header_len, last.size());
      }
      // The last frame that is complete, numbered in sequence, chained and (with the key) authentic.
      std::size_t offset = header_len + kTagBytes;
      std::uint32_t frames = 0;
      bool sealed = false;
      std::string scratch;
      walk_frames(file, offset, [&](const unsigned char* f, std::size_t size, const FrameHead& fh) {
        if (sealed || fh.frame_no != frames + 1 || fh.prev_tag != last) return false;
        if (authenticate && !reader.open_frame(f, size, scratch)) return false;
        std::memcpy(last.data(), f + size - kTagBytes, last.size());
        frames = fh.frame_no;
        sealed = fh.type == static_cast<std::uint8_t>(FrameType::Seal);
        return true;
      });
      if (!scratch.empty()) OPENSSL_cleanse(scratch.data(), scratch.size());
      const Link on_disk{sealed ? PrevState::Sealed : PrevState::Crashed, h.id, h.seq, frames, last};
      link = on_disk;
      next_seq = h.seq + 1;
      bool crashed = !sealed;
      if (recorded) {
        const std::string says = "state file says " + describe(*recorded) + "; ";
        if (h.seq == recorded->seq) {
          if (on_disk.state != recorded->state || on_disk.id != recorded->id ||
              on_disk.frames != recorded->frames || on_disk.tag != recorded->tag) {
            // Truncated (seal or frames cut off), altered (a frame no longer authenticates), or
            // another segment with that number.
            tamper("sealed_segment_altered", says + found->path + " now ends as " + describe(on_disk));
            link = *recorded;
            crashed = false;
          }
        } else if (h.seq < recorded->seq) {
          // Deleted, or the log replaced by an older copy: starting from here would reuse numbers.
          tamper("sealed_segment_missing",
                 says + "the newest segment is " + std::to_string(h.seq) + " (" + found->path + ")");
          link = *recorded;
          next_seq = recorded->seq + 1;
          crashed = false;
        } else if (!(h.seq == recorded->seq + 1 && found->open && chains_to(h, *recorded))) {
          // Only a crash leaves a segment beyond the state (the state is saved before a seal's rename):
          // the state file was rolled back or replaced.
          tamper("state_behind", says + "but " + found->path + " is " + describe(on_disk) +
                                     (found->open ? ", and does not chain to it" : ""));
        }
      } else if (st.absent && h.version >= 2) {
        // Every writer of a version 2 segment keeps the state file: deleting it is how one would
        // hide the deletion or truncation of the newest sealed segments.
        tamper("state_missing", "no state file " + state_path() + ", but " + found->path +
                                    " was written by a writer that keeps one");
      } else if (st.absent) {
        PHI_LOG_WARN("audit: no state file yet; {} predates it (upgrade): starting one", found->path);
      }
      if (crashed) {
        PHI_LOG_WARN("audit: {} ended unsealed after frame {} (crash); the next segment records that",
                     found->path, frames);
      }
      return finish_recovery(found->open ? &found->path : nullptr);
    }
  }

  // Saves the state (the chain end the next segment links to), then gives a left-over `.open` file its
  // final name: in this order a crash in between is still consistent with the state.
  std::optional<core::Error> finish_recovery(const std::string* open_path) {
    if (int err = save_state(link)) return io_error("cannot write", state_path(), err);
    if (open_path) {
      // Immutable from now on: give it its final name; its bytes stay as they are for verify.
      const std::string& from = *open_path;
      std::string to = from.substr(0, from.size() - 5) + ".seg";
      int err = 0;
      if (rename_file(from, to, err) != 0 || sync_dir(opt.dir, err) != 0) {
        return io_error("cannot rename", from, err);
      }
      ::chmod(to.c_str(), 0600);
      archive(to);
    }
    return std::nullopt;
  }
};

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Writer::~Writer() {
  stop();
}

core::Result<std::unique_ptr<Writer>> Writer::start(WriterOptions options, KeyRing keys, unsigned producers) {
  if (options.dir.empty()) return config_error("audit: dir is empty");
  if (producers == 0) return config_error("audit: no producers");
  if (options.batch_records == 0) return config_error("audit: batch_records must be at least 1");
  if (options.flush_interval.count() <= 0) return config_error("audit: flush_interval must be positive");
  if (options.queue_bytes_per_producer < (64u << 10))
    return config_error("audit: queue_bytes_per_producer < 64 KiB");
  if (options.segment_max_bytes < 4096) return config_error("audit: segment_max_bytes < 4096");
  if (!keys.find(options.active_key)) {
    return config_error("audit key file " + keys.path_for(options.active_key) + ": not found");
  }
  if (auto e = ensure_private_dir(options.dir)) return std::move(*e);
  if (!options.archive_dir.empty()) {
    if (auto e = ensure_private_dir(options.archive_dir)) return std::move(*e);
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->keys = std::move(keys);
  for (unsigned i = 0; i < producers; ++i) {
    impl->producers.push_back(std::make_unique<Producer>(impl->opt.queue_bytes_per_producer));
  }
  impl->max_record = std::min(kMaxRecord, impl->producers.front()->ring.max_record());
  impl->plain.reserve(kFramePlainTarget + impl->max_record + 1);
  if (auto e = impl->recover()) return std::move(*e);
  if (!impl->begin_segment()) return openssl_error("audit: cannot initialise segment encryption");
  if (!impl->advance()) {
    return core::Error::internal("audit: cannot create the first segment: " + impl->last_failure);
  }
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

std::size_t Writer::max_record() const noexcept {
  return impl_->max_record;
}

bool Writer::submit(unsigned producer, std::string_view line) {
  Impl& s = *impl_;
  PHI_CHECK(producer < s.producers.size());  // a caller bug would corrupt another thread's ring
  Producer& p = *s.producers[producer];
  const auto reject = [&] {
    p.rejected.store(p.rejected.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return false;
  };
  // A failed writer still queues: the proxy stops admitting requests while !healthy(), but one
  // admitted just before the failure, and each 503 refusal, must still leave its record. The ring is
  // preallocated, so queuing while failed is bounded by it; when it is full the record is refused.
  if (s.stopped.load(std::memory_order_relaxed)) return reject();
  if (line.size() > s.max_record || std::memchr(line.data(), '\n', line.size())) return reject();
  const auto wake_writer = [&] {
    p.since_wake = 0;
    {
      std::lock_guard lk(s.mu);
      s.wake = true;
    }
    s.wake_cv.notify_one();
  };
  // A record waits behind those spilled before it (order is the log's order).
  if (!(p.spill.empty() || p.unspill()) || !p.ring.push(line)) {
    if (s.opt.overflow == WriterOptions::Overflow::FailClosed) {
      p.overflow.store(true, std::memory_order_relaxed);
      wake_writer();
      if (p.spill_bytes + line.size() > s.opt.queue_bytes_per_producer) return reject();
      p.spill.emplace_back(line);
      p.spill_bytes += line.size();
      p.spilling.store(true, std::memory_order_relaxed);
      return true;
    }
    wake_writer();
    std::unique_lock lk(s.space_mu);
    while (!p.ring.push(line)) {
      if (s.failed.load(std::memory_order_relaxed) || s.stopped.load(std::memory_order_relaxed))
        return reject();
      s.space_cv.wait_for(lk, s.opt.flush_interval);
    }
    return true;
  }
  // Wake the writer once per batch rather than per record: one mutex round trip per batch_records.
  if (++p.since_wake >= s.opt.batch_records) wake_writer();
  return true;
}

bool Writer::healthy() const noexcept {
  const Impl& s = *impl_;
  if (s.failed.load(std::memory_order_relaxed) || s.stopped.load(std::memory_order_relaxed)) return false;
  return std::none_of(s.producers.begin(), s.producers.end(), [](const auto& p) {
    return p->overflow.load(std::memory_order_relaxed) || p->spilling.load(std::memory_order_relaxed);
  });
}

bool Writer::pump(unsigned producer, bool wait) {
  Impl& s = *impl_;
  PHI_CHECK(producer < s.producers.size());
  Producer& p = *s.producers[producer];
  if (p.spill.empty()) return true;
  const auto wake_writer = [&] {
    {
      std::lock_guard lk(s.mu);
      s.wake = true;
    }
    s.wake_cv.notify_one();
  };
  if (!wait) {
    const bool empty = p.unspill();
    wake_writer();
    return empty;
  }
  const auto over = [&] {
    return s.failed.load(std::memory_order_relaxed) || s.stopped.load(std::memory_order_relaxed);
  };
  bool empty = p.unspill();
  while (!empty && !over()) {
    std::uint64_t gen = 0;
    {
      std::lock_guard lk(s.space_mu);
      gen = s.space_gen;
    }
    // Not holding space_mu while wake_writer() takes mu; the generation catches a drain that
    // happens before the wait begins (flush_interval may be long).
    wake_writer();
    {
      std::unique_lock lk(s.space_mu);
      s.space_cv.wait_for(lk, s.opt.flush_interval, [&] { return s.space_gen != gen || over(); });
    }
    empty = p.unspill();
  }
  return empty;
}

std::optional<core::Error> Writer::rotate_key(std::string active_key, KeyRing keys) {
  if (!keys.find(active_key))
    return config_error("audit key file " + keys.path_for(active_key) + ": not found");
  Impl& s = *impl_;
  {
    std::lock_guard lk(s.mu);
    if (s.stop_requested || s.abandon) return core::Error::internal("audit writer stopped");
    s.rotation_requested.emplace(std::move(active_key), std::move(keys));
  }
  s.wake_cv.notify_one();
  return std::nullopt;
}

bool Writer::flush() {
  Impl& s = *impl_;
  std::unique_lock lk(s.mu);
  if (s.stop_requested || s.abandon || s.exited) return false;
  const std::uint64_t target = ++s.flush_requested;
  s.wake_cv.notify_one();
  s.done_cv.wait(lk, [&] { return s.flush_done >= target || s.exited; });
  return s.flush_done >= target && s.last_ok;
}

bool Writer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lk(s.mu);
    if (s.stop_requested || s.abandon) return s.last_ok && !s.abandon;
    s.stop_requested = true;
  }
  s.stopped.store(true);
  s.wake_cv.notify_one();
  { std::lock_guard lk(s.space_mu); }
  s.space_cv.notify_all();
  if (s.thread.joinable()) s.thread.join();
  std::lock_guard lk(s.mu);
  if (!s.last_ok) PHI_LOG_ERROR("audit: stopped with records not written (disk failing)");
  return s.last_ok;
}

Writer::Stats Writer::stats() const {
  const Impl& s = *impl_;
  Stats st;
  st.records_written = s.records_written.load(std::memory_order_relaxed);
  st.frames_written = s.frames_written.load(std::memory_order_relaxed);
  st.bytes_written = s.bytes_written.load(std::memory_order_relaxed);
  st.segments_sealed = s.segments_sealed.load(std::memory_order_relaxed);
  st.write_errors = s.write_errors.load(std::memory_order_relaxed);
  st.segment_seq = s.segment_seq.load(std::memory_order_relaxed);
  st.chain_tamper_events = s.tamper_events.load(std::memory_order_relaxed);
  st.failed = s.failed.load(std::memory_order_relaxed);
  for (const auto& p : s.producers) {
    st.rejected += p->rejected.load(std::memory_order_relaxed);
    st.overflow = st.overflow || p->overflow.load(std::memory_order_relaxed);
  }
  return st;
}

void Writer::hold_for_test(bool held) {
  Impl& s = *impl_;
  {
    std::lock_guard lk(s.mu);
    s.held = held;
  }
  s.wake_cv.notify_one();
}

void Writer::fail_writes_for_test(int err) noexcept {
  impl_->fail_errno.store(err);
}

void Writer::abandon_for_test() {
  Impl& s = *impl_;
  {
    std::lock_guard lk(s.mu);
    if (s.stop_requested || s.abandon) return;
    s.abandon = true;
  }
  s.stopped.store(true);
  s.wake_cv.notify_one();
  if (s.thread.joinable()) s.thread.join();
}

}  // namespace phigate::audit
