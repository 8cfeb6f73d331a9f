// Tensor parallelism on the CPU backend: every fixture model at TP=2 and
// TP=4 (4 query heads, 2 KV heads: TP=4 replicates each KV head on two
// ranks) generates exactly TP=1's greedy tokens with logits within 1e-4, over
// a batch of prompts with chunked prefill (and so do two random-weight
// presets with shapes the fixtures lack); so do the MoE models with their
// experts spread over the ranks (--enable-expert-parallel), each rank holding
// only its experts; layouts that cannot shard are refused naming the heads
// (or the experts); a failed rank ends the instance with an error.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "backend/backend_factory.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_communicator.h"
#include "backend/fixture_models.h"
#include "backend/greedy_batch.h"
#include "backend/step_builder.h"
#include "backend/tensor_parallel_backend.h"
#include "common/json.h"
#include "model/checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace baton {
namespace {

using testing::Generation;
using testing::TestSeq;

constexpr int kBlockSize = 8;
constexpr int kNumBlocks = 64;
constexpr int kNewTokens = 6;
constexpr int kPrefillChunk = 5;  // prompts longer than this prefill over several steps
constexpr double kLogitTolerance = 1e-4;

std::string model_dir(const std::string& name) { return testing::fixture_model_dir(name); }

std::unique_ptr<Checkpoint> open_checkpoint(const std::string& name) {
  Result<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::open(model_dir(name));
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  return ckpt.is_ok() ? std::move(ckpt).value() : nullptr;
}

std::unique_ptr<Backend> make_tp_backend(const Checkpoint& ckpt, int tp, bool expert_parallel = false) {
  BackendOptions options;
  options.num_threads = 2;
  options.tensor_parallel_size = tp;
  options.enable_expert_parallel = expert_parallel;
  Result<std::unique_ptr<Backend>> b = make_backend("cpu", ckpt, options);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  Status st = (*b)->init_kv_cache(kNumBlocks, kBlockSize);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return std::move(b).value();
}

// Chunked prefill of kPrefillChunk, then kNewTokens greedy tokens each.
Generation generate(Backend& backend, const std::vector<std::vector<int32_t>>& prompts) {
  testing::GreedyBatch batch;
  batch.new_tokens = kNewTokens;
  batch.prefill_chunk = kPrefillChunk;
  batch.block_size = kBlockSize;
  return testing::generate_greedy(backend, prompts, batch);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

void expect_tp_matches_one_rank(const Checkpoint& ckpt, const std::vector<std::vector<int32_t>>& prompts,
                                bool expert_parallel = false) {
  auto single = make_tp_backend(ckpt, 1);
  ASSERT_NE(single, nullptr);
  const Generation reference = generate(*single, prompts);
  for (const auto& out : reference.outputs) ASSERT_EQ(out.size(), static_cast<size_t>(kNewTokens));
  for (int tp : {2, 4}) {
    SCOPED_TRACE("tensor parallel size " + std::to_string(tp) + (expert_parallel ? ", expert parallel" : ""));
    auto sharded = make_tp_backend(ckpt, tp, expert_parallel);
    ASSERT_NE(sharded, nullptr);
    EXPECT_EQ(sharded->model_config().vocab_size, single->model_config().vocab_size);
    const Generation g = generate(*sharded, prompts);
    EXPECT_EQ(g.outputs, reference.outputs);
    ASSERT_EQ(g.logits.size(), reference.logits.size());
    EXPECT_LE(max_abs_diff(g.logits, reference.logits), kLogitTolerance);
  }
}

class TensorParallelModels : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallelModels, GreedyTokensAndLogitsMatchOneRank) {
  auto ckpt = open_checkpoint(GetParam());
  ASSERT_NE(ckpt, nullptr);
  const auto prompts = testing::golden_prompts(GetParam());
  ASSERT_EQ(prompts.size(), 3u);
  expect_tp_matches_one_rank(*ckpt, prompts);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TensorParallelModels, ::testing::ValuesIn(testing::kFixtureModels),
                         testing::model_param_name);

// The MoE fixtures (8 experts: 4 a rank at TP=2, 2 at TP=4) with their
// experts spread over the ranks; DeepSeek-V3's grouped routing and its
// shared experts (still sliced) included.
class ExpertParallelModels : public ::testing::TestWithParam<std::string> {};

TEST_P(ExpertParallelModels, GreedyTokensAndLogitsMatchOneRank) {
  auto ckpt = open_checkpoint(GetParam());
  ASSERT_NE(ckpt, nullptr);
  ASSERT_EQ(ckpt->config().num_experts, 8);
  expect_tp_matches_one_rank(*ckpt, testing::golden_prompts(GetParam()), /*expert_parallel=*/true);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExpertParallelModels, ::testing::Values("qwen3-moe-tiny", "deepseek-v3-tiny"),
                         testing::model_param_name);

// Each rank holds E/N whole experts: its routed experts' bytes are the
// whole model's over N, and its other weights are TP's.
TEST(ExpertParallel, EachRankHoldsItsShareOfTheExperts) {
  for (const std::string name : {"qwen3-moe-tiny", "deepseek-v3-tiny"}) {
    SCOPED_TRACE(name);
    auto ckpt = open_checkpoint(name);
    ASSERT_NE(ckpt, nullptr);
    auto one = make_tp_backend(*ckpt, 1);
    ASSERT_NE(one, nullptr);
    const size_t whole = dynamic_cast<CpuBackend&>(*one).routed_expert_bytes();
    EXPECT_GT(whole, 0u);
    for (int n : {2, 4}) {
      auto ep = make_tp_backend(*ckpt, n, true), tp = make_tp_backend(*ckpt, n, false);
      ASSERT_TRUE(ep && tp);
      auto& ep_ranks = dynamic_cast<TensorParallelBackend&>(*ep);
      auto& tp_ranks = dynamic_cast<TensorParallelBackend&>(*tp);
      ASSERT_EQ(ep_ranks.world_size(), n);
      for (int r = 0; r < n; ++r) {
        auto& ep_rank = dynamic_cast<CpuBackend&>(ep_ranks.rank(r));
        auto& tp_rank = dynamic_cast<CpuBackend&>(tp_ranks.rank(r));
        EXPECT_EQ(ep_rank.routed_expert_bytes(), whole / n) << "rank " << r << " of " << n;
        EXPECT_EQ(ep_rank.weight_bytes() - ep_rank.routed_expert_bytes(),
                  tp_rank.weight_bytes() - tp_rank.routed_expert_bytes());
      }
    }
  }
}

TEST(ExpertParallel, AnExpertCountTheRanksDoNotDivideIsRefused) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("baton_ep_six_" + std::to_string(std::random_device{}()));
  Result<ModelPreset> preset = find_model_preset("tiny-qwen3-moe");
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  ModelConfig six = preset->config;
  six.num_experts = 6;
  RandomCheckpointOptions options;
  options.out_dir = dir.string();
  options.num_threads = 1;
  ASSERT_TRUE(write_random_checkpoint(six, options).is_ok());
  Result<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::open(dir.string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  BackendOptions bo;
  bo.num_threads = 1;
  bo.tensor_parallel_size = 4;
  bo.enable_expert_parallel = true;
  Result<std::unique_ptr<Backend>> b = make_backend("cpu", **ckpt, bo);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("6 experts evenly over 4 ranks"), std::string::npos) << b.status().to_string();
  bo.tensor_parallel_size = 2;  // 3 experts a rank
  EXPECT_TRUE(make_backend("cpu", **ckpt, bo).is_ok());
  bo.enable_expert_parallel = false;  // sliced experts: TP=4 splits moe_intermediate_size instead
  bo.tensor_parallel_size = 4;
  EXPECT_TRUE(make_backend("cpu", **ckpt, bo).is_ok());
  std::filesystem::remove_all(dir);
}

