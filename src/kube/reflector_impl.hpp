#pragma once
// Pure parts of the reflector (private to the kube library; unit-tested): reading a LIST page and
// one watch line from the API server, which may be broken or hostile.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "phigate/kube/reflector.hpp"

namespace phigate::kube::detail {

/// `object_json` ("{...}") with "kind" and "apiVersion" of `kind` inserted where missing (items of
/// a typed List come without them).
std::string with_type_meta(std::string_view object_json, bool has_kind, bool has_api_version,
                           const ResourceKind& kind);

struct ListPage {
  std::string resource_version;    // metadata.resourceVersion (required)
  std::string continue_token;      // metadata.continue; "" on the last page
  std::vector<std::string> items;  // JSON of each item, kind and apiVersion set
};
/// nullopt (and `error`) on malformed JSON, a missing resourceVersion, items that are not objects
/// or that are of another kind than `kind`.
std::optional<ListPage> parse_list_page(std::string_view body, const ResourceKind& kind, std::string& error);

struct WatchEvent {
  enum class Type { Added, Modified, Deleted, Bookmark, Error } type = Type::Added;
  std::string resource_version;  // of the object ("" for an ERROR)
  std::string object;            // ADDED/MODIFIED/DELETED: the object's JSON, kind and apiVersion set
  bool gone = false;             // ERROR: 410 Gone / Expired (re-LIST)
  std::string message;           // ERROR: the Status message (bounded, one line)
};
/// One line of a watch stream; nullopt (and `error`) when it is not a well-formed event of `kind`.
std::optional<WatchEvent> parse_watch_event(std::string_view line, const ResourceKind& kind,
                                            std::string& error);

}  // namespace phigate::kube::detail
