#include "phigate/audit/writer.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <set>
#include <sstream>
#include <thread>

#include "audit_test_support.hpp"

namespace phigate::audit {
namespace {

using namespace testing;
using K = Finding::Kind;

class WriterTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp.path("log"); }
  std::vector<std::string> decrypted() const {
    std::ostringstream out;
    const VerifyReport r = decrypt(keys, {dir()}, {}, out);
    EXPECT_TRUE(r.ok()) << describe(r);
    std::vector<std::string> lines;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }

  TempDir tmp;
  KeyRing keys = ring_of({make_key("a", 1), make_key("b", 2)});
};

TEST_F(WriterTest, TwoProducersAllRecordsArrive) {
  WriterOptions o = test_options(dir());
  o.batch_records = 64;
  o.queue_bytes_per_producer = 64 << 10;  // small: the writer must keep up
  o.overflow = WriterOptions::Overflow::Block;
  auto w = Writer::start(o, keys, 2);
  ASSERT_TRUE(w) << w.error().context;
  constexpr int kPer = 5000;
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPer; ++i) ASSERT_TRUE((*w)->submit(p, record(static_cast<int>(p) * kPer + i)));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE((*w)->stop());
  const Writer::Stats st = (*w)->stats();
  EXPECT_EQ(st.records_written, 2u * kPer);
  EXPECT_EQ(st.segments_sealed, 1u);
  EXPECT_EQ(st.rejected, 0u);
  const auto lines = decrypted();
  EXPECT_EQ(lines.size(), 2u * kPer);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()).size(), 2u * kPer);
  // Per producer, order is kept.
  std::size_t last0 = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("\"n\":" + std::to_string(kPer - 1) + "}") != std::string::npos) last0 = i;
  }
  EXPECT_GE(last0, static_cast<std::size_t>(kPer - 1));
  // verify checks the seal frame's record count against the frames (Tampered on mismatch).
  EXPECT_EQ(verify(keys, {dir()}).records, 2u * kPer);
}

TEST_F(WriterTest, RotatesBySize) {
  WriterOptions o = test_options(dir());
  o.segment_max_bytes = 4096;
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*w)->submit(0, record(i)));
    if (i % 10 == 9) {
      ASSERT_TRUE((*w)->flush());
    }
  }
  ASSERT_TRUE((*w)->stop());
  const auto files = segment_files(dir());
  EXPECT_GE(files.size(), 4u);
  for (const auto& f : files) EXPECT_LT(fs::file_size(f), 4096u + 2000u) << f;
  EXPECT_EQ((*w)->stats().segments_sealed, files.size());
  EXPECT_EQ(decrypted().size(), 200u);
}

TEST_F(WriterTest, RotatesByAgeWithInjectedClock) {
  auto now = std::make_shared<std::atomic<std::int64_t>>(1'800'000'000);
  WriterOptions o = test_options(dir());
  o.segment_max_age = std::chrono::seconds(60);
  o.clock_for_test = [now] {
    return std::chrono::system_clock::time_point(std::chrono::seconds(now->load()));
  };
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(1)));
  ASSERT_TRUE((*w)->flush());
  EXPECT_EQ((*w)->stats().segment_seq, 1u);
  now->fetch_add(61);
  ASSERT_TRUE((*w)->submit(0, record(2)));
  ASSERT_TRUE((*w)->flush());
  EXPECT_EQ((*w)->stats().segment_seq, 2u);
  EXPECT_EQ((*w)->stats().segments_sealed, 1u);
  now->fetch_add(3600);  // an idle (empty) segment is not rotated
  ASSERT_TRUE((*w)->flush());
  EXPECT_EQ((*w)->stats().segment_seq, 2u);
  ASSERT_TRUE((*w)->stop());
  EXPECT_EQ(decrypted().size(), 2u);
}

