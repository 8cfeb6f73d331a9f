// The first-use costs of a cold serving process (engine_warmup.h): the CUDA
// backend's buckets, what a new bucket or graph costs, that it is paid once
// per process, and that a simulation carries it from trial to trial.
#include "planner/engine_warmup.h"

#include <gtest/gtest.h>

#include "planner/cluster_sim.h"

namespace baton::planner {
namespace {

TEST(EngineWarmupTest, BucketsAreTheBackends) {
  // gemm.cpp: exact up to 64, then 8 buckets per power of two (rounded up).
  EXPECT_EQ(gemm_m_bucket(1), 1);
  EXPECT_EQ(gemm_m_bucket(64), 64);
  EXPECT_EQ(gemm_m_bucket(65), 72);
  EXPECT_EQ(gemm_m_bucket(1000), 1024);
  EXPECT_EQ(gemm_m_bucket(1025), 1152);
  EXPECT_EQ(gemm_m_bucket(8192), 8192);
  EXPECT_EQ(gemm_m_bucket(8000), 8192);
  EXPECT_EQ(gemm_m_bucket(7681), 8192);
  EXPECT_EQ(gemm_m_bucket(7680), 7680);
  // cuda_backend.cpp: the graphs' batch buckets and block-table widths.
  EXPECT_EQ(graph_batch_bucket(1), 1);
  EXPECT_EQ(graph_batch_bucket(3), 4);
  EXPECT_EQ(graph_batch_bucket(17), 24);
  EXPECT_EQ(graph_batch_bucket(256), 256);
  EXPECT_EQ(graph_batch_bucket(257), -1);
  EXPECT_EQ(graph_blocks_bucket(1), 16);
  EXPECT_EQ(graph_blocks_bucket(65), 128);
}

// The four linears: 1 ms a layer at m = 1, 2 ms at 1,024, 4 ms at 2,048; the LM head 0.5 ms at m = 1.
FirstUseModel toy() { return FirstUseModel({{1, 1.0}, {1024, 2.0}, {2048, 4.0}}, 0.5); }

TEST(EngineWarmupTest, LinearTimesAreTheMeasuredOnes) {
  const FirstUseModel m = toy();
  EXPECT_NEAR(m.layer_s(1), 1e-3, 1e-12);
  EXPECT_NEAR(m.layer_s(2048), 4e-3, 1e-12);
  EXPECT_NEAR(m.layer_s(1536), 3e-3, 1e-12);  // between measured m: linear
  EXPECT_NEAR(m.layer_s(4096), 8e-3, 1e-12);  // past the last: its segment's slope
  EXPECT_NEAR(m.head_s(1), 0.5e-3, 1e-12);
  EXPECT_NEAR(m.head_s(2048), 2e-3, 1e-12);  // scaled as the layers are
  // 8 candidates x 6 launches; where m <= 8 the GEMV kernel is one more.
  EXPECT_NEAR(m.tune_layers_s(2048), 48 * 4e-3, 1e-12);
  EXPECT_NEAR(m.tune_layers_s(1), 54 * 1e-3, 1e-12);
}

TEST(EngineWarmupTest, EachTimedLaunchFirstOverwritesTheWorkspace) {
  // At 4,000 GB/s the 64 MiB flush takes 16.8 us; each candidate's 5 timed
  // launches pay it once per linear shape (4 a layer, 1 for the head).
  const FirstUseModel m({{1, 1.0}, {1024, 2.0}, {2048, 4.0}}, 0.5, 4000);
  const double flush = 64.0 * (1 << 20) / 4e12;
  EXPECT_NEAR(m.tune_layers_s(2048), 8 * (6 * 4e-3 + 5 * 4 * flush), 1e-12);
  EXPECT_NEAR(m.tune_layers_s(1), 9 * (6 * 1e-3 + 5 * 4 * flush), 1e-12);
  EXPECT_NEAR(m.tune_head_s(1), 9 * (6 * 0.5e-3 + 5 * flush), 1e-12);
  EXPECT_NEAR(m.to_json()["flush_ms"].get<double>(), flush * 1e3, 1e-12);
}

TEST(EngineWarmupTest, AnEagerStepPaysEachNewBucketOnce) {
  const FirstUseModel m = toy();
  EngineWarmth w;
  // A prompt of 2,048 tokens that samples its first token.
  const StepDims prompt{.num_tokens = 2048, .num_seqs = 1, .num_samples = 1, .max_blocks_per_seq = 128};
  EXPECT_NEAR(m.first_use_s(prompt, 0.05, w), m.tune_layers_s(2048) + m.tune_head_s(1), 1e-12);
  EXPECT_EQ(w.num_tunings, 2);
  // 2,000 tokens: the same bucket (2,048), the same head bucket: nothing more.
  const StepDims again{.num_tokens = 2000, .num_seqs = 1, .num_samples = 1, .max_blocks_per_seq = 125};
  EXPECT_EQ(m.first_use_s(again, 0.05, w), 0);
  // A chunk that samples nothing tunes no head.
  const StepDims chunk{.num_tokens = 1024, .num_seqs = 1, .num_samples = 0, .max_blocks_per_seq = 64};
  EXPECT_NEAR(m.first_use_s(chunk, 0.05, w), m.tune_layers_s(1024), 1e-12);
  EXPECT_NEAR(w.seconds, m.tune_layers_s(2048) + m.tune_head_s(1) + m.tune_layers_s(1024), 1e-12);
}

TEST(EngineWarmupTest, ANewGraphRunsTheStepEagerlyFirst) {
  const FirstUseModel m = toy();
  EngineWarmth w;
  // Three decodes: the graph of batch bucket 4; its eager run tunes m = 4 (layers and head).
  const StepDims decode{.num_tokens = 3, .num_seqs = 3, .num_samples = 3, .max_blocks_per_seq = 20};
  const double step = 0.006;
  EXPECT_NEAR(m.first_use_s(decode, step, w), step + m.tune_layers_s(4) + m.tune_head_s(4), 1e-12);
  EXPECT_EQ(w.num_graphs, 1);
  // Four decodes, block tables up to 32 wide: the same graph.
  EXPECT_EQ(m.first_use_s({.num_tokens = 4, .num_seqs = 4, .num_samples = 4, .max_blocks_per_seq = 32}, step, w), 0);
  // A wider block table is another graph; its GEMM buckets are known: only the eager run.
  EXPECT_NEAR(m.first_use_s({.num_tokens = 4, .num_seqs = 4, .num_samples = 4, .max_blocks_per_seq = 33}, step, w),
              step, 1e-12);
}

TEST(EngineWarmupTest, ReadsTheProfilesLinearTimings) {
  Json profile = Json::parse(R"({"models": [{"model": "m",
    "prefill": [{"tokens": 1024, "time_ms": 25, "linear_gemms": {"per_gemm": [
        {"gemm": "qkv", "m": 1024, "ms": 0.1}, {"gemm": "o", "m": 1024, "ms": 0.1},
        {"gemm": "gate_up", "m": 1024, "ms": 0.3}, {"gemm": "down", "m": 1024, "ms": 0.2}]}}],
    "decode": [{"batch": 1, "context": 1024, "step_ms": 5, "linears_alone": {"per_linear": [
        {"linear": "qkv", "m": 1, "us": 20}, {"linear": "o", "m": 1, "us": 20},
        {"linear": "gate_up", "m": 1, "us": 60}, {"linear": "down", "m": 1, "us": 40},
        {"linear": "lm_head", "m": 1, "us": 240}]}}]}]})");
  auto m = first_use_from_profile(profile, "m");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_NEAR(m->layer_s(1024), 0.7e-3, 1e-12);
  EXPECT_NEAR(m->layer_s(1), 0.14e-3, 1e-12);
  EXPECT_NEAR(m->head_s(1), 0.24e-3, 1e-12);
  EXPECT_EQ(m->to_json()["flush_ms"].get<double>(), 0);  // no ceilings: no flush priced
  profile["ceilings"] = Json{{"copy_gbps", 4000}};
  auto with_copy = first_use_from_profile(profile, "m");
  ASSERT_TRUE(with_copy.is_ok());
  EXPECT_NEAR(with_copy->to_json()["flush_ms"].get<double>(), 64.0 * (1 << 20) / 4e9, 1e-12);
  // A profile that timed no linears prices nothing.
  auto none = first_use_from_profile(Json::parse(R"({"models": [{"model": "m"}]})"), "m");
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(first_use_from_profile(profile, "other").is_ok());
}

