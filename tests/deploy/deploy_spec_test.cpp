#include "deploy/deploy_spec.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace baton::deploy {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(DeploySpecTest, PdSpecPlansInstancesAndRouter) {
  auto spec = DeploySpec::parse_yaml(R"(
name: pd
device: cuda
mode: pd
kv_transport: cuda_ipc
engine_args: {max-num-seqs: 64, no-prefix-caching: true}
prefill: {replicas: 1, engine_args: {max-num-batched-tokens: 16384}}
decode: {replicas: 3}
router: {port: 9000, policy: least_loaded}
base_port: 8200
)");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok());
  ASSERT_EQ(instances->size(), 4u);
  const auto& p = (*instances)[0];
  EXPECT_EQ(p.name, "prefill-0");
  EXPECT_EQ(p.port, 8200);
  EXPECT_EQ(p.gpu, 0);
  EXPECT_TRUE(contains(p.args, "--role"));
  EXPECT_TRUE(contains(p.args, "prefill"));
  EXPECT_TRUE(contains(p.args, "16384"));
  EXPECT_TRUE(contains(p.args, "--no-prefix-caching"));
  EXPECT_EQ((*instances)[3].name, "decode-2");
  EXPECT_EQ((*instances)[3].gpu, 3);
  EXPECT_FALSE(contains((*instances)[3].args, "16384"));
  auto router = router_args(*spec, *instances);
  EXPECT_TRUE(contains(router, "--prefill"));
  EXPECT_TRUE(contains(router, "http://127.0.0.1:8200"));
  EXPECT_TRUE(contains(router, "http://127.0.0.1:8201,http://127.0.0.1:8202,http://127.0.0.1:8203"));
  EXPECT_TRUE(contains(router, "least_loaded"));
}

std::string flag_value(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return it == args.end() || it + 1 == args.end() ? "" : *(it + 1);
}

// The first instance `yaml` plans (a default one, with a failure, when it plans none).
InstanceSpec first_planned(const std::string& yaml) {
  auto spec = DeploySpec::parse_yaml(yaml);
  EXPECT_TRUE(spec.is_ok()) << spec.status().to_string();
  if (!spec.is_ok()) return {};
  auto instances = plan_instances(*spec);
  EXPECT_TRUE(instances.is_ok() && !instances->empty()) << yaml;
  return instances.is_ok() && !instances->empty() ? instances->front() : InstanceSpec{};
}

