// verify/decrypt over real segments, and every kind of tampering (byte edits follow README.md).
#include "phigate/audit/verify.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "audit_test_support.hpp"

namespace phigate::audit {
namespace {

using namespace testing;
using K = Finding::Kind;

class Verify : public ::testing::Test {
 protected:
  void SetUp() override {
    write_log(dir(), keys, 3, 10);  // 3 sealed segments: frames of 4, 4, 2 records + seal
    files = segment_files(dir());
    ASSERT_EQ(files.size(), 3u);
  }
  std::string dir() const { return tmp.path("log"); }
  VerifyReport run() const { return verify(keys, {dir()}); }
  std::string seg(int i) const { return read_file(files[static_cast<std::size_t>(i)]); }
  void put(int i, const std::string& bytes) const { write_file(files[static_cast<std::size_t>(i)], bytes); }
  // Segment i without frame j (0-based), or with frames j and k swapped, or frame j twice.
  std::string frame(int i, int j) const {
    const std::string s = seg(i);
    const auto [off, size] = layout_of(s).frames[static_cast<std::size_t>(j)];
    return s.substr(off, size);
  }

  TempDir tmp;
  KeyRing keys = ring_of({make_key("a", 1)});
  std::vector<std::string> files;
};

TEST_F(Verify, CleanLogVerifies) {
  const VerifyReport r = run();
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(r.findings.empty()) << describe(r);
  EXPECT_EQ(r.records, 30u);
}

TEST_F(Verify, FlippedFrameByteIsTampered) {
  std::string s = seg(1);
  s[layout_of(s).frames[1].first + 40] ^= 0x01;  // inside frame 2's ciphertext
  put(1, s);
  const VerifyReport r = run();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(count_errors(r, K::Tampered), 1u) << describe(r);
  EXPECT_EQ(r.findings[0].segment, 2u);
  EXPECT_EQ(r.findings[0].frame, 2u);
  EXPECT_EQ(r.records, 26u);  // the 4 records of the altered frame are not trusted
}

TEST_F(Verify, FlippedChainTagInFrameHeadIsTampered) {
  std::string s = seg(1);
  s[layout_of(s).frames[2].first + 12] ^= 0x80;  // frame 3's copy of frame 2's tag (authenticated)
  put(1, s);
  EXPECT_EQ(count_errors(run(), K::Tampered), 1u) << describe(run());
}

TEST_F(Verify, FlippedHeaderByteIsTampered) {
  std::string s = seg(1);
  s[44] ^= 0x01;  // created time
  put(1, s);
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Tampered), 1u) << describe(r);
  EXPECT_EQ(r.findings[0].segment, 2u);
  EXPECT_EQ(r.findings[0].frame, 0u);
}

TEST_F(Verify, FlippedPrevLinkInHeaderIsTampered) {
  std::string s = seg(2);
  s[90] ^= 0x01;  // prev_last_tag
  put(2, s);
  EXPECT_GE(count_errors(run(), K::Tampered), 1u);
}

TEST_F(Verify, DroppedFrameIsMissing) {
  std::string s = seg(1);
  const auto [off, size] = layout_of(s).frames[1];
  put(1, s.erase(off, size));
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Missing), 1u) << describe(r);
  EXPECT_EQ(r.findings[0].frame, 2u);
  EXPECT_EQ(r.findings.size(), 1u) << describe(r);
}

TEST_F(Verify, SwappedFramesAreReordered) {
  const std::string s = seg(1);
  const Layout l = layout_of(s);
  const auto [o1, n1] = l.frames[0];
  const auto [o2, n2] = l.frames[1];
  put(1, s.substr(0, o1) + s.substr(o2, n2) + s.substr(o1, n1) + s.substr(o2 + n2));
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Reordered), 1u) << describe(r);
  EXPECT_EQ(count_errors(r, K::Missing), 0u);
  EXPECT_EQ(r.records, 30u);  // reordered frames are still authentic
}

