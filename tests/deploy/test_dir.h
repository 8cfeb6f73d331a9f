// A fresh temporary directory per test process and tag.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace baton::deploy {

inline std::filesystem::path fresh_test_dir(const std::string& prefix, const std::string& tag) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              (prefix + "-" + std::to_string(getpid()) + "-" + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace baton::deploy
