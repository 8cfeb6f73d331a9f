#include "tools/transfer_bench/bench_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>
#include <utility>

namespace baton {

std::vector<int64_t> scattered_block_ids(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t b = 0; b < n;) {
    const int64_t len = std::min<int64_t>(n - b, 1 + static_cast<int64_t>(rng() % 16));
    runs.emplace_back(b, len);
    b += len;
  }
  std::shuffle(runs.begin(), runs.end(), rng);
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(n));
  for (auto [first, len] : runs) {
    for (int64_t i = 0; i < len; ++i) ids.push_back(first + i);
  }
  return ids;
}

void fill_pattern(void* data, size_t num_bytes, uint64_t seed, uint64_t first_word) {
  auto* p = static_cast<uint64_t*>(data);
  for (size_t i = 0; i < num_bytes / 8; ++i) p[i] = pattern_word(seed, first_word + i);
}

ForkedServer::~ForkedServer() {
  if (stop_fd >= 0) ::close(stop_fd);
  if (pid > 0) ::waitpid(pid, nullptr, 0);
}

Result<std::unique_ptr<ForkedServer>> fork_server(const std::function<void(int port_fd, int stop_fd)>& serve,
                                                  const std::vector<int>& close_in_child, const std::string& what) {
  int port_pipe[2], stop_pipe[2];
  if (::pipe(port_pipe) != 0) return internal_error("pipe failed: {}", std::strerror(errno));
  if (::pipe(stop_pipe) != 0) {
    ::close(port_pipe[0]);
    ::close(port_pipe[1]);
    return internal_error("pipe failed: {}", std::strerror(errno));
  }
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) return internal_error("fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    ::close(port_pipe[0]);
    ::close(stop_pipe[1]);
    for (int fd : close_in_child) ::close(fd);
    serve(port_pipe[1], stop_pipe[0]);
    ::_exit(0);  // serve does not return; in case it does
  }
  ::close(port_pipe[1]);
  ::close(stop_pipe[0]);
  auto server = std::make_unique<ForkedServer>();
  server->pid = pid;
  server->stop_fd = stop_pipe[1];
  if (::read(port_pipe[0], &server->port, sizeof(server->port)) != sizeof(server->port)) server->port = -1;
  ::close(port_pipe[0]);
  if (server->port <= 0) return unavailable("the serving process for {} failed to start", what);
  return server;
}

}  // namespace baton
