#include "phigate/audit/key_ring.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace phigate::audit {
namespace {

core::Error config_error(std::string ctx) {
  return {core::ErrorKind::Config, core::ErrorSource::Config, core::Retryable::No, std::move(ctx)};
}

int b64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 of exactly 32 bytes: 43 symbols, optional '=' pad, the unused low bits zero (one
// canonical spelling per key), then only trailing whitespace (`openssl rand -base64 32` adds '\n').
bool decode_key(std::string_view text, std::array<unsigned char, 32>& out) noexcept {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  if (text.size() == 44 && text[43] == '=') text.remove_suffix(1);
  if (text.size() != 43) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t n = 0;
  for (char c : text) {
    const int v = b64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<unsigned char>(acc >> bits);
    }
  }
  return n == 32 && (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace

bool is_valid_key_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

KeyRing::~KeyRing() {
  for (Key& k : keys_) OPENSSL_cleanse(k.bytes.data(), k.bytes.size());
}

void KeyRing::add(Key key) {
  for (Key& k : keys_) {
    if (k.id == key.id) {
      k.bytes = key.bytes;
      OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
      return;
    }
  }
  keys_.push_back(std::move(key));
}

const Key* KeyRing::find(std::string_view id) const noexcept {
  for (const Key& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::string KeyRing::path_for(std::string_view id) const {
  std::string p = dir_;
  if (!p.empty() && p.back() != '/') p += '/';
  p += id;
  p += ".key";
  return p;
}

core::Result<KeyRing> KeyRing::load(const std::string& dir) {
  KeyRing ring;
  ring.dir_ = dir;
  DIR* d = opendir(dir.c_str());
  if (!d) return config_error("audit keys dir " + dir + ": " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    // Kubernetes Secret volumes hold `..data` and `..<timestamp>` entries next to the key symlinks.
    if (name.starts_with("..") || name.size() <= 4 || !name.ends_with(".key")) continue;
    names.emplace_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string id = name.substr(0, name.size() - 4);
    const std::string path = ring.path_for(id);
    if (!is_valid_key_id(id)) {
      return config_error("audit key file " + path + ": bad key id (use [A-Za-z0-9._-], at most 64)");
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return config_error("audit key file " + path + ": " + std::strerror(errno));
    char buf[128];
    std::size_t len = 0;
    ssize_t n = 0;
    while (len < sizeof buf && (n = ::read(fd, buf + len, sizeof buf - len)) > 0)
      len += static_cast<std::size_t>(n);
    const int read_errno = errno;
    ::close(fd);
    if (n < 0) return config_error("audit key file " + path + ": " + std::strerror(read_errno));
    Key key;
    key.id = id;
    const bool ok = len < sizeof buf && decode_key(std::string_view(buf, len), key.bytes);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!ok) {
      OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
      return config_error("audit key file " + path + ": malformed (expected 32 bytes of base64)");
    }
    ring.keys_.push_back(std::move(key));
  }
  if (ring.keys_.empty()) return config_error("audit keys dir " + dir + ": no <id>.key files");
  return ring;
}

}  // namespace phigate::audit
