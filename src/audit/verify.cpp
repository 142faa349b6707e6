#include "phigate/audit/verify.hpp"

#include <dirent.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "format_impl.hpp"
#include "phigate/audit/json_line.hpp"
#include "phigate/core/strings.hpp"
#include "phigate/core/time.hpp"
#include "state_file_impl.hpp"

namespace phigate::audit {

using namespace detail;
using Kind = Finding::Kind;
using Severity = Finding::Severity;

std::string_view to_string(Finding::Kind kind) noexcept {
  switch (kind) {
    case Kind::Tampered:
      return "tampered";
    case Kind::Missing:
      return "missing";
    case Kind::Reordered:
      return "reordered";
    case Kind::Truncated:
      return "truncated";
    case Kind::UnknownKey:
      return "unknown_key";
    case Kind::WrongKey:
      return "wrong_key";
    case Kind::Duplicate:
      return "duplicate";
    case Kind::Recovered:
      return "recovered";
    case Kind::PartialChain:
      return "partial_chain";
    case Kind::Unreadable:
      return "unreadable";
    case Kind::TamperEvent:
      return "tamper_event";
    case Kind::NoState:
      return "no_state";
  }
  return "unknown";
}

bool VerifyReport::ok() const noexcept {
  return std::none_of(findings.begin(), findings.end(),
                      [](const Finding& f) { return f.severity == Severity::Error; });
}

namespace {

// ---- Records as JSON (Boost.JSON) ------------------------------------------------------------

/// One record parsed; null when it is not a JSON object. Invalid UTF-8 inside strings is kept (a
/// header value recorded byte for byte must not hide the record's time and host). Nesting is
/// bounded: hostile input cannot exhaust the stack.
boost::json::value parse_record(std::string_view text) {
  boost::json::parse_options opt;
  opt.max_depth = 64;
  opt.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, {}, opt);
  if (ec || !v.is_object()) return nullptr;
  return v;
}

// "a.b.c" at depth 0 matches the path a/b/c; "b.c" inside "a" too.
bool matches_flat(std::string_view key, const std::vector<std::string_view>& path, std::size_t at) {
  for (std::size_t k = at; k < path.size(); ++k) {
    if (k > at) {
      if (key.empty() || key.front() != '.') return false;
      key.remove_prefix(1);
    }
    if (!key.starts_with(path[k])) return false;
    key.remove_prefix(path[k].size());
  }
  return key.empty();
}

/// The string at `path` (nested objects, or one flat member named "a.b") in `o`: the first match in
/// member order wins.
std::optional<std::string> find_string(const boost::json::object& o,
                                       const std::vector<std::string_view>& path, std::size_t at = 0) {
  for (const auto& member : o) {
    const std::string_view key(member.key().data(), member.key().size());
    if (const auto* str = member.value().if_string(); str && matches_flat(key, path, at)) {
      return std::string(str->data(), str->size());
    }
    if (const auto* obj = member.value().if_object(); obj && at + 1 < path.size() && key == path[at]) {
      if (auto found = find_string(*obj, path, at + 1)) return found;
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_string(const boost::json::value& record,
                                       const std::vector<std::string_view>& path) {
  const auto* o = record.if_object();
  return o ? find_string(*o, path) : std::nullopt;
}

// ---- Segment analysis -------------------------------------------------------------------------

struct Segment {
  std::string path;
  std::optional<std::uint64_t> name_seq;
  bool open_name = false;
  SegmentHeader h;
  std::size_t header_len = 0;
  bool authentic = false;  // header and key check verified: frames were authenticated
  // Frames by number, first occurrence (0 = the header); authenticated ones, or the cleartext view
  // when the segment cannot be authenticated (only used to check chain links then).
  std::map<std::uint32_t, Tag> tags;
  std::uint32_t max_no = 0;
  bool sealed = false;  // the highest-numbered frame is a seal frame
  bool partial_tail = false;
  std::size_t tail_bytes = 0;
};

class Scanner {
 public:
  /// A record and its JSON (null when malformed).
  using RecordFn = std::function<void(std::string_view, const boost::json::value&)>;
  Scanner(const KeyRing& keys, RecordFn on_record, VerifyOptions options)
      : keys_(keys), on_record_(std::move(on_record)), options_(std::move(options)) {}

  VerifyReport run(const std::vector<std::string>& paths) {
    std::vector<Segment> segs = collect(paths);
    std::stable_sort(segs.begin(), segs.end(),
                     [](const Segment& a, const Segment& b) { return a.h.seq < b.h.seq; });
    segs = drop_duplicates(std::move(segs));
    for (Segment& s : segs) analyze(s);
    chain(segs);
    check_state(segs);
    report_.segments = segs.size();
    std::stable_sort(report_.findings.begin(), report_.findings.end(),
                     [](const Finding& a, const Finding& b) {
                       return std::tie(a.segment, a.frame) < std::tie(b.segment, b.frame);
                     });
    return std::move(report_);
  }

 private:
  void add(Kind kind, Severity sev, std::uint64_t seg, std::uint32_t frame, const std::string& file,
           std::string detail) {
    report_.findings.push_back(Finding{kind, sev, seg, frame, file, std::move(detail)});
  }
  void error(Kind kind, const Segment& s, std::uint32_t frame, std::string detail) {
    add(kind, Severity::Error, s.h.seq, frame, s.path, std::move(detail));
  }

  void list_dir(const std::string& dir, std::vector<std::string>& out) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      add(Kind::Unreadable, Severity::Error, 0, 0, dir, std::strerror(errno));
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.starts_with("audit-") && (name.ends_with(".seg") || name.ends_with(".open")))
        names.emplace_back(name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) out.push_back(dir + (dir.ends_with('/') ? "" : "/") + n);
  }

  std::vector<Segment> collect(const std::vector<std::string>& paths) {
    std::vector<std::string> files;
    for (const std::string& p : paths) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0) {
        add(Kind::Unreadable, Severity::Error, 0, 0, p, std::strerror(errno));
      } else if (S_ISDIR(st.st_mode)) {
        dirs_.push_back(p);
        list_dir(p, files);
      } else {
        files.push_back(p);
      }
    }
    std::set<std::pair<dev_t, ino_t>> seen;  // the same file named twice (a dir and a file in it)
    std::vector<Segment> segs;
    for (const std::string& f : files) {
      struct stat st {};
      if (::stat(f.c_str(), &st) != 0) {
        add(Kind::Unreadable, Severity::Error, 0, 0, f, std::strerror(errno));
        continue;
      }
      if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
      Segment s;
      s.path = f;
      const auto slash = f.rfind('/');
      const std::string_view name = std::string_view(f).substr(slash == std::string::npos ? 0 : slash + 1);
      s.name_seq = parse_segment_file_name(name);
      s.open_name = name.ends_with(".open");
      std::string head;
      if (int err = read_file(f, head, kHeaderFixed + kMaxKeyId + kTagBytes)) {
        add(Kind::Unreadable, Severity::Error, s.name_seq.value_or(0), 0, f, std::strerror(err));
        continue;
      }
      const HeaderParse parsed = parse_header(head, s.h, s.header_len);
      if (parsed != HeaderParse::Ok) {
        short_headers_.push_back({f, s.name_seq.value_or(0), s.open_name && parsed == HeaderParse::Short});
        continue;
      }
      if (s.name_seq && *s.name_seq != s.h.seq) {
        error(Kind::Reordered, s, 0,
              "file is named for segment " + std::to_string(*s.name_seq) + " but holds segment " +
                  std::to_string(s.h.seq));
      }
      segs.push_back(std::move(s));
    }
    return segs;
  }

