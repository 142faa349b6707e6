#pragma once
// Offline tools over audit segments: verify (integrity of every frame, segment and the chain) and
// decrypt (JSON lines, filtered by time and host). Used by the CLI; read-only on the files.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/audit/key_ring.hpp"
#include "phigate/core/result.hpp"

namespace phigate::audit {

struct Finding {
  enum class Kind : std::uint8_t {
    Tampered,      // authentication failed, malformed structure, broken chain link or trailing bytes
    Missing,       // a frame or segment absent from the sequence
    Reordered,     // a frame or segment out of place (or a file named for another segment)
    Truncated,     // a segment ends early; Info when it is the final, unsealed one (writer crash)
    UnknownKey,    // the header names a key id not in the ring
    WrongKey,      // the ring's key with that id is not the one the segment was written with
    Duplicate,     // a frame or segment present twice
    Recovered,     // Info: a crashed segment that the next segment's header chains to
    PartialChain,  // Info: the first segment's predecessors are not among the paths (archived)
    Unreadable,    // a path that cannot be read
    TamperEvent,   // the writer found at start that the chain's end disagreed with its state file
    NoState,       // Info: no state file was given or found beside the segments: the end is unchecked
  };
  enum class Severity : std::uint8_t { Info, Error };

  Kind kind = Kind::Tampered;
  Severity severity = Severity::Error;
  std::uint64_t segment = 0;  // sequence number from the header (0 if unknown)
  std::uint32_t frame = 0;    // 0: the header or the segment as a whole
  std::string file;
  std::string detail;  // never record contents or key material
};

std::string_view to_string(Finding::Kind kind) noexcept;

struct VerifyReport {
  std::uint64_t segments = 0;
  std::uint64_t frames = 0;             // authenticated frames, seal frames included
  std::uint64_t records = 0;            // records in authenticated data frames (duplicates not counted)
  std::uint64_t malformed_records = 0;  // of those, lines that are not one JSON object (no time, no host)
  std::string first_timestamp;          // smallest and largest `@timestamp` seen; empty if none
  std::string last_timestamp;
  std::vector<Finding> findings;  // sorted by segment, frame

  /// True when no finding has Severity::Error.
  bool ok() const noexcept;
};

struct VerifyOptions {
  /// State file (`audit.state`, e.g. an off-host copy) whose recorded chain end must be among the
  /// segments, ending exactly as recorded. Empty: `audit.state` in the first directory among the paths
  /// that has one; if none does, an Info `no_state` finding.
  std::string state_file;
};

/// Verifies the segments in `paths` (files, or directories whose `audit-*.seg` / `audit-*.open` files
/// are all taken), ordered by the sequence numbers in their authenticated headers, and the chain's end
/// against a state file (`options`). Never throws on bad input: every problem becomes a Finding. Any
/// thread; reads files only.
VerifyReport verify(const KeyRing& keys, const std::vector<std::string>& paths,
                    const VerifyOptions& options = {});

struct DecryptFilter {
  std::optional<std::string> since;  // inclusive; normalised by normalize_timestamp_filter()
  std::optional<std::string> until;  // exclusive
  std::optional<std::string> host;   // `url.domain` (nested or flat key) equals, ASCII case-insensitive
};

/// Like verify(), and writes each record of an authenticated frame that passes `filter` to `out`, one
/// line each, in chain order. Records of frames that fail authentication are never written.
VerifyReport decrypt(const KeyRing& keys, const std::vector<std::string>& paths, const DecryptFilter& filter,
                     std::ostream& out, const VerifyOptions& options = {});

/// Normalises "2026-11-27", "2026-11-27T08:00Z", "2026-11-27T08:00:00.5+01:00", ... to the record form
/// "2026-11-27T07:00:00.500000000Z" so that filters compare lexicographically. Error: Config.
core::Result<std::string> normalize_timestamp_filter(std::string_view text);

/// `phigate audit verify [--state FILE]`: loads keys, verifies, prints findings and a summary line to
/// `out`, setup errors to `err`. `state_file` as VerifyOptions. Returns 0 (no error findings),
/// 1 (problems) or 2 (bad keys dir or arguments).
int verify_main(const std::string& keys_dir, const std::vector<std::string>& paths, std::ostream& out,
                std::ostream& err, const std::string& state_file = {});

/// `phigate audit decrypt`: records to `out`, findings to `err`. Exit codes as verify_main.
int decrypt_main(const std::string& keys_dir, const std::vector<std::string>& paths,
                 std::optional<std::string> since, std::optional<std::string> until,
                 std::optional<std::string> host, std::ostream& out, std::ostream& err);

}  // namespace phigate::audit
