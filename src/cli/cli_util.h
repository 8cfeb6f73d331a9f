// Small helpers shared by the commands: the running binary's path, comma
// lists, and a stop flag raised by SIGINT/SIGTERM.
#pragma once

#include <atomic>
#include <string>
#include <vector>

namespace baton::cli {

// The path of the running executable (to start more baton processes).
std::string self_binary();

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_commas(const std::string& text);

// Installs SIGINT/SIGTERM handlers that raise the returned flag (once per
// process; later calls return the same flag).
const std::atomic<bool>& install_stop_flag();

}  // namespace baton::cli
