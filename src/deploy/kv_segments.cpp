#include "deploy/kv_segments.h"

#include <filesystem>

namespace baton::deploy {

namespace fs = std::filesystem;

std::vector<std::string> kv_segments_of(pid_t pid, const std::string& shm_dir) {
  // The pid ends at the next '-', so pid 12 does not match pid 123's segments.
  const std::string prefix = "baton-kv-" + std::to_string(pid) + "-";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(shm_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.push_back(std::move(name));
  }
  return names;
}

int remove_kv_segments_of(pid_t pid, const std::string& shm_dir) {
  int num_removed = 0;
  for (const std::string& name : kv_segments_of(pid, shm_dir)) {
    std::error_code ec;
    if (fs::remove(fs::path(shm_dir) / name, ec)) ++num_removed;
  }
  return num_removed;
}

}  // namespace baton::deploy
