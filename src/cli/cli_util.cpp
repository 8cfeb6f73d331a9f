#include "cli/cli_util.h"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <sstream>

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

}  // namespace baton::cli
