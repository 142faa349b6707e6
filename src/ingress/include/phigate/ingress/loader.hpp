#pragma once
// Reads Kubernetes manifests (as `kubectl get -o yaml|json` writes them) from a directory tree into
// plain Resources. Control thread only: blocking file I/O, no other side effect.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "phigate/config/diagnostics.hpp"
#include "phigate/ingress/resources.hpp"

namespace phigate::ingress {

/// An object of a kind or apiVersion phigate does not read (for a debug log line).
struct IgnoredObject {
  Origin origin;
  std::string api_version;
  std::string kind;
  std::string name;  // "ns/name", or "" when it has none
};

struct LoadResult {
  Resources resources;
  std::vector<IgnoredObject> ignored;
  config::Diagnostics diagnostics;  // file is "path#doc"; resource is "Kind ns/name"
  std::size_t files = 0;            // manifest files read
  std::size_t broken_files = 0;     // unreadable or not YAML: their objects are missing from `resources`
  std::size_t parsed_files = 0;  // files parsed by this call (the others came from a DirectoryLoader cache)
};

/// Loads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursive, sorted paths, names starting
/// with '.' skipped, symlinks followed). Never throws; every problem is in `diagnostics`.
LoadResult load_directory(const std::string& dir);

/// load_directory() for repeated reloads: a file whose bytes are unchanged since the previous load()
/// is not parsed again (parsing runs at about 30 MB/s), so a reload after a one-file change costs the
/// reads plus that file. The result is identical to load_directory(). Control thread only.
class DirectoryLoader {
 public:
  LoadResult load(const std::string& dir);

 private:
  struct CachedFile {
    std::string text;
    LoadResult parsed;
  };
  std::unordered_map<std::string, CachedFile> cache_;  // by path as found
};

/// The manifest files under `dir` as every loader walks it (load_directory, load_workloads, the
/// evidence of `phigate check`): `*.yaml`, `*.yml`, `*.json`, recursive, sorted; names starting
/// with '.' skipped (a mounted ConfigMap's `..data` is read once); symlinked folders followed
/// once each, so a loop ends; 32 levels at most. Problems listing a folder go to `diag`.
std::vector<std::string> manifest_files(const std::string& dir, config::Diagnostics& diag);

/// Appends `part` to `into`: its objects after those already there, its diagnostics (errors counted
/// as errors) and its file counts.
void append(LoadResult& into, const LoadResult& part);

/// Loads one file's `text` as if read from `file`, appending to `into` (tests, `phigate validate`).
void load_text(const std::string& text, const std::string& file, LoadResult& into);

/// One JSON document as the API server sends it (an object with kind/apiVersion, or a typed
/// `*List` whose items lack them), parsed with simdjson into the same tree the YAML reader builds
/// and read by the same object readers, appended to `into`. `file` names it in diagnostics
/// ("kubernetes:Ingress ns/name"). Lines are 0 (JSON from the API has none worth naming).
void load_json(std::string_view json, const std::string& file, LoadResult& into);

/// Base64 (RFC 4648 §4, padded) as the API server decodes Secret data (Go's StdEncoding: CR and LF
/// are skipped). nullopt on any other character, bad padding or bad length.
std::optional<std::string> decode_base64(std::string_view text);

/// RFC 3339 date-time ("2024-05-01T10:00:00Z", "...T12:00:00.5+02:00") → seconds since the Unix epoch.
/// Fractional seconds are accepted and dropped (metav1.Time has second precision).
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

}  // namespace phigate::ingress