// tensor_parallel_size per role (else the spec's): passed to each instance,
// and each instance takes that many GPUs, in order.
TEST(DeploySpecTest, TensorParallelSizePerRole) {
  auto spec = DeploySpec::parse_yaml(R"(
device: cuda
mode: pd
tensor_parallel_size: 2
prefill: {replicas: 1, tensor_parallel_size: 4}
decode: {replicas: 2}
gpus: [7, 6, 5, 4, 3, 2, 1, 0]
)");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok()) << instances.status().to_string();
  ASSERT_EQ(instances->size(), 3u);
  const auto& p = (*instances)[0];
  EXPECT_EQ(p.tensor_parallel_size, 4);
  EXPECT_EQ(flag_value(p.args, "--tensor-parallel-size"), "4");
  EXPECT_EQ(p.gpus, (std::vector<int>{7, 6, 5, 4}));
  EXPECT_EQ(p.gpu, 7);
  EXPECT_EQ(p.cuda_visible_devices(), "7,6,5,4");
  EXPECT_EQ(flag_value((*instances)[1].args, "--tensor-parallel-size"), "2");
  EXPECT_EQ((*instances)[1].cuda_visible_devices(), "3,2");
  EXPECT_EQ((*instances)[2].cuda_visible_devices(), "1,0");

  // 4 + 2 + 2 GPUs needed: a list of 7 is refused, naming the count.
  auto short_list = DeploySpec::parse_yaml(
      "device: cuda\nmode: pd\ntensor_parallel_size: 2\nprefill: {replicas: 1, tensor_parallel_size: 4}\n"
      "decode: {replicas: 2}\ngpus: [0, 1, 2, 3, 4, 5, 6]\n");
  ASSERT_TRUE(short_list.is_ok()) << short_list.status().to_string();
  auto refused = plan_instances(*short_list);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("3 instances need 8 GPUs"), std::string::npos)
      << refused.status().message();

  // On the CPU: no GPUs; the field wins over an engine argument of the same name.
  const InstanceSpec cpu = first_planned(
      "mode: agg\nreplicas: 1\nengine_args: {tensor-parallel-size: 4}\nagg: {replicas: 1, tensor_parallel_size: 2}\n");
  EXPECT_EQ(flag_value(cpu.args, "--tensor-parallel-size"), "2");
  EXPECT_EQ(std::count(cpu.args.begin(), cpu.args.end(), "--tensor-parallel-size"), 1);
  EXPECT_TRUE(cpu.gpus.empty());
  // An engine argument alone still counts (it is what specs used before the field).
  const InstanceSpec by_arg = first_planned(
      "device: cuda\nmode: agg\nreplicas: 1\nengine_args: {tensor-parallel-size: 4}\n");
  EXPECT_EQ(flag_value(by_arg.args, "--tensor-parallel-size"), "4");
  EXPECT_EQ(by_arg.cuda_visible_devices(), "0,1,2,3");
  EXPECT_NE(DeploySpec::parse_yaml("mode: agg\nreplicas: 1\nengine_args: {tensor-parallel-size: two}\n")
                .status()
                .message()
                .find("tensor-parallel-size must be a positive integer, got 'two'"),
            std::string::npos);
  // TP=1 everywhere adds no flag.
  auto plain = plan_instances(*DeploySpec::parse_yaml("mode: agg\nreplicas: 1\n"));
  ASSERT_TRUE(plain.is_ok());
  EXPECT_FALSE(contains((*plain)[0].args, "--tensor-parallel-size"));

  EXPECT_NE(DeploySpec::parse_yaml("mode: agg\nreplicas: 1\ntensor_parallel_size: 0\n")
                .status()
                .message()
                .find("tensor_parallel_size must be at least 1"),
            std::string::npos);
  EXPECT_NE(DeploySpec::parse_yaml("mode: pd\nprefill: {replicas: 1, tensor_parallel_size: -2}\ndecode: 1\n")
                .status()
                .message()
                .find("'prefill.tensor_parallel_size' must be at least 1"),
            std::string::npos);
}

// enable_expert_parallel per role (else the spec's, else an engine
// argument): a bare --enable-expert-parallel on the instances that have it.
TEST(DeploySpecTest, ExpertParallelPerRole) {
  auto spec = DeploySpec::parse_yaml(R"(
mode: pd
tensor_parallel_size: 2
enable_expert_parallel: true
prefill: {replicas: 1, tensor_parallel_size: 4}
decode: {replicas: 1, enable_expert_parallel: false, engine_args: {enable-expert-parallel: ""}}
)");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok()) << instances.status().to_string();
  ASSERT_EQ(instances->size(), 2u);
  const InstanceSpec& prefill = (*instances)[0];
  const InstanceSpec& decode = (*instances)[1];
  EXPECT_TRUE(prefill.enable_expert_parallel);
  EXPECT_EQ(std::count(prefill.args.begin(), prefill.args.end(), "--enable-expert-parallel"), 1);
  EXPECT_EQ(flag_value(prefill.args, "--tensor-parallel-size"), "4");
  EXPECT_FALSE(decode.enable_expert_parallel);  // the field wins over its engine argument
  EXPECT_FALSE(contains(decode.args, "--enable-expert-parallel"));
  // An engine argument alone counts; no mention at all adds no flag.
  EXPECT_TRUE(
      first_planned("mode: agg\nreplicas: 1\nengine_args: {enable-expert-parallel: \"\"}\n").enable_expert_parallel);
  EXPECT_FALSE(contains(first_planned("mode: agg\nreplicas: 1\n").args, "--enable-expert-parallel"));
  EXPECT_NE(DeploySpec::parse_yaml("mode: agg\nagg: {replicas: 1, expert_parallel: true}\n")
                .status()
                .message()
                .find("enable_expert_parallel"),
            std::string::npos);
}