TEST_F(WriterTest, FullQueueRefusesInsteadOfDropping) {
  WriterOptions o = test_options(dir());
  o.queue_bytes_per_producer = 64 << 10;
  o.batch_records = 1'000'000;  // no early wake-up by count
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  // A full ring wakes the writer: held, it cannot drain while the producer fills the ring and the
  // spill (on a loaded machine it otherwise kept up, and the queue never filled).
  (*w)->hold_for_test(true);
  int accepted = 0;
  while (accepted < 100000 && (*w)->submit(0, record(accepted))) ++accepted;
  ASSERT_LT(accepted, 100000);
  EXPECT_GT(accepted, 100);
  EXPECT_EQ((*w)->stats().rejected, 1u);  // the ring and then the spill were full
  (*w)->hold_for_test(false);
  ASSERT_TRUE((*w)->flush());
  EXPECT_FALSE((*w)->healthy());  // the ring is drained, the spill not yet queued
  EXPECT_TRUE((*w)->pump(0, true));
  ASSERT_TRUE((*w)->flush());
  EXPECT_TRUE((*w)->healthy());  // drained: the overflow is over
  EXPECT_FALSE((*w)->stats().overflow);
  ASSERT_TRUE((*w)->stop());
  const auto lines = decrypted();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(accepted));
  EXPECT_EQ(lines.back(), record(accepted - 1));
}

TEST_F(WriterTest, DiskFailureFailsClosedKeepsAcceptedRecordsAndRecovers) {
  WriterOptions o = test_options(dir());
  o.batch_records = 1000;  // no early wake-up: the first write happens in flush(), with the failure on
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*w)->submit(0, record(i)));
  (*w)->fail_writes_for_test(ENOSPC);
  EXPECT_FALSE((*w)->flush());  // the 10 records are encrypted but not on disk
  EXPECT_FALSE((*w)->healthy());
  EXPECT_TRUE((*w)->stats().failed);
  EXPECT_GE((*w)->stats().write_errors, 1u);
  EXPECT_EQ((*w)->stats().records_written, 0u);
  // Still queued while failed (the proxy answers 503 from healthy(), but a request admitted just
  // before the failure, and each refusal, leaves its record): kept in the ring until recovery.
  EXPECT_TRUE((*w)->submit(0, record(99)));
  EXPECT_EQ((*w)->stats().rejected, 0u);
  EXPECT_FALSE((*w)->flush());  // still failing: retried, not dropped
  EXPECT_FALSE((*w)->healthy());
  (*w)->fail_writes_for_test(0);
  EXPECT_TRUE((*w)->flush());
  EXPECT_TRUE((*w)->healthy());
  EXPECT_EQ((*w)->stats().records_written, 11u);
  for (int i = 10; i < 15; ++i) ASSERT_TRUE((*w)->submit(0, record(i)));
  ASSERT_TRUE((*w)->stop());
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(record(i));
  expected.push_back(record(99));
  for (int i = 10; i < 15; ++i) expected.push_back(record(i));
  EXPECT_EQ(decrypted(), expected);
}

TEST_F(WriterTest, DiskFailureQueuesUntilTheRingIsFullThenRefuses) {
  WriterOptions o = test_options(dir());
  o.queue_bytes_per_producer = 64 << 10;
  o.batch_records = 1'000'000;
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  (*w)->fail_writes_for_test(ENOSPC);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  EXPECT_FALSE((*w)->flush());
  int accepted = 1;
  std::size_t bytes = record(0).size();
  while (accepted < 100000 && (*w)->submit(0, record(accepted))) bytes += record(accepted++).size();
  ASSERT_LT(accepted, 100000);  // bounded by the ring and the spill (as many bytes again), not by memory
  EXPECT_GT(bytes, o.queue_bytes_per_producer);  // the spill took what the ring could not
  EXPECT_LE(bytes, 2 * o.queue_bytes_per_producer);
  EXPECT_EQ((*w)->stats().rejected, 1u);
  EXPECT_FALSE((*w)->healthy());
  (*w)->fail_writes_for_test(0);
  EXPECT_TRUE((*w)->flush());        // the writer recovers and writes the ring
  EXPECT_TRUE((*w)->pump(0, true));  // the producer moves its spill in as the writer drains
  EXPECT_TRUE((*w)->flush());
  EXPECT_TRUE((*w)->healthy());
  ASSERT_TRUE((*w)->stop());
  const auto got = decrypted();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(accepted));
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], record(i)) << i;
}

