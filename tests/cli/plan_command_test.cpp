// `baton plan` end to end: runs the built binary on a small profile.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/run_baton.h"
#include "common/json.h"

namespace baton {
namespace {

using Output = testing::BatonOutput;

Output run_plan(const std::string& args) { return testing::run_baton("plan " + args); }

class PlanCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("baton_plan_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    // A profile of the shape `baton profile` writes: decode and prefill steps of one model.
    std::ofstream(dir_ / "profile.json") << R"({"device": "test card", "models": [{"model": "llama3.1-8b",
      "weight_bytes": 16060522496.0,
      "decode": [{"batch": 1, "context": 1024, "step_ms": 4.7}, {"batch": 32, "context": 1024, "step_ms": 6.6},
                 {"batch": 128, "context": 1024, "step_ms": 10.9}, {"batch": 256, "context": 1024, "step_ms": 18.1}],
      "prefill": [{"tokens": 512, "time_ms": 13.0}, {"tokens": 2048, "time_ms": 50.9},
                  {"tokens": 8192, "time_ms": 241.3}]}]})";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(PlanCommandTest, PredictsEveryDeploymentAndWritesJsonAndHtml) {
  const std::string json = (dir_ / "plan.json").string(), html = (dir_ / "plan.html").string();
  Output o = run_plan(
      "--profile " + (dir_ / "profile.json").string() +
      " --gpus 2 --input-len 1024 --output-len 32 --num-requests 100 --slo 'ttft:p90<500ms,tpot:p90<40ms'"
      " --kv-blocks 20000 --token-budgets 2048,8192 --json " +
      json + " --html " + html);
  ASSERT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.out.find("agg-2gpu"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("pd-1p1d"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("<- recommended"), std::string::npos) << o.out;
  std::ifstream in(json);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto doc = parse_json(text, "plan.json");
  ASSERT_TRUE(doc.is_ok()) << text;
  ASSERT_EQ((*doc)["plan"]["deployments"].size(), 2u);
  EXPECT_GT((*doc)["plan"]["deployments"][0]["max_rate"].get<double>(), 0);
  EXPECT_EQ((*doc)["fit"]["num_samples"], 7);
  EXPECT_TRUE(std::filesystem::file_size(html) > 1000);
}

TEST_F(PlanCommandTest, RefusesWhatItCannotPlan) {
  const std::string profile = (dir_ / "profile.json").string();
  Output no_kv = run_plan("--profile " + profile + " --gpus 2 --slo 'ttft:p90<1s'");
  EXPECT_EQ(no_kv.rc, 2);
  EXPECT_NE(no_kv.out.find("--kv-blocks"), std::string::npos) << no_kv.out;
  Output no_file = run_plan("--profile " + (dir_ / "missing.json").string() +
                            " --gpus 2 --kv-blocks 100 --slo 'ttft:p90<1s'");
  EXPECT_EQ(no_file.rc, 2);
  EXPECT_NE(no_file.out.find("missing.json"), std::string::npos) << no_file.out;
  Output bad_policy = run_plan("--profile " + profile +
                               " --gpus 2 --kv-blocks 20000 --slo 'ttft:p90<1s' --policy random");
  EXPECT_EQ(bad_policy.rc, 2);
  EXPECT_NE(bad_policy.out.find("routing policy"), std::string::npos) << bad_policy.out;
}

TEST_F(PlanCommandTest, ValidatePrintsPredictedAgainstMeasuredAsJson) {
  // A sweep's --out folder with one cell on a card that has a profile.
  std::filesystem::create_directories(dir_ / "sweep" / "profiles");
  std::filesystem::create_directories(dir_ / "sweep" / "results" / "agg-1gpu");
  std::filesystem::copy_file(dir_ / "profile.json", dir_ / "sweep" / "profiles" / "card.json");
  std::ofstream(dir_ / "sweep" / "results" / "agg-1gpu" / "short.json") << R"({"config": {"sweep": {
      "deployment": {"name": "agg-1gpu", "mode": "agg", "replicas": 1, "model": "models/llama3.1-8b"},
      "workload": "short", "workload_settings": {"kind": "random", "input_len": 1024, "output_len": 32,
      "num_requests": 100}, "slo": "ttft:p90<500ms", "vocab_size": 128256,
      "gpus": [{"gpu": 0, "name": "test card"}]}},
    "search": {"max_sustainable_rps": 20, "min_failed_rps": 24, "broke_first": "ttft:p90<500ms"}})";
  Output o = run_plan("--validate " + (dir_ / "sweep").string() + " --gpu-memory-gib 80 --json");
  ASSERT_EQ(o.rc, 0) << o.out;
  auto doc = parse_json(o.out, "stdout");
  ASSERT_TRUE(doc.is_ok()) << o.out;
  ASSERT_EQ((*doc)["cells"].size(), 1u);
  EXPECT_EQ((*doc)["cells"][0]["deployment"], "agg-1gpu");
  EXPECT_EQ((*doc)["cells"][0]["measured_rps"], 20.0);
  EXPECT_GT((*doc)["cells"][0]["predicted_rps"].get<double>(), 0);
  EXPECT_TRUE(doc->contains("median_abs_rel_error"));
  EXPECT_TRUE(doc->contains("max_abs_rel_error"));
  // Without the card's memory there is no KV capacity: said, not guessed.
  Output no_memory = run_plan("--validate " + (dir_ / "sweep").string());
  EXPECT_EQ(no_memory.rc, 2);
  EXPECT_NE(no_memory.out.find("--gpu-memory-gib"), std::string::npos) << no_memory.out;
}

}  // namespace
}  // namespace baton
