// `baton up --emit k8s`: the manifests' content (schema validation against
// the Kubernetes API: k8s_schema_e2e_test.cpp).
#include "deploy/k8s_manifests.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

namespace baton::deploy {
namespace {

constexpr const char* kSecretHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

DeploySpec pd_spec() {
  auto spec = DeploySpec::parse_yaml(R"(
name: pd-1p2d
model: models/llama3.1-8b
device: cuda
mode: pd
kv_transport: cuda_ipc
prefill: {replicas: 1, engine_args: {max-num-batched-tokens: 4096}}
decode: {replicas: 2}
engine_args: {max-num-seqs: 128, gpu-memory-utilization: 0.9}
router: {port: 8000, policy: least_loaded}
base_port: 8100
base_kv_port: 9100
health_timeout_s: 600
)");
  EXPECT_TRUE(spec.is_ok()) << spec.status().to_string();
  return *spec;
}

// Every document of the file called `name`.
std::vector<YAML::Node> documents(const std::vector<K8sFile>& files, const std::string& name) {
  for (const K8sFile& f : files) {
    if (f.name == name) return YAML::LoadAll(f.yaml);
  }
  ADD_FAILURE() << "no file " << name;
  return {};
}

std::vector<std::string> args_of(const YAML::Node& workload) {
  return workload["spec"]["template"]["spec"]["containers"][0]["args"].as<std::vector<std::string>>();
}

std::string flag(const std::vector<std::string>& args, const std::string& name) {
  auto it = std::find(args.begin(), args.end(), name);
  return it != args.end() && it + 1 != args.end() ? *(it + 1) : "<absent>";
}

TEST(K8sManifestsTest, AnAdaptiveSpecSwitchesRolesOverTheRegistry) {
  auto spec = DeploySpec::parse_yaml(R"(
name: ad
mode: adaptive
prefill: 1
decode: 2
router: {policy: kv_aware, disagg: conditional, tokenizer: /models/m}
role_control: {margin: 3}
)");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  K8sOptions o;
  o.kv_secret_hex = kSecretHex;
  std::vector<std::string> notes;
  auto files = k8s_manifests(*spec, o, &notes);
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  for (const char* role : {"prefill.yaml", "decode.yaml"}) {
    std::vector<std::string> args = args_of(documents(*files, role)[0]);
    EXPECT_NE(std::find(args.begin(), args.end(), "--role-switching"), args.end()) << role;
    EXPECT_EQ(flag(args, "--kv-transport"), "tcp") << role;
    EXPECT_NE(flag(args, "--discovery"), "<absent>") << role;
  }
  std::vector<std::string> router = args_of(documents(*files, "router.yaml")[0]);
  EXPECT_EQ(flag(router, "--mode"), "pd");
  EXPECT_EQ(flag(router, "--disagg"), "conditional");
  EXPECT_EQ(flag(router, "--role-margin"), "3");
  EXPECT_EQ(flag(router, "--tokenizer"), "<absent>");  // a path on this host: left out, with a note
  EXPECT_NE(std::find(router.begin(), router.end(), "--role-control"), router.end());
  EXPECT_NE(flag(router, "--discovery"), "<absent>");
  bool noted = false;
  for (const std::string& n : notes) noted |= n.find("router.tokenizer") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(K8sManifestsTest, APdSpecBecomesOneStatefulSetPerRoleWithGpusProbesAndTheSecret) {
  K8sOptions o;
  o.kv_secret_hex = kSecretHex;
  o.ns = "serving";
  std::vector<std::string> notes;
  auto files = k8s_manifests(pd_spec(), o, &notes);
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  std::vector<std::string> names;
  for (const K8sFile& f : *files) names.push_back(f.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"kv-secret.yaml", "etcd.yaml", "prefill.yaml", "decode.yaml", "router.yaml"}));