// The writer falling behind (here: stalled by a failing disk) must not lose the record of a request
// already answered: records the full ring cannot take wait in the producer's spill, in order, the
// writer reports unhealthy (the proxy admits nothing new) until they are queued, and a later
// submit() queues behind them, never ahead.
TEST_F(WriterTest, FullQueueSpillsInOrderAndLaterRecordsQueueBehind) {
  WriterOptions o = test_options(dir());
  o.queue_bytes_per_producer = 64 << 10;
  o.batch_records = 1'000'000;
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  (*w)->fail_writes_for_test(ENOSPC);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  EXPECT_FALSE((*w)->flush());  // the writer has failed: it drains nothing until the disk recovers
  std::size_t bytes = record(0).size();
  int n = 1;
  while (bytes < o.queue_bytes_per_producer * 3 / 2) {
    ASSERT_TRUE((*w)->submit(0, record(n))) << n;
    bytes += record(n++).size();
  }
  EXPECT_EQ((*w)->stats().rejected, 0u);
  EXPECT_FALSE((*w)->healthy());
  EXPECT_FALSE((*w)->pump(0));  // the ring is still full
  (*w)->fail_writes_for_test(0);
  EXPECT_TRUE((*w)->flush());  // the ring is written; the spill still waits for its producer
  EXPECT_FALSE((*w)->healthy());
  ASSERT_TRUE((*w)->submit(0, record(n++)));  // moves the spill in first, then queues behind it
  EXPECT_TRUE((*w)->pump(0, true));
  EXPECT_TRUE((*w)->flush());
  EXPECT_TRUE((*w)->healthy());
  ASSERT_TRUE((*w)->stop());
  const auto got = decrypted();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], record(i)) << i;
}

TEST_F(WriterTest, DiskFailureDuringRotationRecovers) {
  WriterOptions o = test_options(dir());
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  ASSERT_TRUE((*w)->flush());
  (*w)->fail_writes_for_test(EIO);
  ASSERT_FALSE((*w)->rotate_key("b", keys));
  EXPECT_FALSE((*w)->flush());
  (*w)->fail_writes_for_test(0);
  EXPECT_TRUE((*w)->flush());
  ASSERT_TRUE((*w)->submit(0, record(1)));
  ASSERT_TRUE((*w)->stop());
  EXPECT_EQ(segment_files(dir()).size(), 2u);
  EXPECT_EQ(decrypted(), (std::vector<std::string>{record(0), record(1)}));
}

TEST_F(WriterTest, StopWhileFailingReportsLoss) {
  auto w = Writer::start(test_options(dir()), keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  (*w)->fail_writes_for_test(EROFS);
  EXPECT_FALSE((*w)->stop());
  EXPECT_FALSE((*w)->submit(0, record(1)));
}

TEST_F(WriterTest, KeyRotationStartsSegmentWithNewKey) {
  auto w = Writer::start(test_options(dir(), "a"), keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  ASSERT_FALSE((*w)->rotate_key("b", keys));
  ASSERT_TRUE((*w)->flush());  // rotation applied: later records go to the new segment
  ASSERT_TRUE((*w)->submit(0, record(1)));
  auto missing = (*w)->rotate_key("c", keys);
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->context.find("c.key"), std::string::npos);
  ASSERT_TRUE((*w)->stop());
  const auto files = segment_files(dir());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(files[0]).substr(132, 1), "a");
  EXPECT_EQ(read_file(files[1]).substr(132, 1), "b");
  EXPECT_EQ(decrypted().size(), 2u);  // both keys in the ring: verifies clean
  const VerifyReport only_a = verify(ring_of({make_key("a", 1)}), {dir()});
  // Segment 2 and the state file (authenticated with the key active at the last seal).
  EXPECT_EQ(count_errors(only_a, K::UnknownKey), 2u) << describe(only_a);
  EXPECT_EQ(only_a.findings.size(), 2u) << describe(only_a);
  EXPECT_EQ(only_a.records, 1u);
}

