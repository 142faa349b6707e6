#include "phigate/http/response_edits.hpp"

#include <algorithm>

namespace phigate::http {

namespace {

bool tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool field_name(std::string_view n) {
  return !n.empty() && n.size() <= 256 && std::all_of(n.begin(), n.end(), tchar);
}

/// Adds each token of `value` the backend's Vary fields lack; nothing when one of them is "*".
void merge_vary(HeaderList& h, std::string_view value) {
  bool star = false;
  for (const auto& f : h) {
    if (!iequals(f.name, "vary")) continue;
    for_each_token(f.value, [&](std::string_view t) { star = star || t == "*"; });
  }
  if (star) return;
  for_each_token(value, [&](std::string_view want) {
    bool have = false;
    for (const auto& f : h) {
      if (!iequals(f.name, "vary")) continue;
      for_each_token(f.value, [&](std::string_view t) { have = have || iequals(t, want); });
    }
    if (!have) h.add("Vary", want);
  });
}

bool apply_one(HeaderList& h, std::string_view name, std::string_view value) {
  if (!field_name(name) || !safe_field_value(value)) return false;
  if (iequals(name, "vary")) {
    merge_vary(h, value);
  } else {
    h.set(name, value);
  }
  return true;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

/// `value` with a leading `from` replaced by `to`, into `out`; false when it does not start so.
bool replace_prefix(std::string_view value, std::string_view from, std::string_view to, std::string& out) {
  if (from.empty() || !starts_with(value, from)) return false;
  out.assign(to);
  out.append(value.substr(from.size()));
  return true;
}

std::string_view trim_blanks(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::string_view without_dot(std::string_view v) {
  if (!v.empty() && v.front() == '.') v.remove_prefix(1);
  return v;
}

/// Refresh: "5; url=/x" (RFC-less but universal): the URL after "url=" (any case).
bool rewrite_refresh(std::string_view value, const ResponseEdits& e, std::string& out) {
  for (std::size_t i = 0; i + 4 <= value.size(); ++i) {
    if (!iequals(value.substr(i, 4), "url=")) continue;
    std::string tail;
    if (!replace_prefix(value.substr(i + 4), e.redirect_from, e.redirect_to, tail)) return false;
    out.assign(value.substr(0, i + 4));
    out += tail;
    return true;
  }
  return false;
}

/// Set-Cookie: rewrites the Domain and Path attributes; the name=value pair and every other byte
/// are kept.
bool rewrite_cookie(std::string_view value, const ResponseEdits& e, std::string& out) {
  bool changed = false;
  out.clear();
  std::size_t at = 0;
  bool first = true;
  while (at <= value.size()) {
    const auto semi = value.find(';', at);
    const auto end = semi == std::string_view::npos ? value.size() : semi;
    const auto part = value.substr(at, end - at);
    std::string replaced;
    bool did = false;
    if (!first) {
      // " Domain=.a.example": the blanks before the name and after the value are kept.
      const auto eq = part.find('=');
      const auto name = trim_blanks(part.substr(0, eq));
      if (eq != std::string_view::npos) {
        const auto raw_value = part.substr(eq + 1);
        const auto blanks = raw_value.find_first_not_of(" \t");
        const auto v = trim_blanks(raw_value);
        const auto v_at = eq + 1 + (blanks == std::string_view::npos ? raw_value.size() : blanks);
        if (iequals(name, "domain") && !e.cookie_domain_from.empty() &&
            iequals(without_dot(v), without_dot(e.cookie_domain_from))) {
          replaced.assign(part.substr(0, v_at));
          if (!v.empty() && v.front() == '.') replaced += '.';
          replaced += without_dot(e.cookie_domain_to);
          replaced += part.substr(v_at + v.size());
          did = true;
        } else if (iequals(name, "path") && !e.cookie_path_from.empty()) {
          std::string p;
          if (replace_prefix(v, e.cookie_path_from, e.cookie_path_to, p)) {
            replaced.assign(part.substr(0, v_at));
            replaced += p;
            replaced += part.substr(v_at + v.size());
            did = true;
          }
        }
      }
    }
    if (did) {
      out += replaced;
      changed = true;
    } else {
      out += part;
    }
    first = false;
    if (semi == std::string_view::npos) break;
    out += ';';
    at = semi + 1;
  }
  return changed;
}

/// Location, Refresh and Set-Cookie rewrites; returns the fields left unchanged because the
/// result was not safe.
std::size_t rewrite_fields(HeaderList& h, const ResponseEdits& e) {
  std::size_t skipped = 0;
  std::string out;
  for (auto& f : h) {
    bool changed = false;
    if (!e.redirect_from.empty() && iequals(f.name, "location")) {
      changed = replace_prefix(f.value, e.redirect_from, e.redirect_to, out);
    } else if (!e.redirect_from.empty() && iequals(f.name, "refresh")) {
      changed = rewrite_refresh(f.value, e, out);
    } else if ((!e.cookie_domain_from.empty() || !e.cookie_path_from.empty()) &&
               iequals(f.name, "set-cookie")) {
      changed = rewrite_cookie(f.value, e, out);
    }
    if (!changed) continue;
    if (!safe_field_value(out)) {
      ++skipped;
      continue;
    }
    f.value = out;
  }
  return skipped;
}

}  // namespace

bool safe_field_value(std::string_view v) noexcept {
  if (v.size() > kMaxEditedValue) return false;
  if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t'))
    return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '\t' || (c >= 0x20 && c < 0x7f); });
}

std::size_t apply_response_edits(HeaderList& h, const ResponseEdits* edits, std::string_view per_request) {
  std::size_t skipped = 0;
  if (edits != nullptr && edits->drop_access_control) {
    static constexpr std::string_view kAc = "access-control-";
    h.remove_if([](const Header& f) {
      return f.name.size() >= kAc.size() && iequals(std::string_view(f.name).substr(0, kAc.size()), kAc);
    });
  }
  if (edits != nullptr && edits->rewrites()) skipped += rewrite_fields(h, *edits);
  for_each_raw_line(per_request, [&](std::string_view name, std::string_view value) {
    if (!apply_one(h, name, value)) ++skipped;
  });
  if (edits != nullptr) {
    for (const auto& f : edits->set) {
      if (!apply_one(h, f.name, f.value)) ++skipped;
    }
    for_each_raw_line(edits->set_fields, [&](std::string_view name, std::string_view value) {
      if (!apply_one(h, name, value)) ++skipped;
    });
  }
  return skipped;
}

}  // namespace phigate::http
