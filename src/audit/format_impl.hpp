#pragma once
// Private: the segment file format (byte layout in README.md) and the AES-256-GCM framing.
#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "phigate/audit/key_ring.hpp"
#include "phigate/core/error.hpp"

namespace phigate::audit::detail {

using Tag = std::array<unsigned char, 16>;
using SegmentId = std::array<unsigned char, 16>;
using Salt = std::array<unsigned char, 8>;
using KeyCheck = std::array<unsigned char, 32>;

inline constexpr std::string_view kMagic = "PHGAUDIT";
// Version 2: the writer keeps a state file beside the segments (README.md, "State file") and may
// write event frames. parse_header still reads version 1 segments (same layout, no event frames).
inline constexpr std::uint16_t kVersion = 2;
inline constexpr std::uint16_t kOldestVersion = 1;
inline constexpr std::size_t kHeaderFixed = 132;  // header bytes before the key id
inline constexpr std::size_t kMaxKeyId = 64;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kFrameHead = 28;  // body_len, frame_no, type, reserved, prev_tag
inline constexpr std::size_t kFrameOverhead = kFrameHead + kTagBytes;
inline constexpr std::uint32_t kMaxFrameBody = 16u << 20;
inline constexpr std::size_t kSealBody = 12;  // be64 records, be32 data frames

enum class PrevState : std::uint8_t { None = 0, Sealed = 1, Crashed = 2 };
// Event: a chain event the writer found at start (a tamper event), JSON, not a record.
enum class FrameType : std::uint8_t { Data = 1, Seal = 2, Event = 3 };

struct SegmentHeader {
  std::uint16_t version = kVersion;  // as parsed; encode_header always writes kVersion
  SegmentId id{};
  std::uint64_t seq = 0;
  std::int64_t created_ns = 0;
  Salt salt{};
  PrevState prev_state = PrevState::None;
  SegmentId prev_id{};
  std::uint64_t prev_seq = 0;
  std::uint32_t prev_frames = 0;  // the predecessor's last frame number (its seal frame if sealed)
  Tag prev_tag{};                 // that frame's tag (its header tag if it had no frame)
  KeyCheck key_check{};
  std::string key_id;
};

/// Header bytes up to (not including) the header tag.
std::string encode_header(const SegmentHeader& h);

enum class HeaderParse : std::uint8_t { Ok, Short, Malformed };
/// Parses the header at the start of `file`; on Ok sets `h` and `header_len` (tag excluded).
HeaderParse parse_header(std::string_view file, SegmentHeader& h, std::size_t& header_len);

/// Cleartext frame head, read without authentication.
struct FrameHead {
  std::uint32_t body_len = 0;
  std::uint32_t frame_no = 0;
  std::uint8_t type = 0;
  Tag prev_tag{};
};
FrameHead parse_frame_head(const unsigned char* p) noexcept;

/// How the frame area of a segment ends.
enum class WalkEnd : std::uint8_t {
  Clean,     // the last frame ends exactly at the end of the file
  Partial,   // an incomplete frame follows (a torn append or a truncation)
  Oversize,  // a frame head declares a body over kMaxFrameBody (corrupt head)
};

/// Calls `fn(const unsigned char* frame, std::size_t size, const FrameHead&)` for each complete frame
/// from `offset` on, until it returns false. `offset` ends at the first byte not walked.
template <class Fn>
WalkEnd walk_frames(std::string_view file, std::size_t& offset, Fn&& fn) {
  const auto* base = reinterpret_cast<const unsigned char*>(file.data());
  while (offset < file.size()) {
    if (file.size() - offset < kFrameHead) return WalkEnd::Partial;
    const FrameHead head = parse_frame_head(base + offset);
    if (head.body_len > kMaxFrameBody) return WalkEnd::Oversize;
    const std::size_t size = kFrameOverhead + head.body_len;
    if (file.size() - offset < size) return WalkEnd::Partial;
    if (!fn(base + offset, size, head)) return WalkEnd::Clean;
    offset += size;
  }
  return WalkEnd::Clean;
}

/// AES-256-GCM for one segment at a time, with one reused EVP_CIPHER_CTX per direction.
/// The segment key and key check value are HKDF-SHA256(master key, salt = segment id).
/// Not thread-safe: one per thread.
class SegmentCipher {
 public:
  SegmentCipher();
  ~SegmentCipher();
  SegmentCipher(const SegmentCipher&) = delete;
  SegmentCipher& operator=(const SegmentCipher&) = delete;

  /// Derives the segment key; `check` receives the key check value stored in the header.
  bool set_segment(const Key& master, const SegmentId& id, const Salt& salt, std::uint64_t seq,
                   KeyCheck& check);

  /// GMAC of the header bytes (nonce salt || 0).
  bool header_tag(std::string_view header, Tag& tag);

  /// Appends one frame (head, ciphertext, tag) to `out` and sets `tag`.
  bool append_frame(std::string& out, std::uint32_t frame_no, FrameType type, const Tag& prev_tag,
                    std::string_view plaintext, Tag& tag);

  /// Authenticates and decrypts the frame at `frame` (kFrameOverhead + body_len bytes) into `plain`.
  bool open_frame(const unsigned char* frame, std::size_t size, std::string& plain);

 private:
  void nonce(std::uint32_t frame_no, unsigned char (&iv)[12]) const noexcept;
  void aad(const unsigned char* head, unsigned char (&out)[16 + 8 + kFrameHead]) const noexcept;

  EVP_CIPHER* aes_ = nullptr;
  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  EVP_KDF* kdf_ = nullptr;
  SegmentId id_{};
  Salt salt_{};
  std::uint64_t seq_ = 0;
};

/// Drains OpenSSL's thread error queue into an Internal error (so that nothing stale stays queued).
core::Error openssl_error(std::string_view what);

/// Fills `out` from the OS CSPRNG (RAND_bytes). False on failure.
bool random_bytes(unsigned char* out, std::size_t n) noexcept;

/// Reads the whole file into `out` (at most `limit` bytes). Returns 0 or an errno value.
int read_file(const std::string& path, std::string& out, std::size_t limit = SIZE_MAX);

/// "audit-000000000042-20261127T080000Z.seg" (or ".open" while active).
std::string segment_file_name(std::uint64_t seq, std::int64_t created_ns, bool open);
/// The sequence number in a segment file name, if it has the audit-<12 digits>-... form.
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept;

inline void put_be(unsigned char* p, std::uint64_t v, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<unsigned char>(v);
    v >>= 8;
  }
}
inline std::uint64_t get_be(const unsigned char* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace phigate::audit::detail