  auto secret = documents(*files, "kv-secret.yaml");
  ASSERT_EQ(secret.size(), 1u);
  EXPECT_EQ(secret[0]["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(secret[0]["stringData"]["kv-secret"].as<std::string>(), kSecretHex);

  auto decode = documents(*files, "decode.yaml");
  ASSERT_EQ(decode.size(), 2u);
  const YAML::Node& set = decode[0];
  EXPECT_EQ(set["kind"].as<std::string>(), "StatefulSet");
  EXPECT_EQ(set["metadata"]["namespace"].as<std::string>(), "serving");
  EXPECT_EQ(set["spec"]["replicas"].as<int>(), 2);
  const YAML::Node container = set["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 1);
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/health");
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/health");
  EXPECT_EQ(container["startupProbe"]["failureThreshold"].as<int>(), 60);  // health_timeout_s 600 / 10 s
  EXPECT_EQ(set["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"].as<std::string>(), "true");
  EXPECT_EQ(set["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"].as<std::string>(), "8100");
  const YAML::Node secret_volume = set["spec"]["template"]["spec"]["volumes"][0];
  EXPECT_EQ(secret_volume["secret"]["secretName"].as<std::string>(), "pd-1p2d-kv-secret");
  EXPECT_EQ(secret_volume["secret"]["defaultMode"].as<int>(), 0400);
  const auto args = args_of(set);
  EXPECT_EQ(flag(args, "--role"), "decode");
  EXPECT_EQ(flag(args, "--kv-transport"), "tcp");  // pods share no host memory
  EXPECT_EQ(flag(args, "--kv-host"), "$(POD_IP)");
  EXPECT_EQ(flag(args, "--kv-secret-file"), "/etc/baton/kv/kv-secret");
  EXPECT_EQ(flag(args, "--discovery"), "etcd://pd-1p2d-etcd:2379");
  EXPECT_EQ(flag(args, "--model"), "/models/llama3.1-8b");
  EXPECT_EQ(flag(args, "--max-num-seqs"), "128");
  EXPECT_EQ(flag(args, "--host"), "0.0.0.0");
  EXPECT_EQ(decode[1]["kind"].as<std::string>(), "Service");
  EXPECT_EQ(decode[1]["spec"]["clusterIP"].as<std::string>(), "None");
  // A role's own engine_args reach only that role.
  EXPECT_EQ(flag(args_of(documents(*files, "prefill.yaml")[0]), "--max-num-batched-tokens"), "4096");
  EXPECT_EQ(flag(args, "--max-num-batched-tokens"), "<absent>");

  auto router = documents(*files, "router.yaml");
  ASSERT_EQ(router.size(), 2u);
  EXPECT_EQ(router[0]["kind"].as<std::string>(), "Deployment");
  EXPECT_EQ(flag(args_of(router[0]), "--mode"), "pd");
  EXPECT_EQ(flag(args_of(router[0]), "--policy"), "least_loaded");
  EXPECT_EQ(flag(args_of(router[0]), "--discovery"), "etcd://pd-1p2d-etcd:2379");
  EXPECT_EQ(router[1]["spec"]["type"].as<std::string>(), "ClusterIP");

  const bool said_tcp = std::any_of(notes.begin(), notes.end(),
                                    [](const std::string& n) { return n.find("use tcp") != std::string::npos; });
  EXPECT_TRUE(said_tcp);
}

// A role at tensor_parallel_size N: its pods ask for N GPUs and run N ranks
// (with its experts spread over them when the role says so).
TEST(K8sManifestsTest, ATensorParallelRoleAsksForOneGpuPerRank) {
  DeploySpec spec = pd_spec();
  spec.prefill.tensor_parallel_size = 4;
  spec.prefill.enable_expert_parallel = true;
  K8sOptions o;
  o.kv_secret_hex = kSecretHex;
  std::vector<std::string> notes;
  auto files = k8s_manifests(spec, o, &notes);
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  const YAML::Node prefill = documents(*files, "prefill.yaml")[0];
  EXPECT_EQ(prefill["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 4);
  EXPECT_EQ(flag(args_of(prefill), "--tensor-parallel-size"), "4");
  const std::vector<std::string> prefill_args = args_of(prefill);
  EXPECT_EQ(std::count(prefill_args.begin(), prefill_args.end(), "--enable-expert-parallel"), 1);
  const YAML::Node decode = documents(*files, "decode.yaml")[0];
  EXPECT_EQ(decode["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 1);
  EXPECT_EQ(flag(args_of(decode), "--tensor-parallel-size"), "<absent>");
  const std::vector<std::string> decode_args = args_of(decode);
  EXPECT_EQ(std::count(decode_args.begin(), decode_args.end(), "--enable-expert-parallel"), 0);
}

TEST(K8sManifestsTest, ACpuAggSpecHasNoGpuNoSecretAndAnExistingEtcdIsUsed) {
  auto spec = DeploySpec::parse_yaml("name: agg-cpu\nmode: agg\nreplicas: 3\n");
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  K8sOptions o;
  o.etcd_endpoint = "etcd://etcd.infra:2379";
  std::vector<std::string> notes;
  auto files = k8s_manifests(*spec, o, &notes);
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  ASSERT_EQ(files->size(), 2u);  // agg.yaml, router.yaml: no secret, no etcd
  auto agg = documents(*files, "agg.yaml");
  EXPECT_EQ(agg[0]["spec"]["replicas"].as<int>(), 3);
  const YAML::Node container = agg[0]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_FALSE(container["resources"].IsDefined());
  EXPECT_EQ(flag(args_of(agg[0]), "--discovery"), "etcd://etcd.infra:2379");
  EXPECT_EQ(flag(args_of(agg[0]), "--model"), "<absent>");  // the embedded default model
}

TEST(K8sManifestsTest, AnExistingSecretIsReferencedNotWritten) {
  K8sOptions o;
  o.existing_secret = "team-kv-secret";
  std::vector<std::string> notes;
  auto files = k8s_manifests(pd_spec(), o, &notes);
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  for (const K8sFile& f : *files) EXPECT_NE(f.name, "kv-secret.yaml");
  auto prefill = documents(*files, "prefill.yaml");
  EXPECT_EQ(prefill[0]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"].as<std::string>(),
            "team-kv-secret");
}

TEST(K8sManifestsTest, RefusesWhatKubernetesWouldNotTakeClearly) {
  std::vector<std::string> notes;
  DeploySpec bad_name = pd_spec();
  bad_name.name = "PD_Deploy";
  K8sOptions o;
  o.kv_secret_hex = kSecretHex;
  auto named = k8s_manifests(bad_name, o, &notes);
  ASSERT_FALSE(named.is_ok());
  EXPECT_NE(named.status().message().find("PD_Deploy"), std::string::npos);
  auto no_secret = k8s_manifests(pd_spec(), K8sOptions{}, &notes);
  ASSERT_FALSE(no_secret.is_ok());
  EXPECT_NE(no_secret.status().message().find("KV secret"), std::string::npos);
  K8sOptions bad_etcd = o;
  bad_etcd.etcd_endpoint = "http://etcd:2379";
  auto etcd = k8s_manifests(pd_spec(), bad_etcd, &notes);
  ASSERT_FALSE(etcd.is_ok());
  EXPECT_NE(etcd.status().message().find("etcd://"), std::string::npos);
}

}  // namespace
}  // namespace baton::deploy
