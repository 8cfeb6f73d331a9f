// MLA's expanded prefill (mla_prefill.h) end to end in the CUDA backend: a
// random DeepSeek-V3-shaped model with the expanded kernel's head dims (nope
// 128, rope 64, v 128, q LoRA) whose prefill steps of >= kMlaExpandMinTokens
// new tokens take the expanded form, against the CPU backend (fp32, absorbed
// form) on the same steps: one sequence, a second chunk over a cached prefix,
// and two sequences in one step; and the same at tensor parallel size 2 (one
// head per rank, each rank expanding its head's K and V from the latent rows
// it holds whole), two ranks on the one GPU over host-staged collectives.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/host_staged_communicator.h"
#include "backend/cuda/mla_prefill.h"
#include "backend/fp32_random_checkpoint.h"
#include "backend/step_builder.h"
#include "cuda_test_util.h"
#include "model/presets.h"
#include "model/tp_shard.h"

namespace baton::cuda {
namespace {

namespace fs = std::filesystem;
using baton::testing::TestSeq;
using namespace baton::cuda::testing;

constexpr int kBlockSize = 16, kNumBlocks = 128;
constexpr double kTol = 3e-2;  // bf16 weights and activations against the CPU's fp32

ModelConfig expanded_shape_config() {
  ModelConfig c = find_model_preset("tiny-deepseek-v3")->config;
  c.num_heads = c.num_kv_heads = 2;
  // q LoRA 32, latent 512 (the absorbed kernel's, which decode and the CPU
  // comparison's small steps need), nope 128, rope 64, v 128.
  c.mla = MlaConfig{32, 512, 128, 64, 128, true};
  c.head_dim = c.mla.qk_rope_head_dim;
  c.num_layers = 2;
  c.deepseek_moe.first_k_dense_replace = 2;  // dense layers: no route flips between bf16 and fp32
  return c;
}

TestSeq random_seq(int len, int first_block, std::mt19937& rng) {
  std::uniform_int_distribution<int> tok(3, 511);
  TestSeq s;
  for (int i = 0; i < len; ++i) s.tokens.push_back(tok(rng));
  s.prompt_len = len;
  s.params.temperature = 0.0f;
  for (int b = 0; b < (len + kBlockSize - 1) / kBlockSize; ++b) s.blocks.push_back(first_block + b);
  return s;
}

class CudaMlaExpanded : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_REQUIRE_GPU();
    dir_ = fs::temp_directory_path() / ("baton_mla_expanded_" + std::to_string(std::random_device{}()));
    const ModelConfig c = expanded_shape_config();
    ASSERT_TRUE(mla_expanded_supports(c.mla.qk_nope_head_dim, c.mla.qk_rope_head_dim, c.mla.v_head_dim));
    ckpt_ = baton::testing::write_fp32_random_checkpoint(c, dir_.string(), 7, 0.1);
    ASSERT_NE(ckpt_, nullptr);
    CudaBackendOptions o;
    o.max_num_tokens = 1024;
    auto g = CudaBackend::create(*ckpt_, o);
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    gpu_ = std::move(g).value();
    ASSERT_TRUE(gpu_->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
    BackendOptions co;
    co.num_threads = 2;
    auto cpu = CpuBackend::create(*ckpt_, co);
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    cpu_ = std::move(cpu).value();
    ASSERT_TRUE(cpu_->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  }
  void TearDown() override {
    gpu_.reset();
    cpu_.reset();
    ckpt_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  // Runs the step on both backends; the relative L2 error of all its logits.
  double step_error(std::vector<TestSeq>& seqs, const std::vector<int>& chunk) {
    StepInput in = baton::testing::build_step(seqs, chunk, kBlockSize);
    Result<std::vector<float>> gl = gpu_->forward_all_logits(in);
    EXPECT_TRUE(gl.is_ok()) << gl.status().to_string();
    Result<std::vector<float>> cl = cpu_->forward_all_logits(in);
    EXPECT_TRUE(cl.is_ok()) << cl.status().to_string();
    if (!gl.is_ok() || !cl.is_ok()) return 1.0;
    EXPECT_EQ(gl->size(), cl->size());
    return rel_l2(*gl, *cl);
  }

  fs::path dir_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
};

TEST_F(CudaMlaExpanded, OneSequenceMatchesCpu) {
  std::mt19937 rng(1);
  std::vector<TestSeq> seqs = {random_seq(301, 0, rng)};
  ASSERT_GE(301, kMlaExpandMinTokens);
  EXPECT_LT(step_error(seqs, {301}), kTol);
}

TEST_F(CudaMlaExpanded, ChunkOverCachedPrefixMatchesCpu) {
  std::mt19937 rng(2);
  std::vector<TestSeq> seqs = {random_seq(290, 0, rng)};
  EXPECT_LT(step_error(seqs, {150}), kTol);  // writes the prefix's latent rows on both backends
  seqs[0].num_computed = 150;
  EXPECT_LT(step_error(seqs, {140}), kTol);  // 140 new tokens over 150 cached ones
}

TEST_F(CudaMlaExpanded, TwoSequencesInOneStepMatchCpu) {
  std::mt19937 rng(3);
  std::vector<TestSeq> seqs = {random_seq(200, 0, rng), random_seq(133, 20, rng)};
  EXPECT_LT(step_error(seqs, {200, 133}), kTol);
}

// Two ranks, one head each: the expanded prefill of each rank's head, the
// o_proj partial sums all-reduced, the same logits as the CPU's.
TEST_F(CudaMlaExpanded, TwoRanksMatchCpu) {
  constexpr int kRanks = 2;
  auto comms = HostStagedCommunicator::make_group(kRanks, std::chrono::milliseconds(5000));
  std::vector<std::unique_ptr<CudaBackend>> ranks;
  for (int r = 0; r < kRanks; ++r) {
    Result<TpShard> shard = TpShard::make(ckpt_->config(), r, kRanks);
    ASSERT_TRUE(shard.is_ok()) << shard.status().to_string();
    ASSERT_EQ(shard->num_heads, 1);
    CudaBackendOptions o;
    o.max_num_tokens = 1024;
    o.gpu_memory_utilization = 0.3;
    auto b = CudaBackend::create(*ckpt_, o, CudaTpRank{*shard, comms[r].get()});
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    ASSERT_TRUE((*b)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
    ranks.push_back(std::move(b).value());
  }
  std::mt19937 rng(4);
  std::vector<TestSeq> seqs = {random_seq(200, 0, rng), random_seq(133, 20, rng)};
  StepInput in = baton::testing::build_step(seqs, {200, 133}, kBlockSize);
  std::vector<Result<std::vector<float>>> out(kRanks, Result<std::vector<float>>(internal_error("not run")));
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) threads.emplace_back([&, r] { out[r] = ranks[r]->forward_all_logits(in); });
  for (auto& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) ASSERT_TRUE(out[r].is_ok()) << "rank " << r << ": " << out[r].status().to_string();
  Result<std::vector<float>> cpu = cpu_->forward_all_logits(in);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  ASSERT_EQ(out[0]->size(), cpu->size());
  EXPECT_LT(rel_l2(*out[0], *cpu), kTol);
  EXPECT_EQ(*out[0], *out[1]) << "every rank gathers the same logits";
}

}  // namespace
}  // namespace baton::cuda
