// `baton up --launcher slurm`: the supervisor starts each instance as a Slurm
// job step of the allocation it runs in (deploy/slurm_launcher.h).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/deploy_spec.h"
#include "deploy/supervisor.h"

namespace baton::cli {

// Checks the spec against the allocation ($SLURM_JOB_ID) and sets
// options->place to launch through srun; a line for the user in *summary.
Status use_slurm_launcher(const deploy::DeploySpec& spec, const std::vector<std::string>& srun_args,
                          deploy::SupervisorOptions* options, std::string* summary);

}  // namespace baton::cli
