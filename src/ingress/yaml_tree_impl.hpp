#pragma once
// A read-only YAML document tree built from libyaml's event parser (private to the ingress library).
// yaml-cpp builds a shared_ptr node graph and spent ~80% of a 5 MB manifest load in its regex scanner
// and allocator; this tree is three flat vectors and an arena per file. JSON parses through the same
// path (kubectl's JSON is valid YAML).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace phigate::ingress::detail {

class YamlTree;

/// A handle to one node of a YamlTree: two words, copied freely. A default-constructed handle is
/// "absent" (a missing key); every accessor works on it. Valid while its tree lives.
class YamlNode {
 public:
  YamlNode() = default;

  bool defined() const noexcept { return tree_ != nullptr; }
  bool is_null() const noexcept;
  bool is_scalar() const noexcept;
  bool is_map() const noexcept;
  bool is_seq() const noexcept;
  /// Defined and not null: absent, `~`, `null` and an empty value all read as "not given".
  bool present() const noexcept { return defined() && !is_null(); }
  /// 1-based line where the node starts; 0 when absent.
  int line() const noexcept;

  /// The scalar's text (after unquoting, escapes and folding); "" for any other node.
  std::string_view scalar() const noexcept;
  /// Items of a sequence or key/value pairs of a mapping; 0 for any other node.
  std::size_t size() const noexcept;
  /// Item `i` of a sequence (absent when out of range or not a sequence).
  YamlNode operator[](std::size_t i) const noexcept;
  /// Key and value of pair `i` of a mapping (absent when out of range or not a mapping).
  YamlNode key(std::size_t i) const noexcept;
  YamlNode value(std::size_t i) const noexcept;
  /// The value of the first pair whose key is a scalar equal to `key`; absent when there is none or
  /// this is not a mapping. Linear: Kubernetes mappings are small.
  YamlNode get(std::string_view key) const noexcept;

 private:
  friend class YamlTree;
  YamlNode(const YamlTree* tree, std::uint32_t index) : tree_(tree), index_(index) {}

  const YamlTree* tree_ = nullptr;
  std::uint32_t index_ = 0;
};

/// A parse failure: 1-based line (0 when unknown) and a one-line message.
struct YamlError {
  int line = 0;
  std::string message;
};

/// Every document of one YAML stream. Aliases are resolved by sharing the anchored node (the tree
/// is a DAG); the total size they expand to is capped (see kMaxAliasExpansion) so that a
/// "billion laughs" file cannot make the readers build an exponential amount of output.
class YamlTree {
 public:
  /// Nodes that aliases may add beyond those written in the file: the larger of this and the
  /// file's own node count, so the expanded size stays linear in the input.
  static constexpr std::uint64_t kMaxAliasExpansion = 100'000;
  /// Nesting deeper than this is refused (Kubernetes objects nest a few dozen levels at most).
  static constexpr std::size_t kMaxDepth = 1000;

  /// Parses `text` (UTF-8/16 YAML 1.1 or JSON, any number of documents). On failure the tree is
  /// empty and the error names the line. Replaces any previous content.
  std::optional<YamlError> parse(std::string_view text);

  /// JSON text larger than this is refused by parse_json (the API client caps a body at 256 MiB).
  static constexpr std::size_t kMaxJsonSize = 256u << 20;

  /// Parses one JSON document (as the API server sends it) with simdjson into the same tree:
  /// objects are mappings, arrays sequences, strings scalars, numbers and booleans scalars holding
  /// their JSON text (8080, true; a non-integer number keeps a '.' or an exponent so that an integer
  /// field never reads it), null a Null node. Lines are 0. Nesting is bounded by kMaxDepth and size
  /// by kMaxJsonSize. On failure the tree is empty. Replaces any previous content.
  std::optional<YamlError> parse_json(std::string_view text);

  /// One root per document, in order; an empty document ("---" alone) is a null node.
  const std::vector<YamlNode>& documents() const noexcept { return documents_; }

 private:
  friend class YamlNode;

  enum class Kind : std::uint8_t { Null, Scalar, Map, Seq };
  struct Entry {
    std::string_view text;    // Scalar: bytes in the arena
    std::uint32_t first = 0;  // Map/Seq: index of the first child in kids_ (a map: key, value, ...)
    std::uint32_t count = 0;  // Map/Seq: number of children (a map: twice its pairs)
    int line = 0;             // 1-based
    Kind kind = Kind::Null;
  };

  /// Scalar bytes in a few large blocks, so that string_views stay valid as it grows.
  class Arena {
   public:
    std::string_view copy(const char* data, std::size_t size);
    void clear() noexcept;

   private:
    std::vector<std::unique_ptr<char[]>> blocks_;
    char* next_ = nullptr;
    std::size_t left_ = 0;
  };

  const Entry& at(std::uint32_t i) const noexcept { return entries_[i]; }

  std::vector<Entry> entries_;
  std::vector<std::uint32_t> kids_;
  std::vector<YamlNode> documents_;
  Arena arena_;
};

}  // namespace phigate::ingress::detail
