// Every command in README.md's ```sh blocks runs as written on a fresh
// clone (issue 22, findings 1 and 6): the README is parsed, and each block's
// commands run, in order, in a scratch folder of the block's own, laid out
// like a clone after scripts/setup.sh (build/, node_modules/ and docs/
// linked, examples/ copied); one test per block, so blocks run side by side.
// Within a block, `serve`, `proxy` and `up` run in the background until the
// block ends, then get SIGINT (Ctrl-C) and must exit 0 and leave no
// /dev/shm/baton-kv-* segment; every other command must exit 0, and a curl
// must print no "error". The README's ports are replaced by free ones (in the
// copied examples too). The few changes the test makes (README "How the
// README is tested") are the rules below; each must match some command, so
// none outlives the command it was written for.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cli/run_baton.h"
#include "deploy/child_process.h"
#include "deploy/kv_segments.h"
#include "deploy/test_dir.h"
#include "support/wait.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using deploy::read_all;

const fs::path kSourceDir = fs::path(BATON_TEST_DATA).parent_path().parent_path();

struct ReadmeCommand {
  int block = 0;     // which ```sh block (commands of one block share background servers)
  std::string text;  // continuation lines joined
};

// The commands of every ```sh block: comment and blank lines dropped, `\` continuations joined.
std::vector<ReadmeCommand> readme_commands(const std::string& readme) {
  std::vector<ReadmeCommand> out;
  std::istringstream in(readme);
  std::string line, pending;
  bool in_sh = false;
  int block = 0;
  while (std::getline(in, line)) {
    if (!in_sh) {
      if (line == "```sh") {
        in_sh = true;
        ++block;
      }
      continue;
    }
    if (line == "```") {
      in_sh = false;
      continue;
    }
    const size_t first = line.find_first_not_of(' ');
    if (pending.empty() && (first == std::string::npos || line[first] == '#')) continue;
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    out.push_back({block, pending + line});
    pending.clear();
  }
  return out;
}

enum class Action { kRun, kBackground, kSkip, kNoGpu };

struct Rule {
  std::string pattern;  // std::regex, searched in the command
  Action action;
  std::string appended;  // added to the command line
  std::string why;
};

std::vector<Rule> rules() {
  return {
      {R"(^bash scripts/(setup|test)\.sh)", Action::kSkip, "", "installs and builds / runs this very suite"},
      {R"(models/Qwen3-0\.6B)", Action::kSkip, "", "needs a checkpoint downloaded from the Hub"},
      {R"(--device cuda)", Action::kSkip, "", "needs a GPU and the 8B checkpoint"},
      {R"(^build/baton profile)", Action::kNoGpu, "", "needs a GPU; without one it must say so"},
      {R"(init-model --preset llama3\.1-8b)", Action::kRun, " --dry-run", "writes 16 GB"},
      {R"(^build/baton bench .*--search)", Action::kRun, " --search-max-trials 2 --duration-s 3",
       "searches for minutes on a CPU"},
      {R"(^build/baton sweep )", Action::kRun, " --plan", "runs for minutes (tests/deploy/sweep_test.cpp runs one)"},
      {R"(^build/baton up --emit )", Action::kRun, "", "writes manifests and exits (not a server)"},
      {R"(^build/baton (serve|proxy|up) )", Action::kBackground, "", "a server: runs until the block ends"},
  };
}

// The README's ports, each mapped to a free one (base + offset). The decode instance of
// examples/pd-1p1d-cpu.yaml gets base_kv_port + 1: offset 4 is kept free for it.
const std::vector<std::pair<int, int>> kPorts = {{8000, 0}, {8100, 1}, {8101, 2}, {9100, 3}};
constexpr int kNumPorts = 5;

std::string map_ports(std::string text, int base) {
  for (const auto& [port, offset] : kPorts) {
    text = std::regex_replace(text, std::regex("\\b" + std::to_string(port) + "\\b"), std::to_string(base + offset));
  }
  return text;
}

