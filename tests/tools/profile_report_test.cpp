// The GPU profile's report (src/tools/gpu_profile/profile_report.h) on
// reports made here: which goals it holds each model to, met or missed, the
// FP8 / bf16 ratios, and the Markdown it writes from them. No GPU: the
// report is a function of the JSON `baton profile` writes.
#include "tools/gpu_profile/profile_report.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::cuda {
namespace {

Json decode_row(int batch, double step_ms, double util) {
  return {{"batch", batch},
          {"context", 1024},
          {"step_ms", step_ms},
          {"gpu_ms", step_ms - 0.01},
          {"tokens_per_s", batch / (step_ms * 1e-3)},
          {"achieved_gbps", util * 4200},
          {"bandwidth_utilization", util},
          {"flop_utilization", 0.01},
          {"attention_us_per_layer", 8.5},
          {"attention_gbps", 490.0}};
}

Json prefill_row(int tokens, double ms, double tokens_per_s, double util) {
  return {
      {"tokens", tokens},         {"time_ms", ms},          {"tokens_per_s", tokens_per_s}, {"achieved_tflops", 580},
      {"flop_utilization", util}, {"linear_flops", 1.2e14}, {"attention_flops", 1e13}};
}

Json model(const std::string& name, double step1, double util1, double util64, double prefill_tps,
           double prefill_util) {
  return {{"model", name},
          {"num_layers", 32},
          {"decode", Json::array({decode_row(1, step1, util1), decode_row(64, 7.5, util64)})},
          {"prefill", Json::array({prefill_row(8192, 226.0, prefill_tps, prefill_util)})}};
}

Json report() {
  Json r;
  r["device"] = "NVIDIA H200";
  r["measured_at"] = "2026-12-05 07:00 UTC";
  r["cuda_driver"] = "13.0";
  r["cuda_runtime"] = "13.0";
  r["ceilings"] = {
      {"copy_gbps", 4200.0}, {"gemm_tflops", 790.0}, {"fp8_gemm_tflops", 1400.0}, {"h2d_pinned_gbps", 55.0}};
  r["models"] = Json::array({model("llama3.1-8b", 4.3, 0.829, 0.81, 36000, 0.734),
                             model("llama3.1-8b@fp8-block", 2.8, 0.66, 0.7, 54000, 0.5),
                             model("qwen3-30b-a3b", 3.4, 0.427, 0.794, 40000, 0.58)});
  r["models"].push_back(Json{
      {"model", "qwen3-235b-a22b"}, {"error", "out of memory"}, {"decode", Json::array()}, {"prefill", Json::array()}});
  return r;
}

const Json* find_target(const Json& targets, const std::string& name) {
  for (const Json& t : targets)
    if (t["name"] == name) return &t;
  return nullptr;
}

TEST(ProfileReportTest, HoldsEachModelToItsIssuesGoals) {
  const Json t = targets(report());
  struct Want {
    const char* name;
    double goal;
    bool met;
    int issue;
  };
  for (const Want& w : {
           Want{"llama3.1-8b decode batch 1 (context 1024) bandwidth utilisation", 0.85, false, 18},
           Want{"llama3.1-8b decode batch 64 (context 1024) bandwidth utilisation", 0.80, true, 18},
           Want{"llama3.1-8b prefill 8192 tokens FLOP utilisation", 0.71, true, 18},
           Want{"qwen3-30b-a3b decode batch 1 (context 1024) bandwidth utilisation", 0.70, false, 18},
           Want{"qwen3-30b-a3b decode batch 64 (context 1024) bandwidth utilisation", 0.75, true, 18},
           Want{"qwen3-30b-a3b prefill 8192 tokens FLOP utilisation", 0.55, true, 18},
       }) {
    const Json* got = find_target(t, w.name);
    ASSERT_NE(got, nullptr) << w.name;
    EXPECT_DOUBLE_EQ((*got)["target"].get<double>(), w.goal) << w.name;
    EXPECT_EQ((*got)["met"].get<bool>(), w.met) << w.name;
    EXPECT_EQ((*got)["issue"].get<int>(), w.issue) << w.name;
    // A miss says what limits it.
    EXPECT_EQ(got->contains("limited_by"), !w.met) << w.name;
  }
  // The FP8 form is held to the ratios against its bf16 form, not to bf16's goals.
  EXPECT_EQ(find_target(t, "llama3.1-8b@fp8-block decode batch 1 (context 1024) bandwidth utilisation"), nullptr);
  const Json* step = find_target(t, "llama3.1-8b@fp8-block decode batch 1 step / bf16 step (at most)");
  ASSERT_NE(step, nullptr);
  EXPECT_NEAR((*step)["value"].get<double>(), 2.8 / 4.3, 1e-12);
  EXPECT_FALSE((*step)["met"].get<bool>());  // 0.65x against at most 0.6x
  const Json* prefill = find_target(t, "llama3.1-8b@fp8-block prefill 8192 tokens/s / bf16 tokens/s");
  ASSERT_NE(prefill, nullptr);
  EXPECT_NEAR((*prefill)["value"].get<double>(), 1.5, 1e-12);
  EXPECT_TRUE((*prefill)["met"].get<bool>());
  EXPECT_EQ(t.size(), 8u);  // six bf16 goals, two FP8 ratios; the failed model has none
}

TEST(ProfileReportTest, DeepSeekKeepsIssue17sGoals) {
  Json r = report();
  r["models"] = Json::array({model("deepseek-v3-6l", 9.0, 0.3, 0.71, 20000, 0.40)});
  const Json t = targets(r);
  ASSERT_EQ(t.size(), 2u);  // no batch-1 goal
  const Json* d64 = find_target(t, "deepseek-v3-6l decode batch 64 (context 1024) bandwidth utilisation");
  ASSERT_NE(d64, nullptr);
  EXPECT_DOUBLE_EQ((*d64)["target"].get<double>(), 0.70);
  EXPECT_TRUE((*d64)["met"].get<bool>());
  EXPECT_EQ((*d64)["issue"].get<int>(), 17);
  const Json* p = find_target(t, "deepseek-v3-6l prefill 8192 tokens FLOP utilisation");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE((*p)["met"].get<bool>());
}

TEST(ProfileReportTest, MarkdownCarriesTheRunTheTargetsAndEveryRow) {
  Json r = report();
  r["targets"] = targets(r);
  const std::string md = markdown(r);
  EXPECT_NE(md.find("# GPU performance: NVIDIA H200"), std::string::npos);
  EXPECT_NE(md.find("2026-12-05 07:00 UTC (CUDA driver API 13.0, runtime 13.0)"), std::string::npos);
  EXPECT_NE(md.find("| llama3.1-8b decode batch 1 (context 1024) bandwidth utilisation | 82.9% | 85% | no | 18 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| qwen3-30b-a3b prefill 8192 tokens FLOP utilisation | 58.0% | 55% | yes | 18 |"),
            std::string::npos);
  EXPECT_NE(md.find("| llama3.1-8b@fp8-block decode batch 1 step / bf16 step (at most) | 0.65x | <= 0.6x | no | 18 |"),
            std::string::npos);
  EXPECT_NE(md.find("device copy 4200 GB/s"), std::string::npos);
  EXPECT_NE(md.find("Bandwidth utilisation: (weight bytes read + KV bytes read)"), std::string::npos);
  // A decode row: batch, step, GPU alone, tokens/s, GB/s, utilisations, attention a layer.
  EXPECT_NE(md.find("| 1 | 4.300 | 4.290 | 233 | 3482 | 82.9% | 1.0% | 8.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 8192 | 226.00 | 36000 | 580.0 | 73.4% |"), std::string::npos) << md;
  EXPECT_NE(md.find("## qwen3-235b-a22b\n\nNot measured: out of memory"), std::string::npos);
}

TEST(ProfileReportTest, MarkdownListsEachKernelsInStepCost) {
  Json r = report();
  Json& row = r["models"][0]["decode"][0];
  row["graph_ms"] = 4.0;
  row["kernels"] = Json::array(
      {Json{{"name", "skinny::kernel<false, 1, __nv_bfloat16, true>"},
            {"launches", 32},
            {"without_ms", 3.2},
            {"cost_us", 800.0}},
       Json{{"name", "attn_combine_kernel"}, {"launches", 32}, {"without_ms", 3.9}, {"cost_us", 100.0}}});
  const std::string md = markdown(r);
  EXPECT_NE(md.find("Batch 1, kernel by kernel inside the step's graph (4.000 ms a replay"), std::string::npos) << md;
  EXPECT_NE(md.find("| `skinny::kernel<false, 1, __nv_bfloat16, true>` | 32 | 800.0 | 20.0% |"), std::string::npos);
  EXPECT_NE(md.find("| `attn_combine_kernel` | 32 | 100.0 | 2.5% |"), std::string::npos);
}

TEST(ProfileReportTest, MarkdownOfARunWithoutTargetsOrTimings) {
  Json r = report();
  r.erase("measured_at");
  r.erase("cuda_driver");
  r["models"] = Json::array(
      {Json{{"model", "tiny"},
            {"decode", Json::array({Json{{"batch", 512}, {"context", 1024}, {"skipped", "KV does not fit"}}})},
            {"prefill", Json::array()}}});
  r["targets"] = targets(r);
  EXPECT_TRUE(r["targets"].empty());
  const std::string md = markdown(r);
  EXPECT_EQ(md.find("Targets:"), std::string::npos);
  EXPECT_NE(md.find("| 512 | skipped: KV does not fit |"), std::string::npos) << md;
}

}  // namespace
}  // namespace baton::cuda
