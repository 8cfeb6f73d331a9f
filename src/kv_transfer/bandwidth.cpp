#include "kv_transfer/bandwidth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
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
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<double> measure_loopback_tcp_gbps(size_t num_bytes, size_t chunk_bytes, int repeats) {
  Fd listener;
  listener.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener.fd < 0) return unavailable("socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return unavailable("loopback listen: {}", std::strerror(errno));
  }
  Fd client;
  client.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return unavailable("loopback connect: {}", std::strerror(errno));
  }
  Fd server;
  server.fd = ::accept(listener.fd, nullptr, nullptr);
  if (server.fd < 0) return unavailable("loopback accept: {}", std::strerror(errno));
  int one = 1;
  ::setsockopt(client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  std::vector<uint8_t> out(chunk_bytes, 7), in(chunk_bytes);
  double best_s = 1e30;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    bool write_failed = false;
    Stopwatch sw;
    std::thread writer([&] {
      size_t sent = 0;
      while (sent < num_bytes) {
        const ssize_t n = ::write(client.fd, out.data(), std::min(chunk_bytes, num_bytes - sent));
        if (n <= 0) {
          write_failed = true;
          return;
        }
        sent += static_cast<size_t>(n);
      }
    });
    size_t received = 0;
    while (received < num_bytes) {
      const ssize_t n = ::read(server.fd, in.data(), std::min(chunk_bytes, num_bytes - received));
      if (n <= 0) break;
      received += static_cast<size_t>(n);
    }
    writer.join();
    if (write_failed || received != num_bytes) {
      return unavailable("loopback stream broke after {} of {} bytes", received, num_bytes);
    }
    best_s = std::min(best_s, sw.elapsed_s());
  }
  return static_cast<double>(num_bytes) / best_s / 1e9;
}

}  // namespace baton
