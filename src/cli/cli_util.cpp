#include "cli/cli_util.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <sstream>

#include <fmt/format.h>

#include "common/log.h"

namespace baton::cli {

namespace {
std::atomic<bool> g_stop_requested{false};  // written by the signal handler only
void on_stop_signal(int) { g_stop_requested.store(true); }
}  // namespace

std::string self_binary() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "baton";
  buf[n] = '\0';
  return buf;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

const std::atomic<bool>& install_stop_flag() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return g_stop_requested;
}

void raise_fd_limit(long needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) < needed) {
    BATON_LOG_WARN(
        "open descriptors are limited to {} (ulimit -n), below the {} the connection cap needs: "
        "raise the limit or lower --max-connections",
        static_cast<long>(rl.rlim_cur), needed);
  }
}

std::string format_parameter_count(uint64_t count) {
  const double n = static_cast<double>(count);
  if (count >= 1'000'000'000) return fmt::format("{:.2f}B", n / 1e9);
  if (count >= 1'000'000) return fmt::format("{:.3g}M", n / 1e6);
  if (count >= 1'000) return fmt::format("{:.3g}K", n / 1e3);
  return std::to_string(count);
}

}  // namespace baton::cli