bool has_nvidia_device() {
  std::error_code ec;
  for (fs::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
    if (std::regex_match(it->path().filename().string(), std::regex("nvidia[0-9]+"))) return true;
  }
  return false;
}

class ReadmeCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("baton-readme-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
    work_ = dir_ / "clone";
    fs::create_directories(work_);
    const fs::path build = fs::path(BATON_BINARY).parent_path();
    ASSERT_TRUE(fs::exists(build / "models" / "default" / "config.json"))
        << "the embedded default model is missing: run scripts/build.sh";
    fs::create_directory_symlink(build, work_ / "build");
    fs::create_directory_symlink(kSourceDir / "node_modules", work_ / "node_modules");
    fs::create_directory_symlink(kSourceDir / "docs", work_ / "docs");
    base_port_ = free_port_base();
    ASSERT_GT(base_port_, 0);
    // examples/, with the README's ports replaced as in the commands.
    for (const auto& e : fs::recursive_directory_iterator(kSourceDir / "examples")) {
      const fs::path to = work_ / "examples" / fs::relative(e.path(), kSourceDir / "examples");
      if (e.is_directory()) {
        fs::create_directories(to);
      } else {
        fs::create_directories(to.parent_path());
        std::ofstream(to) << map_ports(read_all(e.path()), base_port_);
      }
    }
  }
  void TearDown() override {
    stop_background();
    fs::remove_all(dir_);
  }

  // The first of kNumPorts consecutive free ports, below the ephemeral range (32768+).
  static int free_port_base() {
    for (int i = 0; i < 400; ++i) {
      const int base = 21000 + ((getpid() + i * 13) % 400) * 10;
      bool all_free = true;
      for (int p = base; p < base + kNumPorts && all_free; ++p) all_free = port_free(p);
      if (all_free) return base;
    }
    return 0;
  }
  static bool port_free(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    return ok;
  }

  // Runs a command to its end in the clone; its exit status and output.
  testing::BatonOutput run_command(const std::string& command, int index) {
    const fs::path log = dir_ / "logs" / (std::to_string(index) + ".log");
    const std::string line = "cd '" + work_.string() + "' && timeout 300 bash -c '" +
                             std::regex_replace(command, std::regex("'"), "'\\''") + "' > '" + log.string() + "' 2>&1";
    testing::BatonOutput o;
    const int status = std::system(line.c_str());
    o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = read_all(log);
    return o;
  }

  // Starts a server command; returns once its log says it listens (or it died: a failure).
  void start_background(const std::string& command, int index) {
    deploy::ProcessOptions o;
    o.program = "/bin/bash";
    o.args = {"-c", "cd '" + work_.string() + "' && exec " + command};
    o.log_path = (dir_ / "logs" / (std::to_string(index) + ".log")).string();
    auto child = deploy::ChildProcess::spawn(o);
    ASSERT_TRUE(child.is_ok()) << child.status().to_string();
    background_.push_back({command, o.log_path, std::move(child).value()});
    Background& b = background_.back();
    const bool ready = ::baton::testing::wait_until(
        [&] {
          const std::string log = read_all(b.log);
          return log.find("listening on") != std::string::npos || log.find("endpoint: ") != std::string::npos ||
                 !b.child.running();
        },
        120.0, 50);
    ASSERT_TRUE(ready && b.child.running()) << command << ":\n" << read_all(b.log);
  }

  // Ctrl-C to every server of the block, the last started first: each exits 0 and leaves no KV segment.
  void stop_background() {
    for (auto it = background_.rbegin(); it != background_.rend(); ++it) {
      const pid_t pid = it->child.pid();
      ::kill(pid, SIGINT);
      EXPECT_TRUE(it->child.wait_exit(60.0)) << it->command << " did not exit on SIGINT";
      it->child.stop(0.0);
      EXPECT_EQ(it->child.exit_code(), 0) << it->command << ":\n" << read_all(it->log);
      // Its own segments, and (baton up) those of the instances it started.
      std::vector<pid_t> pids = {pid};
      const std::string log = read_all(it->log);
      std::regex started(R"(\(pid (\d+))");
      for (std::sregex_iterator m(log.begin(), log.end(), started), end; m != end; ++m) {
        pids.push_back(std::stoi((*m)[1]));
      }
      for (pid_t p : pids) {
        EXPECT_TRUE(deploy::kv_segments_of(p).empty()) << it->command << " (pid " << p << ") left a KV segment";
      }
    }
    background_.clear();
  }

  struct Background {
    std::string command;
    std::string log;
    deploy::ChildProcess child;
  };
  fs::path dir_, work_;
  int base_port_ = 0;
  std::vector<Background> background_;
};

