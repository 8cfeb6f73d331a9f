// Helpers of the tests that run processes: a fresh temporary directory per
// test process and tag, a whole file as a string, whether a pid is alive.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace baton::deploy {

inline std::filesystem::path fresh_test_dir(const std::string& prefix, const std::string& tag) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              (prefix + "-" + std::to_string(getpid()) + "-" + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The file's bytes ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace baton::deploy
