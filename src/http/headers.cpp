#include "phigate/http/headers.hpp"

#include <algorithm>

namespace phigate::http {

Header& HeaderList::add(std::string_view name, std::string_view value) {
  if (size_ == fields_.size()) {
    // A request or response head has a dozen fields or so: one allocation for the array rather
    // than five doublings, each moving every string (perf-h2-many-streams.md, round 4).
    if (fields_.empty()) fields_.reserve(kInitialFields);
    fields_.emplace_back();
  }
  Header& h = fields_[size_++];
  h.name.assign(name);
  h.value.assign(value);
  return h;
}

Header& HeaderList::add_front(std::string_view name, std::string_view value) {
  add(name, value);
  // Swaps only: the strings (and their storage) move, no byte is copied.
  std::rotate(fields_.begin(), fields_.begin() + static_cast<std::ptrdiff_t>(size_ - 1),
              fields_.begin() + static_cast<std::ptrdiff_t>(size_));
  return fields_.front();
}

std::size_t HeaderList::storage_bytes() const noexcept {
  std::size_t n = fields_.capacity() * sizeof(Header);
  for (const auto& h : fields_) n += h.name.capacity() + h.value.capacity();
  return n;
}

const std::string* HeaderList::find(std::string_view name) const noexcept {
  for (const auto& h : *this) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

std::size_t HeaderList::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const auto& h : *this) n += iequals(h.name, name) ? 1 : 0;
  return n;
}

std::size_t HeaderList::remove(std::string_view name) {
  return remove_if([name](const Header& h) { return iequals(h.name, name); });
}

void HeaderList::set(std::string_view name, std::string_view value) {
  for (std::size_t i = 0; i < size_; ++i) {
    if (iequals(fields_[i].name, name)) {
      fields_[i].value.assign(value);
      // Drop any later duplicates.
      std::size_t out = i + 1;
      for (std::size_t j = i + 1; j < size_; ++j) {
        if (iequals(fields_[j].name, name)) continue;
        if (out != j) std::swap(fields_[out], fields_[j]);
        ++out;
      }
      size_ = out;
      return;
    }
  }
  add(name, value);
}

}  // namespace phigate::http