const std::vector<ReadmeCommand>& all_commands() {
  static const std::vector<ReadmeCommand> commands = readme_commands(read_all(kSourceDir / "README.md"));
  return commands;
}

// The first rule whose pattern the command matches, if any.
const Rule* matching_rule(const std::vector<Rule>& table, const std::string& command) {
  for (const Rule& r : table) {
    if (std::regex_search(command, std::regex(r.pattern))) return &r;
  }
  return nullptr;
}

// Every ```sh block's number: a test each, so the blocks (each with its own
// ports and scratch clone) run side by side.
std::vector<int> readme_blocks() {
  std::vector<int> blocks;
  for (const ReadmeCommand& c : all_commands()) {
    if (blocks.empty() || blocks.back() != c.block) blocks.push_back(c.block);
  }
  return blocks;
}

TEST(ReadmeRulesTest, EveryRuleMatchesSomeCommand) {
  ASSERT_GE(all_commands().size(), 20u) << "README.md's sh blocks hold fewer commands than expected";
  const std::vector<Rule> table = rules();
  std::set<const Rule*> applied;
  for (const ReadmeCommand& c : all_commands()) applied.insert(matching_rule(table, c.text));
  for (const Rule& r : table) {
    EXPECT_TRUE(applied.count(&r)) << "no README command matches the rule " << r.pattern;
  }
}

class ReadmeBlockTest : public ReadmeCommandsTest, public ::testing::WithParamInterface<int> {};

TEST_P(ReadmeBlockTest, EveryCommandRunsAsWritten) {
  const std::vector<Rule> table = rules();
  const bool gpu = has_nvidia_device();
  const std::vector<ReadmeCommand>& commands = all_commands();
  int num_commands = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    const ReadmeCommand& c = commands[i];
    if (c.block != GetParam()) continue;
    ++num_commands;
    const Rule* rule = matching_rule(table, c.text);
    const Action action = rule ? rule->action : Action::kRun;
    const std::string command = map_ports(c.text + (rule ? rule->appended : ""), base_port_);
    SCOPED_TRACE("README command " + std::to_string(i + 1) + ": " + command);
    if (action == Action::kSkip || (action == Action::kNoGpu && gpu)) continue;
    if (action == Action::kBackground) {
      start_background(command, static_cast<int>(i));
      if (HasFatalFailure()) return;
      continue;
    }
    const testing::BatonOutput r = run_command(command, static_cast<int>(i));
    if (action == Action::kNoGpu) {
      EXPECT_EQ(r.rc, 1) << r.out;
      EXPECT_NE(r.out.find("no GPU"), std::string::npos) << r.out;
      continue;
    }
    EXPECT_EQ(r.rc, 0) << r.out;
    if (c.text.rfind("curl ", 0) == 0) {
      EXPECT_FALSE(r.out.empty());
      EXPECT_EQ(r.out.find("\"error\""), std::string::npos) << r.out;
    }
  }
  EXPECT_GT(num_commands, 0) << "README.md has no ```sh block " << GetParam();
  stop_background();
}

INSTANTIATE_TEST_SUITE_P(Readme, ReadmeBlockTest, ::testing::ValuesIn(readme_blocks()),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "Block" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace baton
