// KV agent request handling (src/kv_transfer/kv_agent): the input is what a
// client sends on the KV port. One agent serves a small host region in this
// process; each input goes over a fresh loopback connection, the write side
// is then closed, and the replies are drained until the agent closes. A
// request must get a reply or a closed connection, never a dead process, and
// the agent must close within the deadline once the client stops sending.
// A failure says which of the two it was (the connect, with its errno, or
// the close deadline, with the agent's counters) before aborting; running
// out of local ports (EADDRNOTAVAIL, many fuzzers sharing loopback) is the
// harness's limit, not the agent's, and is waited out (as is a connect
// interrupted by libFuzzer's own alarm signal).
// fuzz-link: baton_kv_transfer
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "fuzz_util.h"
#include "kv_transfer/kv_agent.h"

namespace {

constexpr int64_t kNumBlocks = 16;
constexpr int kCloseDeadlineMs = 5000;
constexpr int kConnectRetryMs = 10000;

struct AgentFixture {
  std::vector<uint8_t> memory;
  std::unique_ptr<baton::KvAgent> agent;
};

AgentFixture* start_agent() {
  auto* f = new AgentFixture();
  baton::KvRegionDesc region;
  region.layout.num_blocks = kNumBlocks;
  region.layout.dtype = baton::DType::kF16;
  region.layout.num_layers = 2;
  region.layout.num_kv_heads = 2;
  region.layout.head_dim = 8;
  region.layout.block_size = 4;
  f->memory.assign(region.total_bytes(), 0x5a);
  region.base = f->memory.data();
  auto desc = baton::PeerDescriptor::from_region(region, "fuzz-prefill", "fuzz-model");
  desc.transport = "tcp";
  baton::KvAgentOptions options;
  options.io_timeout_ms = 2000;
  auto agent = baton::KvAgent::start(
      region, desc, [](const std::string&, const std::string&) {}, options);
  if (!agent.is_ok()) std::abort();
  f->agent = std::move(agent).value();
  return f;
}

// Connects to the agent; -errno on failure. SO_LINGER 0: closing resets a
// connection the agent has not closed yet. One it closed after our
// half-close still leaves a TIME_WAIT (thousands of inputs a second), which
// is why connect_to waits out EADDRNOTAVAIL.
int connect_once(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  linger lin{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
  return fd;
}

// Waits out a shortage of local ports and retries a connect a signal
// interrupted; any other failure to connect means the agent stopped
// listening, which is a finding.
int connect_to(int port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kConnectRetryMs);
  for (;;) {
    const int fd = connect_once(port);
    if (fd >= 0) return fd;
    // EADDRNOTAVAIL: local ports used up; EINTR: libFuzzer's once-a-second
    // SIGALRM (its -timeout check) landed in connect. Both are the harness's.
    const bool retry = -fd == EADDRNOTAVAIL || -fd == EINTR;
    if (!retry || std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "kv_agent_fuzz: connecting to the agent on port %d failed: %s\n", port, std::strerror(-fd));
      return fd;
    }
    if (-fd == EADDRNOTAVAIL) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Sends `bytes` then closes the write side, reading and dropping replies
// meanwhile (the agent may answer before it has read everything), until the
// agent closes. False if it has not closed by the deadline.
bool exchange(int fd, const uint8_t* bytes, size_t size) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCloseDeadlineMs);
  size_t sent = 0;
  bool write_open = true;
  char buf[65536];
  for (;;) {
    if (write_open && sent == size) {
      shutdown(fd, SHUT_WR);
      write_open = false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                            std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;  // closed or reset
    }
    if (write_open && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, bytes + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        write_open = false;  // the agent closed early: fine, drain what it said
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static AgentFixture* fixture = start_agent();  // lives for the process
  const int fd = connect_to(fixture->agent->port());
  if (fd < 0) std::abort();
  const auto start = std::chrono::steady_clock::now();
  const bool closed = exchange(fd, data, size);
  ::close(fd);
  if (!closed) {  // the agent held a finished client open
    const auto held_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    const baton::KvAgentStats s = fixture->agent->stats();
    std::fprintf(
        stderr,
        "kv_agent_fuzz: the agent did not close a finished client within %d ms (held %lld ms); "
        "agent: open=%lld accepted=%llu refused=%llu evicted=%llu bad_frames=%llu errors=%llu "
        "timeouts=%llu reads=%llu done=%llu\n",
        kCloseDeadlineMs, static_cast<long long>(held_ms), static_cast<long long>(s.num_open_connections),
        static_cast<unsigned long long>(s.num_connections), static_cast<unsigned long long>(s.num_connections_refused),
        static_cast<unsigned long long>(s.num_connections_evicted), static_cast<unsigned long long>(s.num_bad_frames),
        static_cast<unsigned long long>(s.num_errors), static_cast<unsigned long long>(s.num_timeouts),
        static_cast<unsigned long long>(s.num_reads), static_cast<unsigned long long>(s.num_done));
    std::abort();
  }
  return 0;
}