  std::vector<Segment> drop_duplicates(std::vector<Segment> segs) {
    std::vector<Segment> kept;
    std::map<SegmentId, std::size_t> by_id;  // index into kept
    for (Segment& s : segs) {
      if (const auto same = by_id.find(s.h.id); same != by_id.end()) {
        const Segment& first = kept[same->second];
        error(Kind::Duplicate, s, 0,
              "copy of segment " + std::to_string(first.h.seq) + " (" + first.path + ")");
        continue;
      }
      if (!kept.empty() && kept.back().h.seq == s.h.seq) {
        error(Kind::Duplicate, s, 0,
              "a second segment claims this sequence number (" + kept.back().path + ")");
        continue;
      }
      by_id.emplace(s.h.id, kept.size());
      kept.push_back(std::move(s));
    }
    return kept;
  }

  void analyze(Segment& s) {
    std::string file;
    if (int err = read_file(s.path, file)) {
      error(Kind::Unreadable, s, 0, std::strerror(err));
      return;
    }
    std::string_view view = file;
    SegmentHeader again;
    std::size_t len = 0;
    if (parse_header(view, again, len) != HeaderParse::Ok || again.id != s.h.id) {
      error(Kind::Tampered, s, 0, "header changed while reading");
      return;
    }
    Tag stored{};
    std::memcpy(stored.data(), file.data() + s.header_len, stored.size());
    const Key* key = keys_.find(s.h.key_id);
    if (!key) {
      error(Kind::UnknownKey, s, 0, "key id " + s.h.key_id + " not in the key ring");
    } else {
      KeyCheck check;
      Tag computed{};
      if (!cipher_.set_segment(*key, s.h.id, s.h.salt, s.h.seq, check)) {
        error(Kind::Unreadable, s, 0, openssl_error("key derivation failed").context);
      } else if (CRYPTO_memcmp(check.data(), s.h.key_check.data(), check.size()) != 0) {
        error(Kind::WrongKey, s, 0,
              "key " + s.h.key_id + " in the ring is not the key this segment was written with");
      } else if (!cipher_.header_tag(view.substr(0, s.header_len), computed) ||
                 CRYPTO_memcmp(computed.data(), stored.data(), stored.size()) != 0) {
        error(Kind::Tampered, s, 0, "header fails authentication (frames not checked)");
      } else {
        s.authentic = true;
      }
    }
    frames(s, view, stored);
  }

