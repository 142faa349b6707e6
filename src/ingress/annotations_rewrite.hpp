#pragma once
// Private to ingress: the value parsers of use-regex, rewrite-target, app-root and
// x-forwarded-prefix (rows of the annotation table in annotations.cpp), and the RE2 check of an
// Ingress's regex paths (translate.cpp). Each parser returns "" when the value is valid, else
// what is wrong (never the value).
#include <string>
#include <string_view>

#include "phigate/config/policy_regex.hpp"

namespace phigate::ingress::detail {

std::string parse_use_regex(std::string_view v, config::RegexPolicy& out);
std::string parse_rewrite_target(std::string_view v, config::RegexPolicy& out);
std::string parse_app_root(std::string_view v, config::RegexPolicy& out);
std::string parse_x_forwarded_prefix(std::string_view v, config::RegexPolicy& out);

/// "" when `path` compiles with RE2 as the router compiles regex paths (Latin-1,
/// case-insensitive, 1 MiB), else why not (RE2's message). `groups`: its capture groups.
std::string check_regex_path(std::string_view path, int* groups = nullptr);

/// The highest $n in rewrite-target and x-forwarded-prefix (0: none).
int max_capture_reference(const config::RegexPolicy& p);

}  // namespace phigate::ingress::detail
