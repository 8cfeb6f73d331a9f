// kv_cache_dtype in deployment specs (`baton up`, and `baton sweep`'s
// deployments, which are the same specs): per role, else the spec's, else an
// engine argument; passed to each instance as --kv-cache-dtype; a pd or
// adaptive spec whose prefill and decode differ is refused naming both.
#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

#include "deploy/deploy_spec.h"

namespace baton::deploy {
namespace {

std::string flag_value(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return it != args.end() && it + 1 != args.end() ? *(it + 1) : std::string();
}

std::vector<InstanceSpec> planned(const std::string& yaml) {
  auto spec = DeploySpec::parse_yaml(yaml);
  EXPECT_TRUE(spec.is_ok()) << spec.status().to_string();
  if (!spec.is_ok()) return {};
  auto instances = plan_instances(*spec);
  EXPECT_TRUE(instances.is_ok()) << instances.status().to_string();
  return instances.is_ok() ? *instances : std::vector<InstanceSpec>{};
}

std::string refusal(const std::string& yaml) {
  auto spec = DeploySpec::parse_yaml(yaml);
  EXPECT_FALSE(spec.is_ok()) << yaml;
  return spec.is_ok() ? std::string() : spec.status().message();
}

TEST(DeployKvDtypeTest, SpecAndRoleFieldsReachEveryInstance) {
  const auto pd = planned("mode: pd\nkv_cache_dtype: fp8\nprefill: 1\ndecode: {replicas: 2}\n");
  ASSERT_EQ(pd.size(), 3u);
  for (const InstanceSpec& inst : pd) EXPECT_EQ(flag_value(inst.args, "--kv-cache-dtype"), "fp8") << inst.name;
  // Per role (the same on both sides), fp8_e4m3 read as fp8; the field wins over an engine argument.
  const auto roles = planned(
      "mode: pd\nengine_args: {kv-cache-dtype: auto}\nprefill: {replicas: 1, kv_cache_dtype: fp8_e4m3}\n"
      "decode: {replicas: 1, kv_cache_dtype: fp8}\n");
  ASSERT_EQ(roles.size(), 2u);
  for (const InstanceSpec& inst : roles) {
    EXPECT_EQ(flag_value(inst.args, "--kv-cache-dtype"), "fp8") << inst.name;
    EXPECT_EQ(std::count(inst.args.begin(), inst.args.end(), "--kv-cache-dtype"), 1) << inst.name;
  }
  const auto by_arg = planned("mode: agg\nreplicas: 1\nengine_args: {kv-cache-dtype: fp8}\n");
  ASSERT_EQ(by_arg.size(), 1u);
  EXPECT_EQ(flag_value(by_arg[0].args, "--kv-cache-dtype"), "fp8");
  // Unset: no flag (the backend's auto).
  const auto plain = planned("mode: agg\nreplicas: 1\n");
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(std::count(plain[0].args.begin(), plain[0].args.end(), "--kv-cache-dtype"), 0);
}

TEST(DeployKvDtypeTest, MixedPrefillAndDecodeDtypesAreRefused) {
  const std::pair<const char*, const char*> cases[] = {
      {"mode: pd\nprefill: {replicas: 1, kv_cache_dtype: fp8}\ndecode: 1\n",
       "prefill kv_cache_dtype fp8 and decode kv_cache_dtype auto differ"},
      {"mode: adaptive\nprefill: 1\ndecode: {replicas: 1, engine_args: {kv-cache-dtype: fp8}}\n",
       "prefill kv_cache_dtype auto and decode kv_cache_dtype fp8 differ"},
      {"mode: agg\nreplicas: 1\nkv_cache_dtype: int8\n", "'kv_cache_dtype' must be auto, fp8 or fp8_e4m3, got 'int8'"},
      {"mode: pd\nprefill: {replicas: 1, kv_cache_dtype: e5m2}\ndecode: 1\n", "'prefill.kv_cache_dtype' must be auto"},
      {"mode: agg\nreplicas: 1\nengine_args: {kv-cache-dtype: fp16}\n",
       "'engine argument kv-cache-dtype' must be auto"},
  };
  for (const auto& [yaml, want] : cases) {
    const std::string message = refusal(yaml);
    EXPECT_NE(message.find(want), std::string::npos) << yaml << " -> " << message;
  }
}

}  // namespace
}  // namespace baton::deploy
