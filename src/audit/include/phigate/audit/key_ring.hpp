#pragma once
// Audit encryption keys: 256-bit keys loaded from a directory of `<ID>.key` files (a Kubernetes
// Secret mounted as a directory), each holding 32 random bytes in base64 (`openssl rand -base64 32`).
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/core/result.hpp"

namespace phigate::audit {

/// One key. `id` is the file name without `.key`: [A-Za-z0-9._-], 1..64 chars, recorded in headers.
struct Key {
  std::string id;
  std::array<unsigned char, 32> bytes{};
};

/// An immutable set of keys, old ones kept for reading. Copyable; key bytes are wiped on destruction.
/// Thread: built on the control thread, then read-only (safe to share by copy).
class KeyRing {
 public:
  KeyRing() = default;
  KeyRing(const KeyRing&) = default;
  KeyRing(KeyRing&&) noexcept = default;
  KeyRing& operator=(const KeyRing&) = default;
  KeyRing& operator=(KeyRing&&) noexcept = default;
  ~KeyRing();

  /// Loads every `*.key` in `dir` (symlinks followed; names starting with ".." and other files ignored).
  /// Errors (ErrorKind::Config) name the offending file but never contain key material: unreadable
  /// directory, no keys, bad id, a file that is not exactly 32 bytes of strict base64.
  static core::Result<KeyRing> load(const std::string& dir);

  /// Adds a key in memory (tests, tools). Replaces a key with the same id.
  void add(Key key);

  /// The key with this id, or nullptr. The pointer stays valid while this ring is unchanged.
  const Key* find(std::string_view id) const noexcept;

  /// The directory given to load() (empty for in-memory rings): used to name missing key files.
  const std::string& dir() const noexcept { return dir_; }
  /// The file a key id would be loaded from, e.g. "/keys/a.key" (for error messages).
  std::string path_for(std::string_view id) const;
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::string dir_;
  std::vector<Key> keys_;
};

/// True if `id` is a valid key id ([A-Za-z0-9._-], 1..64 chars, not starting with '.').
bool is_valid_key_id(std::string_view id) noexcept;

}  // namespace phigate::audit
