#pragma once
// Test helpers for the audit tests: a private temp dir, keys, a writer with test-friendly options,
// and a byte-level view of segment files that follows the layout documented in src/audit/README.md
// (deliberately re-derived here, not taken from the implementation, so it also checks the spec).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "phigate/audit/key_ring.hpp"
#include "phigate/audit/verify.hpp"
#include "phigate/audit/writer.hpp"

namespace phigate::audit::testing {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/phigate-audit-XXXXXX";
    require(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& sub = "") const { return sub.empty() ? path_ : path_ + "/" + sub; }

 private:
  static void require(bool ok) {
    if (!ok) std::abort();
  }
  std::string path_;
};

inline Key make_key(const std::string& id, unsigned char seed) {
  Key k;
  k.id = id;
  for (std::size_t i = 0; i < k.bytes.size(); ++i)
    k.bytes[i] = static_cast<unsigned char>(seed * 31 + i * 7 + 1);
  return k;
}

inline KeyRing ring_of(std::initializer_list<Key> keys) {
  KeyRing r;
  for (const Key& k : keys) r.add(k);
  return r;
}

inline std::string base64(const unsigned char* p, std::size_t n) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    const unsigned v = (p[i] << 16) | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += i + 1 < n ? abc[(v >> 6) & 63] : '=';
    out += i + 2 < n ? abc[v & 63] : '=';
  }
  return out;
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline WriterOptions test_options(const std::string& dir, const std::string& key = "a") {
  WriterOptions o;
  o.dir = dir;
  o.active_key = key;
  o.flush_interval = std::chrono::hours(1);  // tests flush explicitly: nothing depends on timers
  o.segment_max_age = std::chrono::hours(24 * 365);
  o.queue_bytes_per_producer = 1 << 20;
  o.batch_records = 4;
  return o;
}

inline std::string record(int i, const std::string& host = "a.example") {
  return R"({"@timestamp":"2026-11-27T08:00:)" + std::string(i % 60 < 10 ? "0" : "") +
         std::to_string(i % 60) + ".000000000Z\",\"url\":{\"domain\":\"" + host +
         "\"},\"n\":" + std::to_string(i) + "}";
}

// Writes `segments` sealed segments of `per_segment` records each (frames of 4 records + a seal).
inline void write_log(const std::string& dir, const KeyRing& keys, int segments, int per_segment,
                      const std::string& key = "a") {
  WriterOptions o = test_options(dir, key);
  o.batch_records = 1000;  // no early wake-ups: frames end exactly where this flushes
  auto w = Writer::start(o, keys, 1);
  ASSERT_TRUE(w) << w.error().context;
  int n = 0;
  for (int s = 0; s < segments; ++s) {
    if (s > 0) {
      ASSERT_FALSE((*w)->rotate_key(key, keys));
      ASSERT_TRUE((*w)->flush());  // applied before the next records are queued
    }
    for (int r = 0; r < per_segment; ++r) {
      ASSERT_TRUE((*w)->submit(0, record(n++)));
      // A flush after every 4 records: frames of 4, 4, ..., the rest, then the seal.
      if ((r + 1) % 4 == 0 || r + 1 == per_segment) {
        ASSERT_TRUE((*w)->flush());
      }
    }
  }
  ASSERT_TRUE((*w)->stop());
}

// Segment files in `dir` in name order.
inline std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("audit-", 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Byte ranges of one segment file, per README.md: header = 132 bytes + key id (length at byte 12)
// + 16-byte tag; each frame = 28-byte head (body length in bytes 0..3) + body + 16-byte tag.
struct Layout {
  std::size_t header_end = 0;                               // first byte after the header tag
  std::vector<std::pair<std::size_t, std::size_t>> frames;  // [offset, size)
};

inline Layout layout_of(const std::string& bytes) {
  Layout l;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  l.header_end = 132 + p[12] + 16;
  std::size_t off = l.header_end;
  while (off + 28 <= bytes.size()) {
    const std::size_t body =
        (std::size_t{p[off]} << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3];
    if (off + 28 + body + 16 > bytes.size()) break;
    l.frames.emplace_back(off, 28 + body + 16);
    off += 28 + body + 16;
  }
  return l;
}

// Type byte of frame j (README.md: byte 8 of the frame head; 1 data, 2 seal, 3 event).
inline int frame_type(const std::string& bytes, std::size_t j) {
  return static_cast<unsigned char>(bytes[layout_of(bytes).frames.at(j).first + 8]);
}

// The state file the writer keeps beside the segments (README.md, "State file").
inline std::string state_file(const std::string& dir) {
  return dir + "/audit.state";
}

// Lowercase hex of bytes [off, off + n) of `s`.
inline std::string hex_of(const std::string& s, std::size_t off, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = off; i < off + n; ++i) {
    out += digits[static_cast<unsigned char>(s[i]) >> 4];
    out += digits[static_cast<unsigned char>(s[i]) & 15];
  }
  return out;
}

inline std::size_t count_errors(const VerifyReport& r, Finding::Kind kind) {
  return static_cast<std::size_t>(std::count_if(r.findings.begin(), r.findings.end(), [&](const Finding& f) {
    return f.kind == kind && f.severity == Finding::Severity::Error;
  }));
}
inline std::size_t count_infos(const VerifyReport& r, Finding::Kind kind) {
  return static_cast<std::size_t>(std::count_if(r.findings.begin(), r.findings.end(), [&](const Finding& f) {
    return f.kind == kind && f.severity == Finding::Severity::Info;
  }));
}
inline std::string describe(const VerifyReport& r) {
  std::ostringstream os;
  for (const Finding& f : r.findings) {
    os << (f.severity == Finding::Severity::Error ? "error " : "info ") << to_string(f.kind) << " seg "
       << f.segment << " frame " << f.frame << ": " << f.detail << "\n";
  }
  return os.str();
}

}  // namespace phigate::audit::testing
