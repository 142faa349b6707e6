#pragma once
// What the report writers share (report_*.cpp; private to the check library): the report model
// (findings per safeguard, rules met), text cleaning for strings that come from configuration and
// manifests (an attacker may write the file name, the resource name or a host), RFC 3339 time.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include <vector>
#include "phigate/core/strings.hpp"

#include "phigate/check/report.hpp"

namespace phigate::check::detail {

/// Code point of a well-formed sequence of length n at s[i].
inline char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t n) noexcept {
  const auto u = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (n) {
    case 1:
      return u(0);
    case 2:
      return ((u(0) & 0x1F) << 6) | (u(1) & 0x3F);
    case 3:
      return ((u(0) & 0x0F) << 12) | ((u(1) & 0x3F) << 6) | (u(2) & 0x3F);
    default:
      return ((u(0) & 0x07) << 18) | ((u(1) & 0x3F) << 12) | ((u(2) & 0x3F) << 6) | (u(3) & 0x3F);
  }
}

/// Well-formed UTF-8: every byte that does not belong to a well-formed sequence becomes U+FFFD.
/// Control characters are kept (JSON escapes them).
inline std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const auto n = core::utf8_sequence_length(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

/// Code points that must not reach a terminal or a page as they are: C0 and C1 controls, DEL, and
/// the bidirectional overrides and isolates that reorder what a reader sees (Trojan Source).
inline bool invisible_control(char32_t c) noexcept {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029 || c == 0x200E || c == 0x200F ||
         c == 0x061C;
}

/// One visible line for people (text, HTML, Markdown): well-formed UTF-8 (else U+FFFD), and every
/// control character written as an escape ("\n", "\t", "\x00", "\u{202e}") so that a name can
/// neither start a new line of the report nor hide or reorder its neighbours.
inline std::string display(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto n = core::utf8_sequence_length(s, i);
    if (n == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
      continue;
    }
    const char32_t c = utf8_decode(s, i, n);
    if (!invisible_control(c)) {
      out.append(s.substr(i, n));
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c < 0x100) {
      out.append("\\x");
      out.push_back(kHex[(c >> 4) & 15]);
      out.push_back(kHex[c & 15]);
    } else {
      out.append("\\u{");
      for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(c >> shift) & 15]);
      out.push_back('}');
    }
    i += n;
  }
  return out;
}