  struct SeenFrame {
    Tag tag;
    Tag prev;
    std::uint8_t type;
  };

  void frames(Segment& s, std::string_view file, const Tag& header_tag) {
    std::map<std::uint32_t, SeenFrame> seen;
    std::set<std::uint32_t> failed_claims;
    std::uint32_t max_no = 0;
    std::uint64_t records = 0;
    std::optional<std::uint64_t> seal_records;
    std::size_t offset = s.header_len + kTagBytes;
    const WalkEnd end =
        walk_frames(file, offset, [&](const unsigned char* f, std::size_t size, const FrameHead& fh) {
          Tag tag;
          std::memcpy(tag.data(), f + size - kTagBytes, tag.size());
          if (s.authentic) {
            if (!cipher_.open_frame(f, size, plain_)) {
              failed_claims.insert(fh.frame_no);
              error(Kind::Tampered, s, fh.frame_no, "frame fails authentication");
              return true;
            }
          } else if (fh.frame_no == 0 || fh.type < 1 || fh.type > 3) {
            return true;  // unauthenticated garbage: ignored for the chain view
          }
          if (seen.count(fh.frame_no)) {
            if (s.authentic) error(Kind::Duplicate, s, fh.frame_no, "frame appears again");
            return true;
          }
          seen[fh.frame_no] = SeenFrame{tag, fh.prev_tag, fh.type};
          if (fh.frame_no < max_no && s.authentic) {
            error(Kind::Reordered, s, fh.frame_no, "frame follows frame " + std::to_string(max_no));
          }
          max_no = std::max(max_no, fh.frame_no);
          if (!s.authentic) return true;
          ++report_.frames;
          if (fh.type == static_cast<std::uint8_t>(FrameType::Seal)) {
            if (plain_.size() == kSealBody) {
              seal_records = get_be(reinterpret_cast<const unsigned char*>(plain_.data()), 8);
            }
          } else if (fh.type == static_cast<std::uint8_t>(FrameType::Event)) {
            // Written by the writer itself (authenticated like any frame): what it found at start.
            const auto event = parse_record(plain_);
            error(Kind::TamperEvent, s, fh.frame_no,
                  "writer found at start: " + find_string(event, {"event", "reason"}).value_or("unknown") +
                      ": " + find_string(event, {"message"}).value_or(""));
          } else {
            records += emit(plain_);
          }
          return true;
        });
    if (!plain_.empty()) OPENSSL_cleanse(plain_.data(), plain_.size());

    s.tags[0] = header_tag;
    for (const auto& [no, f] : seen) s.tags[no] = f.tag;
    s.max_no = max_no;
    s.sealed = !seen.empty() && seen.rbegin()->second.type == static_cast<std::uint8_t>(FrameType::Seal);
    s.partial_tail = end == WalkEnd::Partial;
    s.tail_bytes = file.size() - offset;
    if (!s.authentic) return;

    report_.records += records;
    std::uint32_t gap_start = 0;
    for (std::uint32_t n = 1; n <= max_no + 1; ++n) {
      const bool present = n <= max_no && (seen.count(n) || failed_claims.count(n));
      if (!present && n <= max_no && gap_start == 0) gap_start = n;
      if ((present || n > max_no) && gap_start != 0) {
        error(Kind::Missing, s, gap_start,
              n - 1 == gap_start
                  ? "frame missing"
                  : "frames " + std::to_string(gap_start) + ".." + std::to_string(n - 1) + " missing");
        gap_start = 0;
      }
    }
    for (const auto& [no, f] : seen) {
      const auto before = seen.find(no - 1);
      const Tag* prev = no == 1 ? &header_tag : before != seen.end() ? &before->second.tag : nullptr;
      if (prev && *prev != f.prev) error(Kind::Tampered, s, no, "frame does not chain to its predecessor");
    }
    const bool has_seal = std::any_of(seen.begin(), seen.end(), [](const auto& kv) {
      return kv.second.type == static_cast<std::uint8_t>(FrameType::Seal);
    });
    if (has_seal && !seen.empty() &&
        seen.rbegin()->second.type != static_cast<std::uint8_t>(FrameType::Seal)) {
      error(Kind::Reordered, s, seen.rbegin()->first, "frame numbered after the seal frame");
    }
    if (end == WalkEnd::Oversize) {
      error(Kind::Tampered, s, max_no + 1, "frame head at offset " + std::to_string(offset) + " is corrupt");
    } else if (s.sealed && s.tail_bytes > 0) {
      error(Kind::Tampered, s, max_no, std::to_string(s.tail_bytes) + " bytes after the seal frame");
    }
    const bool complete = seen.size() == max_no && failed_claims.empty();
    if (s.sealed && seal_records && *seal_records != records && complete) {
      error(Kind::Tampered, s, max_no,
            "seal counts " + std::to_string(*seal_records) + " records, frames hold " +
                std::to_string(records));
    }
  }