TEST_F(WriterTest, RestartAfterCrashChainsToLastGoodFrame) {
  {
    auto w = Writer::start(test_options(dir()), keys, 1);
    ASSERT_TRUE(w);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE((*w)->submit(0, record(i)));
    ASSERT_TRUE((*w)->flush());  // frames of 4 + 4 records
    ASSERT_TRUE((*w)->submit(0, record(8)));
    (*w)->abandon_for_test();  // like SIGKILL: record 8 was never flushed, no seal
  }
  auto files = segment_files(dir());
  ASSERT_EQ(files.size(), 1u);
  ASSERT_TRUE(files[0].ends_with(".open"));
  {
    const VerifyReport r = verify(keys, {dir()});  // a crashed final segment: clean truncation
    EXPECT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(count_infos(r, K::Truncated), 1u);
  }
  std::string s = read_file(files[0]);
  write_file(files[0], s.substr(0, layout_of(s).frames[1].first + 50));  // torn second frame
  auto w = Writer::start(test_options(dir()), keys, 1);
  ASSERT_TRUE(w) << w.error().context;
  ASSERT_TRUE((*w)->submit(0, record(100)));
  ASSERT_TRUE((*w)->stop());
  files = segment_files(dir());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files[0].ends_with(".seg"));
  const std::string h = read_file(files[1]);
  EXPECT_EQ(static_cast<int>(h[13]), 2);  // previous segment crashed ...
  EXPECT_EQ(h[83], 1);                    // ... after frame 1
  const VerifyReport r = verify(keys, {dir()});
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(count_infos(r, K::Recovered), 1u) << describe(r);
  EXPECT_EQ(r.records, 5u);
  // Cutting the recovered segment further is now detectable: the next header says frame 1.
  s = read_file(files[0]);
  write_file(files[0], s.substr(0, layout_of(s).frames[0].first + 10));
  EXPECT_EQ(count_errors(verify(keys, {dir()}), K::Truncated), 1u);
}

TEST_F(WriterTest, RestartAfterSealContinuesChain) {
  write_log(dir(), keys, 1, 3);
  write_log(dir(), keys, 1, 3);
  const auto files = segment_files(dir());
  ASSERT_EQ(files.size(), 2u);
  const VerifyReport r = verify(keys, {dir()});
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.findings.empty()) << describe(r);
}

TEST_F(WriterTest, CrashBeforeHeaderCompleteIsCleanedUp) {
  write_log(dir(), keys, 1, 3);
  write_file(dir() + "/audit-000000000002-20261127T080000Z.open", "PHGAU");
  EXPECT_TRUE(verify(keys, {dir()}).ok());
  auto w = Writer::start(test_options(dir()), keys, 1);
  ASSERT_TRUE(w) << w.error().context;
  ASSERT_TRUE((*w)->stop());
  const VerifyReport r = verify(keys, {dir()});
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(segment_files(dir()).size(), 2u);
}

TEST_F(WriterTest, ArchiveDirReceivesSealedSegments) {
  WriterOptions o = test_options(dir());
  o.archive_dir = tmp.path("archive");
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  ASSERT_FALSE((*w)->rotate_key("a", keys));
  ASSERT_TRUE((*w)->submit(0, record(1)));
  ASSERT_TRUE((*w)->flush());
  EXPECT_EQ(segment_files(tmp.path("archive")).size(), 1u);
  EXPECT_EQ(segment_files(dir()).size(), 1u);  // the active one
  ASSERT_TRUE((*w)->stop());
  EXPECT_EQ(segment_files(tmp.path("archive")).size(), 2u);
  EXPECT_TRUE(verify(keys, {dir(), tmp.path("archive")}).ok());
  // A restart finds the chain's end in the archive.
  auto again = Writer::start(o, keys, 1);
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->submit(0, record(2)));
  ASSERT_TRUE((*again)->stop());
  const VerifyReport r = verify(keys, {dir(), tmp.path("archive")});
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.findings.empty()) << describe(r);
}

TEST_F(WriterTest, FilesArePrivate) {
  fs::create_directories(dir());
  fs::permissions(dir(), fs::perms::all);  // 0777: tightened, not refused
  write_log(dir(), keys, 1, 1);
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const auto files = segment_files(dir());
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(WriterTest, RefusesBadRecordsAndBadOptions) {
  auto w = Writer::start(test_options(dir()), keys, 1);
  ASSERT_TRUE(w);
  EXPECT_FALSE((*w)->submit(0, "{\"a\":1}\n{\"b\":2}"));
  EXPECT_FALSE((*w)->submit(0, std::string(1 << 20, 'x')));  // over a quarter of the ring
  EXPECT_EQ((*w)->stats().rejected, 2u);
  ASSERT_TRUE((*w)->stop());

  auto missing = Writer::start(test_options(tmp.path("x"), "nokey"), keys, 1);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().context.find("nokey.key"), std::string::npos);
  write_file(tmp.path("file"), "");
  EXPECT_FALSE(Writer::start(test_options(tmp.path("file")), keys, 1));
  EXPECT_FALSE(Writer::start(test_options(dir()), keys, 0));
}