TEST_F(Verify, DuplicatedFrameIsDuplicate) {
  const std::string s = seg(1);
  const auto [off, size] = layout_of(s).frames[1];
  put(1, s.substr(0, off + size) + s.substr(off, size) + s.substr(off + size));
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Duplicate), 1u) << describe(r);
  EXPECT_EQ(r.records, 30u);  // counted once
}

TEST_F(Verify, FrameFromAnotherSegmentIsTampered) {
  std::string s = seg(1);
  const auto [off, size] = layout_of(s).frames[1];
  put(1, s.replace(off, size, frame(0, 1)));  // same frame number, other segment
  EXPECT_EQ(count_errors(run(), K::Tampered), 1u) << describe(run());
}

TEST_F(Verify, BytesAfterSealAreTampered) {
  put(2, seg(2) + "x");
  EXPECT_EQ(count_errors(run(), K::Tampered), 1u) << describe(run());
}

TEST_F(Verify, DroppedMiddleSegmentIsMissing) {
  fs::remove(files[1]);
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Missing), 1u) << describe(r);
  EXPECT_EQ(r.findings[0].segment, 2u);
}

TEST_F(Verify, SwappedSegmentsAreReordered) {
  const std::string a = seg(0), b = seg(1);
  put(0, b);
  put(1, a);
  const VerifyReport r = run();
  EXPECT_EQ(count_errors(r, K::Reordered), 2u) << describe(r);
  EXPECT_FALSE(r.ok());
}

TEST_F(Verify, DuplicatedSegmentIsDuplicate) {
  fs::copy_file(files[1], dir() + "/audit-000000000002-copy.seg");
  const VerifyReport r = run();
  ASSERT_EQ(count_errors(r, K::Duplicate), 1u) << describe(r);
  EXPECT_EQ(r.records, 30u);
}

TEST_F(Verify, SameFileGivenTwiceIsNotDuplicate) {
  EXPECT_TRUE(verify(keys, {dir(), files[1]}).ok());
}

// Without a state file, a truncated final segment looks like a writer crash: info only (the limit
// the state file removes), and verify says that the end was not checked.
TEST_F(Verify, FinalSegmentTruncatedMidFrameWithoutStateIsCleanTruncation) {
  fs::remove(state_file(dir()));
  std::string s = seg(2);
  put(2, s.substr(0, layout_of(s).frames[1].first + 30));
  const VerifyReport r = run();
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(count_infos(r, K::Truncated), 1u) << describe(r);
  EXPECT_EQ(count_infos(r, K::NoState), 1u) << describe(r);
  EXPECT_EQ(r.records, 24u);
}

TEST_F(Verify, FinalSegmentTruncatedAtFrameBoundaryWithoutStateIsCleanTruncation) {
  fs::remove(state_file(dir()));
  std::string s = seg(2);
  put(2, s.substr(0, layout_of(s).frames[3].first));  // seal frame gone
  const VerifyReport r = run();
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(count_infos(r, K::Truncated), 1u);
  EXPECT_EQ(r.records, 30u);
}

// With the state file beside the segments (the default), the same truncations are errors.
TEST_F(Verify, FinalSealedSegmentTruncatedIsAnErrorAgainstState) {
  const std::string s = seg(2);
  const Layout l = layout_of(s);
  for (const std::size_t cut : {l.frames[3].first, l.frames[1].first + 30}) {
    put(2, s.substr(0, cut));
    const VerifyReport r = run();
    EXPECT_FALSE(r.ok()) << describe(r);
    EXPECT_EQ(count_errors(r, K::Truncated), 1u) << describe(r);
    EXPECT_EQ(r.findings.back().file, files[2]) << describe(r);
  }
}

TEST_F(Verify, FinalSealedSegmentDeletedIsMissingAgainstState) {
  fs::remove(files[2]);
  const VerifyReport r = run();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(count_errors(r, K::Missing), 1u) << describe(r);
  EXPECT_NE(describe(r).find("says segment 3 sealed at frame 4"), std::string::npos) << describe(r);
}

