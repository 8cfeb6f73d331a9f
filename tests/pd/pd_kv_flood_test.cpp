// Must-show (issue 14): a prefill's KV agent under 10,000 connection attempts
// with garbage, truncated and oversized frames keeps its memory (RSS grows
// < 64 MiB) and its threads (under the agent's fixed pool), and a PD request
// made afterwards is answered correctly. Prints the numbers it measured.
// The instances run in the test process, so what is measured is the whole
// process's memory and threads: an upper bound on the prefill's.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <random>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

const std::string kModel = "qwen3-tiny";

// VmRSS (bytes) and Threads of a process, from /proc/PID/status.
std::pair<int64_t, int> rss_and_threads(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  int64_t rss_kb = 0;
  int threads = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stoll(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) threads = std::stoi(line.substr(8));
  }
  return {rss_kb * 1024, threads};
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string header(uint16_t type, uint32_t json_bytes) {
  std::string h(24, '\0');
  const uint32_t magic = 0x54564B42;
  const uint16_t version = 2;
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &version, 2);
  std::memcpy(h.data() + 6, &type, 2);
  std::memcpy(h.data() + 8, &json_bytes, 4);
  return h;
}

TEST(PdKvFlood, TenThousandHostileConnectionsThenAPdRequest) {
  const std::string model = fixture_model(kModel);
  auto agg_ptr = start_instance(model, "agg");
  auto prefill_ptr = start_instance(model, "prefill", "tcp");
  auto decode_ptr = start_instance(model, "decode", "tcp");
  ASSERT_TRUE(agg_ptr && prefill_ptr && decode_ptr);
  Instance &agg = *agg_ptr, &prefill = *prefill_ptr, &decode = *decode_ptr;
  const int kv_port = prefill.kv_port();
  ASSERT_GT(kv_port, 0);
  const std::vector<int> prompt = prompt_of(40, 13);
  // One PD request first, so that the agent's lazily built state is there.
  Json warm = completion_body(prompt_of(20, 1), 1, false);
  warm["kv_transfer_params"] = {{"do_remote_decode", true}};
  ASSERT_EQ(post_completion(prefill.url(), warm).http_status, 200);

  const auto [rss_before, threads_before] = rss_and_threads(::getpid());
  int64_t rss_peak = rss_before;
  int threads_peak = threads_before;
  std::mt19937 rng(14);
  std::deque<int> held;  // truncated frames kept open, beyond the connection cap
  constexpr int kAttempts = 10000;
  constexpr size_t kHeld = 400;
  int connected = 0;
  Stopwatch sw;
  for (int i = 0; i < kAttempts; ++i) {
    const int fd = connect_to(kv_port);
    if (fd < 0) continue;
    ++connected;
    std::string bytes;
    switch (i % 4) {
      case 0:  // garbage
        bytes.resize(64 + rng() % 200);
        for (char& c : bytes) c = static_cast<char>(rng());
        break;
      case 1:  // oversized: a header claiming 64 MiB of JSON
        bytes = header(3, 64u << 20);
        break;
      case 2:  // truncated: a header claiming 1 MiB and a little of it, then closed
        bytes = header(3, 1u << 20) + std::string(1000, '[');
        break;
      default:  // truncated and held open
        bytes = header(5, 1u << 20) + "{\"request_id\": \"";
        break;
    }
    [[maybe_unused]] ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (i % 4 == 3) {
      held.push_back(fd);
      if (held.size() > kHeld) {
        ::close(held.front());
        held.pop_front();
      }
    } else {
      ::close(fd);
    }
    if (i % 500 == 0) {
      const auto [rss, threads] = rss_and_threads(::getpid());
      rss_peak = std::max(rss_peak, rss);
      threads_peak = std::max(threads_peak, threads);
    }
  }
  const double flood_s = sw.elapsed_s();
  const auto [rss_during, threads_during] = rss_and_threads(::getpid());
  rss_peak = std::max(rss_peak, rss_during);
  threads_peak = std::max(threads_peak, threads_during);
  for (int fd : held) ::close(fd);

  // Afterwards: a PD request, answered as agg answers it.
  Json body = completion_body(prompt, 1, false);
  body["kv_transfer_params"] = {{"do_remote_decode", true}};
  Completion pre = post_completion(prefill.url(), body);
  ASSERT_EQ(pre.http_status, 200) << pre.raw;
  Json dbody = completion_body(prompt, 5, false);
  dbody["kv_transfer_params"] = pre.kv_transfer_params;
  Completion pd = post_completion(decode.url(), dbody);
  Completion want = post_completion(agg.url(), completion_body(prompt, 5, false));
  EXPECT_EQ(pd.http_status, 200) << pd.raw;
  EXPECT_EQ(pd.tokens, want.tokens);
  EXPECT_TRUE(serving(prefill));

  const double rss_growth_mib = static_cast<double>(rss_peak - rss_before) / (1 << 20);
  std::cout << "KV flood: " << connected << " of " << kAttempts << " connection attempts in " << flood_s
            << " s; prefill RSS " << rss_before / (1 << 20) << " MiB before, peak " << rss_peak / (1 << 20)
            << " MiB (growth " << rss_growth_mib << " MiB); threads " << threads_before << " before, peak "
            << threads_peak << "; PD request afterwards: HTTP " << pd.http_status
            << (pd.tokens == want.tokens ? ", same tokens as agg" : ", DIFFERENT tokens") << std::endl;
  RecordProperty("rss_growth_mib", std::to_string(rss_growth_mib));
  RecordProperty("threads_peak", threads_peak);
  EXPECT_GT(connected, kAttempts * 9 / 10);
  EXPECT_LT(rss_growth_mib, 64.0);
  EXPECT_LE(threads_peak, threads_before + 1);  // the agent's pool is fixed (one HTTP-side thread may come and go)
}

}  // namespace
}  // namespace baton::pd_test
