// End to end: `baton bench` against a real `baton serve` on the CPU (a tiny
// random Qwen3 with the real Qwen3 tokenizer), producing JSON, JSONL, CSV and
// the HTML report, then a headless-Chromium screenshot of the report.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/json.h"

extern char** environ;

namespace baton::bench {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs a command to completion; returns its exit status, output in `out`.
int run(const std::string& cmd, std::string* out = nullptr) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  int st = pclose(p);
  if (out) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A child process with stdout and stderr in a file, stopped on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

TEST(BenchEndToEndTest, AgainstRealBatonServeWithReportScreenshot) {
  const std::string baton = BATON_BINARY;
  std::string help;
  run(baton + " --help", &help);
  if (help.find("  serve") == std::string::npos) {
    GTEST_SKIP() << "`baton serve` is not a registered command yet: the end-to-end bench test needs it";
  }
  fs::path tmp = fs::temp_directory_path() / ("baton_bench_e2e_" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::string out;
  ASSERT_EQ(run(baton + " init-model --preset tiny-qwen3 --out " + (tmp / "model").string(), &out), 0) << out;
  ASSERT_TRUE(fs::exists(tmp / "model" / "tokenizer.json")) << out;

  Child server({baton, "serve", "--model", (tmp / "model").string(), "--port", "0", "--num-threads", "1",
                "--served-model-name", "tiny"},
               tmp / "serve.log");
  ASSERT_GT(server.pid(), 0);
  std::string url;
  std::regex listening("listening on (http://[0-9.]+:[0-9]+)");
  for (int i = 0; i < 600 && url.empty(); ++i) {
    std::smatch m;
    std::string log = slurp(tmp / "serve.log");
    if (std::regex_search(log, m, listening)) url = m[1];
    if (url.empty()) {
      ASSERT_TRUE(server.alive()) << "baton serve exited:\n" << log;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_FALSE(url.empty()) << "baton serve did not print its URL:\n" << slurp(tmp / "serve.log");

  // A short search: 4 trials of 3 s, so that the report has a curve.
  const fs::path res = tmp / "out";
  std::string cmd = baton + " bench --url " + url +
                    " --input-len 16:48 --output-len 8 --vocab-size 512 --duration-s 3 --warmup 2"
                    " --slo 'ttft:p90<2s,tpot:p90<500ms,e2e:p99<10s' --search --search-start 4"
                    " --search-max-trials 4 --label cpu-tiny --no-progress --out " +
                    res.string();
  int rc = run(cmd, &out);
  ASSERT_EQ(rc, 0) << out << "\nserver log:\n" << slurp(tmp / "serve.log");
  EXPECT_NE(out.find("TTFT  = first content-bearing chunk - send"), std::string::npos) << out;
  EXPECT_NE(out.find("max sustainable rate"), std::string::npos) << out;

  // JSON summary
  auto doc = read_json_file((res / "summary.json").string());
  ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
  EXPECT_EQ((*doc)["format"], "baton-bench-result/1");
  EXPECT_EQ((*doc)["label"], "cpu-tiny");
  ASSERT_GE((*doc)["runs"].size(), 2u);
  const auto& first = (*doc)["runs"][0]["metrics"];
  EXPECT_GT(first["num_ok"].get<int>(), 0) << first.dump(1);
  EXPECT_EQ(first["num_failed"].get<int>(), 0) << first.dump(1);
  EXPECT_EQ(first["num_without_usage"].get<int>(), 0);
  // Exact output lengths: 8 tokens per request, from the server's usage.
  EXPECT_EQ(first["total_output_tokens"].get<int64_t>(), 8 * first["num_ok"].get<int64_t>());
  EXPECT_GT(first["ttft_ms"]["p50"].get<double>(), 0.0);
  EXPECT_GT(first["tpot_ms"]["p50"].get<double>(), 0.0);
  EXPECT_EQ((*doc)["search"]["num_trials"].get<int>(), static_cast<int>((*doc)["runs"].size()));
  EXPECT_FALSE((*doc)["cdf"]["ttft_ms"].empty());

  // JSONL records and CSV
  std::ifstream jl(res / "requests.jsonl");
  std::string line;
  size_t num_lines = 0, num_ok = 0;
  while (std::getline(jl, line)) {
    auto j = parse_json(line);
    ASSERT_TRUE(j.is_ok()) << line;
    ++num_lines;
    if ((*j)["ok"].get<bool>()) {
      ++num_ok;
      EXPECT_EQ((*j)["output_tokens"], 8);
      // One chunk per token; tokens that decode to no text yet (a partial UTF-8
      // sequence) carry no content, so at most 7 gaps between content chunks.
      EXPECT_LE((*j)["itl_ms"].size(), 7u) << line;
      EXPECT_GT((*j)["ttft_ms"].get<double>(), 0.0) << line;
    }
  }
  EXPECT_GT(num_lines, 4u);
  EXPECT_EQ(num_ok, num_lines);
  std::string csv = slurp(res / "runs.csv");
  EXPECT_EQ(csv.rfind("label,run,target_rate_rps", 0), 0u);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), (*doc)["runs"].size() + 1);

  // A self-contained report: Chart.js inlined, nothing fetched.
  std::string html = slurp(res / "report.html");
  EXPECT_NE(html.find("Chart.js v4"), std::string::npos);
  EXPECT_NE(html.find("new Chart("), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link "), std::string::npos);

  // compare: of itself with a clear error for duplicate labels; of one file, fine.
  ASSERT_NE(run(baton + " bench compare " + (res / "summary.json").string() + " " + (res / "summary.json").string(),
                &out),
            0);
  EXPECT_NE(out.find("share the label 'cpu-tiny'"), std::string::npos) << out;
  ASSERT_EQ(run(baton + " bench compare " + (res / "summary.json").string() + " --out " + (tmp / "cmp").string(),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("cpu-tiny"), std::string::npos);

  // Headless Chromium screenshot of the report.
  const std::string chromium = "/usr/bin/chromium";
  ASSERT_TRUE(fs::exists(chromium)) << "Chromium is missing: scripts/install-deps.sh installs Debian's chromium";
  fs::create_directories(tmp / "chrome-profile");
  const fs::path png = tmp / "report.png";
  std::string shot = "cd " + tmp.string() + " && timeout 120 " + chromium +
                     " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                     " --disable-background-networking --disable-component-update --disable-sync"
                     " --user-data-dir=" + (tmp / "chrome-profile").string() + " --screenshot=" + png.string() +
                     " --window-size=1400,2400 file://" + (res / "report.html").string();
  run(shot, &out);
  ASSERT_TRUE(fs::exists(png)) << out;
  std::string bytes = slurp(png);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  // A blank 1400x2400 page compresses to a few kB; drawn charts and tables do not.
  EXPECT_GT(bytes.size(), 60'000u) << "the screenshot looks empty: " << png;
  std::error_code ec;
  // Kept beside the binary (the build folder), best effort, for a human to look at.
  fs::copy_file(png, fs::path(BATON_BINARY).parent_path() / "bench_e2e_report.png",
                fs::copy_options::overwrite_existing, ec);
  if (!HasFailure()) fs::remove_all(tmp);
}

}  // namespace
}  // namespace baton::bench
