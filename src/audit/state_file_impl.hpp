#pragma once
// Private: the chain state file `audit.state` beside the segments (layout and purpose: README.md,
// "State file"). It records where the chain ended when the writer last sealed a segment or started,
// so that a restart (and `verify --state`) can tell a crash from a deleted or truncated sealed segment.
#include <cstdint>
#include <string>
#include <string_view>

#include "format_impl.hpp"
#include "phigate/audit/key_ring.hpp"

namespace phigate::audit::detail {

inline constexpr std::string_view kStateFileName = "audit.state";

/// The end of the chain: exactly what the next segment header chains to (its prev_* fields).
struct ChainState {
  PrevState end = PrevState::None;  // None: no segment yet
  SegmentId id{};
  std::uint64_t seq = 0;
  std::uint32_t frames = 0;  // the last frame number (the seal frame when sealed)
  Tag tag{};                 // that frame's tag (the header tag when there is no frame)
  std::string key_id;        // the key whose derived MAC key authenticates the file
  bool operator==(const ChainState&) const = default;
};

/// The file's text, MAC line included. `key.id` becomes `s.key_id`. Empty on an OpenSSL failure.
std::string encode_state(const ChainState& s, const Key& key);

enum class StateParse : std::uint8_t {
  Ok,
  Malformed,   // not the layout encode_state writes
  UnknownKey,  // its key id is not in the ring: it cannot be authenticated
  BadMac,      // altered, or made with another key of that id
};
/// Parses and authenticates `text`. On Ok sets `out`; otherwise `out.key_id` is set if the key line parsed.
StateParse parse_state(std::string_view text, const KeyRing& keys, ChainState& out);

/// "sealed segment 42 at frame 17" / "crashed segment 42 after frame 17" / "no segment yet".
std::string describe_state(const ChainState& s);

}  // namespace phigate::audit::detail
