#pragma once
// RoutePolicy::regex: regex paths and URI rewriting (ingress-nginx `use-regex`, `rewrite-target`,
// `app-root`, `x-forwarded-prefix`). Values are validated by the annotation parser; the router
// compiles the paths (RE2) and the rewrite templates once per snapshot.
#include <string>
#include <string_view>

namespace phigate::config {

struct RegexPolicy {
  bool use_regex = false;          // use-regex: "true"
  std::string rewrite_target;      // "/..." with $1..$9; empty: none
  std::string app_root;            // "/app" (302 for "/"); empty: none
  std::string x_forwarded_prefix;  // "/prefix" with $1..$9; only with an active rewrite

  /// Whether the rewrite is active for a path: ingress-nginx rewrites when the target is set
  /// and differs from the path.
  bool rewrites(std::string_view path) const noexcept {
    return !rewrite_target.empty() && rewrite_target != path;
  }
  /// Whether `path` (of an Ingress with this policy) is a regular expression: use-regex, or a
  /// rewrite, which makes ingress-nginx read the path as a regex.
  bool regex_path(std::string_view path) const noexcept { return use_regex || rewrites(path); }
};

/// Whether `pattern` has a `|` outside every group (not escaped, not in a character class): then
/// no literal prefix is common to all its matches. An unbalanced `)` counts as top level again.
inline bool regex_top_level_alternation(std::string_view pattern) noexcept {
  int depth = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      // \Q…\E quotes a run that may hold `(` or `|`: no prefix is trusted then.
      if (i + 1 < pattern.size() && pattern[i + 1] == 'Q') return true;
      ++i;
    } else if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // "[]…]": ']' first is literal
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      depth = depth > 0 ? depth - 1 : 0;
    } else if (c == '|' && depth == 0) {
      return true;
    }
  }
  return false;
}

/// The bytes of a regex path before its first metacharacter, less the one a quantifier makes
/// optional: what an invalid regex path still claims (`/api/(?=x)` claims `/api/`), and the Path
/// of a regex route's affinity cookie (`/api(/|$)(.*)` → `/api`). A pattern with a top-level
/// alternation (`/a|/b`), or a `\\Q` quoted run, has only "/".
inline std::string_view regex_literal_prefix(std::string_view path) noexcept {
  if (regex_top_level_alternation(path)) return path.substr(0, path.empty() ? 0 : 1);
  std::size_t i = 0;
  for (; i < path.size(); ++i) {
    const char c = path[i];
    if (std::string_view("\\.+*?()[]{}^$").find(c) == std::string_view::npos) continue;
    if ((c == '?' || c == '*' || c == '{') && i > 0) --i;
    break;
  }
  return path.substr(0, i);
}

}  // namespace phigate::config
