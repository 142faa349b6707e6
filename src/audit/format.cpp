#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "format_impl.hpp"
#include "phigate/core/assert.hpp"

namespace phigate::audit::detail {
namespace {

// Offsets of the fixed header fields (README.md, "Segment header").
constexpr std::size_t kOffVersion = 8, kOffHeaderLen = 10, kOffKeyIdLen = 12, kOffPrevState = 13,
                      kOffReserved = 14, kOffId = 16, kOffSeq = 32, kOffCreated = 40, kOffSalt = 48,
                      kOffPrevId = 56, kOffPrevSeq = 72, kOffPrevFrames = 80, kOffPrevTag = 84,
                      kOffKeyCheck = 100;
static_assert(kOffKeyCheck + 32 == kHeaderFixed);

constexpr std::string_view kKdfInfo = "phigate audit segment v1";

const unsigned char* u8(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

core::Error openssl_error(std::string_view what) {
  std::string ctx(what);
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    ctx += ": ";
    ctx += buf;
  }
  return core::Error::internal(std::move(ctx));
}

bool random_bytes(unsigned char* out, std::size_t n) noexcept {
  if (RAND_bytes(out, static_cast<int>(n)) == 1) return true;
  ERR_clear_error();
  return false;
}

std::string encode_header(const SegmentHeader& h) {
  PHI_CHECK(!h.key_id.empty() && h.key_id.size() <= kMaxKeyId);  // ids are validated by KeyRing
  std::string out(kHeaderFixed + h.key_id.size(), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, kMagic.data(), kMagic.size());
  put_be(p + kOffVersion, kVersion, 2);
  put_be(p + kOffHeaderLen, out.size(), 2);
  p[kOffKeyIdLen] = static_cast<unsigned char>(h.key_id.size());
  p[kOffPrevState] = static_cast<unsigned char>(h.prev_state);
  std::memcpy(p + kOffId, h.id.data(), h.id.size());
  put_be(p + kOffSeq, h.seq, 8);
  put_be(p + kOffCreated, static_cast<std::uint64_t>(h.created_ns), 8);
  std::memcpy(p + kOffSalt, h.salt.data(), h.salt.size());
  std::memcpy(p + kOffPrevId, h.prev_id.data(), h.prev_id.size());
  put_be(p + kOffPrevSeq, h.prev_seq, 8);
  put_be(p + kOffPrevFrames, h.prev_frames, 4);
  std::memcpy(p + kOffPrevTag, h.prev_tag.data(), h.prev_tag.size());
  std::memcpy(p + kOffKeyCheck, h.key_check.data(), h.key_check.size());
  std::memcpy(p + kHeaderFixed, h.key_id.data(), h.key_id.size());
  return out;
}

HeaderParse parse_header(std::string_view file, SegmentHeader& h, std::size_t& header_len) {
  if (file.size() < kHeaderFixed) {
    return file.substr(0, std::min(file.size(), kMagic.size())) ==
                   kMagic.substr(0, std::min(file.size(), kMagic.size()))
               ? HeaderParse::Short
               : HeaderParse::Malformed;
  }
  const unsigned char* p = u8(file);
  const auto version = get_be(p + kOffVersion, 2);
  if (file.substr(0, kMagic.size()) != kMagic || version < kOldestVersion || version > kVersion)
    return HeaderParse::Malformed;
  const std::size_t key_len = p[kOffKeyIdLen];
  const std::size_t len = get_be(p + kOffHeaderLen, 2);
  if (key_len == 0 || key_len > kMaxKeyId || len != kHeaderFixed + key_len || p[kOffPrevState] > 2 ||
      get_be(p + kOffReserved, 2) != 0) {
    return HeaderParse::Malformed;
  }
  if (file.size() < len + kTagBytes) return HeaderParse::Short;
  h.version = static_cast<std::uint16_t>(version);
  std::memcpy(h.id.data(), p + kOffId, h.id.size());
  h.seq = get_be(p + kOffSeq, 8);
  h.created_ns = static_cast<std::int64_t>(get_be(p + kOffCreated, 8));
  std::memcpy(h.salt.data(), p + kOffSalt, h.salt.size());
  h.prev_state = static_cast<PrevState>(p[kOffPrevState]);
  std::memcpy(h.prev_id.data(), p + kOffPrevId, h.prev_id.size());
  h.prev_seq = get_be(p + kOffPrevSeq, 8);
  h.prev_frames = static_cast<std::uint32_t>(get_be(p + kOffPrevFrames, 4));
  std::memcpy(h.prev_tag.data(), p + kOffPrevTag, h.prev_tag.size());
  std::memcpy(h.key_check.data(), p + kOffKeyCheck, h.key_check.size());
  h.key_id.assign(file.substr(kHeaderFixed, key_len));
  if (!is_valid_key_id(h.key_id)) return HeaderParse::Malformed;
  header_len = len;
  return HeaderParse::Ok;
}

FrameHead parse_frame_head(const unsigned char* p) noexcept {
  FrameHead f;
  f.body_len = static_cast<std::uint32_t>(get_be(p, 4));
  f.frame_no = static_cast<std::uint32_t>(get_be(p + 4, 4));
  f.type = p[8];
  std::memcpy(f.prev_tag.data(), p + 12, f.prev_tag.size());
  return f;
}

SegmentCipher::SegmentCipher() {
  // Fetched once: implicit fetches per EVP_*Init call are a known OpenSSL 3 slowdown.
  aes_ = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  kdf_ = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  enc_ = EVP_CIPHER_CTX_new();
  dec_ = EVP_CIPHER_CTX_new();
  PHI_CHECK(aes_ && kdf_ && enc_ && dec_);  // only fails without the default provider or memory
}

SegmentCipher::~SegmentCipher() {
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  EVP_CIPHER_free(aes_);
  EVP_KDF_free(kdf_);
}

bool SegmentCipher::set_segment(const Key& master, const SegmentId& id, const Salt& salt, std::uint64_t seq,
                                KeyCheck& check) {
  // A key of its own per segment: GCM's nonce space and invocation limit (NIST SP 800-38D §8) then
  // apply per segment, and a nonce can repeat only if two 128-bit random segment ids collide.
  unsigned char okm[64];
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf_);
  if (!kctx) return false;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(master.bytes.data()),
                                        master.bytes.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<unsigned char*>(id.data()),
                                        id.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kKdfInfo.data()),
                                        kKdfInfo.size()),
      OSSL_PARAM_construct_end()};
  const bool derived = EVP_KDF_derive(kctx, okm, sizeof okm, params) == 1;
  EVP_KDF_CTX_free(kctx);
  bool ok = derived && EVP_EncryptInit_ex2(enc_, aes_, okm, nullptr, nullptr) == 1 &&
            EVP_DecryptInit_ex2(dec_, aes_, okm, nullptr, nullptr) == 1;
  std::memcpy(check.data(), okm + 32, check.size());
  OPENSSL_cleanse(okm, sizeof okm);
  id_ = id;
  salt_ = salt;
  seq_ = seq;
  return ok;
}

