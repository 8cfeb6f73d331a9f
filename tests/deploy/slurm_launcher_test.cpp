// The Slurm launcher's decisions without a cluster: which node each step
// goes to, what srun runs, what it refuses (the cluster itself:
// slurm_e2e_test.cpp).
#include "deploy/slurm_launcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace baton::deploy {
namespace {

SlurmAllocation two_nodes() {
  return SlurmAllocation{
      .job_id = "42", .nodes = {"n1", "n2"}, .addresses = {"10.0.0.1", "10.0.0.2"}, .srun = "/usr/bin/srun"};
}

DeploySpec pd_spec(const std::string& transport) {
  auto spec = DeploySpec::parse_yaml("name: pd\nmode: pd\ndevice: cuda\nkv_transport: " + transport +
                                     "\nprefill: {replicas: 1}\ndecode: {replicas: 1}\n"
                                     "discovery: etcd://10.0.0.9:2379\n");
  EXPECT_TRUE(spec.is_ok()) << spec.status().to_string();
  return *spec;
}

bool has(const std::vector<std::string>& args, const std::string& a) {
  return std::find(args.begin(), args.end(), a) != args.end();
}

std::string after(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return it != args.end() && it + 1 != args.end() ? *(it + 1) : "<absent>";
}

TEST(SlurmLauncherUnitTest, EachInstanceIsAStepOnTheNextNodeAdvertisingItsAddress) {
  SlurmLauncher launcher(two_nodes(), {"--cpus-per-task=8"}, "/opt/baton");
  const DeploySpec spec = pd_spec("tcp");
  auto instances = plan_instances(spec);
  ASSERT_TRUE(instances.is_ok());
  std::vector<std::string> expected_nodes = {"n1", "n2"};
  for (size_t i = 0; i < instances->size(); ++i) {
    InstanceSpec inst = (*instances)[i];
    ProcessOptions process;
    process.env = {{"CUDA_VISIBLE_DEVICES", "0"}, {"NCCL_NVLS_ENABLE", "0"}};
    ASSERT_TRUE(launcher.place(spec, &inst, &process).is_ok());
    const auto& a = process.args;
    EXPECT_EQ(process.program, "/usr/bin/srun");
    EXPECT_TRUE(has(a, "--jobid=42"));
    EXPECT_TRUE(has(a, "--nodelist=" + expected_nodes[i]));
    EXPECT_TRUE(has(a, "--exact"));
    EXPECT_TRUE(has(a, "--gpus-per-task=1"));  // Slurm picks the GPU ...
    EXPECT_TRUE(std::none_of(process.env.begin(), process.env.end(),
                             [](const auto& kv) { return kv.first == "CUDA_VISIBLE_DEVICES"; }));  // ... not baton up
    EXPECT_TRUE(has(a, "--cpus-per-task=8"));
    EXPECT_TRUE(has(a, "--job-name=baton-" + inst.name));
    ASSERT_TRUE(has(a, "/opt/baton"));
    EXPECT_EQ(after(a, "--host"), "0.0.0.0");
    EXPECT_EQ(after(a, "--advertise-url"), "http://10.0.0." + std::to_string(i + 1) + ":" + std::to_string(inst.port));
    EXPECT_EQ(after(a, "--kv-host"), "10.0.0." + std::to_string(i + 1));  // KV crosses nodes
    EXPECT_EQ(inst.host, "10.0.0." + std::to_string(i + 1));
    EXPECT_EQ(inst.url("127.0.0.1"), "http://10.0.0." + std::to_string(i + 1) + ":" + std::to_string(inst.port));
  }
}

// A decode at tensor_parallel_size 2: its step asks for two GPUs, one per rank.
TEST(SlurmLauncherUnitTest, ATensorParallelStepAsksForOneGpuPerRank) {
  SlurmLauncher launcher(two_nodes(), {}, "/opt/baton");
  DeploySpec spec = pd_spec("tcp");
  spec.decode.tensor_parallel_size = 2;
  auto instances = plan_instances(spec);
  ASSERT_TRUE(instances.is_ok()) << instances.status().to_string();
  ASSERT_EQ(instances->size(), 2u);
  for (InstanceSpec inst : *instances) {
    ProcessOptions process;
    ASSERT_TRUE(launcher.place(spec, &inst, &process).is_ok());
    const bool decode = inst.role == InstanceRole::kDecode;
    EXPECT_TRUE(has(process.args, decode ? "--gpus-per-task=2" : "--gpus-per-task=1")) << inst.name;
    EXPECT_EQ(after(process.args, "--tensor-parallel-size"), decode ? "2" : "<absent>") << inst.name;
  }
}

TEST(SlurmLauncherUnitTest, RefusesWhatCannotWorkAcrossNodes) {
  SlurmLauncher launcher(two_nodes(), {}, "/opt/baton");
  DeploySpec no_discovery = pd_spec("tcp");
  no_discovery.discovery.clear();
  Status st = launcher.check(no_discovery, true);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("discovery"), std::string::npos);
  st = launcher.check(pd_spec("shm"), true);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("shm"), std::string::npos);
  st = launcher.check(pd_spec("tcp"), false);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("BATON_KV_SECRET"), std::string::npos);
  EXPECT_TRUE(launcher.check(pd_spec("tcp"), true).is_ok());
  // On one node, KV stays on the node: shm and no secret are fine.
  SlurmAllocation one = two_nodes();
  one.nodes.resize(1);
  one.addresses.resize(1);
  EXPECT_TRUE(SlurmLauncher(one, {}, "/opt/baton").check(pd_spec("shm"), false).is_ok());
}

TEST(SlurmLauncherUnitTest, TheAllocationComesFromTheEnvironmentAndNothingElseReachesTheShell) {
  auto outside = current_slurm_allocation({{"PATH", "/usr/bin"}});
  ASSERT_FALSE(outside.is_ok());
  EXPECT_NE(outside.status().message().find("salloc"), std::string::npos);
  auto bad_id = current_slurm_allocation({{"SLURM_JOB_ID", "42; rm -rf /"}, {"SLURM_JOB_NODELIST", "n1"}});
  ASSERT_FALSE(bad_id.is_ok());
  EXPECT_NE(bad_id.status().message().find("not a job id"), std::string::npos);
  auto bad_list = current_slurm_allocation({{"SLURM_JOB_ID", "42"}, {"SLURM_JOB_NODELIST", "n1'$(reboot)'"}});
  ASSERT_FALSE(bad_list.is_ok());
  EXPECT_NE(bad_list.status().message().find("not a node list"), std::string::npos);
}

}  // namespace
}  // namespace baton::deploy
