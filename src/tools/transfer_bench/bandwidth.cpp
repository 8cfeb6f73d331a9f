#include "tools/transfer_bench/bandwidth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace baton {

double measure_memcpy_gbps(size_t num_bytes, int repeats) {
  std::vector<uint8_t> src(num_bytes, 1), dst(num_bytes, 2);  // touched: pages are faulted in
  double best_s = 1e30;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    Stopwatch sw;
    std::memcpy(dst.data(), src.data(), num_bytes);
    best_s = std::min(best_s, sw.elapsed_s());
  }
  volatile uint8_t sink = dst[num_bytes / 2];
  (void)sink;
  return static_cast<double>(num_bytes) / best_s / 1e9;
}

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

namespace {

// One connected pair over 127.0.0.1: the writer's end and the reader's end.
struct SocketPair {
  Fd client;  // writes
  Fd server;  // reads
};

Result<std::vector<SocketPair>> open_loopback_pairs(int num_pairs) {
  Fd listener;
  listener.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener.fd < 0) return unavailable("socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.fd, num_pairs) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return unavailable("loopback listen: {}", std::strerror(errno));
  }
  std::vector<SocketPair> pairs(static_cast<size_t>(num_pairs));
  for (auto& pair : pairs) {
    pair.client.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (pair.client.fd < 0 || ::connect(pair.client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return unavailable("loopback connect: {}", std::strerror(errno));
    }
    pair.server.fd = ::accept(listener.fd, nullptr, nullptr);
    if (pair.server.fd < 0) return unavailable("loopback accept: {}", std::strerror(errno));
    int one = 1;
    ::setsockopt(pair.client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return pairs;
}

// Streams num_bytes from pair.client to pair.server (a writer thread, this
// thread reads); returns the bytes received.
size_t stream_once(const SocketPair& pair, size_t num_bytes, size_t chunk_bytes, bool* write_failed) {
  std::vector<uint8_t> out(chunk_bytes, 7), in(chunk_bytes);
  std::thread writer([&] {
    size_t sent = 0;
    while (sent < num_bytes) {
      const ssize_t n = ::write(pair.client.fd, out.data(), std::min(chunk_bytes, num_bytes - sent));
      if (n <= 0) {
        *write_failed = true;
        return;
      }
      sent += static_cast<size_t>(n);
    }
  });
  size_t received = 0;
  while (received < num_bytes) {
    const ssize_t n = ::read(pair.server.fd, in.data(), std::min(chunk_bytes, num_bytes - received));
    if (n <= 0) break;
    received += static_cast<size_t>(n);
  }
  writer.join();
  return received;
}

}  // namespace

Result<double> measure_loopback_tcp_gbps(size_t num_bytes, size_t chunk_bytes, int repeats, int num_streams) {
  const int k = std::max(1, num_streams);
  BATON_ASSIGN_OR_RETURN(auto pairs, open_loopback_pairs(k));
  double best_s = 1e30;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    std::vector<size_t> received(pairs.size(), 0), share(pairs.size(), 0);
    std::vector<char> write_failed(pairs.size(), 0);
    for (size_t i = 0; i < pairs.size(); ++i) share[i] = num_bytes * (i + 1) / k - num_bytes * i / k;
    Stopwatch sw;
    std::vector<std::thread> readers;
    for (size_t i = 1; i < pairs.size(); ++i) {
      readers.emplace_back([&, i] {
        bool failed = false;
        received[i] = stream_once(pairs[i], share[i], chunk_bytes, &failed);
        write_failed[i] = failed;
      });
    }
    bool failed0 = false;
    received[0] = stream_once(pairs[0], share[0], chunk_bytes, &failed0);
    write_failed[0] = failed0;
    for (auto& t : readers) t.join();
    const double elapsed_s = sw.elapsed_s();
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (write_failed[i] != 0 || received[i] != share[i]) {
        return unavailable("loopback stream {} broke after {} of {} bytes", i, received[i], share[i]);
      }
    }
    best_s = std::min(best_s, elapsed_s);
  }
  return static_cast<double>(num_bytes) / best_s / 1e9;
}

}  // namespace baton
