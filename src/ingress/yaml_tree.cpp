#include "yaml_tree_impl.hpp"

#include <simdjson.h>
#include <yaml.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <new>
#include <system_error>
#include <unordered_map>

namespace phigate::ingress::detail {

bool YamlNode::is_null() const noexcept {
  return tree_ != nullptr && tree_->at(index_).kind == YamlTree::Kind::Null;
}
bool YamlNode::is_scalar() const noexcept {
  return tree_ != nullptr && tree_->at(index_).kind == YamlTree::Kind::Scalar;
}
bool YamlNode::is_map() const noexcept {
  return tree_ != nullptr && tree_->at(index_).kind == YamlTree::Kind::Map;
}
bool YamlNode::is_seq() const noexcept {
  return tree_ != nullptr && tree_->at(index_).kind == YamlTree::Kind::Seq;
}
int YamlNode::line() const noexcept {
  return tree_ != nullptr ? tree_->at(index_).line : 0;
}

std::string_view YamlNode::scalar() const noexcept {
  return is_scalar() ? tree_->at(index_).text : std::string_view();
}

std::size_t YamlNode::size() const noexcept {
  if (is_seq()) return tree_->at(index_).count;
  if (is_map()) return tree_->at(index_).count / 2;
  return 0;
}

YamlNode YamlNode::operator[](std::size_t i) const noexcept {
  if (!is_seq() || i >= size()) return {};
  return {tree_, tree_->kids_[tree_->at(index_).first + i]};
}

YamlNode YamlNode::key(std::size_t i) const noexcept {
  if (!is_map() || i >= size()) return {};
  return {tree_, tree_->kids_[tree_->at(index_).first + 2 * i]};
}

YamlNode YamlNode::value(std::size_t i) const noexcept {
  if (!is_map() || i >= size()) return {};
  return {tree_, tree_->kids_[tree_->at(index_).first + 2 * i + 1]};
}

YamlNode YamlNode::get(std::string_view key) const noexcept {
  if (!is_map()) return {};
  const auto& e = tree_->at(index_);
  for (std::uint32_t i = e.first; i < e.first + e.count; i += 2) {
    const auto& k = tree_->at(tree_->kids_[i]);
    if (k.kind == YamlTree::Kind::Scalar && k.text == key) return {tree_, tree_->kids_[i + 1]};
  }
  return {};
}

std::string_view YamlTree::Arena::copy(const char* data, std::size_t size) {
  if (size == 0) return {};
  if (size > left_) {
    // Blocks of 64 KiB (or the one scalar that is larger): few allocations, little slack per file.
    constexpr std::size_t kBlock = 64 * 1024;
    const std::size_t n = std::max(size, kBlock);
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(n));
    next_ = blocks_.back().get();
    left_ = n;
  }
  std::memcpy(next_, data, size);
  const std::string_view out(next_, size);
  next_ += size;
  left_ -= size;
  return out;
}

void YamlTree::Arena::clear() noexcept {
  blocks_.clear();
  next_ = nullptr;
  left_ = 0;
}