  std::uint64_t emit(std::string_view plain) {
    std::uint64_t n = 0;
    while (!plain.empty()) {
      const auto nl = plain.find('\n');
      const std::string_view rec = plain.substr(0, nl);
      plain.remove_prefix(nl == std::string_view::npos ? plain.size() : nl + 1);
      ++n;
      const auto json = parse_record(rec);
      if (json.is_null()) ++report_.malformed_records;
      if (auto ts = find_string(json, {"@timestamp"})) {
        if (report_.first_timestamp.empty() || *ts < report_.first_timestamp) report_.first_timestamp = *ts;
        if (*ts > report_.last_timestamp) report_.last_timestamp = *ts;
      }
      if (on_record_) on_record_(rec, json);
    }
    return n;
  }

  void chain(const std::vector<Segment>& segs) {
    for (const auto& sh : short_headers_) {
      // A writer that crashed while creating a segment leaves an `.open` file without a full header;
      // it holds no record. Anywhere but at the end of the chain it is damage.
      const bool at_end = sh.crashed_open && (segs.empty() || sh.name_seq > segs.back().h.seq);
      add(at_end ? Kind::Truncated : Kind::Tampered, at_end ? Severity::Info : Severity::Error, sh.name_seq,
          0, sh.path,
          at_end ? "segment header incomplete (writer crashed while creating it; no records)"
                 : "malformed header");
    }
    for (std::size_t i = 0; i < segs.size(); ++i) {
      const Segment& s = segs[i];
      if (i == 0) {
        if (s.h.prev_state != PrevState::None) {
          add(Kind::PartialChain, Severity::Info, s.h.seq, 0, s.path,
              "chain starts here; segment " + std::to_string(s.h.prev_seq) +
                  " and earlier are not among the paths");
        }
      } else {
        link(segs[i - 1], s);
      }
      if (i + 1 == segs.size() && !s.sealed) {
        add(Kind::Truncated, Severity::Info, s.h.seq, s.max_no + 1, s.path,
            "final segment unsealed after frame " + std::to_string(s.max_no) +
                (s.partial_tail ? " plus " + std::to_string(s.tail_bytes) + " bytes of an incomplete frame"
                                : "") +
                " (writer crashed or still writing)");
      }
    }
  }