TEST_F(Verify, AlteredStateFileIsTampered) {
  std::string st = read_file(state_file(dir()));
  st[st.find("\nframe 4\n") + 7] = '3';
  write_file(state_file(dir()), st);
  const VerifyReport r = run();
  EXPECT_EQ(count_errors(r, K::Tampered), 1u) << describe(r);
  EXPECT_NE(describe(r).find("state file fails authentication"), std::string::npos);
}

// The whole directory, state file included, restored from an older backup: nothing on the host can
// tell, but a copy of the state file kept elsewhere can (README.md: keep one off-host).
TEST_F(Verify, OffHostStateCopyCatchesRollbackOfSegmentsAndState) {
  TempDir backup;
  fs::copy(dir(), backup.path("log"));
  write_log(dir(), keys, 1, 5);  // segment 4
  fs::copy_file(state_file(dir()), backup.path("offhost.state"));
  fs::remove_all(dir());
  fs::copy(backup.path("log"), dir());  // segments 1..3 and their state
  EXPECT_TRUE(run().ok()) << describe(run());
  const VerifyReport r = verify(keys, {dir()}, VerifyOptions{backup.path("offhost.state")});
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(count_errors(r, K::Missing), 1u) << describe(r);
  EXPECT_EQ(r.findings.back().segment, 4u);
  // An older off-host copy is fine: the chain went on after it.
  TempDir older;
  fs::copy_file(state_file(dir()), older.path("s"));
  write_log(dir(), keys, 1, 5);
  EXPECT_TRUE(verify(keys, {dir()}, VerifyOptions{older.path("s")}).ok());
}

// A log rebuilt from scratch (segments 1..3 again, same key) is not the one the state recorded.
TEST_F(Verify, StateOfAnotherLogIsTampered) {
  TempDir other;
  write_log(other.path("log"), keys, 3, 10);
  const VerifyReport r = verify(keys, {other.path("log")}, VerifyOptions{state_file(dir())});
  ASSERT_EQ(count_errors(r, K::Tampered), 1u) << describe(r);
  EXPECT_EQ(r.findings.back().segment, 3u);
  EXPECT_NE(describe(r).find("another segment (id)"), std::string::npos) << describe(r);
}

TEST_F(Verify, VerifyMainTakesStateFile) {
  TempDir kdir;
  const Key a = make_key("a", 1);
  write_file(kdir.path("a.key"), base64(a.bytes.data(), 32) + "\n");
  std::ostringstream out, err;
  EXPECT_EQ(verify_main(kdir.path(), {dir()}, out, err, state_file(dir())), 0) << out.str();
  EXPECT_EQ(verify_main(kdir.path(), {dir()}, out, err, kdir.path("none.state")), 1);
  EXPECT_NE(out.str().find("unreadable"), std::string::npos) << out.str();
  fs::remove(files[2]);
  out.str("");
  EXPECT_EQ(verify_main(kdir.path(), {dir()}, out, err), 1);
  EXPECT_NE(out.str().find("error: segment 3 missing: state file"), std::string::npos) << out.str();
}

TEST_F(Verify, MiddleSegmentTruncatedIsAnError) {
  const std::string s = seg(1);
  const Layout l = layout_of(s);
  for (const std::size_t cut : {l.frames[3].first, l.frames[2].first + 10}) {
    put(1, s.substr(0, cut));
    const VerifyReport r = run();
    EXPECT_EQ(count_errors(r, K::Truncated), 1u) << describe(r);
    EXPECT_EQ(r.findings[0].segment, 2u);
  }
}

TEST_F(Verify, WrongKeyIsReported) {
  const VerifyReport r = verify(ring_of({make_key("a", 9)}), {dir()});
  EXPECT_EQ(count_errors(r, K::WrongKey), 3u) << describe(r);
  EXPECT_EQ(r.records, 0u);
}

TEST_F(Verify, UnknownKeyIsReportedAndChainStillChecked) {
  const VerifyReport r = verify(ring_of({make_key("b", 1)}), {dir()});
  EXPECT_EQ(count_errors(r, K::UnknownKey), 4u) << describe(r);  // 3 segments and the state file
  EXPECT_EQ(count_errors(r, K::Missing) + count_errors(r, K::Tampered), 0u) << describe(r);
}

