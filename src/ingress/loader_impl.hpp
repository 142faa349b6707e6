#pragma once
// The object readers of loader.cpp for the JSON entry point (json.cpp). Private to the ingress library.
#include "phigate/ingress/loader.hpp"
#include "yaml_tree_impl.hpp"

namespace phigate::ingress::detail {

/// Reads one document root (an object or a `*List`) as load_text() does, appending to `into`.
void load_document(const YamlNode& obj, const Origin& origin, LoadResult& into);

}  // namespace phigate::ingress::detail
