// A child process started with fork/exec, its output appended to a log file,
// in its own process group so that it and its children can be signalled
// together.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace baton::deploy {

struct ProcessOptions {
  std::string program;                                   // path of the executable
  std::vector<std::string> args;                         // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;  // added to the parent's environment
  std::string log_path;                                  // stdout and stderr, appended ("" = inherit)
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // kills a still-running child (SIGKILL) and reaps it
  ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  static Result<ChildProcess> spawn(const ProcessOptions& options);
  // Forks a child that runs `body` and exits with what it returns (tests:
  // the serving side of a cross-process exchange). Output as in spawn.
  static Result<ChildProcess> fork_call(const std::function<int()>& body, const std::string& log_path = "");

  pid_t pid() const { return pid_; }
  // Non-blocking: true while the child has not exited (reaps it when it has).
  bool running();
  // The exit description once it has exited ("exit 0", "signal 9").
  const std::string& exit_description() const { return exit_description_; }
  int exit_code() const { return exit_code_; }

  // Sends `sig` to the child's process group.
  void signal(int sig);
  // SIGTERM, then SIGKILL after grace_s; returns when reaped.
  void stop(double grace_s);
  // SIGKILL to the child alone (not its group), and reaps it.
  void kill_now();
  // Waits until the child has exited (true) or timeout_s passed (false).
  bool wait_exit(double timeout_s);

 private:
  void record_exit(int wait_status);
  static Result<ChildProcess> start_child(const std::function<void()>& in_child, int log_fd);

  pid_t pid_ = -1;
  bool exited_ = true;
  int exit_code_ = -1;
  std::string exit_description_;
};

}  // namespace baton::deploy
