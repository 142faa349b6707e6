#pragma once

#include <string>
#include <string_view>

namespace phigate::test {

/// A fresh directory `$TMPDIR/phigate-test-XXXXXX` (mode 0700), removed recursively on destruction unless
/// the environment sets PHIGATE_KEEP_TMP (then its path is printed to stderr instead). Move-only; use
/// from one thread.
class TempDir {
 public:
  /// Creates the directory; throws std::runtime_error if mkdtemp fails.
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Absolute path of the directory; valid for the life of this object.
  const std::string& path() const { return path_; }
  /// `path() + "/" + name`; does not create anything.
  std::string path(std::string_view name) const;
  /// Writes `content` to `name` (relative), creating parent directories; returns the full path. Throws on
  /// I/O failure.
  std::string write(std::string_view name, std::string_view content) const;
  /// Reads the whole file `name` (relative); throws std::runtime_error if it cannot be opened.
  std::string read(std::string_view name) const;

 private:
  void remove() noexcept;

  std::string path_;
};

/// Reads a whole file by absolute path; throws std::runtime_error if it cannot be opened.
std::string read_file(const std::string& path);

}  // namespace phigate::test