  void link(const Segment& p, const Segment& s) {
    if (s.h.seq != p.h.seq + 1) {
      const std::uint64_t first = p.h.seq + 1, last = s.h.seq - 1;
      add(Kind::Missing, Severity::Error, first, 0, "",
          first == last ? "segment missing"
                        : "segments " + std::to_string(first) + ".." + std::to_string(last) + " missing");
      return;
    }
    if (s.h.prev_id != p.h.id || s.h.prev_seq != p.h.seq || s.h.prev_state == PrevState::None) {
      error(Kind::Tampered, s, 0, "header does not chain to segment " + std::to_string(p.h.seq));
      return;
    }
    const std::uint32_t n = s.h.prev_frames;
    const auto tag_n = p.tags.find(n);
    const bool tag_matches = tag_n != p.tags.end() && tag_n->second == s.h.prev_tag;
    if (s.h.prev_state == PrevState::Sealed) {
      if (!p.sealed) {
        error(Kind::Truncated, p, p.max_no + 1,
              "ends after frame " + std::to_string(p.max_no) + " without its seal; segment " +
                  std::to_string(s.h.seq) + " says it was sealed at frame " + std::to_string(n));
      } else if (p.max_no != n || !tag_matches) {
        error(Kind::Tampered, p, p.max_no,
              "seal frame differs from the one segment " + std::to_string(s.h.seq) + " chains to");
      }
      return;
    }
    // PrevState::Crashed: the writer restarted and recovered p's last valid frame n.
    if (p.sealed) {
      error(Kind::Tampered, p, p.max_no,
            "sealed, but segment " + std::to_string(s.h.seq) + " says it crashed");
    } else if (p.max_no < n) {
      error(Kind::Truncated, p, p.max_no + 1,
            "ends after frame " + std::to_string(p.max_no) + "; the writer recovered it at frame " +
                std::to_string(n));
    } else if (p.max_no > n || !tag_matches) {
      error(Kind::Tampered, p, n + 1,
            "frames differ from the crash recovery point recorded by segment " + std::to_string(s.h.seq));
    } else {
      add(Kind::Recovered, Severity::Info, p.h.seq, n, p.path,
          "ended unsealed after frame " + std::to_string(n) + " (writer crash); segment " +
              std::to_string(s.h.seq) + " chains to it: recovered after crash");
    }
  }