TEST(DeploySpecTest, AggSpec) {
  auto spec = DeploySpec::parse_yaml("mode: agg\nreplicas: 2\n");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok());
  ASSERT_EQ(instances->size(), 2u);
  EXPECT_EQ((*instances)[1].gpu, -1);
  EXPECT_FALSE(contains((*instances)[0].args, "--role"));
  EXPECT_TRUE(contains(router_args(*spec, *instances), "--replica"));
  // Each instance drains for the spec's shutdown_grace_s (5 s unless given), inside the supervisor's grace.
  const auto& args = (*instances)[0].args;
  auto grace = std::find(args.begin(), args.end(), "--shutdown-grace-s");
  ASSERT_NE(grace, args.end());
  EXPECT_EQ(*(grace + 1), "5");
  auto quick = DeploySpec::parse_yaml("mode: agg\nreplicas: 1\nshutdown_grace_s: 0.5\n");
  ASSERT_TRUE(quick.is_ok()) << quick.status().to_string();
  EXPECT_TRUE(contains(plan_instances(*quick)->at(0).args, "0.5"));
}

TEST(DeploySpecTest, AdaptiveSpecStartsSwitchableInstancesAndTheController) {
  auto spec = DeploySpec::parse_yaml(R"(
name: ad
mode: adaptive
prefill: 1
decode: 3
router: {policy: kv_aware, disagg: conditional, tokenizer: /models/m}
role_control: {margin: 3, hold_s: 5, drain_timeout_s: 20, kv_usage_weight: 2}
)");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok());
  ASSERT_EQ(instances->size(), 4u);
  EXPECT_EQ((*instances)[0].role, InstanceRole::kPrefill);
  EXPECT_EQ((*instances)[3].role, InstanceRole::kDecode);
  for (const auto& inst : *instances) {
    EXPECT_TRUE(contains(inst.args, "--role-switching")) << inst.name;
    EXPECT_TRUE(contains(inst.args, "--kv-port")) << inst.name;
  }
  auto args = router_args(*spec, *instances);
  auto after = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it != args.end() && it + 1 != args.end() ? *(it + 1) : std::string("<absent>");
  };
  EXPECT_EQ(after("--mode"), "pd");
  EXPECT_EQ(after("--disagg"), "conditional");
  EXPECT_EQ(after("--tokenizer"), "/models/m");
  EXPECT_EQ(after("--role-margin"), "3");
  EXPECT_EQ(after("--role-hold-s"), "5");
  EXPECT_EQ(after("--role-drain-timeout-s"), "20");
  EXPECT_EQ(after("--role-kv-usage-weight"), "2");
  EXPECT_TRUE(contains(args, "--role-control"));
  EXPECT_EQ(after("--decode").size(), std::string("http://127.0.0.1:8101").size() * 3 + 2);

  // pd specs take disagg and the tokenizer too; without them the router's
  // command line is as before.
  auto pd = DeploySpec::parse_yaml("mode: pd\nprefill: 1\ndecode: 1\nrouter: {disagg: auto}\n");
  ASSERT_TRUE(pd.is_ok()) << pd.status().to_string();
  auto pd_args = router_args(*pd, *plan_instances(*pd));
  EXPECT_TRUE(contains(pd_args, "auto"));
  EXPECT_FALSE(contains(pd_args, "--role-control"));
  EXPECT_FALSE(contains(pd_args, "--tokenizer"));
  EXPECT_FALSE(contains(plan_instances(*pd)->at(0).args, "--role-switching"));
}