// --- The chain across restarts, checked against the state file (security issue, item 9) ----------
// Each scenario: what the writer records at start (an event frame, frame 1 of its new segment), the
// `chain_tamper_events` stat, and the verdict of verify on the directory.

class ChainRestart : public WriterTest {
 protected:
  struct Restart {
    Writer::Stats stats;      // right after start
    std::string new_segment;  // bytes of the segment it opened
  };
  // Starts a writer on dir(), writes one record, stops it.
  Restart restart() {
    Restart r;
    auto w = Writer::start(test_options(dir()), keys, 1);
    EXPECT_TRUE(w) << (w ? "" : w.error().context);
    if (!w) return r;
    r.stats = (*w)->stats();
    EXPECT_TRUE((*w)->submit(0, record(500)));
    EXPECT_TRUE((*w)->stop());
    for (const auto& f : segment_files(dir())) {
      if (f.find("/audit-" + std::string(12 - std::to_string(r.stats.segment_seq).size(), '0') +
                 std::to_string(r.stats.segment_seq) + "-") != std::string::npos) {
        r.new_segment = read_file(f);
      }
    }
    return r;
  }
  // The tamper event frame the writer put first in its new segment, as verify reports it.
  static std::string event_of(const VerifyReport& r) {
    for (const Finding& f : r.findings) {
      if (f.kind == K::TamperEvent) return f.detail;
    }
    return "";
  }
  std::vector<std::string> files() const { return segment_files(dir()); }
};

TEST_F(ChainRestart, NormalRestartIsCleanAndStateNamesTheLastSeal) {
  write_log(dir(), keys, 2, 10);
  const std::string state = read_file(state_file(dir()));
  const std::string last = read_file(files()[1]);
  EXPECT_NE(state.find("\nend sealed\nsegment 2\n"), std::string::npos) << state;
  EXPECT_NE(state.find("\nid " + hex_of(last, 16, 16) + "\n"), std::string::npos) << state;
  EXPECT_NE(state.find("\nframe 4\n"), std::string::npos) << state;  // 4 + 4 + 2 records, seal
  EXPECT_NE(state.find("\ntag " + hex_of(last, last.size() - 16, 16) + "\n"), std::string::npos) << state;
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 0u);
  EXPECT_EQ(r.stats.segment_seq, 3u);
  EXPECT_EQ(frame_type(r.new_segment, 0), 1);  // records, no event
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_TRUE(v.ok()) << describe(v);
  EXPECT_TRUE(v.findings.empty()) << describe(v);
  EXPECT_NE(read_file(state_file(dir())).find("\nsegment 3\n"), std::string::npos);
}

TEST_F(ChainRestart, CrashRestartStaysRecoveredInfo) {
  write_log(dir(), keys, 1, 3);
  {
    auto w = Writer::start(test_options(dir()), keys, 1);
    ASSERT_TRUE(w);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*w)->submit(0, record(i)));
    ASSERT_TRUE((*w)->flush());
    (*w)->abandon_for_test();  // SIGKILL: segment 2 stays .open, unsealed
  }
  {
    auto w = Writer::start(test_options(dir()), keys, 1);
    ASSERT_TRUE(w);
    // Saved at start after recovery: the end the new segment chains to (frames of 4 + 2 records).
    EXPECT_NE(read_file(state_file(dir())).find("\nend crashed\nsegment 2\n"), std::string::npos);
    EXPECT_NE(read_file(state_file(dir())).find("\nframe 2\n"), std::string::npos);
    (*w)->abandon_for_test();  // and crash again, in segment 3 before its first record
  }
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 0u);
  EXPECT_EQ(frame_type(r.new_segment, 0), 1);
  EXPECT_EQ(static_cast<int>(r.new_segment[13]), 2);  // chains to segment 3 as crashed
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_TRUE(v.ok()) << describe(v);
  EXPECT_EQ(count_infos(v, K::Recovered), 2u) << describe(v);
  EXPECT_EQ(event_of(v), "");
  EXPECT_NE(read_file(state_file(dir())).find("\nend sealed\nsegment 4\n"), std::string::npos);
}

