#pragma once
// Building audit records: a one-line JSON object writer that reuses its buffer, and RFC 3339 UTC
// timestamps with nanoseconds ("2026-11-27T08:00:00.123456789Z").
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace phigate::audit {

/// Writes one JSON object on one line. String values are escaped (", \, control characters as
/// \u00XX, invalid UTF-8 bytes replaced by \ufffd), so the output never contains a raw newline.
/// Keys are copied as they are: they must be printable ASCII without '"' or '\' (names from code,
/// or validated HTTP field names).
/// Not thread-safe: one per worker. Once its buffer has grown to the largest record, it never allocates.
class JsonLine {
 public:
  JsonLine() { clear(); }

  void field(std::string_view key, std::string_view value);
  void field(std::string_view key, const char* value) { field(key, std::string_view(value)); }
  void field(std::string_view key, bool value);
  /// A string value known to need no escaping (printable ASCII without '"' or '\\': constants,
  /// formatted addresses, hex ids; checked in debug builds). Skips the escaper.
  void plain_field(std::string_view key, std::string_view value);
  template <std::integral T>
  requires(!std::same_as<T, bool>) void field(std::string_view key, T value) {
    if constexpr (std::is_signed_v<T>) {
      signed_field(key, static_cast<std::int64_t>(value));
    } else {
      unsigned_field(key, static_cast<std::uint64_t>(value));
    }
  }
  void null(std::string_view key);
  /// Opens a nested object `"key":{`; close it with end_object(). Use for ECS nesting (`url.domain`).
  void begin_object(std::string_view key);
  void end_object();
  /// Opens `"key":[` for an array of objects: each element is begin_element() ... end_object().
  /// Close it with end_array() before finish() (finish() closes objects only).
  void begin_array(std::string_view key);
  void begin_element();
  void end_array();

  /// Closes every open object and returns the line (no trailing newline). The view stays valid until
  /// the next call of any other member. Add no fields after finish() without clear().
  std::string_view finish();
  /// Starts a new, empty object, keeping the buffer's capacity.
  void clear();

 private:
  void key(std::string_view k);
  void signed_field(std::string_view k, std::int64_t v);
  void unsigned_field(std::string_view k, std::uint64_t v);

  /// Room for `n` more bytes; returns where they go (size_ is not advanced).
  char* room(std::size_t n) {
    if (cap_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  void grow(std::size_t n);
  void put(char c) {
    *room(1) = c;
    ++size_;
  }
  void put(std::string_view s);
  void put_escaped(std::string_view s);

  // A plain buffer rather than std::string: every append is a bounds check and a memcpy, with
  // no per-call capacity logic or zero-fill (this runs for every request when the audit log is on).
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
  unsigned depth_ = 0;  // open objects, the outer one included
  bool need_comma_ = false;
};

/// Appends `s` as a JSON string body (no quotes) to `out`, escaped as described for JsonLine.
void append_json_escaped(std::string& out, std::string_view s);

/// Length of an RFC 3339 UTC timestamp with 9 fractional digits.
inline constexpr std::size_t kTimestampLength = 30;

/// Writes `t` as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" into `out` (exactly kTimestampLength bytes, not
/// NUL-terminated) and returns a view of it. Years outside 0000..9999 are clamped. Any thread.
std::string_view format_timestamp(std::chrono::system_clock::time_point t, char (&out)[kTimestampLength]);
/// Allocating convenience form for the control plane and tests.
std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace phigate::audit