TEST(DeploySpecTest, BadSpecsNameTheProblem) {
  struct Case {
    const char* yaml;
    const char* needle;
  } cases[] = {
      {"mode: pd\nprefill: 1\n", "decode.replicas"},
      {"mode: agg\n", "replicas >= 1"},
      {"mode: mixed\nreplicas: 1\n", "mode must be agg, pd or adaptive"},
      {"mode: adaptive\nprefill: 1\n", "mode adaptive needs prefill.replicas >= 1 and decode.replicas >= 1"},
      {"mode: adaptive\nprefill: 1\ndecode: 1\nrole_control: {margin: -1}\n", "'role_control.margin' must be"},
      {"mode: adaptive\nprefill: 1\ndecode: 1\nrole_control: {speed: 1}\n", "unknown field 'role_control.speed'"},
      {"mode: pd\nprefill: 1\ndecode: 1\nrole_control: {margin: 1}\n", "'role_control' is for mode adaptive"},
      {"mode: pd\nprefill: 1\ndecode: 1\nrouter: {disagg: sometimes}\n", "router.disagg must be always"},
      {"replicas: 1\nrouter: {disagg: conditional}\n", "router.disagg is for mode pd or adaptive"},
      {"replicas: 1\nrouter: {colour: 1}\n", "unknown field 'router.colour'"},
      {"replicas: 1\ncolour: blue\n", "unknown field 'colour'"},
      {"replicas: 1\ndevice: tpu\n", "device must be cpu or cuda"},
      {"replicas: [1\n", "bad deployment spec"},
      {"replicas: 1\ndiscovery: consul://x\n", "etcd://"},
      {"mode: pd\nprefill: {replicas: 1, colour: 2}\ndecode: 1\n", "prefill.colour"},
      {"replicas: 1\nshutdown_grace_s: -1\n", "shutdown_grace_s must be between 0 and 3600"},
      // Sizes plan_instances could not plan quickly, or ports past 65535 (the deploy_spec fuzzer's
      // slow input asked for 859,109 replicas).
      {"# Ps:\nreplicas: 851100\nbase_kv_port: 9100\n", "replicas is 851100, more than the 4096"},
      {"mode: pd\nprefill: 1\ndecode: {replicas: 5000}\n", "decode.replicas is 5000"},
      {"replicas: 1\ntensor_parallel_size: 2000000000\n", "tensor_parallel_size 2000000000 is more than 1024"},
      {"mode: pd\nprefill: {replicas: 1, tensor_parallel_size: 4096}\ndecode: 1\n",
       "tensor_parallel_size 4096 (for prefill.replicas) is more than 1024"},
      {"replicas: 3\nbase_port: 65534\n", "base_port 65534 gives the 3 instances ports 65534..65536"},
      {"replicas: 1\nbase_port: 0\n", "outside 1..65535"},
      {"mode: pd\nprefill: 2\ndecode: 2\nbase_kv_port: 65533\n", "base_kv_port 65533 gives the 4 instances"},
  };
  for (const auto& c : cases) {
    auto spec = DeploySpec::parse_yaml(c.yaml);
    ASSERT_FALSE(spec.is_ok()) << c.yaml;
    EXPECT_NE(spec.status().message().find(c.needle), std::string::npos) << c.yaml << " -> " << spec.status().message();
  }
  auto spec = DeploySpec::parse_yaml("device: cuda\nreplicas: 3\ngpus: [0, 1]\n");
  ASSERT_TRUE(spec.is_ok());
  EXPECT_FALSE(plan_instances(*spec).is_ok());
  // The bounds themselves are allowed; an agg spec's kv port is never used, so it may run past 65535.
  spec = DeploySpec::parse_yaml("mode: pd\nprefill: 4096\ndecode: 1\nbase_port: 1\nbase_kv_port: 60000\n");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  auto instances = plan_instances(*spec);
  ASSERT_TRUE(instances.is_ok());
  EXPECT_EQ(instances->back().kv_port, 64096);
  EXPECT_TRUE(DeploySpec::parse_yaml("replicas: 2\nbase_kv_port: 65535\ntensor_parallel_size: 1024\n").is_ok());
}

}  // namespace
}  // namespace baton::deploy
