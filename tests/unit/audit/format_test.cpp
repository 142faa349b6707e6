// The segment format as written by the Writer and read by verify/decrypt, checked at the byte level
// against the layout in src/audit/README.md.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "audit_test_support.hpp"

namespace phigate::audit {
namespace {

using namespace testing;

std::string bytes_at(const std::string& s, std::size_t off, std::size_t n) {
  return s.substr(off, n);
}
std::uint64_t be(const std::string& s, std::size_t off, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(s[off + static_cast<std::size_t>(i)]);
  return v;
}

class Format : public ::testing::Test {
 protected:
  TempDir tmp;
  KeyRing keys = ring_of({make_key("a", 1)});
};

TEST_F(Format, RoundTripThroughDecrypt) {
  write_log(tmp.path("log"), keys, 3, 10);
  std::ostringstream out;
  const VerifyReport r = decrypt(keys, {tmp.path("log")}, {}, out);
  EXPECT_TRUE(r.ok()) << describe(r);
  std::string expected;
  for (int i = 0; i < 30; ++i) expected += record(i) + "\n";
  EXPECT_EQ(out.str(), expected);
  EXPECT_EQ(r.segments, 3u);
  EXPECT_EQ(r.records, 30u);
  EXPECT_EQ(r.frames, 3u * 4u);  // 4 + 4 + 2 records, then the seal frame
  EXPECT_EQ(r.first_timestamp, "2026-11-27T08:00:00.000000000Z");
  EXPECT_EQ(r.last_timestamp, "2026-11-27T08:00:29.000000000Z");
}

TEST_F(Format, HeaderFieldsAndFileNames) {
  write_log(tmp.path("log"), keys, 2, 3);
  const auto files = segment_files(tmp.path("log"));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_NE(files[0].find("/audit-000000000001-"), std::string::npos);
  EXPECT_TRUE(files[0].ends_with("Z.seg"));
  const std::string h = read_file(files[1]);
  EXPECT_EQ(h.substr(0, 8), "PHGAUDIT");
  EXPECT_EQ(be(h, 8, 2), 2u);             // version (2: a state file beside the segments)
  EXPECT_EQ(be(h, 10, 2), 133u);          // header length: 132 + key id "a"
  EXPECT_EQ(be(h, 32, 8), 2u);            // sequence number
  EXPECT_EQ(be(h, 72, 8), 1u);            // previous sequence number
  EXPECT_EQ(static_cast<int>(h[13]), 1);  // previous segment sealed
  EXPECT_EQ(h.substr(132, 1), "a");
}

TEST_F(Format, NoncesNeverRepeatAcrossFramesAndSegments) {
  write_log(tmp.path("log"), keys, 4, 9);
  std::set<std::string> nonces, salts, ids;
  for (const auto& f : segment_files(tmp.path("log"))) {
    const std::string s = read_file(f);
    const std::string salt = bytes_at(s, 48, 8);
    salts.insert(salt);
    ids.insert(bytes_at(s, 16, 16));
    EXPECT_TRUE(nonces.insert(salt + std::string(4, '\0')).second);  // the header's GMAC nonce
    for (const auto& [off, size] : layout_of(s).frames) {
      EXPECT_TRUE(nonces.insert(salt + bytes_at(s, off + 4, 4)).second) << f << " offset " << off;
    }
  }
  EXPECT_EQ(salts.size(), 4u);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(nonces.size(), 4u * (1 + 4));  // header + 3 data frames + seal, per segment
}

TEST_F(Format, FramesAndSegmentsChainByTag) {
  write_log(tmp.path("log"), keys, 3, 6);
  std::string prev_last_tag;
  for (const auto& f : segment_files(tmp.path("log"))) {
    const std::string s = read_file(f);
    const Layout l = layout_of(s);
    if (!prev_last_tag.empty()) {
      EXPECT_EQ(bytes_at(s, 84, 16), prev_last_tag);  // the header links the previous seal
    }
    std::string prev = bytes_at(s, l.header_end - 16, 16);  // header tag
    std::uint32_t no = 1;
    for (const auto& [off, size] : l.frames) {
      EXPECT_EQ(be(s, off + 4, 4), no++);
      EXPECT_EQ(bytes_at(s, off + 12, 16), prev);
      prev = bytes_at(s, off + size - 16, 16);
    }
    EXPECT_EQ(l.frames.back().first + l.frames.back().second, s.size());
    EXPECT_EQ(static_cast<int>(s[l.frames.back().first + 8]), 2);  // the last frame is the seal
    EXPECT_EQ(be(s, 80, 4) == 0, prev_last_tag.empty());
    prev_last_tag = prev;
  }
}

TEST_F(Format, CiphertextHidesRecords) {
  write_log(tmp.path("log"), keys, 1, 3);
  const std::string s = read_file(segment_files(tmp.path("log"))[0]);
  EXPECT_EQ(s.find("a.example"), std::string::npos);
  EXPECT_EQ(s.find("@timestamp"), std::string::npos);
}

}  // namespace
}  // namespace phigate::audit