TEST_F(ChainRestart, SealedNewestSegmentTruncatedIsTamper) {
  const std::string pristine = tmp.path("pristine");
  write_log(pristine, keys, 2, 10);
  const std::string seg2 = read_file(segment_files(pristine)[1]);
  const Layout l = layout_of(seg2);
  // At a frame boundary (looks exactly like a crash before the seal) and inside a frame.
  for (const std::size_t cut : {l.frames[3].first, l.frames[1].first + 30}) {
    SCOPED_TRACE(cut);
    fs::remove_all(dir());
    fs::copy(pristine, dir());
    write_file(files()[1], seg2.substr(0, cut));
    const Restart r = restart();
    EXPECT_EQ(r.stats.chain_tamper_events, 1u);
    EXPECT_EQ(r.stats.segment_seq, 3u);
    ASSERT_FALSE(r.new_segment.empty());
    EXPECT_EQ(frame_type(r.new_segment, 0), 3);         // the event, authenticated as frame 1
    EXPECT_EQ(static_cast<int>(r.new_segment[13]), 1);  // chains to the seal the state recorded
    const VerifyReport v = verify(keys, {dir()});
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(count_errors(v, K::TamperEvent), 1u) << describe(v);
    EXPECT_NE(event_of(v).find("sealed_segment_altered"), std::string::npos) << describe(v);
    EXPECT_GE(count_errors(v, K::Truncated), 1u) << describe(v);
    EXPECT_EQ(count_infos(v, K::Recovered), 0u) << describe(v);
  }
}

TEST_F(ChainRestart, SealedNewestSegmentAlteredIsTamper) {
  write_log(dir(), keys, 2, 10);
  std::string seg2 = read_file(files()[1]);
  seg2[layout_of(seg2).frames[1].first + 40] ^= 0x01;  // frame 2's ciphertext; the seal stays intact
  write_file(files()[1], seg2);
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(frame_type(r.new_segment, 0), 3);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_FALSE(v.ok());
  EXPECT_NE(event_of(v).find("sealed_segment_altered"), std::string::npos) << describe(v);
  EXPECT_EQ(count_errors(v, K::Tampered), 1u) << describe(v);
}

TEST_F(ChainRestart, SealedNewestSegmentDeletedIsTamperAndItsNumberIsNotReused) {
  write_log(dir(), keys, 2, 10);
  fs::remove(files()[1]);
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(r.stats.segment_seq, 3u);  // not 2 again
  EXPECT_EQ(frame_type(r.new_segment, 0), 3);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_FALSE(v.ok());
  EXPECT_NE(event_of(v).find("sealed_segment_missing"), std::string::npos) << describe(v);
  EXPECT_EQ(count_errors(v, K::Missing), 1u) << describe(v);  // the new segment chains to segment 2
}

TEST_F(ChainRestart, AllSegmentsDeletedIsTamper) {
  write_log(dir(), keys, 2, 10);
  for (const auto& f : files()) fs::remove(f);
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(r.stats.segment_seq, 3u);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_NE(event_of(v).find("sealed_segment_missing"), std::string::npos) << describe(v);
}

TEST_F(ChainRestart, NewestReplacedByOlderCopyIsSequenceRollback) {
  write_log(dir(), keys, 2, 10);
  write_file(files()[1], read_file(files()[0]));  // segment 2's file now holds segment 1
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(r.stats.segment_seq, 3u);
  EXPECT_EQ(frame_type(r.new_segment, 0), 3);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_FALSE(v.ok());
  EXPECT_NE(event_of(v).find("sequence_rollback"), std::string::npos) << describe(v);
  EXPECT_EQ(count_errors(v, K::Missing), 1u) << describe(v);  // segment 2 is gone from the chain
}

