#include "phigate/router/regex.hpp"

#include <re2/re2.h>

#include <array>

#include "phigate/http/path.hpp"

namespace phigate::router {

std::vector<Rewrite::Piece> split_template(std::string_view t) {
  std::vector<Rewrite::Piece> out;
  std::string lit;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '$' && i + 1 < t.size() && t[i + 1] >= '1' && t[i + 1] <= '9') {
      if (!lit.empty()) out.push_back({std::move(lit), 0});
      lit.clear();
      out.push_back({{}, t[i + 1] - '0'});
      ++i;
      continue;
    }
    lit += t[i];
  }
  if (!lit.empty()) out.push_back({std::move(lit), 0});
  return out;
}

const char* unsafe_rewrite(std::string_view path) {
  if (path.empty() || path.front() != '/') return "rewrite produced a path not starting with '/'";
  for (const char c : path) {
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return "rewrite produced an unsafe byte";
  }
  std::string normalised;
  if (http::normalize_target(path, normalised) != nullptr) return "rewrite produced an unsafe path";
  std::string collapsed;
  collapsed.reserve(path.size());
  for (const char c : path) {
    if (c == '/' && !collapsed.empty() && collapsed.back() == '/') continue;
    collapsed += c;
  }
  if (collapsed != normalised) return "rewrite produced dot segments";
  return nullptr;
}

Rewrite::~Rewrite() = default;

std::shared_ptr<const Rewrite> Rewrite::compile(std::string_view path, std::string_view target,
                                                std::string_view forwarded_prefix) {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_max_mem(1 << 20);
  o.set_log_errors(false);
  auto re = std::make_unique<RE2>(re2::StringPiece(path.data(), path.size()), o);
  if (!re->ok()) return nullptr;
  std::shared_ptr<Rewrite> r(new Rewrite());
  r->groups_ = std::min(re->NumberOfCapturingGroups(), 9);
  r->re_ = std::move(re);
  r->target_ = split_template(target);
  r->prefix_ = split_template(forwarded_prefix);
  return r;
}

bool Rewrite::apply(std::string_view path, std::string& target, std::string& prefix) const {
  std::array<re2::StringPiece, 10> sub;
  if (!re_->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(), RE2::UNANCHORED, sub.data(),
                  groups_ + 1)) {
    return false;
  }
  const auto expand = [&](const std::vector<Piece>& pieces, std::string& out) {
    out.clear();
    for (const auto& p : pieces) {
      if (p.group == 0) {
        out += p.text;
      } else if (p.group <= groups_ && sub[p.group].data() != nullptr) {
        out.append(sub[p.group].data(), sub[p.group].size());
      }
    }
  };
  expand(target_, target);
  // `/api(.*)` → `/$1` turns `/api/x` into `//x`, which a backend may read as a network-path
  // reference (`//host/…`): leading slashes collapse to one.
  if (const auto first = target.find_first_not_of('/'); first > 1 && target.size() > 1) {
    target.erase(0, (first == std::string::npos ? target.size() : first) - 1);
  }
  expand(prefix_, prefix);
  return true;
}

}  // namespace phigate::router
