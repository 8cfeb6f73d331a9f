// Runs a deployment: starts every instance (one process per GPU, or CPU
// instances), waits until each answers /health, starts the router, then
// watches them: an instance that dies is reported and, if the spec says so,
// restarted. stop() ends everything it started, gracefully and in parallel,
// and removes the shared-memory segments a killed instance left
// (deploy/kv_segments.h).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/child_process.h"
#include "deploy/deploy_spec.h"

namespace baton::deploy {

struct SupervisorOptions {
  std::string baton_binary;  // the baton executable to run (`baton serve`, `baton proxy`)
  std::string run_dir;       // logs go to run_dir/NAME.log
  int max_restarts = 5;      // per instance
  // Called for every event worth telling the user ("prefill-0 exited (signal 9); restarting").
  std::function<void(const std::string&)> on_event;
  // A launcher other than this host's fork/exec (deploy/slurm_launcher.h):
  // called once per instance before it starts, it may wrap the command
  // (`srun ... baton serve ...`) and say where the instance is reached.
  std::function<Status(InstanceSpec*, ProcessOptions*)> place;
  // How an instance is asked to stop gracefully, when not by SIGTERM to its
  // process (srun would cancel its step at once: the Slurm launcher signals
  // the step itself). SIGKILL after the grace is still sent to the process.
  std::function<void(const InstanceSpec&)> ask_to_stop;
};

class Supervisor {
 public:
  Supervisor(DeploySpec spec, SupervisorOptions options);
  ~Supervisor();

  // Starts instances and router and waits for all to be healthy.
  Status start();
  // Checks every process once; restarts dead instances. Returns a non-OK
  // status when an instance died more than max_restarts times, or the router died.
  Status poll();
  // Polls until `stop_requested` becomes true or poll() fails.
  Status run_until(const std::atomic<bool>& stop_requested);
  // Stops the router, then every instance at once: SIGTERM to all, then waits
  // for all within one shared grace period (the spec's shutdown_grace_s, which
  // each instance also gets as --shutdown-grace-s, plus kStopMarginS for the
  // engine to stop); SIGKILL to any left. Then removes the KV segments any of
  // them left. Idempotent.
  void stop();
  void stop(double grace_s);
  // The grace stop() gives: shutdown_grace_s + kStopMarginS.
  double stop_grace_s() const;
  static constexpr double kStopMarginS = 5.0;

  std::string endpoint() const;  // the router's URL
  const std::vector<InstanceSpec>& instances() const { return instances_; }
  // The pid of instance `name` (or "router"), -1 when unknown.
  pid_t pid_of(const std::string& name) const;
  int num_restarts(const std::string& name) const;

 private:
  struct Managed {
    InstanceSpec spec;
    ProcessOptions process;
    ChildProcess child;
    int num_restarts = 0;
    bool exit_reported = false;  // its exit was reported (without restart it stays dead)
  };
  Status launch(Managed* m);
  Status wait_healthy(Managed* m, double timeout_s);
  // After m's process is reaped: removes the KV segments it left, and says so.
  void remove_leftovers(const Managed& m, pid_t pid);
  void emit(const std::string& message);
  void ask_to_stop(Managed& m);

  DeploySpec spec_;
  SupervisorOptions options_;
  std::vector<InstanceSpec> instances_;
  std::vector<Managed> managed_;  // instances, then the router last
};

}  // namespace baton::deploy
