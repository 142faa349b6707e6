#pragma once
// Header model: an ordered list of name/value pairs, names compared case-insensitively.
// Sans-I/O; owned by one connection on one worker.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "phigate/core/strings.hpp"

namespace phigate::http {

struct Header {
  std::string name;
  std::string value;
};

/// A field by reference (into a HeaderList, a parser's head or preformatted lines): for handing
/// fields on without copying them (the HTTP/2 response head, docs/perf-h2-many-streams.md round 4).
struct FieldRef {
  std::string_view name;
  std::string_view value;
};

/// ASCII case-insensitive equality (header names, tokens): core's, under its old name here.
using core::iequals;

/// Ordered header fields. Storage is reused across requests (clear keeps capacity).
class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(const HeaderList&) = default;
  HeaderList& operator=(const HeaderList&) = default;
  /// A moved-from list is empty (size_ follows fields_; review finding F4).
  HeaderList(HeaderList&& o) noexcept : fields_(std::move(o.fields_)), size_(std::exchange(o.size_, 0)) {}
  HeaderList& operator=(HeaderList&& o) noexcept {
    if (this == &o) return *this;
    fields_ = std::move(o.fields_);
    size_ = std::exchange(o.size_, 0);
    o.fields_.clear();
    return *this;
  }
  void clear() noexcept { size_ = 0; }
  /// Keeps the first `n` fields (a no-op when there are not more).
  void truncate(std::size_t n) noexcept {
    if (n < size_) size_ = n;
  }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Appends a field; the returned reference is valid until the next add/remove/clear.
  Header& add(std::string_view name, std::string_view value);
  /// Inserts a field before all others; the returned reference is valid until the list changes.
  Header& add_front(std::string_view name, std::string_view value);
  /// Bytes the list holds, spare fields and string capacity included (bounds on recycled lists).
  std::size_t storage_bytes() const noexcept;
  /// Value of the first field named `name`, or nullptr. Valid until the list changes.
  const std::string* find(std::string_view name) const noexcept;
  std::size_t count(std::string_view name) const noexcept;
  /// Removes every field named `name`; returns how many were removed.
  std::size_t remove(std::string_view name);
  /// Replaces all fields named `name` with one field (appended when absent).
  void set(std::string_view name, std::string_view value);
  /// Removes every field for which `pred(const Header&)` is true, in one pass; returns the count.
  template <class Pred>
  std::size_t remove_if(Pred&& pred) {
    std::size_t out = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (pred(static_cast<const Header&>(fields_[i]))) continue;
      if (out != i) std::swap(fields_[out], fields_[i]);  // swap keeps the removed strings' capacity
      ++out;
    }
    const std::size_t removed = size_ - out;
    size_ = out;
    return removed;
  }

  const Header* begin() const noexcept { return fields_.data(); }
  const Header* end() const noexcept { return fields_.data() + size_; }
  Header* begin() noexcept { return fields_.data(); }
  Header* end() noexcept { return fields_.data() + size_; }
  Header& back() noexcept { return fields_[size_ - 1]; }

 private:
  static constexpr std::size_t kInitialFields = 16;
  std::vector<Header> fields_;  // [0, size_) are live; the rest keep their string capacity
  std::size_t size_ = 0;
};

/// Calls f(token) for each comma-separated token of a list-valued field (trimmed, non-empty).
template <class F>
void for_each_token(std::string_view value, F&& f) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    auto tok = value.substr(0, comma);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    if (!tok.empty()) f(tok);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace phigate::http