  // The state file records where the chain ended when the writer last sealed a segment or started:
  // that segment must be among the paths, ending exactly there. This is what catches the deletion or
  // truncation of the newest sealed segments, which the chain alone cannot tell from a crash or from
  // retention. Segments after it are expected (the writer went on; an off-host copy may be older).
  void check_state(const std::vector<Segment>& segs) {
    std::string path = options_.state_file;
    if (path.empty()) {
      for (const std::string& d : dirs_) {
        const std::string candidate = d + (d.ends_with('/') ? "" : "/") + std::string(kStateFileName);
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0) {
          path = candidate;
          break;
        }
      }
      if (path.empty()) {
        if (!segs.empty()) {
          add(Kind::NoState, Severity::Info, segs.back().h.seq, 0, "",
              "no state file given or found beside the segments: deletion or truncation of the newest "
              "sealed segments is not checked (use --state)");
        }
        return;
      }
    }
    std::string text;
    if (int err = read_file(path, text, 4096)) {
      add(Kind::Unreadable, Severity::Error, 0, 0, path, std::strerror(err));
      return;
    }
    ChainState st;
    switch (parse_state(text, keys_, st)) {
      case StateParse::Ok:
        break;
      case StateParse::Malformed:
        add(Kind::Tampered, Severity::Error, 0, 0, path, "state file malformed");
        return;
      case StateParse::UnknownKey:
        add(Kind::UnknownKey, Severity::Error, 0, 0, path,
            "state file key id " + st.key_id + " not in the key ring");
        return;
      case StateParse::BadMac:
        add(Kind::Tampered, Severity::Error, 0, 0, path, "state file fails authentication");
        return;
    }
    if (st.end == PrevState::None) return;  // written before the first segment: nothing to anchor
    const std::string says = "state file " + path + " says " + describe_state(st);
    const auto named =
        std::find_if(segs.begin(), segs.end(), [&](const Segment& s) { return s.h.seq == st.seq; });
    if (named == segs.end()) {
      if (segs.empty() || segs.back().h.seq < st.seq) {
        add(Kind::Missing, Severity::Error, st.seq, 0, path,
            says + (segs.empty()
                        ? "; no segment among the paths"
                        : "; the newest segment among the paths is " + std::to_string(segs.back().h.seq)));
      } else if (segs.front().h.seq > st.seq) {
        add(Kind::PartialChain, Severity::Info, st.seq, 0, path,
            says + "; the paths start after it (end not checked)");
      }
      return;  // otherwise a gap in the chain, reported as missing by chain()
    }
    const Segment& p = *named;
    if (p.h.id != st.id) {
      error(Kind::Tampered, p, 0, "another segment (id) than the one state file " + path + " names");
      return;
    }
    const auto tag = p.tags.find(st.frames);
    const bool tag_ok = tag != p.tags.end() && tag->second == st.tag;
    const bool sealed = st.end == PrevState::Sealed;
    if (p.sealed == sealed && p.max_no == st.frames && tag_ok) return;
    if (p.max_no < st.frames) {
      error(Kind::Truncated, p, p.max_no + 1, "ends after frame " + std::to_string(p.max_no) + "; " + says);
    } else {
      error(Kind::Tampered, p, st.frames, "does not end as recorded: " + says);
    }
  }

  struct ShortHeader {
    std::string path;
    std::uint64_t name_seq;
    bool crashed_open;
  };

  const KeyRing& keys_;
  RecordFn on_record_;
  VerifyOptions options_;
  std::vector<std::string> dirs_;  // directories among the paths, in order
  SegmentCipher cipher_;
  std::string plain_;
  VerifyReport report_;
  std::vector<ShortHeader> short_headers_;
};

}  // namespace

VerifyReport verify(const KeyRing& keys, const std::vector<std::string>& paths,
                    const VerifyOptions& options) {
  return Scanner(keys, nullptr, options).run(paths);
}

VerifyReport decrypt(const KeyRing& keys, const std::vector<std::string>& paths, const DecryptFilter& filter,
                     std::ostream& out, const VerifyOptions& options) {
  const std::vector<std::string_view> ts_path{"@timestamp"}, host_path{"url", "domain"};
  Scanner scanner(
      keys,
      [&](std::string_view rec, const boost::json::value& json) {
        if (filter.since || filter.until) {
          const auto ts = find_string(json, ts_path);
          if (!ts || (filter.since && *ts < *filter.since) || (filter.until && *ts >= *filter.until)) return;
        }
        if (filter.host) {
          const auto host = find_string(json, host_path);
          if (!host || !core::iequals(*host, *filter.host)) return;
        }
        out.write(rec.data(), static_cast<std::streamsize>(rec.size()));
        out.put('\n');
      },
      options);
  return scanner.run(paths);
}

