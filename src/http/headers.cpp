#include "phigate/http/headers.hpp"

namespace phigate::http {

Header& HeaderList::add(std::string_view name, std::string_view value) {
  if (size_ == fields_.size()) fields_.emplace_back();
  Header& h = fields_[size_++];
  h.name.assign(name);
  h.value.assign(value);
  return h;
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
