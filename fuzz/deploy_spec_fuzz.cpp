// Deployment specs and experiments (src/deploy: DeploySpec::parse_yaml,
// plan_instances, Experiment::parse_yaml): the input is a YAML file, parsed
// as both. Paths an experiment names resolve under a folder that does not
// exist (or from the current folder: run it where nothing large lies around).
// fuzz-link: baton_deploy
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploy/deploy_spec.h"
#include "deploy/experiment.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(baton::fuzz::as_text(data, size));
  auto spec = baton::deploy::DeploySpec::parse_yaml(text);
  if (spec.is_ok()) {
    auto instances = baton::deploy::plan_instances(*spec);
    if (instances.is_ok()) (void)baton::deploy::router_args(*spec, *instances);
  } else if (spec.status().message().empty()) {
    std::abort();
  }
  auto experiment = baton::deploy::Experiment::parse_yaml(text, "/nonexistent");
  if (!experiment.is_ok() && experiment.status().message().empty()) std::abort();
  return 0;
}
