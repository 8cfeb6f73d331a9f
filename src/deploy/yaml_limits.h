// Limits on the YAML documents baton reads (deployment specs, experiments):
// nesting as deep as kMaxJsonDepth at most, and a bounded number of nodes
// counting each alias as the node it repeats, so that nothing downstream
// (recursive conversions, YAML::Dump, yaml_to_json) recurses deeply or
// expands an alias bomb. yaml-cpp's own parser stops at 2000 levels.
#pragma once

#include <cstddef>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace baton::deploy {

inline constexpr size_t kMaxYamlNodes = 20000;

// kInvalidArgument naming `what` when `root` nests deeper than
// kMaxJsonDepth or holds more than kMaxYamlNodes nodes. Iterative.
Status check_yaml_limits(const YAML::Node& root, std::string_view what);

}  // namespace baton::deploy
