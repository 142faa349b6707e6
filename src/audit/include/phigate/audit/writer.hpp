#pragma once
// The audit writer: workers hand JSON-line records to per-producer lock-free byte rings; one writer
// thread batches them into AES-256-GCM frames, appends them to the active segment and fsyncs.
// File format and guarantees: src/audit/README.md.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/audit/key_ring.hpp"
#include "phigate/core/result.hpp"

namespace phigate::audit {

struct WriterOptions {
  enum class Overflow : std::uint8_t {
    FailClosed,  // a full queue refuses the record: submit() returns false, the proxy answers 503
    Block,       // a full queue makes submit() wait for space (the worker thread blocks)
  };

  std::string dir;          // segments; created 0700, looser permissions are tightened to 0700
  std::string archive_dir;  // optional: sealed segments are moved here
  std::string active_key;   // key id used for new segments
  std::uint64_t segment_max_bytes = 64ull << 20;
  std::chrono::seconds segment_max_age{3600};
  std::chrono::milliseconds flush_interval{100};
  std::size_t batch_records = 512;                    // records per frame; also wakes the writer early
  std::size_t queue_bytes_per_producer = 4ull << 20;  // ring size; a record may use at most 1/4 of it
  Overflow overflow = Overflow::FailClosed;
  /// Time source for segment headers, names and age rotation, called on the writer thread (must be
  /// thread-safe). Empty: system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock_for_test;
};

/// Owns the writer thread and the active segment. Create with start(), end with stop().
class Writer {
 public:
  struct Stats {
    std::uint64_t records_written = 0;  // durable (fsynced)
    std::uint64_t frames_written = 0;   // durable, seal frames included
    std::uint64_t bytes_written = 0;    // durable, headers included
    std::uint64_t segments_sealed = 0;
    std::uint64_t write_errors = 0;         // failed write/fsync/open/rename calls
    std::uint64_t rejected = 0;             // submit() returned false
    std::uint64_t segment_seq = 0;          // sequence number of the active segment
    std::uint64_t chain_tamper_events = 0;  // found at start: the chain end disagrees with the state file
    bool failed = false;                    // the disk refused a write; retried every flush_interval
    bool overflow = false;                  // a queue was full since the writer last drained it
  };

  /// Checks the options, creates `dir` (and `archive_dir`), recovers the chain from the newest segment
  /// there (a crashed `.open` one is renamed `.seg` and its last good frame recorded in the next header),
  /// checks it against the state file `dir/audit.state` (a disagreement is a tamper event: logged,
  /// counted in `chain_tamper_events`, written as frame 1 of the new segment), saves the state, opens
  /// a new segment and starts the thread. `producers`: number of submitting threads. Errors:
  /// ErrorKind::Config (bad options; missing active key, naming its file) or Internal (I/O, naming the path).
  static core::Result<std::unique_ptr<Writer>> start(WriterOptions options, KeyRing keys, unsigned producers);

  ~Writer();  // stop()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Queues one record (a single JSON line without '\n'). Only thread `producer` may call it with that
  /// index (single producer per ring); never allocates. Returns false, counting `rejected`, when the
  /// record is not accepted: writer stopped, a record containing '\n' or over the size limit, or
  /// (FailClosed) a full queue. While the disk fails records are still queued (written on recovery)
  /// until the queue is full. With Block it waits for space instead, unless the writer fails.
  /// An accepted record is written unless the process dies before the next flush.
  /// FailClosed: a record the full queue cannot take waits in the producer's spill (in order, at most
  /// as many bytes as the queue holds) and healthy() is false until pump() or a later submit() has
  /// moved it into the queue: the record of a request already answered is not lost because the
  /// writer fell behind. Only when the spill is full too is the record refused (counted).
  bool submit(unsigned producer, std::string_view json_line);
  /// The longest record submit() takes: min(queue bytes per producer / 4, 1 MiB). A caller with a
  /// longer one submits a shorter stand-in instead (proxy: WorkerImpl::audit_submit).
  std::size_t max_record() const noexcept;

  /// Moves `producer`'s spilled records into its queue as space allows; cheap when nothing is
  /// spilled. The producer's thread, regularly (each worker tick) and before it exits. With `wait`,
  /// blocks until the spill is empty or the writer is failed or stopped; returns whether it is empty.
  bool pump(unsigned producer, bool wait = false);

  /// False while the disk fails, after a queue overflowed (until drained) and after stop():
  /// the proxy then fails closed. Any thread.
  bool healthy() const noexcept;

  /// Seals the active segment and continues in a new one encrypted with `active_key` from `keys` (the
  /// ring used from now on; the same id just rotates). Asynchronous: records queued before the writer
  /// takes the request go to the old segment (flush() waits for it); stop() drops a pending one.
  /// Any thread. Error (Config, naming the key file) if the key is not in `keys`.
  std::optional<core::Error> rotate_key(std::string active_key, KeyRing keys);

  /// Waits until every record accepted before the call (from threads that happen-before it) is durable.
  /// Returns false if the writer is failed or stopped. Control thread or tests; blocks.
  bool flush();

  /// Drains the queues, writes, seals the active segment and joins the thread. Idempotent. Call after
  /// the producers have stopped submitting. Returns false if something accepted could not be written
  /// (logged). Control thread.
  bool stop();

  Stats stats() const;  // any thread; counters are relaxed snapshots

  /// Test hook: every later write, fsync, open or rename fails with `err` (ENOSPC, EIO, ...); 0 heals.
  void fail_writes_for_test(int err) noexcept;
  /// Test hook: while held, the thread takes nothing from the rings (as a writer that has not been
  /// scheduled yet); flush() waits for the release, stop() ends the hold. Makes a full queue reachable on
  /// demand.
  void hold_for_test(bool held);
  /// Test hook: stops the thread like a SIGKILL after the last flush: nothing else is written or sealed.
  void abandon_for_test();

 private:
  struct Impl;
  explicit Writer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace phigate::audit
