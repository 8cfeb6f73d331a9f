// Small helpers shared by the commands: the running binary's path, comma
// lists, a stop flag raised by SIGINT/SIGTERM, the descriptor limit, parameter counts.
#pragma once

#include <atomic>
#include <cstdint>
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

// Raises the soft limit on open descriptors to the hard one (many concurrent
// connections need many), and warns when it stays below `needed` (a server's
// connection cap plus what else it holds): it would then run out of
// descriptors before its cap refuses anyone.
void raise_fd_limit(long needed);

// A parameter count in the unit that suits it: "8.03B", "14.2M", "918K", "512".
std::string format_parameter_count(uint64_t count);

}  // namespace baton::cli
