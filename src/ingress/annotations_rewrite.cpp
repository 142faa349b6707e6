#include "annotations_rewrite.hpp"

#include <re2/re2.h>

#include <algorithm>

namespace phigate::ingress::detail {

namespace {

// ingress-nginx's class for rewrite-target and x-forwarded-prefix: `-._~`, letters, digits, `/`,
// `:` and `$`. phigate reads `$` only as `$1`..`$9` (the rewrite's captures).
bool template_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '/' || c == ':' || c == '$';
}

std::string check_template(std::string_view v) {
  if (v.empty()) return "expected a path (\"/...\", with $1..$9 for the path's captures)";
  if (v.size() > 1024) return "longer than 1024 bytes";
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (!template_char(c)) {
      return "only letters, digits, '-', '.', '_', '~', '/', ':' and $1..$9 are allowed (no '?', '%', "
             "spaces or quotes)";
    }
    if (c == '$') {
      const char n = i + 1 < v.size() ? v[i + 1] : '\0';
      if (n < '1' || n > '9') return "'$' must be followed by a capture number 1..9 (no nginx variables)";
      ++i;
    }
  }
  if (v.find("://") != std::string_view::npos) {
    return "a scheme (\"://\") makes ingress-nginx redirect instead of rewrite; use temporal-redirect";
  }
  return {};
}

}  // namespace

std::string parse_use_regex(std::string_view v, config::RegexPolicy& out) {
  if (v == "true") {
    out.use_regex = true;
  } else if (v == "false") {
    out.use_regex = false;
  } else {
    return "expected \"true\" or \"false\"";
  }
  return {};
}

std::string parse_rewrite_target(std::string_view v, config::RegexPolicy& out) {
  if (auto why = check_template(v); !why.empty()) return why;
  out.rewrite_target.assign(v);
  return {};
}

std::string parse_x_forwarded_prefix(std::string_view v, config::RegexPolicy& out) {
  if (auto why = check_template(v); !why.empty()) return why;
  out.x_forwarded_prefix.assign(v);
  return {};
}

std::string parse_app_root(std::string_view v, config::RegexPolicy& out) {
  if (v.empty() || v.front() != '/') return "expected a path starting with '/' (no scheme or host)";
  if (v.size() > 1024) return "longer than 1024 bytes";
  if (v.size() > 1 && v[1] == '/') return "must not start with \"//\" (another host)";
  for (char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~' || c == '/' || c == '?' || c == '&' || c == '=';
    if (!ok)
      return "only letters, digits, '-', '.', '_', '~', '/' and a query with '?', '&', '=' are allowed";
  }
  out.app_root.assign(v);
  return {};
}

int max_capture_reference(const config::RegexPolicy& p) {
  int n = 0;
  for (const std::string* t : {&p.rewrite_target, &p.x_forwarded_prefix}) {
    for (std::size_t i = 0; i + 1 < t->size(); ++i) {
      if ((*t)[i] == '$') n = std::max(n, (*t)[i + 1] - '0');
    }
  }
  return n;
}

std::string check_regex_path(std::string_view path, int* groups) {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_max_mem(1 << 20);
  o.set_log_errors(false);
  const RE2 re(re2::StringPiece(path.data(), path.size()), o);
  if (re.ok()) {
    if (groups != nullptr) *groups = re.NumberOfCapturingGroups();
    return {};
  }
  return "not a valid RE2 regular expression (" + re.error() +
         "); phigate uses RE2 (linear time), which has no backreferences or lookaround";
}

}  // namespace phigate::ingress::detail
