// Tensor parallelism on the CUDA backend, on one GPU: NCCL's collectives with
// one rank (also captured into a CUDA graph); the NCCL path at one rank
// generating exactly the plain backend's greedy tokens and logits (decode
// through CUDA graphs included); the sharded forward pass at TP=2 and TP=4
// (KV heads replicated; DeepSeek-V3's MLA heads split, its latent row whole
// on every rank) over host-staged CPU collectives, several ranks on the one
// GPU, teacher-forced against TP=1 (the same greedy picks but at
// bf16 near-ties, logits within 2e-2); a failed rank ending the instance
// with its error; clear refusals of what cannot run; the MoE fixture with
// its experts spread over 2 and 4 ranks (--enable-expert-parallel) against
// the plain backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend_factory.h"
#include "backend/cuda/cuda_tensor_parallel.h"
#include "backend/cuda/host_staged_communicator.h"
#include "backend/cuda/nccl_communicator.h"
#include "backend/fixture_models.h"
#include "backend/greedy_batch.h"
#include "backend/step_builder.h"
#include "cuda_test_util.h"
#include "greedy_picks.h"
#include "model/checkpoint.h"

namespace baton::cuda {
namespace {

using baton::testing::Generation;
using baton::testing::TestSeq;
using namespace baton::cuda::testing;

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;
constexpr int kNewTokens = 8;
constexpr int kPrefillChunk = 7;

// The fixture models the CUDA ranks shard: every one.
const std::vector<std::string> kShardedModels = {"llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny",
                                                 "deepseek-v3-tiny"};

std::unique_ptr<Checkpoint> open_checkpoint(const std::string& name) {
  Result<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::open(baton::testing::fixture_model_dir(name));
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  return ckpt.is_ok() ? std::move(ckpt).value() : nullptr;
}

// The prompts as one batch: chunked prefill, then kNewTokens greedy tokens
// each (decode steps replay CUDA graphs unless logits are asked for), maybe
// teacher-forced by `forced`.
Generation generate(Backend& backend, const std::vector<std::vector<int32_t>>& prompts, bool with_logits,
                    const Generation* forced = nullptr) {
  baton::testing::GreedyBatch batch;
  batch.new_tokens = kNewTokens;
  batch.prefill_chunk = kPrefillChunk;
  batch.block_size = kBlockSize;
  batch.with_logits = with_logits;
  return baton::testing::generate_greedy(backend, prompts, batch, forced);
}

std::unique_ptr<CudaBackend> plain_backend(const Checkpoint& ckpt) {
  auto b = CudaBackend::create(ckpt, small_backend_options());
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  EXPECT_TRUE((*b)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  return std::move(b).value();
}

TEST(NcclCommunicator, OneRankCollectivesRunEagerlyAndInsideAGraph) {
  if (!NcclCommunicator::available()) GTEST_SKIP() << "this build has no NCCL";
  auto group = NcclCommunicator::make_group({0});
  ASSERT_TRUE(group.is_ok()) << group.status().to_string();
  NcclCommunicator& comm = *(*group)[0];
  EXPECT_EQ(comm.world_size(), 1);
  EXPECT_TRUE(comm.capturable());
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  comm.set_stream(stream);
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  DeviceBuffer data = upload(values), gathered = poisoned_f32(values.size());
  DeviceBuffer halves = upload_bf16(values);
  // Eager: with one rank every collective leaves the values as they are.
  ASSERT_TRUE(comm.all_reduce_sum(data.as<float>(), values.size()).is_ok());
  ASSERT_TRUE(comm.all_reduce_sum_bf16(halves.as<bf16>(), values.size()).is_ok());
  ASSERT_TRUE(comm.all_gather(data.as<float>(), values.size(), gathered.as<float>()).is_ok());
  ASSERT_TRUE(comm.broadcast(data.as<float>(), values.size(), 0).is_ok());
  EXPECT_FALSE(comm.broadcast(data.as<float>(), values.size(), 1).is_ok()) << "root outside the group";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(download<float>(data, values.size()), values);
  EXPECT_EQ(download<float>(gathered, values.size()), values);
  EXPECT_EQ(download_bf16(halves, values.size()), values);
  // Captured: the gather replays into a buffer poisoned after the capture.
  DeviceBuffer replayed = poisoned_f32(values.size());
  cudaGraph_t graph;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_TRUE(comm.all_gather(data.as<float>(), values.size(), replayed.as<float>()).is_ok());
  ASSERT_TRUE(comm.all_reduce_sum(data.as<float>(), values.size()).is_ok());
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  EXPECT_TRUE(std::isnan(download<float>(replayed, 1)[0])) << "capture ran the collective";
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(download<float>(replayed, values.size()), values);
  EXPECT_TRUE(comm.health().is_ok()) << comm.health().to_string();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  // An abort breaks the group: later collectives return the cause.
  comm.abort(internal_error("rank 0 failed on purpose"));
  Status after = comm.all_reduce_sum(data.as<float>(), values.size());
  EXPECT_NE(after.message().find("on purpose"), std::string::npos) << after.to_string();
  EXPECT_FALSE(comm.health().is_ok());
  cudaStreamDestroy(stream);
}

class CudaTensorParallelModels : public ::testing::TestWithParam<std::string> {};

// The NCCL path with one rank: every collective of the sharded forward pass
// runs (identity at one rank), the decode steps' graphs capture them; the
// greedy tokens (through the graphs) are the plain backend's.
TEST_P(CudaTensorParallelModels, NcclOneRankMatchesThePlainBackend) {
  if (!NcclCommunicator::available()) GTEST_SKIP() << "this build has no NCCL";
  auto ckpt = open_checkpoint(GetParam());
  ASSERT_NE(ckpt, nullptr);
  const auto prompts = baton::testing::golden_prompts(GetParam());
  auto plain = plain_backend(*ckpt);
  ASSERT_NE(plain, nullptr);
  const Generation ref_tokens = generate(*plain, prompts, false);
  const Generation ref_logits = generate(*plain, prompts, true);
  auto group = NcclCommunicator::make_group({0});
  ASSERT_TRUE(group.is_ok()) << group.status().to_string();
  Result<TpShard> shard = TpShard::make(ckpt->config(), 0, 1);
  ASSERT_TRUE(shard.is_ok());
  auto nccl = CudaBackend::create(*ckpt, small_backend_options(), CudaTpRank{*shard, (*group)[0].get()});
  ASSERT_TRUE(nccl.is_ok()) << nccl.status().to_string();
  ASSERT_TRUE((*nccl)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  const Generation tokens = generate(**nccl, prompts, false);
  EXPECT_GT((*nccl)->num_graphs(), 0) << "decode steps replay graphs with the NCCL collectives in them";
  EXPECT_EQ(tokens.outputs, ref_tokens.outputs);
  // The collectives are identities at one rank, but two backends are not
  // bitwise alike: each times cuBLASLt's candidates and keeps the fastest
  // (gemm.cpp), and MoE places tokens with atomics (moe.cu). Bitwise equal
  // in some H200 runs, last bits apart in others.
  expect_same_greedy_picks(generate(**nccl, prompts, true, &ref_logits), ref_logits, ckpt->config().vocab_size, 1e-2);
}

// `tp` ranks of `ckpt` on GPU 0 over host-staged collectives.
Result<std::unique_ptr<TensorParallelBackend>> host_staged_ranks(const Checkpoint& ckpt, int tp,
                                                                 const CudaBackendOptions& options) {
  std::vector<std::unique_ptr<DeviceCommunicator>> comms;
  for (auto& c : HostStagedCommunicator::make_group(tp, std::chrono::milliseconds(5000))) comms.push_back(std::move(c));
  CudaRankMaker make_rank = [&](const CudaBackendOptions& o, const CudaTpRank& rank) {
    return CudaBackend::create(ckpt, o, rank);
  };
  return make_cuda_tensor_parallel(ckpt.config(), options, std::vector<int>(tp, 0), std::move(comms), make_rank);
}

// Several ranks on the one GPU over host-staged collectives: TP=2 and TP=4
// (the fixtures' 2 KV heads replicated on two ranks each; deepseek-v3-tiny's
// 4 MLA heads 2 and 1 per rank) against TP=1.
TEST_P(CudaTensorParallelModels, ShardedRanksMatchOneRank) {
  auto ckpt = open_checkpoint(GetParam());
  ASSERT_NE(ckpt, nullptr);
  const auto prompts = baton::testing::golden_prompts(GetParam());
  auto plain = plain_backend(*ckpt);
  ASSERT_NE(plain, nullptr);
  const Generation reference = generate(*plain, prompts, true);
  for (int tp : {2, 4}) {
    SCOPED_TRACE("tensor parallel size " + std::to_string(tp));
    auto sharded = host_staged_ranks(*ckpt, tp, small_backend_options());
    if (!sharded.is_ok() && sharded.status().code() == StatusCode::kUnimplemented &&
        sharded.status().message().find("intermediate size divisible by 8") != std::string::npos) {
      std::printf("  %s at TP=%d refused: %s\n", GetParam().c_str(), tp, sharded.status().to_string().c_str());
      continue;  // llama3-tiny's 176 over 4 ranks: 44 each
    }
    ASSERT_TRUE(sharded.is_ok()) << sharded.status().to_string();
    ASSERT_TRUE((*sharded)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
    EXPECT_EQ((*sharded)->model_config().vocab_size, ckpt->config().vocab_size);
    const Generation g = generate(**sharded, prompts, true, &reference);
    expect_same_greedy_picks(g, reference, ckpt->config().vocab_size, 2e-2);
  }
}

// A rank that fails ends the instance: its abort reaches the other ranks'
// collectives, the step fails naming the cause within the deadline, and so
// does every later step (no request waits).
TEST(CudaTensorParallel, AFailedRankEndsTheInstanceWithItsError) {
  auto ckpt = open_checkpoint("qwen3-tiny");
  ASSERT_NE(ckpt, nullptr);
  std::vector<std::unique_ptr<DeviceCommunicator>> comms;
  for (auto& c : HostStagedCommunicator::make_group(2, std::chrono::milliseconds(5000))) comms.push_back(std::move(c));
  DeviceCommunicator* rank1 = comms[1].get();
  CudaRankMaker make_rank = [&](const CudaBackendOptions& o, const CudaTpRank& rank) {
    return CudaBackend::create(*ckpt, o, rank);
  };
  auto tp = make_cuda_tensor_parallel(ckpt->config(), small_backend_options(), {0, 0}, std::move(comms), make_rank);
  ASSERT_TRUE(tp.is_ok()) << tp.status().to_string();
  ASSERT_TRUE((*tp)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  const auto prompts = baton::testing::golden_prompts("qwen3-tiny");
  EXPECT_EQ(generate(**tp, prompts, false).outputs.size(), prompts.size());  // healthy first
  rank1->abort(internal_error("rank 1 lost its GPU (injected)"));
  std::vector<TestSeq> seqs(1);
  seqs[0].tokens = prompts[0];
  seqs[0].prompt_len = static_cast<int>(prompts[0].size());
  for (int b = 0; b * kBlockSize < seqs[0].prompt_len + 1; ++b) seqs[0].blocks.push_back(b);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    StepInput in = baton::testing::build_step(seqs, {seqs[0].prompt_len}, kBlockSize);
    Result<StepOutput> out = (*tp)->execute(in);
    ASSERT_FALSE(out.is_ok());
    EXPECT_NE(out.status().message().find("injected"), std::string::npos) << out.status().to_string();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  }
}

// Expert parallelism: qwen3-moe-tiny's 8 experts spread whole over 2 and 4
// ranks on the one GPU (each rank sorting only its experts' slots, the
// all-reduce adding the others'), teacher-forced against the plain backend;
// each rank's weights are smaller than the whole model's by its experts.
TEST(CudaExpertParallel, SpreadExpertsMatchThePlainBackend) {
  auto ckpt = open_checkpoint("qwen3-moe-tiny");
  ASSERT_NE(ckpt, nullptr);
  const auto prompts = baton::testing::golden_prompts("qwen3-moe-tiny");
  auto plain = plain_backend(*ckpt);
  ASSERT_NE(plain, nullptr);
  const Generation reference = generate(*plain, prompts, true);
  CudaBackendOptions options = small_backend_options();
  options.enable_expert_parallel = true;
  for (int tp : {2, 4}) {
    SCOPED_TRACE("expert parallel over " + std::to_string(tp) + " ranks");
    auto ep = host_staged_ranks(*ckpt, tp, options);
    ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
    for (int r = 0; r < tp; ++r)
      EXPECT_LT(dynamic_cast<CudaBackend&>((*ep)->rank(r)).weight_bytes(), plain->weight_bytes());
    ASSERT_TRUE((*ep)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
    const Generation g = generate(**ep, prompts, true, &reference);
    expect_same_greedy_picks(g, reference, ckpt->config().vocab_size, 2e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaTensorParallelModels, ::testing::ValuesIn(kShardedModels),
                         baton::testing::model_param_name);

TEST(CudaTensorParallel, DeviceListsThatCannotRunAreRefused) {
  int visible = 0;
  ASSERT_EQ(cudaGetDeviceCount(&visible), cudaSuccess);
  auto too_many = choose_tp_devices({}, visible + 1);
  ASSERT_FALSE(too_many.is_ok());
  EXPECT_NE(too_many.status().message().find("visible"), std::string::npos) << too_many.status().to_string();
  auto twice = choose_tp_devices({0, 0}, 2);
  ASSERT_FALSE(twice.is_ok());
  EXPECT_NE(twice.status().message().find("twice"), std::string::npos) << twice.status().to_string();
  auto count = choose_tp_devices({0}, 2);
  ASSERT_FALSE(count.is_ok());
  EXPECT_NE(count.status().message().find("one GPU per rank"), std::string::npos) << count.status().to_string();
  // MLA shards by head: 4 heads over 3 ranks is refused naming them, before any GPU is asked for.
  auto ckpt = open_checkpoint("deepseek-v3-tiny");
  ASSERT_NE(ckpt, nullptr);
  BackendOptions options;
  options.tensor_parallel_size = 3;
  auto mla = make_cuda_backend(*ckpt, options);
  ASSERT_FALSE(mla.is_ok());
  EXPECT_NE(mla.status().message().find("4 attention heads"), std::string::npos) << mla.status().to_string();
}

}  // namespace
}  // namespace baton::cuda