// Shapes the fixtures lack, from random-weight presets: a dense layer
// between MoE layers (tiny-qwen3-moe) and MLA without q LoRA, its q_proj
// split by head (tiny-deepseek-v3).
class TensorParallelPresets : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallelPresets, GreedyTokensAndLogitsMatchOneRank) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("baton_tp_" + GetParam() + "_" + std::to_string(std::random_device{}()));
  Result<ModelPreset> preset = find_model_preset(GetParam());
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  RandomCheckpointOptions options;
  options.out_dir = dir.string();
  options.seed = 11;
  options.num_threads = 1;
  options.initializer_range = 0.2;  // logits far from uniform, so greedy picks are clear
  auto written = write_random_checkpoint(preset->config, options);
  ASSERT_TRUE(written.is_ok()) << written.status().to_string();
  Result<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::open(dir.string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> token(0, (*ckpt)->config().vocab_size - 1);
  std::vector<std::vector<int32_t>> prompts(3);
  for (size_t i = 0; i < prompts.size(); ++i)
    for (size_t t = 0; t < 4 + 5 * i; ++t) prompts[i].push_back(token(rng));
  expect_tp_matches_one_rank(**ckpt, prompts);
  expect_tp_matches_one_rank(**ckpt, prompts, /*expert_parallel=*/true);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Presets, TensorParallelPresets, ::testing::Values("tiny-qwen3-moe", "tiny-deepseek-v3"),
                         testing::model_param_name);