core::Result<std::string> normalize_timestamp_filter(std::string_view text) {
  using namespace std::chrono;
  const auto bad = [&] {
    return core::Error{
        core::ErrorKind::Config, core::ErrorSource::Config, core::Retryable::No,
        "bad timestamp '" + std::string(text) +
            "': use RFC 3339, e.g. 2026-11-27, 2026-11-27T08:00:00Z or 2026-11-27T09:00:00.5+01:00"};
  };
  // What an operator types on the command line: a bare date, a space for 'T', minutes only, no zone
  // (UTC).
  const auto parsed = core::parse_rfc3339(
      text, {.date_only = true, .space_separator = true, .optional_seconds = true, .optional_zone = true});
  if (!parsed) return bad();
  const auto t = system_clock::time_point{} + seconds{parsed->seconds} + nanoseconds{parsed->nanoseconds};
  return format_timestamp(time_point_cast<system_clock::duration>(t));
}

namespace {

void print_findings(const VerifyReport& r, std::ostream& os) {
  for (const Finding& f : r.findings) {
    os << (f.severity == Severity::Error ? "error" : "info") << ": segment " << f.segment;
    if (f.frame) os << " frame " << f.frame;
    os << ' ' << to_string(f.kind) << ": " << f.detail;
    if (!f.file.empty()) os << " (" << f.file << ')';
    os << '\n';
  }
}

std::size_t error_count(const VerifyReport& r) {
  return static_cast<std::size_t>(std::count_if(
      r.findings.begin(), r.findings.end(), [](const Finding& f) { return f.severity == Severity::Error; }));
}

}  // namespace

int verify_main(const std::string& keys_dir, const std::vector<std::string>& paths, std::ostream& out,
                std::ostream& err, const std::string& state_file) {
  if (paths.empty()) {
    err << "audit verify: no segment files or directories given\n";
    return 2;
  }
  auto keys = KeyRing::load(keys_dir);
  if (!keys) {
    err << keys.error().context << '\n';
    return 2;
  }
  const VerifyReport r = verify(*keys, paths, VerifyOptions{state_file});
  print_findings(r, out);
  const std::size_t errors = error_count(r);
  out << "segments " << r.segments << ", frames " << r.frames << ", records " << r.records;
  if (r.malformed_records != 0) out << " (" << r.malformed_records << " not valid JSON)";
  if (!r.first_timestamp.empty()) out << ", from " << r.first_timestamp << " to " << r.last_timestamp;
  if (errors == 0) {
    out << ": OK\n";
  } else {
    out << ": " << errors << (errors == 1 ? " problem\n" : " problems\n");
  }
  return errors == 0 ? 0 : 1;
}

int decrypt_main(const std::string& keys_dir, const std::vector<std::string>& paths,
                 std::optional<std::string> since, std::optional<std::string> until,
                 std::optional<std::string> host, std::ostream& out, std::ostream& err) {
  if (paths.empty()) {
    err << "audit decrypt: no segment files or directories given\n";
    return 2;
  }
  DecryptFilter filter;
  for (auto [in, dst] : {std::pair{&since, &filter.since}, std::pair{&until, &filter.until}}) {
    if (!*in) continue;
    auto norm = normalize_timestamp_filter(**in);
    if (!norm) {
      err << norm.error().context << '\n';
      return 2;
    }
    *dst = std::move(*norm);
  }
  filter.host = std::move(host);
  auto keys = KeyRing::load(keys_dir);
  if (!keys) {
    err << keys.error().context << '\n';
    return 2;
  }
  const VerifyReport r = decrypt(*keys, paths, filter, out);
  print_findings(r, err);
  if (r.malformed_records != 0) {
    err << "note: " << r.malformed_records
        << " records are not valid JSON: written when unfiltered, skipped by --since/--until/--host\n";
  }
  return r.ok() ? 0 : 1;
}

}  // namespace phigate::audit
