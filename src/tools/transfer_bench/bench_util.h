// Helpers shared by the CPU and GPU parts of `baton bench-transfer`.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton {

// Every block 0..n-1 once, as runs of 1..16 consecutive ids in shuffled
// order (what a block allocator hands out after some churn).
std::vector<int64_t> scattered_block_ids(int64_t n, uint64_t seed);

// The 64-bit word at index `i` of the bench's fill pattern (splitmix64).
inline uint64_t pattern_word(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills num_bytes (a multiple of 8) with the pattern, starting at word
// `first_word`.
void fill_pattern(void* data, size_t num_bytes, uint64_t seed, uint64_t first_word = 0);

// A serving process forked by the bench. Destroying it closes its stop pipe
// (the child sees end-of-file and exits) and waits for it.
struct ForkedServer {
  pid_t pid = -1;
  int stop_fd = -1;  // write end of the child's stop pipe
  int port = -1;     // what the child reported
  ForkedServer() = default;
  ForkedServer(const ForkedServer&) = delete;
  ForkedServer& operator=(const ForkedServer&) = delete;
  ~ForkedServer();
};

// Forks a child that runs serve(port_fd, stop_fd): it writes its port (an
// int) to port_fd, serves until stop_fd reaches end-of-file, and never
// returns (_exit). `close_in_child`: descriptors the child closes first (the
// stop pipes of servers forked earlier, or those would never see end-of-file).
// `what` names the server in the error when it reports no port.
Result<std::unique_ptr<ForkedServer>> fork_server(const std::function<void(int port_fd, int stop_fd)>& serve,
                                                  const std::vector<int>& close_in_child, const std::string& what);

}  // namespace baton