// Each rank's cache holds only its KV heads: the instance's block is the
// sum of the ranks' (TP=4 replicates the 2 KV heads, so it doubles).
TEST(TensorParallel, KvCacheSplitsAndReplicatesHeads) {
  auto ckpt = open_checkpoint("llama3-tiny");
  ASSERT_NE(ckpt, nullptr);
  auto one = make_tp_backend(*ckpt, 1), two = make_tp_backend(*ckpt, 2), four = make_tp_backend(*ckpt, 4);
  ASSERT_TRUE(one && two && four);
  EXPECT_EQ(two->kv_block_bytes(16), one->kv_block_bytes(16));
  EXPECT_EQ(four->kv_block_bytes(16), 2 * one->kv_block_bytes(16));
  EXPECT_EQ(two->kv_memory().layout.num_kv_heads, 1);
  EXPECT_EQ(four->kv_memory().layout.num_kv_heads, 1);
  // What PD's relayout reads: every rank's cache and how the heads lie.
  EXPECT_EQ(one->kv_memory().tp_layout(), (KvTpLayout{1, 2, 1}));
  EXPECT_EQ(two->kv_memory().tp, (KvTpLayout{2, 1, 1}));
  EXPECT_EQ(four->kv_memory().tp, (KvTpLayout{4, 1, 2}));
  EXPECT_EQ(four->kv_memory().rank_bases.size(), 4u);
  EXPECT_EQ(four->kv_memory().tp.first_kv_head(3), 1);
  EXPECT_NE(four->device_name().find("tensor parallel x4"), std::string::npos) << four->device_name();
  // The CPU's KV budget is the instance's, shared by its ranks (all in one memory).
  EXPECT_EQ(four->available_kv_bytes(), one->available_kv_bytes());
}

TEST(TensorParallel, LayoutsThatCannotShardAreRefusedNamingTheHeads) {
  auto ckpt = open_checkpoint("qwen3-tiny");
  ASSERT_NE(ckpt, nullptr);
  for (int tp : {3, 8}) {
    BackendOptions options;
    options.tensor_parallel_size = tp;
    Result<std::unique_ptr<Backend>> b = make_backend("cpu", *ckpt, options);
    ASSERT_FALSE(b.is_ok());
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(b.status().message().find("4 attention heads"), std::string::npos) << b.status().to_string();
    EXPECT_NE(b.status().message().find("--tensor-parallel-size " + std::to_string(tp)), std::string::npos);
  }
  BackendOptions zero;
  zero.tensor_parallel_size = 0;
  EXPECT_EQ(make_backend("cpu", *ckpt, zero).status().code(), StatusCode::kInvalidArgument);
}

