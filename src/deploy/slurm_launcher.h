// `baton up --launcher slurm SPEC`, run inside a Slurm allocation (salloc, or
// an sbatch script): each instance is a job step on one of the allocation's
// nodes (`srun --jobid=ID --nodes=1 --ntasks=1 --nodelist=NODE --exact ...
// baton serve ...`), spread round-robin over the nodes; the router and the
// supervisor run where `baton up` runs. srun stays in the foreground as long
// as its step runs, so the supervisor watches, restarts and stops steps as it
// does local processes: a step that is scancel'ed, or whose node is lost,
// ends its srun, and is restarted like a dead process; SIGTERM to srun is
// forwarded to the step, which stops gracefully. docs/deploy-slurm.md.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/child_process.h"
#include "deploy/deploy_spec.h"

namespace baton::deploy {

struct SlurmAllocation {
  std::string job_id;
  std::vector<std::string> nodes;      // node names, in the allocation's order
  std::vector<std::string> addresses;  // each node's NodeAddr (what Slurm reaches it at; often its name)
  std::string srun;                    // its path
};

// The allocation this process runs in: $SLURM_JOB_ID, its nodes from
// $SLURM_JOB_NODELIST expanded by `scontrol show hostnames`, and each node's
// address from `scontrol show node`.
Result<SlurmAllocation> current_slurm_allocation(const std::map<std::string, std::string>& env);

class SlurmLauncher {
 public:
  // `srun_args` are added to every step's srun (e.g. --cpus-per-task=8).
  SlurmLauncher(SlurmAllocation allocation, std::vector<std::string> srun_args, std::string baton_binary);

  // Whether `spec` can run on the allocation: instances register through
  // etcd (spec.discovery), and KV between nodes needs a network transport
  // and a secret.
  Status check(const DeploySpec& spec, bool have_kv_secret) const;
  // Wraps `instance`'s command in srun on its node, binds it to every
  // address and advertises the node's address; sets instance->host.
  Status place(const DeploySpec& spec, InstanceSpec* instance, ProcessOptions* process);

  // Sends SIGTERM to `instance`'s step (scancel --signal=TERM JOB.STEP): the
  // instance drains and exits, and its srun with it. (SIGTERM to srun itself
  // would cancel the step, which kills the task at once.)
  Status ask_to_stop(const InstanceSpec& instance) const;

  const SlurmAllocation& allocation() const { return allocation_; }

 private:
  SlurmAllocation allocation_;
  std::vector<std::string> srun_args_;
  std::string baton_binary_;
  size_t next_node_ = 0;
};

}  // namespace baton::deploy
