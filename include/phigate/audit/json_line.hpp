#pragma once
// Building audit records: a one-line JSON object writer that reuses its buffer, and RFC 3339 UTC
// timestamps with nanoseconds ("2026-11-27T08:00:00.123456789Z").
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace phigate::audit {

/// Writes one JSON object on one line. Keys and string values are escaped (", \, control characters
/// as \u00XX, invalid UTF-8 bytes replaced by \ufffd), so the output never contains a raw newline.
/// Not thread-safe: one per worker. Once its buffer has grown to the largest record, it never allocates.
class JsonLine {
 public:
  JsonLine() { clear(); }

  void field(std::string_view key, std::string_view value);
  void field(std::string_view key, const char* value) { field(key, std::string_view(value)); }
  void field(std::string_view key, bool value);
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

  /// Closes every open object and returns the line (no trailing newline). The view stays valid until
  /// the next call of any other member. Add no fields after finish() without clear().
  std::string_view finish();
  /// Starts a new, empty object, keeping the buffer's capacity.
  void clear();

 private:
  void key(std::string_view k);
  void signed_field(std::string_view k, std::int64_t v);
  void unsigned_field(std::string_view k, std::uint64_t v);

  std::string buf_;
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