TEST(EngineWarmupTest, ASimulationPaysFirstUsesOnceAcrossTrials) {
  // One request of 1,024 prompt tokens and 2 output tokens, constant 10 ms steps.
  bench::Workload w;
  w.kind = "random";
  bench::RequestSpec r;
  r.prompt = {{1, 1024}};
  r.prompt_tokens = 1024;
  r.output_tokens = 2;
  w.requests.push_back(r);
  DeploymentSpec d;
  d.name = "agg";
  d.num_agg = 1;
  d.agg.scheduler.max_num_seqs = 8;
  d.agg.scheduler.max_num_batched_tokens = 8192;
  d.agg.num_kv_blocks = 1024;
  d.prefill = d.decode = d.agg;
  const StepTimeModel model = StepTimeModel::constant(0.01);
  const FirstUseModel m = toy();
  std::vector<EngineWarmth> warmth;
  SimOptions cold;
  cold.first_use = &m;
  cold.warmth = &warmth;
  auto first = simulate(d, w, model, TransferModel{}, cold);
  ASSERT_TRUE(first.is_ok());
  // The prompt's step tunes m = 1,024 and the head's m = 1; the decode step captures graph (1, 16) after an
  // eager run whose layer bucket (1) is new and whose head bucket (1) is not.
  const double prompt_extra = m.tune_layers_s(1024) + m.tune_head_s(1);
  const double decode_extra = 0.01 + m.tune_layers_s(1);
  EXPECT_NEAR(first->records[0].ttft_s(), 0.01 + prompt_extra, 1e-9);
  EXPECT_NEAR(first->records[0].e2e_s(), 0.02 + prompt_extra + decode_extra, 1e-9);
  ASSERT_EQ(warmth.size(), 1u);
  EXPECT_NEAR(warmth[0].seconds, prompt_extra + decode_extra, 1e-12);
  // The same process serves the next trial warm.
  auto second = simulate(d, w, model, TransferModel{}, cold);
  ASSERT_TRUE(second.is_ok());
  EXPECT_NEAR(second->records[0].e2e_s(), 0.02, 1e-9);
  // Without the model, steady state from the start.
  auto warm = simulate(d, w, model, TransferModel{});
  ASSERT_TRUE(warm.is_ok());
  EXPECT_NEAR(warm->records[0].e2e_s(), 0.02, 1e-9);
}

}  // namespace
}  // namespace baton::planner
