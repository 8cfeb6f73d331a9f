#include "deploy/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/clock.h"

namespace baton::deploy {

ChildProcess::~ChildProcess() {
  if (!exited_ && pid_ > 0) stop(0.0);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (!exited_ && pid_ > 0) stop(0.0);
    pid_ = std::exchange(other.pid_, -1);
    exited_ = std::exchange(other.exited_, true);
    exit_code_ = other.exit_code_;
    exit_description_ = std::move(other.exit_description_);
  }
  return *this;
}

namespace {

Result<int> open_log(const std::string& log_path) {
  if (log_path.empty()) return -1;
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return unavailable("cannot open log '{}': {}", log_path, std::strerror(errno));
  return log_fd;
}

}  // namespace

Result<ChildProcess> ChildProcess::start_child(const std::function<void()>& in_child, int log_fd) {
  pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    return unavailable("fork failed: {}", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // If the supervisor dies (even by SIGKILL), its children are told to stop.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    in_child();
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, to win the race with signal()
  if (log_fd >= 0) ::close(log_fd);
  ChildProcess child;
  child.pid_ = pid;
  child.exited_ = false;
  return child;
}

Result<ChildProcess> ChildProcess::spawn(const ProcessOptions& options) {
  if (access(options.program.c_str(), X_OK) != 0) {
    return not_found("cannot execute '{}': {}", options.program, std::strerror(errno));
  }
  BATON_ASSIGN_OR_RETURN(int log_fd, open_log(options.log_path));
  // Build argv and envp before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : options.env) {
    std::string prefix = k + "=";
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
    env_strings.push_back(prefix + v);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = {options.program};
  argv_strings.insert(argv_strings.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  return start_child([&] { execve(argv[0], argv.data(), envp.data()); }, log_fd);
}

Result<ChildProcess> ChildProcess::fork_call(const std::function<int()>& body, const std::string& log_path) {
  BATON_ASSIGN_OR_RETURN(int log_fd, open_log(log_path));
  return start_child([&] { _exit(body()); }, log_fd);
}

void ChildProcess::record_exit(int wait_status) {
  exited_ = true;
  if (WIFEXITED(wait_status)) {
    exit_code_ = WEXITSTATUS(wait_status);
    exit_description_ = "exit " + std::to_string(exit_code_);
  } else if (WIFSIGNALED(wait_status)) {
    exit_code_ = 128 + WTERMSIG(wait_status);
    exit_description_ = std::string("signal ") + std::to_string(WTERMSIG(wait_status));
  }
}

bool ChildProcess::running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    record_exit(status);
    return false;
  }
  if (r < 0 && errno == ECHILD) {
    exited_ = true;
    exit_description_ = "lost";
    return false;
  }
  return true;
}

void ChildProcess::signal(int sig) {
  if (exited_ || pid_ <= 0) return;
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

void ChildProcess::kill_now() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) record_exit(status);
  exited_ = true;
}

bool ChildProcess::wait_exit(double timeout_s) {
  Stopwatch sw;
  while (running()) {
    if (sw.elapsed_s() >= timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void ChildProcess::stop(double grace_s) {
  if (!running()) return;
  signal(SIGTERM);
  Stopwatch sw;
  while (sw.elapsed_s() < grace_s) {
    if (!running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  signal(SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) record_exit(status);
  exited_ = true;
}

}  // namespace baton::deploy