namespace {

/// libyaml's parser and one event, released on every path.
struct Parser {
  Parser() {
    if (yaml_parser_initialize(&p) == 0) throw std::bad_alloc();
  }
  ~Parser() { yaml_parser_delete(&p); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  yaml_parser_t p;
};

struct Event {
  ~Event() { yaml_event_delete(&e); }
  yaml_event_t e{};
};

std::string_view text_of(const yaml_char_t* s) {
  return s != nullptr ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

int line_of(const yaml_mark_t& m) {
  constexpr auto kMaxLine = static_cast<std::size_t>(std::numeric_limits<int>::max() - 1);
  return m.line < kMaxLine ? static_cast<int>(m.line) + 1 : 0;
}

/// As yaml-cpp 0.7 read them (so that manifests keep their meaning): an empty plain value is null
/// whatever its tag (`key:`, `key: !!str`, `--- !!map` alone); a plain untagged `~`, `null`, `Null`
/// or `NULL` is null; so is anything tagged `!!null`. A quoted "null" or `!!str null` is a string.
bool is_null(const yaml_event_t& e) {
  const auto& s = e.data.scalar;
  if (s.style == YAML_PLAIN_SCALAR_STYLE && s.length == 0) return true;
  if (s.tag != nullptr) return text_of(s.tag) == "tag:yaml.org,2002:null";
  if (s.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const std::string_view v(reinterpret_cast<const char*>(s.value), s.length);
  return v == "~" || v == "null" || v == "Null" || v == "NULL";
}

YamlError parser_error(const yaml_parser_t& p, std::string_view text) {
  YamlError err;
  const std::string problem = p.problem != nullptr ? p.problem : "out of memory";
  if (p.error == YAML_READER_ERROR) {
    // The reader reports a byte offset (bad UTF-8, control characters), not a mark.
    const auto end = text.begin() + static_cast<std::ptrdiff_t>(std::min(p.problem_offset, text.size()));
    err.line = 1 + static_cast<int>(std::count(text.begin(), end, '\n'));
    err.message = problem;
    if (p.problem_value != -1) {
      char hex[16];
      const auto r = std::to_chars(hex, hex + sizeof hex, static_cast<unsigned>(p.problem_value), 16);
      err.message += " (#x" + std::string(hex, r.ptr) + ")";
    }
    return err;
  }
  err.line = p.error == YAML_MEMORY_ERROR ? 0 : line_of(p.problem_mark);
  err.message = problem;
  if (p.context != nullptr) {
    err.message += std::string(" (") + p.context + " that starts at line " +
                   std::to_string(line_of(p.context_mark)) + ")";
  }
  return err;
}

}  // namespace

std::optional<YamlError> YamlTree::parse(std::string_view text) {
  entries_.clear();
  kids_.clear();
  documents_.clear();
  arena_.clear();

  // Build-time state. `expanded[i]` is the number of nodes node i stands for once aliases are
  // expanded; it stays 0 for a mapping or sequence still open, which is how an alias to its own
  // ancestor (a cycle) is recognised.
  struct Frame {
    std::uint32_t node;
    std::size_t first_pending;
  };
  std::vector<Frame> open;
  std::vector<std::uint32_t> pending;  // children of the open containers, innermost last
  std::vector<std::uint64_t> expanded;
  std::unordered_map<std::string, std::uint32_t> anchors;  // per document (YAML 1.1 §3.2.2.2)
  std::uint64_t alias_nodes = 0;
  std::uint32_t root = 0;

  const auto fail = [&](int line, std::string message) {
    entries_.clear();
    kids_.clear();
    documents_.clear();
    arena_.clear();
    return YamlError{line, std::move(message)};
  };
  const auto attach = [&](std::uint32_t node) {
    if (open.empty()) {
      root = node;
    } else {
      pending.push_back(node);
    }
  };
  const auto add = [&](Kind kind, const yaml_event_t& e,
                       const yaml_char_t* anchor) -> std::optional<YamlError> {
    if (entries_.size() >= std::numeric_limits<std::uint32_t>::max()) {
      return fail(line_of(e.start_mark), "too many nodes");
    }
    const auto index = static_cast<std::uint32_t>(entries_.size());
    Entry entry;
    entry.kind = kind;
    entry.line = line_of(e.start_mark);
    if (kind == Kind::Scalar) {
      entry.text = arena_.copy(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
    }
    entries_.push_back(entry);
    expanded.push_back(kind == Kind::Map || kind == Kind::Seq ? 0 : 1);
    if (anchor != nullptr) anchors.insert_or_assign(std::string(text_of(anchor)), index);
    if (kind == Kind::Map || kind == Kind::Seq) {
      if (open.size() >= kMaxDepth) {
        return fail(entry.line, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
      }
      open.push_back({index, pending.size()});
    } else {
      attach(index);
    }
    return std::nullopt;
  };

  Parser parser;
  yaml_parser_set_input_string(&parser.p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  for (bool done = false; !done;) {
    Event ev;
    if (yaml_parser_parse(&parser.p, &ev.e) == 0) {
      auto err = parser_error(parser.p, text);
      return fail(err.line, std::move(err.message));
    }
    const yaml_event_t& e = ev.e;
    std::optional<YamlError> err;
    switch (e.type) {
      case YAML_STREAM_END_EVENT:
        done = true;
        break;
      case YAML_DOCUMENT_START_EVENT:
        anchors.clear();
        break;
      case YAML_DOCUMENT_END_EVENT:
        // libyaml emits exactly one root node per document (an empty plain scalar when empty).
        documents_.push_back(YamlNode(this, root));
        break;
      case YAML_SCALAR_EVENT:
        err = add(is_null(e) ? Kind::Null : Kind::Scalar, e, e.data.scalar.anchor);
        break;
      case YAML_SEQUENCE_START_EVENT:
        err = add(Kind::Seq, e, e.data.sequence_start.anchor);
        break;
      case YAML_MAPPING_START_EVENT:
        err = add(Kind::Map, e, e.data.mapping_start.anchor);
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        // The parser balances start and end events, so `open` is not empty here.
        const Frame f = open.back();
        open.pop_back();
        if (kids_.size() + (pending.size() - f.first_pending) > std::numeric_limits<std::uint32_t>::max()) {
          err = fail(line_of(e.start_mark), "too many nodes");
          break;
        }
        Entry& entry = entries_[f.node];
        entry.first = static_cast<std::uint32_t>(kids_.size());
        entry.count = static_cast<std::uint32_t>(pending.size() - f.first_pending);
        std::uint64_t total = 1;
        for (auto i = f.first_pending; i < pending.size(); ++i) total += expanded[pending[i]];
        expanded[f.node] = total;
        kids_.insert(kids_.end(), pending.begin() + static_cast<std::ptrdiff_t>(f.first_pending),
                     pending.end());
        pending.resize(f.first_pending);
        attach(f.node);
        break;
      }
      case YAML_ALIAS_EVENT: {
        const auto name = text_of(e.data.alias.anchor);
        const auto it = anchors.find(std::string(name));
        if (it == anchors.end()) {
          err = fail(line_of(e.start_mark), "unknown alias *" + std::string(name));
          break;
        }
        if (expanded[it->second] == 0) {
          err = fail(line_of(e.start_mark),
                     "alias *" + std::string(name) + " refers to a node that contains it");
          break;
        }
        // Billion laughs: a few lines of nested aliases can stand for 10^9 nodes. Aliases are shared,
        // not copied, but the readers walk every expanded node, so bound their total.
        alias_nodes += expanded[it->second];
        const std::uint64_t budget = std::max<std::uint64_t>(kMaxAliasExpansion, entries_.size());
        if (alias_nodes > budget) {
          err = fail(line_of(e.start_mark), "aliases expand to more than " + std::to_string(budget) +
                                                " nodes: refused (alias bomb)");
          break;
        }
        attach(it->second);
        break;
      }
      case YAML_NO_EVENT:
      case YAML_STREAM_START_EVENT:
        break;
    }
    if (err) return err;
  }
  return std::nullopt;
}

std::optional<YamlError> YamlTree::parse_json(std::string_view text) {
  entries_.clear();
  kids_.clear();
  documents_.clear();
  arena_.clear();
  if (text.size() > kMaxJsonSize) {
    return YamlError{0, "JSON larger than " + std::to_string(kMaxJsonSize) + " bytes: refused"};
  }
  simdjson::dom::parser parser(kMaxJsonSize);
  // The depth bound as the YAML path (simdjson checks it while parsing, so the walk below recurses
  // at most kMaxDepth levels).
  if (const auto err = parser.allocate(std::max<std::size_t>(text.size(), 64), kMaxDepth)) {
    return YamlError{0, simdjson::error_message(err)};
  }
  simdjson::dom::element root;
  if (const auto err = parser.parse(text.data(), text.size()).get(root)) {
    std::string message = simdjson::error_message(err);
    if (err == simdjson::DEPTH_ERROR) message = "nested deeper than " + std::to_string(kMaxDepth) + " levels";
    return YamlError{0, std::move(message)};
  }

  const auto scalar = [&](std::string_view text_of_scalar, Kind kind) {
    Entry e;
    e.kind = kind;
    e.text = arena_.copy(text_of_scalar.data(), text_of_scalar.size());
    entries_.push_back(e);
    return static_cast<std::uint32_t>(entries_.size() - 1);
  };
  const auto build = [&](const auto& self, simdjson::dom::element el) -> std::uint32_t {
    using simdjson::dom::element_type;
    switch (el.type()) {
      case element_type::OBJECT: {
        simdjson::dom::object object;
        if (el.get(object) != simdjson::SUCCESS) break;  // not reached: the type says object
        const auto index = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back(Entry{{}, 0, 0, 0, Kind::Map});
        std::vector<std::uint32_t> children;
        for (const auto field : object) {
          children.push_back(scalar(field.key, Kind::Scalar));
          children.push_back(self(self, field.value));
        }
        entries_[index].first = static_cast<std::uint32_t>(kids_.size());
        entries_[index].count = static_cast<std::uint32_t>(children.size());
        kids_.insert(kids_.end(), children.begin(), children.end());
        return index;
      }
      case element_type::ARRAY: {
        simdjson::dom::array array;
        if (el.get(array) != simdjson::SUCCESS) break;  // not reached: the type says array
        const auto index = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back(Entry{{}, 0, 0, 0, Kind::Seq});
        std::vector<std::uint32_t> children;
        for (const auto item : array) children.push_back(self(self, item));
        entries_[index].first = static_cast<std::uint32_t>(kids_.size());
        entries_[index].count = static_cast<std::uint32_t>(children.size());
        kids_.insert(kids_.end(), children.begin(), children.end());
        return index;
      }
      case element_type::STRING:
        return scalar(el.get_string().value_unsafe(), Kind::Scalar);
      case element_type::INT64:
        return scalar(std::to_string(el.get_int64().value_unsafe()), Kind::Scalar);
      case element_type::UINT64:
        return scalar(std::to_string(el.get_uint64().value_unsafe()), Kind::Scalar);
      case element_type::DOUBLE: {
        // Shortest round-trip text; a value that prints like an integer (8080.0 → "8080") keeps a
        // ".0", so that a field read as an integer refuses it as the YAML path refuses "8080.0".
        char buf[64];
        const auto r = std::to_chars(buf, buf + sizeof buf, el.get_double().value_unsafe());
        std::string out(buf, r.ec == std::errc{} ? r.ptr : buf);
        if (out.find_first_of(".eE") == std::string::npos) out += ".0";
        return scalar(out, Kind::Scalar);
      }
      case element_type::BOOL:
        return scalar(el.get_bool().value_unsafe() ? "true" : "false", Kind::Scalar);
      case element_type::NULL_VALUE:
        break;
    }
    return scalar({}, Kind::Null);
  };
  const std::uint32_t top = build(build, root);
  documents_.push_back(YamlNode(this, top));
  return std::nullopt;
}

}  // namespace phigate::ingress::detail