TEST(TensorParallel, OtherDevicesRefuseMoreThanOneRank) {
  auto ckpt = open_checkpoint("qwen3-tiny");
  ASSERT_NE(ckpt, nullptr);
  BackendOptions options;
  options.tensor_parallel_size = 2;
  Result<std::unique_ptr<Backend>> b = make_backend("cuda", *ckpt, options);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(b.status().message().find("--tensor-parallel-size 2"), std::string::npos) << b.status().to_string();
}

// TP=2 ranks built by hand, keeping a handle on the group to break it.
struct HandBuilt {
  std::unique_ptr<TensorParallelBackend> backend;
  Communicator* rank1_comm = nullptr;
};

HandBuilt build_by_hand(const Checkpoint& ckpt) {
  HandBuilt h;
  auto group = CpuCommunicator::make_group(2, std::chrono::milliseconds(5000));
  std::vector<std::unique_ptr<Communicator>> comms;
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int r = 0; r < 2; ++r) {
    Result<TpShard> shard = TpShard::make(ckpt.config(), r, 2);
    EXPECT_TRUE(shard.is_ok()) << shard.status().to_string();
    if (!shard.is_ok()) return h;
    auto rank = CpuBackend::create_rank(ckpt, BackendOptions{.num_threads = 1}, CpuTpRank{*shard, group[r].get()});
    EXPECT_TRUE(rank.is_ok()) << rank.status().to_string();
    if (!rank.is_ok()) return h;
    ranks.push_back(std::move(rank).value());
    comms.push_back(std::move(group[r]));
  }
  h.rank1_comm = comms[1].get();
  auto tp = TensorParallelBackend::create(std::move(comms), std::move(ranks));
  EXPECT_TRUE(tp.is_ok()) << tp.status().to_string();
  if (tp.is_ok()) h.backend = std::move(tp).value();
  if (h.backend) {
    EXPECT_TRUE(h.backend->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  }
  return h;
}

TEST(TensorParallel, BadInputFailsTheStepButNotTheInstance) {
  auto ckpt = open_checkpoint("llama3-tiny");
  ASSERT_NE(ckpt, nullptr);
  HandBuilt h = build_by_hand(*ckpt);
  ASSERT_NE(h.backend, nullptr);
  std::vector<TestSeq> seqs(1);
  seqs[0].tokens = {1, 2, 100000};  // the last id is outside the vocabulary
  seqs[0].params.temperature = 0.0f;
  seqs[0].blocks = {0};
  std::vector<int> index_of;
  StepInput bad = testing::build_step(seqs, {3}, kBlockSize, &index_of);
  Result<StepOutput> out = h.backend->execute(bad);
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("outside the vocabulary"), std::string::npos) << out.status().to_string();
  EXPECT_TRUE(h.backend->health().is_ok()) << h.backend->health().to_string();  // an invalid step breaks nothing
  seqs[0].tokens = {1, 2, 3};
  StepInput good = testing::build_step(seqs, {3}, kBlockSize, &index_of);
  Result<StepOutput> again = h.backend->execute(good);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->samples.size(), 1u);
}

TEST(TensorParallel, AFailedRankEndsTheInstanceWithItsError) {
  auto ckpt = open_checkpoint("llama3-tiny");
  ASSERT_NE(ckpt, nullptr);
  HandBuilt h = build_by_hand(*ckpt);
  ASSERT_NE(h.backend, nullptr);
  h.rank1_comm->abort(internal_error("rank 1 ran out of memory"));
  std::vector<TestSeq> seqs(1);
  seqs[0].tokens = {1, 2, 3};
  seqs[0].params.temperature = 0.0f;
  seqs[0].blocks = {0};
  std::vector<int> index_of;
  StepInput in = testing::build_step(seqs, {3}, kBlockSize, &index_of);
  for (int attempt = 0; attempt < 2; ++attempt) {  // every later step fails too, at once
    const auto start = std::chrono::steady_clock::now();
    Result<StepOutput> out = h.backend->execute(in);
    ASSERT_FALSE(out.is_ok());
    EXPECT_NE(out.status().message().find("rank 1 ran out of memory"), std::string::npos) << out.status().to_string();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
  EXPECT_NE(h.backend->health().message().find("rank 1 ran out of memory"), std::string::npos);
}

}  // namespace
}  // namespace baton