/// "2026-12-06T02:25:00Z" (RFC 3339, UTC, whole seconds).
inline std::string rfc3339(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  std::array<char, 32> buf{};
  const auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

/// The rule a finding belongs to; a finding without one counts as a configuration error.
inline const RuleInfo& rule_of(const Finding& f) {
  return f.rule != nullptr ? *f.rule : config_error_rule();
}

struct Counts {
  std::size_t errors = 0, warnings = 0, infos = 0;
  void add(Severity s) noexcept {
    (s == Severity::Error ? errors : s == Severity::Warning ? warnings : infos) += 1;
  }
  std::size_t total() const noexcept { return errors + warnings + infos; }
};

/// A rule with the findings it produced (indices into the findings vector).
struct RuleRow {
  const RuleInfo* info = nullptr;
  std::vector<std::size_t> findings;
  bool evaluated = true;  // false: nothing to examine (Evidence::not_evaluated)
};

/// One safeguard of the report: its rules in table order, its findings in the order given.
struct SafeguardSection {
  Safeguard safeguard{};
  std::vector<RuleRow> rules;
  std::vector<std::size_t> findings;
  Counts counts;
  std::size_t rules_met() const noexcept {
    std::size_t n = 0;
    for (const auto& r : rules) n += r.findings.empty() && r.evaluated ? 1 : 0;
    return n;
  }
  std::size_t rules_not_evaluated() const noexcept {
    std::size_t n = 0;
    for (const auto& r : rules) n += r.findings.empty() && !r.evaluated ? 1 : 0;
    return n;
  }
};

/// Every rule of all_rules() plus any rule a finding names that the table lacks (matched by id),
/// grouped by safeguard in report order (kSafeguards).
struct ReportModel {
  std::vector<const RuleInfo*> rules;  // table order, then unknown rules in finding order
  std::vector<SafeguardSection> sections;
  Counts counts;

  /// Index of a finding's rule in `rules`.
  std::size_t rule_index(const Finding& f) const {
    const RuleInfo& r = rule_of(f);
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if (rules[i] == &r) return i;
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if (rules[i]->id == r.id) return i;
    }
    return 0;  // unreachable: build() adds every finding's rule
  }

  static ReportModel build(const std::vector<Finding>& findings,
                           const std::vector<std::string>& not_evaluated = {}) {
    ReportModel m;
    for (const auto& r : all_rules()) m.rules.push_back(&r.info);
    for (const auto& f : findings) {
      const RuleInfo& r = rule_of(f);
      bool known = false;
      for (const auto* k : m.rules) known = known || k == &r || k->id == r.id;
      if (!known) m.rules.push_back(&r);
    }
    for (const Safeguard s : kSafeguards) {
      SafeguardSection sec;
      sec.safeguard = s;
      for (const auto* r : m.rules) {
        if (r->safeguard != s) continue;
        const bool evaluated =
            std::find(not_evaluated.begin(), not_evaluated.end(), r->id) == not_evaluated.end();
        sec.rules.push_back({r, {}, evaluated});
      }
      m.sections.push_back(std::move(sec));
    }
    for (std::size_t i = 0; i < findings.size(); ++i) {
      const RuleInfo* r = m.rules[m.rule_index(findings[i])];
      for (auto& sec : m.sections) {
        if (sec.safeguard != r->safeguard) continue;
        sec.findings.push_back(i);
        sec.counts.add(findings[i].severity);
        for (auto& row : sec.rules) {
          if (row.info == r) row.findings.push_back(i);
        }
      }
      m.counts.add(findings[i].severity);
    }
    return m;
  }
};

/// "2 errors, 1 warning, 1 info" (zero counts left out); "pass" when there is nothing.
inline std::string counts_text(const Counts& c) {
  if (c.total() == 0) return "pass";
  std::string out;
  const auto add = [&](std::size_t n, std::string_view one, std::string_view many) {
    if (n == 0) return;
    if (!out.empty()) out.append(", ");
    out.append(std::to_string(n)).append(" ").append(n == 1 ? one : many);
  };
  add(c.errors, "error", "errors");
  add(c.warnings, "warning", "warnings");
  add(c.infos, "info", "infos");
  return out;
}

/// "ERROR", "WARNING", "INFO".
inline std::string_view upper(Severity s) noexcept {
  switch (s) {
    case Severity::Error:
      return "ERROR";
    case Severity::Warning:
      return "WARNING";
    case Severity::Info:
      return "INFO";
  }
  return "ERROR";
}

/// "file:line" / "file" / "" (no file).
inline std::string file_line(const Location& l) {
  std::string out = l.file;
  if (!out.empty() && l.line >= 1) out.append(":").append(std::to_string(l.line));
  return out;
}

/// Text for an HTML element or attribute: display() (one line, controls escaped), then the five
/// characters that could open markup or end an attribute as entities.
inline std::string html_escape(std::string_view s) {
  std::string out;
  for (const char c : display(s)) {
    switch (c) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      case '\'':
        out.append("&#39;");
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

/// Text for a Markdown table cell: display() (so no newline ends the row), then a backslash before
/// every character that could end the cell ('|'), open a code span, emphasis, link, math or raw
/// HTML, or start an entity (CommonMark: any ASCII punctuation may be backslash-escaped).
inline std::string md_escape(std::string_view s) {
  static constexpr std::string_view kSpecial = "\\`*_[]<>|~$&!#";
  std::string out;
  for (const char c : display(s)) {
    if (kSpecial.find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace phigate::check::detail
