#include "deploy/yaml_limits.h"

#include <utility>
#include <vector>

#include "common/json.h"

namespace baton::deploy {

Status check_yaml_limits(const YAML::Node& root, std::string_view what) {
  std::vector<std::pair<YAML::Node, int>> pending;  // node, its depth
  pending.emplace_back(root, 0);
  size_t num_nodes = 0;
  while (!pending.empty()) {
    auto [node, depth] = std::move(pending.back());
    pending.pop_back();
    if (++num_nodes > kMaxYamlNodes) {
      return invalid_argument("{}: more than {} YAML nodes (aliases count as what they repeat)", what, kMaxYamlNodes);
    }
    if (!node.IsMap() && !node.IsSequence()) continue;
    if (depth >= kMaxJsonDepth) {
      return invalid_argument("{}: YAML nested deeper than {} levels", what, kMaxJsonDepth);
    }
    for (const auto& item : node) {
      if (node.IsMap()) {
        pending.emplace_back(item.first, depth + 1);
        pending.emplace_back(item.second, depth + 1);
      } else {
        pending.emplace_back(item, depth + 1);
      }
    }
  }
  return Status::ok();
}

}  // namespace baton::deploy
