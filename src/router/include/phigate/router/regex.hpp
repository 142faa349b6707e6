#pragma once
// Regex paths and rewrite-target (ingress-nginx `use-regex`, `rewrite-target`,
// `x-forwarded-prefix`), compiled with RE2 (linear time: no backtracking, so no pattern makes a
// request slow). Compiled once per snapshot build on the control thread; RE2 objects are
// thread-safe for concurrent matching, so workers share them read-only.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace phigate::router {

/// A route's rewrite: the path as an unanchored, case-insensitive regex (as ingress-nginx's
/// `rewrite (?i)<path> <target> break;`) and the target and X-Forwarded-Prefix templates split
/// into literal text and capture references.
class Rewrite {
 public:
  /// nullptr when `path` is not a valid RE2 pattern (translate reports that and fails the Ingress
  /// closed). `forwarded_prefix` may be empty (no X-Forwarded-Prefix).
  static std::shared_ptr<const Rewrite> compile(std::string_view path, std::string_view target,
                                                std::string_view forwarded_prefix);
  ~Rewrite();
  Rewrite(const Rewrite&) = delete;
  Rewrite& operator=(const Rewrite&) = delete;

  /// Runs the regex on `path`. On a match, `target` gets the expanded rewrite target and
  /// `prefix` the expanded X-Forwarded-Prefix ("" when none); a reference to a group that did not
  /// take part, or that the pattern lacks, expands to "" (as in nginx); leading slashes of the
  /// target collapse to one (never `//host/…`). False: no match.
  bool apply(std::string_view path, std::string& target, std::string& prefix) const;
  bool has_prefix() const noexcept { return !prefix_.empty(); }

  /// One piece of a template: literal text, or capture `group` (1..9) when `group` > 0.
  struct Piece {
    std::string text;
    int group = 0;
  };

 private:
  Rewrite() = default;
  std::unique_ptr<re2::RE2> re_;
  std::vector<Piece> target_, prefix_;
  int groups_ = 0;  // capture groups the pattern has
};

/// Why a rewritten path (no query) may not go upstream, or nullptr. Captures are pieces of the
/// client's normalised path: glued together they may make `..` (`/a..b` with `(.*)\.\.(.*)` →
/// `/$1/../$2`) or a path that is not one. The result must start with '/', hold only printable
/// ASCII without '?' or '#', and be what http::normalize_target leaves alone except for runs of
/// '/' (nginx forwards those as they are).
const char* unsafe_rewrite(std::string_view path);

/// Splits a template ("/$2/x") into pieces. `$` followed by 1..9 is a reference; any other `$`
/// is literal (annotation parsing refuses those).
std::vector<Rewrite::Piece> split_template(std::string_view t);

}  // namespace phigate::router