void SegmentCipher::nonce(std::uint32_t frame_no, unsigned char (&iv)[12]) const noexcept {
  std::memcpy(iv, salt_.data(), salt_.size());
  put_be(iv + 8, frame_no, 4);
}

void SegmentCipher::aad(const unsigned char* head, unsigned char (&out)[16 + 8 + kFrameHead]) const noexcept {
  std::memcpy(out, id_.data(), id_.size());
  put_be(out + 16, seq_, 8);
  std::memcpy(out + 24, head, kFrameHead);
}

bool SegmentCipher::header_tag(std::string_view header, Tag& tag) {
  unsigned char iv[12];
  nonce(0, iv);
  int n = 0;
  unsigned char none[16];
  return EVP_EncryptInit_ex2(enc_, nullptr, nullptr, iv, nullptr) == 1 &&
         EVP_EncryptUpdate(enc_, nullptr, &n, u8(header), static_cast<int>(header.size())) == 1 &&
         EVP_EncryptFinal_ex(enc_, none, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) == 1;
}

bool SegmentCipher::append_frame(std::string& out, std::uint32_t frame_no, FrameType type,
                                 const Tag& prev_tag, std::string_view plaintext, Tag& tag) {
  PHI_CHECK(plaintext.size() <= kMaxFrameBody && frame_no != 0);  // the writer bounds frames
  const std::size_t start = out.size();
  out.resize(start + kFrameOverhead + plaintext.size());
  auto* p = reinterpret_cast<unsigned char*>(out.data()) + start;
  put_be(p, plaintext.size(), 4);
  put_be(p + 4, frame_no, 4);
  p[8] = static_cast<unsigned char>(type);
  p[9] = p[10] = p[11] = 0;
  std::memcpy(p + 12, prev_tag.data(), prev_tag.size());
  unsigned char iv[12];
  nonce(frame_no, iv);
  unsigned char a[16 + 8 + kFrameHead];
  aad(p, a);
  int n = 0, m = 0;
  const bool ok =
      EVP_EncryptInit_ex2(enc_, nullptr, nullptr, iv, nullptr) == 1 &&
      EVP_EncryptUpdate(enc_, nullptr, &n, a, sizeof a) == 1 &&
      EVP_EncryptUpdate(enc_, p + kFrameHead, &n, u8(plaintext), static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(enc_, p + kFrameHead + n, &m) == 1 &&
      EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) == 1;
  if (!ok) {
    out.resize(start);
    return false;
  }
  std::memcpy(p + kFrameHead + plaintext.size(), tag.data(), tag.size());
  return true;
}

