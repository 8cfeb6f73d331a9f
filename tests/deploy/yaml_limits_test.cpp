#include "deploy/yaml_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "deploy/deploy_spec.h"
#include "deploy/experiment.h"

namespace baton::deploy {
namespace {

std::string nested_flow(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// 10 aliases of 10 aliases of ... : 10^7 nodes once expanded, 500 bytes of text.
std::string alias_bomb() {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 8; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  return text;
}

TEST(YamlLimitsTest, DeepNestingIsRefusedBeforeAnyConversion) {
  auto spec = DeploySpec::parse_yaml("engine_args: {x: " + nested_flow(200) + "}\nreplicas: 1\n");
  ASSERT_FALSE(spec.is_ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("nested deeper than 64"), std::string::npos) << spec.status().message();

  // Block nesting ("- - - x") counts the same as flow nesting.
  std::string block = "deployments:\n  - ";
  for (int i = 0; i < 100; ++i) block += "- ";
  auto experiment = Experiment::parse_yaml(block + "x\n");
  ASSERT_FALSE(experiment.is_ok());
  EXPECT_NE(experiment.status().message().find("nested deeper than 64"), std::string::npos)
      << experiment.status().message();
}

TEST(YamlLimitsTest, NestingAtTheLimitIsAccepted) {
  YAML::Node ok = YAML::Load(nested_flow(64));
  EXPECT_TRUE(check_yaml_limits(ok, "test").is_ok());
  YAML::Node deep = YAML::Load(nested_flow(65));
  EXPECT_EQ(check_yaml_limits(deep, "test").code(), StatusCode::kInvalidArgument);
}

TEST(YamlLimitsTest, AliasBombIsRefused) {
  auto spec = DeploySpec::parse_yaml(alias_bomb());
  ASSERT_FALSE(spec.is_ok());
  EXPECT_NE(spec.status().message().find("more than 20000 YAML nodes"), std::string::npos) << spec.status().message();
  auto experiment = Experiment::parse_yaml(alias_bomb());
  ASSERT_FALSE(experiment.is_ok());
  EXPECT_NE(experiment.status().message().find("YAML nodes"), std::string::npos) << experiment.status().message();
}

TEST(YamlLimitsTest, OrdinarySpecStillParses) {
  auto spec = DeploySpec::parse_yaml(
      "name: pd\nmode: pd\nprefill: {replicas: 1, engine_args: {max-num-batched-tokens: 8192}}\n"
      "decode: {replicas: 2}\nrouter: {port: 8000}\ngpus: [0, 1, 2]\n");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  EXPECT_EQ(spec->decode.replicas, 2);
}

}  // namespace
}  // namespace baton::deploy
