#include "cli/slurm_launch.h"

#include <cstdlib>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "deploy/slurm_launcher.h"
#include "kv_transfer/kv_secret.h"

extern char** environ;

namespace baton::cli {

Status use_slurm_launcher(const deploy::DeploySpec& spec, const std::vector<std::string>& srun_args,
                          deploy::SupervisorOptions* options, std::string* summary) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  BATON_ASSIGN_OR_RETURN(deploy::SlurmAllocation allocation, deploy::current_slurm_allocation(env));
  const bool have_secret = env.count(kKvSecretEnv) > 0 || spec.engine_args.count("kv-secret-file") > 0;
  auto launcher = std::make_shared<deploy::SlurmLauncher>(allocation, srun_args, options->baton_binary);
  BATON_RETURN_IF_ERROR(launcher->check(spec, have_secret));
  options->place = [launcher, spec](deploy::InstanceSpec* instance, deploy::ProcessOptions* process) {
    return launcher->place(spec, instance, process);
  };
  options->ask_to_stop = [launcher, on_event = options->on_event](const deploy::InstanceSpec& instance) {
    Status st = launcher->ask_to_stop(instance);
    if (!st.is_ok() && on_event) on_event(st.message());
  };
  *summary = fmt::format("Slurm allocation {}: instances as job steps on {}", allocation.job_id,
                         fmt::join(allocation.nodes, ", "));
  return Status::ok();
}

}  // namespace baton::cli
