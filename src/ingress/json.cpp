#include "loader_impl.hpp"
#include "phigate/ingress/loader.hpp"
#include "yaml_tree_impl.hpp"

namespace phigate::ingress {

void load_json(std::string_view json, const std::string& file, LoadResult& into) {
  detail::YamlTree tree;
  // Parsed whole before any object is read, as a YAML file: malformed JSON yields one error and
  // no object at all (never half a List).
  if (const auto err = tree.parse_json(json)) {
    into.diagnostics.error(file, 0, "", "invalid JSON: " + err->message);
    return;
  }
  // doc -1: diagnostics name `file` alone ("kubernetes:Ingress ns/name"), not "file#0".
  const Origin origin{file, -1, -1, 0};
  detail::load_document(tree.documents().front(), origin, into);
}

}  // namespace phigate::ingress