TEST_F(ChainRestart, StateFileDeletedWhileSegmentsRemainIsTamper) {
  write_log(dir(), keys, 2, 10);
  fs::remove(state_file(dir()));
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(frame_type(r.new_segment, 0), 3);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(count_errors(v, K::TamperEvent), 1u) << describe(v);
  EXPECT_NE(event_of(v).find("state_missing"), std::string::npos) << describe(v);
  // The writer saved a new state: the next restart is clean again, the event stays in the log.
  EXPECT_EQ(restart().stats.chain_tamper_events, 0u);
  EXPECT_EQ(count_errors(verify(keys, {dir()}), K::TamperEvent), 1u);
}

TEST_F(ChainRestart, DeletingNewestSegmentAndStateFileIsTamper) {
  write_log(dir(), keys, 2, 10);
  fs::remove(files()[1]);
  fs::remove(state_file(dir()));
  EXPECT_EQ(restart().stats.chain_tamper_events, 1u);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_NE(event_of(v).find("state_missing"), std::string::npos) << describe(v);
}

TEST_F(ChainRestart, ForgedStateFileIsTamper) {
  write_log(dir(), keys, 2, 10);
  fs::remove(files()[1]);
  // Point the state at segment 1's seal, whose tag anyone can read: the MAC no longer matches.
  const std::string seg1 = read_file(files()[0]);
  std::string state = read_file(state_file(dir()));
  const auto tag_at = state.find("\ntag ") + 5;
  state.replace(tag_at, 32, hex_of(seg1, seg1.size() - 16, 16));
  state.replace(state.find("\nsegment 2\n"), 11, "\nsegment 1\n");
  state.replace(state.find("\nid ") + 4, 32, hex_of(seg1, 16, 16));
  write_file(state_file(dir()), state);
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_NE(event_of(v).find("state_invalid"), std::string::npos) << describe(v);
}

TEST_F(ChainRestart, StateFileRolledBackIsTamper) {
  write_log(dir(), keys, 1, 3);
  const std::string old_state = read_file(state_file(dir()));
  write_log(dir(), keys, 2, 3);  // segments 2 and 3
  write_file(state_file(dir()), old_state);
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 1u);
  EXPECT_EQ(r.stats.segment_seq, 4u);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_NE(event_of(v).find("state_behind"), std::string::npos) << describe(v);
}

TEST_F(ChainRestart, FirstStartWithNothingIsNormal) {
  {
    auto w = Writer::start(test_options(dir()), keys, 1);
    ASSERT_TRUE(w);
    EXPECT_EQ((*w)->stats().chain_tamper_events, 0u);
    // Saved at start, before any seal: a later start then knows that segments must follow it.
    EXPECT_NE(read_file(state_file(dir())).find("\nend none\nsegment 0\n"), std::string::npos);
    (*w)->abandon_for_test();  // a crash in the very first segment is a crash, not tampering
  }
  const Restart r = restart();
  EXPECT_EQ(r.stats.chain_tamper_events, 0u);
  EXPECT_EQ(r.stats.segment_seq, 2u);
  const VerifyReport v = verify(keys, {dir()});
  EXPECT_TRUE(v.ok()) << describe(v);
  EXPECT_EQ(count_infos(v, K::Recovered), 1u) << describe(v);
}

TEST_F(ChainRestart, StateFileIsPrivateAndReplacedAtomically) {
  write_log(dir(), keys, 1, 3);
  struct stat st {};
  ASSERT_EQ(::stat(state_file(dir()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(state_file(dir()) + ".tmp"));
  EXPECT_EQ(read_file(state_file(dir())).rfind("phigate-audit-state 1\nkey a\n", 0), 0u);
}

TEST_F(ChainRestart, StateWriteFailureFailsClosedUntilItWorks) {
  auto w = Writer::start(test_options(dir()), keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, record(0)));
  ASSERT_TRUE((*w)->flush());
  (*w)->fail_writes_for_test(ENOSPC);
  ASSERT_FALSE((*w)->rotate_key("a", keys));
  EXPECT_FALSE((*w)->flush());
  EXPECT_FALSE((*w)->healthy());
  (*w)->fail_writes_for_test(0);
  EXPECT_TRUE((*w)->flush());
  ASSERT_TRUE((*w)->stop());
  EXPECT_NE(read_file(state_file(dir())).find("\nend sealed\nsegment 2\n"), std::string::npos);
  EXPECT_EQ(restart().stats.chain_tamper_events, 0u);
}

}  // namespace
}  // namespace phigate::audit