TEST_F(Verify, PartialChainIsInfo) {
  const VerifyReport r = verify(keys, {files[1], files[2]});
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(count_infos(r, K::PartialChain), 1u);
}

TEST_F(Verify, VerifyMainPrintsFindingsAndExitCode) {
  TempDir kdir;
  const Key a = make_key("a", 1);
  write_file(kdir.path("a.key"), base64(a.bytes.data(), 32) + "\n");
  std::ostringstream out, err;
  EXPECT_EQ(verify_main(kdir.path(), {dir()}, out, err), 0) << out.str() << err.str();
  EXPECT_NE(out.str().find("records 30, from 2026-11-27T08:00:00.000000000Z to 2026-11-27T08:00:29"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find(": OK"), std::string::npos);
  fs::remove(files[1]);
  out.str("");
  EXPECT_EQ(verify_main(kdir.path(), {dir()}, out, err), 1);
  EXPECT_NE(out.str().find("error: segment 2 missing"), std::string::npos) << out.str();
  EXPECT_EQ(verify_main(kdir.path("none"), {dir()}, out, err), 2);
}

TEST_F(Verify, DecryptFilters) {
  TempDir kdir;
  const Key a = make_key("a", 1);
  write_file(kdir.path("a.key"), base64(a.bytes.data(), 32));
  std::ostringstream out, err;
  ASSERT_EQ(decrypt_main(kdir.path(), {dir()}, "2026-11-27T08:00:05Z", "2026-11-27T09:00:07+01:00",
                         std::nullopt, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(), record(5) + "\n" + record(6) + "\n");
  out.str("");
  ASSERT_EQ(decrypt_main(kdir.path(), {dir()}, std::nullopt, std::nullopt, "A.EXAMPLE", out, err), 0);
  const std::string all = out.str();
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 30);
  out.str("");
  ASSERT_EQ(decrypt_main(kdir.path(), {dir()}, std::nullopt, std::nullopt, "b.example", out, err), 0);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(decrypt_main(kdir.path(), {dir()}, "yesterday", std::nullopt, std::nullopt, out, err), 2);
}

TEST(DecryptHost, FlatAndNestedDomainKeys) {
  TempDir tmp;
  const KeyRing keys = ring_of({make_key("a", 1)});
  auto w = Writer::start(test_options(tmp.path("log")), keys, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->submit(0, R"({"url.domain":"x.example","n":1})"));
  ASSERT_TRUE((*w)->submit(0, R"({"url":{"path":"/a{\"b","domain":"x.example"},"n":2})"));
  ASSERT_TRUE((*w)->submit(0, R"({"url":{"domain":"y.example"},"n":3})"));
  ASSERT_TRUE((*w)->submit(0, R"({"host":"x.example","n":4})"));
  ASSERT_TRUE((*w)->stop());
  std::ostringstream out;
  DecryptFilter f;
  f.host = "x.example";
  EXPECT_TRUE(decrypt(keys, {tmp.path("log")}, f, out).ok());
  EXPECT_EQ(out.str(),
            "{\"url.domain\":\"x.example\",\"n\":1}\n{\"url\":{\"path\":\"/"
            "a{\\\"b\",\"domain\":\"x.example\"},\"n\":2}\n");
}

// Records are authenticated, so a malformed one is a writer bug or a hand-made log; verify and decrypt
// must count it and go on (no crash, no stack exhaustion), not lose the records around it.
TEST(DecryptMalformed, MalformedRecordsAreCountedAndSkippedByFilters) {
  TempDir tmp;
  const KeyRing keys = ring_of({make_key("a", 1)});
  auto w = Writer::start(test_options(tmp.path("log")), keys, 1);
  ASSERT_TRUE(w);
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const std::vector<std::string> records{
      R"({"@timestamp":"2026-11-27T08:00:01.000000000Z","url":{"domain":"x.example"},"n":1})",
      R"({"@timestamp":"2026-11-27T08:00:02.000000000Z","url":{"domain":"x.example")",  // truncated
      "not json",
      R"(["@timestamp","2026-11-27T08:00:03.000000000Z"])",  // JSON, but not an object
      deep,
      R"({"@timestamp":"2026-11-27T08:00:04.000000000Z\x","url.domain":"x.example"})",  // bad escape
      R"({"@timestamp":"2026-11-27T08:00:05.000000000Z","url.domain":"x.example"} trailing)",
      // Raw bytes that are not UTF-8 (a header value recorded as it came) keep the record readable.
      "{\"@timestamp\":\"2026-11-27T08:00:06.000000000Z\",\"h\":\"\xff\xfe\",\"url.domain\":\"x.example\"}",
  };
  for (const auto& r : records) ASSERT_TRUE((*w)->submit(0, r));
  ASSERT_TRUE((*w)->stop());

  const VerifyReport v = verify(keys, {tmp.path("log")});
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.records, records.size());
  EXPECT_EQ(v.malformed_records, 6u);
  EXPECT_EQ(v.first_timestamp, "2026-11-27T08:00:01.000000000Z");
  EXPECT_EQ(v.last_timestamp, "2026-11-27T08:00:06.000000000Z");

  std::ostringstream out;
  EXPECT_TRUE(decrypt(keys, {tmp.path("log")}, {}, out).ok());
  std::string all;
  for (const auto& r : records) all += r + "\n";
  EXPECT_EQ(out.str(), all);  // unfiltered: every record, malformed or not

  out.str("");
  DecryptFilter f;
  f.host = "X.example";
  const VerifyReport d = decrypt(keys, {tmp.path("log")}, f, out);
  EXPECT_EQ(d.malformed_records, 6u);
  EXPECT_EQ(out.str(), records[0] + "\n" + records[7] + "\n");

  out.str("");
  DecryptFilter t;
  t.since = *normalize_timestamp_filter("2026-11-27T08:00:02Z");
  decrypt(keys, {tmp.path("log")}, t, out);
  EXPECT_EQ(out.str(), records[7] + "\n");

  TempDir kdir;
  const Key a = make_key("a", 1);
  write_file(kdir.path("a.key"), base64(a.bytes.data(), 32));
  std::ostringstream vout, verr;
  EXPECT_EQ(verify_main(kdir.path(), {tmp.path("log")}, vout, verr), 0) << verr.str();
  EXPECT_NE(vout.str().find("records 8 (6 not valid JSON)"), std::string::npos) << vout.str();
  std::ostringstream dout, derr;
  EXPECT_EQ(decrypt_main(kdir.path(), {tmp.path("log")}, std::nullopt, std::nullopt, "x.example", dout, derr),
            0);
  EXPECT_NE(derr.str().find("6 records are not valid JSON"), std::string::npos) << derr.str();
}

TEST(TimestampFilter, Normalises) {
  EXPECT_EQ(*normalize_timestamp_filter("2026-11-27"), "2026-11-27T00:00:00.000000000Z");
  EXPECT_EQ(*normalize_timestamp_filter("2026-11-27T08:00Z"), "2026-11-27T08:00:00.000000000Z");
  EXPECT_EQ(*normalize_timestamp_filter("2026-11-27T08:00:00.5+01:00"), "2026-11-27T07:00:00.500000000Z");
  EXPECT_EQ(*normalize_timestamp_filter("2026-11-27 00:30:00.123456789123-01:00"),
            "2026-11-27T01:30:00.123456789Z");
  EXPECT_EQ(*normalize_timestamp_filter("2026-01-01T00:00:00+01:00"), "2025-12-31T23:00:00.000000000Z");
  for (const char* bad : {"", "2026-02-30", "2026-11-27T25:00Z", "2026-11-27T08:00:00.Z",
                          "2026-11-27T08:00+1", "2026-11-27Tx", "now"}) {
    EXPECT_FALSE(normalize_timestamp_filter(bad)) << bad;
  }
}

}  // namespace
}  // namespace phigate::audit