bool SegmentCipher::open_frame(const unsigned char* frame, std::size_t size, std::string& plain) {
  const FrameHead f = parse_frame_head(frame);
  PHI_CHECK(size == kFrameOverhead + f.body_len);  // the caller sliced the frame by its length
  unsigned char iv[12];
  nonce(f.frame_no, iv);
  unsigned char a[16 + 8 + kFrameHead];
  aad(frame, a);
  plain.resize(f.body_len);
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  unsigned char tag[16];
  std::memcpy(tag, frame + kFrameHead + f.body_len, sizeof tag);
  int n = 0, m = 0;
  const bool ok = EVP_DecryptInit_ex2(dec_, nullptr, nullptr, iv, nullptr) == 1 &&
                  EVP_DecryptUpdate(dec_, nullptr, &n, a, sizeof a) == 1 &&
                  EVP_DecryptUpdate(dec_, out, &n, frame + kFrameHead, static_cast<int>(f.body_len)) == 1 &&
                  EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) == 1 &&
                  EVP_DecryptFinal_ex(dec_, out + n, &m) == 1;
  ERR_clear_error();  // an authentication failure is a verdict, not an error to leave queued
  if (!ok) {
    OPENSSL_cleanse(plain.data(), plain.size());
    plain.clear();
  }
  return ok;
}

int read_file(const std::string& path, std::string& out, std::size_t limit) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0)
    out.reserve(std::min<std::size_t>(static_cast<std::size_t>(st.st_size), limit));
  char buf[1 << 16];
  while (out.size() < limit) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return 0;
}

std::string segment_file_name(std::uint64_t seq, std::int64_t created_ns, bool open) {
  std::time_t secs = static_cast<std::time_t>(created_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "audit-%012llu-%04d%02d%02dT%02d%02d%02dZ.%s",
                static_cast<unsigned long long>(seq), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, open ? "open" : "seg");
  return buf;
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept {
  constexpr std::string_view kPrefix = "audit-";
  if (name.size() < kPrefix.size() + 13 || name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    const char c = name[kPrefix.size() + i];
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (name[kPrefix.size() + 12] != '-') return std::nullopt;
  return seq;
}

}  // namespace phigate::audit::detail
